"""train.py (and the shared loaders of valid.py / infer.py) on bad weights, bad files, bad
flags, a full disk and NaN metrics: each refused or reported with the flag / path named."""

import errno
import json
import os

import pytest
import torch
import torchvision

import infer
import network
import train
import valid
from tests.test_train import BLINDNET, TINY, _run
from utils import checkpoint as ckpt_utils
from utils.checkpoint import load_checkpoint

R18_OFFICIAL = ["--arch", "network.deepv3.DeepR18V3PlusD", "--pretrained", "none", "--wt_layer",
                "0", "0", "1", "1", "1", "0", "0"]


def _weights(path, arch, num_classes=19, wt_layer=(0, 0, 1, 1, 1, 0, 0)):
    torch.manual_seed(0)
    model = network.get_net(arch, num_classes, list(wt_layer), pretrained=False)
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def _exit_message(excinfo):
    return str(excinfo.value.code)


# --- flags -------------------------------------------------------------------------------

def test_no_imagenet_weights_without_pretrained_is_an_error(data_env, tmp_path, monkeypatch):
    # The official scripts pass no --pretrained: on an offline node the run used to train a
    # random ResNet with a warning and exit 0. Now it stops, naming both ways on.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    at = TINY.index("--pretrained")
    argv = TINY[:at] + TINY[at + 2:] + BLINDNET + [
        "--max_iter", "1", "--ckpt", str(tmp_path / "ckpt"), "--tb_path", str(tmp_path / "tb")]
    with pytest.raises(SystemExit) as excinfo:
        train.main(argv)
    message = _exit_message(excinfo)
    assert message.startswith("train.py: error: no ImageNet weights for the resnet18 trunk")
    for words in ("--pretrained PATH", "--pretrained none", str(tmp_path / "hub" / "checkpoints")):
        assert words in message, words


@pytest.mark.parametrize("flags, words", [
    (["--lr", "-0.01"], "--lr must be > 0, got -0.01"),
    (["--weight_decay", "-1"], "--weight_decay must be >= 0"),
    (["--w3", "-0.3"], "--w3 (a loss weight) must be finite and >= 0"),
    (["--crop_size", "8"], "--crop_size 8 is too small for --arch network.deepv3.DeepR18V3PlusD"),
    (["--bs_mult", "1"], "--bs_mult 1 in a single process cannot train: the ASPP image-pooling"),
    (["--poly_exp", "-1"], "--poly_exp must be >= 0"),
    (["--dist_timeout", "0"], "--dist_timeout must be > 0 minutes"),
    (["--amp", "fp16", "--device", "cpu"], "--amp fp16 needs a GPU"),  # not at the first step
])
def test_bad_flags_exit_2_naming_the_flag(data_env, tmp_path, capsys, flags, words):
    with pytest.raises(SystemExit) as excinfo:
        _run(tmp_path, "--max_iter", "1", "--val_dataset", "cityscapes", *flags)
    assert excinfo.value.code == train.EXIT_BAD_FLAG
    assert words in capsys.readouterr().err


def test_crop_size_limit_is_the_measured_one():
    from network.input_size import check_train_crop

    official = [0, 0, 1, 1, 1, 0, 0]
    check_train_crop("DeepR18V3PlusD", 19, official, 9)  # measured: 9 works, 8 does not
    with pytest.raises(ValueError, match=r"--crop_size 8 .* use --crop_size >= 9"):
        check_train_crop("DeepR18V3PlusD", 19, official, 8)
    with pytest.raises(ValueError, match=r"spatial element.*use --crop_size >= 17"):
        check_train_crop("DeepShuffleNetV3PlusD", 19, official, 12)
    check_train_crop("DeepShuffleNetV3PlusD", 19, [0] * 7, 8)  # no IN layer: no limit


def test_flag_checks_library_raises_value_errors():
    from utils.flag_checks import check_batch_size, check_loss_weights, check_optimizer_flags

    check_optimizer_flags(0.01, 0.0, 0.9, 1, 0.9)
    for args, flag in (((0.0, 0.0, 0.9, 1, 0.9), "--lr"), ((0.01, 0.0, 0.9, 0, 0.9), "--max_iter"),
                       ((float("nan"), 0.0, 0.9, 1, 0.9), "--lr"),
                       ((0.01, 0.0, 1.0, 1, 0.9), "--momentum")):
        with pytest.raises(ValueError, match=flag):
            check_optimizer_flags(*args)
    with pytest.raises(ValueError, match="--w1"):
        check_loss_weights({"w1": float("inf")})
    check_batch_size(1, 2, sync_batchnorm=True)  # SyncBatchNorm over 2 GPU processes: fine
    with pytest.raises(ValueError, match="in each of 2 processes without SyncBatchNorm"):
        check_batch_size(1, 2, sync_batchnorm=False)
    with pytest.raises(ValueError, match="--bs_mult must be an integer >= 1"):
        check_batch_size(0, 1, sync_batchnorm=False)


# --- weights that do not fit -------------------------------------------------------------

def test_snapshot_that_does_not_fit_is_refused_with_the_list(data_env, tmp_path):
    cases = {
        "r18_for_r50": (_weights(tmp_path / "r18.pth", "DeepR18V3PlusD"),
                        ["--arch", "network.deepv3.DeepR50V3PlusD"], "shape mismatch"),
        "7_classes": (_weights(tmp_path / "c7.pth", "DeepR18V3PlusD", num_classes=7), [],
                      "shape mismatch (e.g. final2."),
        "shufflenet_for_r18": (_weights(tmp_path / "shuffle.pth", "DeepShuffleNetV3PlusD"), [],
                               "missing in checkpoint"),
        # Trained without IN layers: its layer0 BatchNorm has no place in the IN model.
        "wt_layer": (_weights(tmp_path / "nowt.pth", "DeepR18V3PlusD", wt_layer=[0] * 7), [],
                     "5 unused from checkpoint (e.g. layer0.1.weight)"),
    }
    for name, (path, flags, words) in cases.items():
        with pytest.raises(SystemExit) as excinfo:
            _run(tmp_path, "--max_iter", "1", "--val_dataset", "cityscapes", "--snapshot",
                 str(path), *flags, exp=name)
        message = _exit_message(excinfo)
        assert f"--snapshot {path} does not fit --arch" in message, message
        assert words in message and "--snapshot_partial" in message, (name, message)
        assert "\n" not in message and "it looks like" in message  # the list: in the log


def test_snapshot_partial_loads_what_fits_and_warns(data_env, tmp_path):
    path = _weights(tmp_path / "c7.pth", "DeepR18V3PlusD", num_classes=7)
    result = _run(tmp_path, "--max_iter", "1", "--val_dataset", "cityscapes", "--snapshot",
                  str(path), "--snapshot_partial")
    assert result.iteration == 1
    log = (tmp_path / "ckpt" / "d" / "exp" / "train.log").read_text()
    assert "WARNING --snapshot_partial: --snapshot" in log and "shape mismatch final2" in log


def test_torchvision_imagenet_weights_as_snapshot_point_to_pretrained(data_env, tmp_path):
    full = torchvision.models.resnet18().state_dict()
    trunk_only = {k: v for k, v in full.items() if not k.startswith("fc.")}
    for name, weights in (("full", full), ("trunk", trunk_only)):
        path = tmp_path / f"{name}.pth"
        torch.save(weights, path)
        with pytest.raises(SystemExit) as excinfo:
            _run(tmp_path, "--max_iter", "1", "--val_dataset", "cityscapes", "--snapshot",
                 str(path), exp=name)
        message = _exit_message(excinfo)
        assert "torchvision ImageNet classifier" in message, message
        assert f"--pretrained {path}" in message


# --- resume ------------------------------------------------------------------------------

def test_resume_of_weights_only_file_says_use_snapshot(data_env, tmp_path):
    path = _weights(tmp_path / "weights.pth", "DeepR18V3PlusD")
    with pytest.raises(SystemExit) as excinfo:
        _run(tmp_path, "--max_iter", "1", "--val_dataset", "cityscapes", "--resume", str(path))
    message = _exit_message(excinfo)
    assert f"--resume {path} holds no training state" in message
    assert f"use --snapshot {path}" in message


def test_resume_tolerates_missing_scaler_and_rng(data_env, tmp_path):
    common = ["--max_iter", "4", "--val_dataset", "cityscapes", "--save_every", "100"]
    _run(tmp_path, *common, "--stop_at", "2")
    last = tmp_path / "ckpt" / "d" / "exp" / "last.pth"
    state = load_checkpoint(last)
    del state["scaler"], state["rng"]
    torch.save(state, last)
    resumed = _run(tmp_path, *common, "--resume", "auto")
    assert resumed.iteration == 4
    log = (tmp_path / "ckpt" / "d" / "exp" / "train.log").read_text()
    assert "no 'rng' entry" in log and "resumed" in log


def test_a_stop_at_the_resumed_run_is_already_past_is_named_not_ignored(data_env, tmp_path):
    # The same --stop_at after --resume auto used to be skipped without a word: the run
    # trained on to --max_iter.
    common = ["--max_iter", "3", "--val_dataset", "cityscapes", "--save_every", "100",
              "--stop_at", "2"]
    _run(tmp_path, *common)
    resumed = _run(tmp_path, *common, "--resume", "auto")
    assert resumed.iteration == 3
    log = (tmp_path / "ckpt" / "d" / "exp" / "train.log").read_text()
    assert "--stop_at 2: the run continues at iteration 2, at or past it" in log


def test_official_checkpoint_without_iteration_resumes_at_its_epoch(tmp_path):
    from engine.checkpointing import restore_training_state

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0)
    official = {"state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": 3, "mean_iu": 0.4}
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    position = restore_training_state(official, "official.pth", optimizer, scheduler, scaler,
                                      torch.Generator(), 0, 1, iters_per_epoch=10)
    assert (position.iteration, position.epoch, position.epoch_iter) == (30, 3, 0)
    assert any("no 'iteration' entry" in note for note in position.notes)


# --- unreadable files --------------------------------------------------------------------

def _unreadable(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(bytes(range(256)) * 8)
    return [(empty, "empty file"), (garbage, "not a PyTorch checkpoint")]


def test_unreadable_files_get_our_message_in_every_entry_point(data_env, tmp_path):
    for path, words in _unreadable(tmp_path):
        for flag in ("--snapshot", "--resume", "--pretrained"):
            with pytest.raises(SystemExit) as excinfo:
                _run(tmp_path, "--max_iter", "1", "--val_dataset", "cityscapes", flag, str(path))
            message = _exit_message(excinfo)
            assert str(path) in message and words in message, (flag, message)
            assert "weights_only" not in message
        eval_argv = R18_OFFICIAL + ["--snapshot", str(path), "--val_dataset", "cityscapes",
                                    "--ckpt", str(tmp_path / "eval"), "--num_workers", "0"]
        for script in (valid, infer):
            argv = eval_argv + (["--results", str(tmp_path / "res")] if script is infer else [])
            with pytest.raises(SystemExit) as excinfo:  # one line, not a traceback
                script.main(argv)
            message = str(excinfo.value.code)
            assert message.startswith(f"{script.__name__}.py: error: "), message
            assert str(path) in message and words in message


def test_eval_entry_points_name_a_missing_or_foreign_checkpoint_in_one_line(data_env, tmp_path):
    # Both were tracebacks; the foreign layout's message named neither the file nor its keys.
    foreign = tmp_path / "foreign.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, foreign)
    cases = [(tmp_path / "missing.pth", "does not exist"), (foreign, "['epoch', 'model']")]
    for path, words in cases:
        argv = R18_OFFICIAL + ["--snapshot", str(path), "--val_dataset", "cityscapes",
                               "--ckpt", str(tmp_path / "eval"), "--num_workers", "0",
                               "--results", str(tmp_path / "res")]
        for script in (valid, infer):
            with pytest.raises(SystemExit) as excinfo:
                script.main(argv)
            message = str(excinfo.value.code)
            assert message.startswith(f"{script.__name__}.py: error: "), message
            assert str(path) in message and words in message, message


@pytest.mark.parametrize("variable, dataset", [("BLINDNET_GTAV_DIR", "gtav"),
                                               ("BLINDNET_CITYSCAPES_DIR", "cityscapes")])
def test_a_missing_dataset_root_is_one_error_line_before_the_centroid_pass(
        data_env, tmp_path, monkeypatch, variable, dataset):
    # Both were tracebacks; a missing validation root only after the training set's
    # class-uniform centroids had been computed.
    monkeypatch.setenv(variable, str(tmp_path / "absent"))
    with pytest.raises(SystemExit) as excinfo:
        _run(tmp_path, "--max_iter", "1", "--val_dataset", "cityscapes")
    message = _exit_message(excinfo)
    assert message.startswith(f"train.py: error: {dataset} ")
    assert str(tmp_path / "absent") in message and variable in message
    assert not list((tmp_path / "ckpt" / "cache").glob("*")), "the centroid pass ran first"


# --- disk full, stale temp files, NaN in JSON -------------------------------------------

def test_disk_full_during_training_save_is_one_line_and_keeps_last_good(data_env, tmp_path,
                                                                        monkeypatch):
    real_open, opened = ckpt_utils._open_temp, []

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def second_save_fails(fd):
        opened.append(fd)
        return real_open(fd) if len(opened) == 1 else Full(real_open(fd))

    monkeypatch.setattr(ckpt_utils, "_open_temp", second_save_fails)
    with pytest.raises(SystemExit) as excinfo:
        _run(tmp_path, "--max_iter", "4", "--val_dataset", "cityscapes", "--save_every", "1")
    run_dir = tmp_path / "ckpt" / "d" / "exp"
    message = _exit_message(excinfo)
    assert message == (f"train.py: error: could not save checkpoint {run_dir / 'last.pth'}: "
                       f"No space left on device")
    monkeypatch.undo()
    assert load_checkpoint(run_dir / "last.pth")["iteration"] == 1
    assert not list(run_dir.glob(".*.tmp"))


def test_stale_temp_files_are_removed_at_start_up(data_env, tmp_path):
    run_dir = tmp_path / "ckpt" / "d" / "exp"
    run_dir.mkdir(parents=True)
    stale = run_dir / ".last.pth.k2j4x1.tmp"
    stale.write_bytes(b"half a checkpoint")
    _run(tmp_path, "--max_iter", "1", "--val_dataset", "cityscapes")
    assert not stale.exists()
    assert f"removed {stale}" in (run_dir / "train.log").read_text()


def test_val_history_writes_null_for_nan(data_env, tmp_path):
    from engine.checkpointing import append_history

    _run(tmp_path, "--max_iter", "2", "--val_dataset", "cityscapes")
    path = tmp_path / "ckpt" / "d" / "exp" / "val_history.jsonl"
    # A validation set without a valid pixel for any class gives mIoU NaN: not JSON.
    append_history(path, 2, 1, True, {"cityscapes": float("nan")}, "modern")
    lines = path.read_text().splitlines()

    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    history = [json.loads(line, parse_constant=refuse) for line in lines]
    # mIoU in percent, as the logs print it; the entry says so.
    assert len(history) >= 2 and all(0 <= e["miou"]["cityscapes"] <= 100 and
                                     e["unit"] == "percent" for e in history[:-1])
    assert history[-1] == {"iteration": 2, "epoch": 1, "final": True, "unit": "percent",
                           "miou": {"cityscapes": None}, "norm_semantics": "modern"}


def test_blindnet_flags_still_build_the_tiny_run():
    # The shared TINY / BLINDNET lists stay valid for the start-up checks.
    from cli import parse_args
    from loss import weight_flags
    from utils.flag_checks import check_loss_weights

    args = parse_args("train", TINY + BLINDNET)
    check_loss_weights({flag: getattr(args, flag) for flag in weight_flags()})


def test_snapshot_with_restore_optimizer_continues_after_the_last_batch_of_ours(data_env,
                                                                                tmp_path):
    """5 images, batch 2: 2 iterations per epoch; a checkpoint of ours at iteration 1 is
    mid-epoch, so its epoch ends at iteration 2 (it used to be re-run from its start, ending
    at 3)."""
    common = ["--max_iter", "4", "--val_dataset", "cityscapes", "--save_every", "100"]
    _run(tmp_path, *common, "--stop_at", "1", exp="first")
    mid_epoch = tmp_path / "ckpt" / "d" / "first" / "last.pth"
    assert (ckpt_utils.load_checkpoint(mid_epoch)["epoch_iter"]) == 1
    result = _run(tmp_path, *common, "--snapshot", str(mid_epoch), "--restore_optimizer",
                  exp="second")
    assert result.iteration == 4
    history = [json.loads(line) for line in
               (tmp_path / "ckpt" / "d" / "second" / "val_history.jsonl").open()]
    assert [h["iteration"] for h in history] == [2, 4]  # its epoch's end, then the final one


def test_whitening_codes_the_trunk_ignores_are_refused_at_start_up(data_env, tmp_path):
    # ResNet-18 has no layer at positions 0/1: nothing would be collected, and the first
    # step failed inside the loss with a traceback that said nothing about the trunk.
    common = ["--max_iter", "1", "--val_dataset", "cityscapes", "--ckpt", str(tmp_path / "c"),
              "--tb_path", str(tmp_path / "tb"), "--wt_layer", "1", "1", "0", "0", "0", "0", "0"]
    for flags, needs in ((BLINDNET, "--use_ca"), (["--wt_reg_weight", "0.6"], "--wt_reg_weight")):
        with pytest.raises(SystemExit) as excinfo:
            train.main(TINY + flags + common)
        message = str(excinfo.value)
        assert "--wt_layer 1 1 0 0 0 0 0 gives the" in message and "positions 2-4" in message
        assert f"{needs} needs one" in message
