"""Issue 19: the checkpoint defines the model (valid.py, infer.py, train.py --snapshot), and a
run folder belongs to one run (re-run refused, --resume continues, a concurrent run refused,
a dead run's lock taken over)."""

import json
import shutil
import socket
import subprocess
import sys

import pytest
import torch

import infer
import train
import valid
from engine.run_folder import RunFolderError, check_owner, discard_run
from utils.run_lock import LOCK_NAME, RunLockError, acquire

ARCH = "network.deepv3.DeepShuffleNetV3PlusD"
BLINDNET_WT = ["0", "0", "1", "1", "1", "0", "0"]
TRAIN = ["--arch", ARCH, "--pretrained", "none", "--dataset", "gtav", "--wt_layer", *BLINDNET_WT,
         "--crop_size", "64", "--bs_mult", "2", "--class_uniform_pct", "0", "--num_workers",
         "0", "--scale_min", "0.75", "--scale_max", "1.25", "--max_iter", "1", "--val_dataset"]


def _train_argv(root, exp="e", *extra):
    return [*TRAIN, "--ckpt", str(root / "ckpt"), "--tb_path", str(root / "tb"), "--date", "d",
            "--exp", exp, *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, generated_roots):
    """One BlindNet-layout run (1 iteration) made by train.py: (its folder's root, last.pth)."""
    root = tmp_path_factory.mktemp("trained")
    train.main(_train_argv(root, "e", "--gtav_dir", str(generated_roots["gtav"])))
    return root, root / "ckpt" / "d" / "e" / "last.pth"


def _valid(tmp_path, snapshot, *flags):
    return valid.main(["--snapshot", str(snapshot), "--val_dataset", "cityscapes",
                       "--ckpt", str(tmp_path / "logs"), "--num_workers", "0", *flags])


# --- the checkpoint defines the model -----------------------------------------------------

def test_checkpoints_record_the_model(trained):
    record = torch.load(trained[1], weights_only=True, mmap=True)["model"]
    assert record == {"arch": ARCH, "wt_layer": [0, 0, 1, 1, 1, 0, 0], "num_classes": 19,
                      "norm_semantics": "modern", "arch_options": {}, "norm_layer": "batchnorm",
                      "head_norm_layer": "batchnorm"}


def test_valid_without_model_flags_equals_the_run_with_the_right_flags(data_env, trained,
                                                                       tmp_path, capsys):
    plain = _valid(tmp_path, trained[1])["cityscapes"]
    right = _valid(tmp_path, trained[1], "--arch", ARCH, "--wt_layer", *BLINDNET_WT)
    assert plain["hist"] == right["cityscapes"]["hist"]
    assert "model from the checkpoint: --arch --wt_layer" in capsys.readouterr().out
    # What a flag-built model used to evaluate silently (the IN layers have no tensors, so
    # the baseline layout loads "strictly"): other numbers.
    forced = _valid(tmp_path, trained[1], "--wt_layer", *"0000000", "--snapshot_partial")
    assert forced["cityscapes"]["hist"] != plain["hist"]


CONTRADICTIONS = {
    "wt_layer": (["--wt_layer", *"0000000"], "--wt_layer 0 0 0 0 0 0 0 given, checkpoint "
                                             "trained with --wt_layer 0 0 1 1 1 0 0"),
    "arch": (["--arch", "network.deepv3.DeepR18V3PlusD"], "--arch network.deepv3."
             f"DeepR18V3PlusD given, checkpoint trained with --arch {ARCH}"),
    "norm": (["--norm_semantics", "torch1.2"], "--norm_semantics torch1.2 given, checkpoint "
                                               "trained with --norm_semantics modern"),
    "norm_layer": (["--norm_layer", "instancenorm_affine"], "--norm_layer instancenorm_affine "
                   "given, checkpoint trained with --norm_layer batchnorm"),
}


# train.py may set another --norm_semantics: a new run may train the weights in the other
# mode (DECISIONS.md D47).
@pytest.mark.parametrize("script, case", [(script, case) for script in ("valid", "infer", "train")
                                          for case in CONTRADICTIONS
                                          if (script, case) != ("train", "norm")])
def test_a_flag_contradicting_the_checkpoint_is_refused(trained, tmp_path, capsys, script,
                                                        case):
    flags, words = CONTRADICTIONS[case]
    main = {"valid": valid.main, "infer": infer.main, "train": train.main}[script]
    argv = {"valid": ["--val_dataset", "cityscapes"], "infer": ["--images", str(tmp_path)],
            "train": _train_argv(tmp_path)}[script]
    with pytest.raises(SystemExit) as excinfo:
        main([*argv, "--snapshot", str(trained[1]), *flags])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{script}.py: error: {words} ") and "\n" not in err, err


def test_train_snapshot_takes_the_model_from_the_checkpoint(data_env, trained, tmp_path):
    argv = _train_argv(tmp_path)
    del argv[argv.index("--wt_layer"):argv.index("--wt_layer") + 8]
    del argv[argv.index("--arch"):argv.index("--arch") + 2]
    train.main([*argv, "--snapshot", str(trained[1])])
    saved = json.loads((tmp_path / "ckpt" / "d" / "e" / "args.json").read_text())
    assert (saved["arch"], saved["wt_layer"]) == (ARCH, [0, 0, 1, 1, 1, 0, 0])
    assert saved["model_from_checkpoint"] == ["--arch", "--wt_layer", "--norm_semantics",
                                              "--norm_layer", "--head_norm_layer"]
    assert (saved["norm_layer"], saved["head_norm_layer"]) == ("batchnorm", "batchnorm")


def test_valid_builds_the_norm_layer_the_checkpoint_records(data_env, generated_roots,
                                                            tmp_path, capsys):
    """A run trained with --norm_layer instancenorm_affine is evaluated with that layer
    although valid.py is not told; --norm_layer batchnorm is refused, as --wt_layer is."""
    train.main(_train_argv(tmp_path, "in", "--gtav_dir", str(generated_roots["gtav"]),
                           "--norm_layer", "instancenorm_affine"))
    snapshot = tmp_path / "ckpt" / "d" / "in" / "last.pth"
    assert torch.load(snapshot, weights_only=True, mmap=True)["model"]["norm_layer"] == \
        "instancenorm_affine"
    capsys.readouterr()
    plain = _valid(tmp_path, snapshot, "--exp", "plain")["cityscapes"]
    out = capsys.readouterr().out
    assert "model from the checkpoint: --arch --wt_layer --norm_semantics --norm_layer " \
           "--head_norm_layer" in out
    log = (tmp_path / "logs" / "default" / "plain" / "valid.log").read_text()
    assert "--norm_layer instancenorm_affine, --head_norm_layer batchnorm" in log
    told = _valid(tmp_path, snapshot, "--exp", "told", "--norm_layer", "instancenorm_affine")
    assert told["cityscapes"]["hist"] == plain["hist"]
    # BatchNorm in the trunk (the affines load, the running statistics stay at 0/1): other
    # numbers, which a flag-built model would have given without a word.
    forced = _valid(tmp_path, snapshot, "--exp", "forced", "--norm_layer", "batchnorm",
                    "--snapshot_partial")
    assert forced["cityscapes"]["hist"] != plain["hist"]
    with pytest.raises(SystemExit) as excinfo:
        _valid(tmp_path, snapshot, "--exp", "refused", "--norm_layer", "batchnorm")
    assert excinfo.value.code == 2
    assert "--norm_layer batchnorm given, checkpoint trained with --norm_layer " \
           "instancenorm_affine" in capsys.readouterr().err


def test_a_file_that_records_no_model_needs_the_flags_and_names_its_architecture(
        trained, tmp_path, capsys):
    bare = tmp_path / "official.pth"
    weights = torch.load(trained[1], weights_only=True)["state_dict"]
    torch.save({"state_dict": weights, "epoch": 1, "mean_iu": 0.1}, bare)
    with pytest.raises(SystemExit) as excinfo:
        valid.main(["--snapshot", str(bare), "--val_dataset", "cityscapes"])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"valid.py: error: --snapshot {bare} does not record which model it holds "
                   f"(an official checkpoint or a bare state dict): pass --arch and "
                   f"--wt_layer; it looks like --arch {ARCH} --wt_layer 0 0 1 1 1 0 0 (or "
                   f"another output stride of it; --wt_layer codes 1-3 hold no tensors and "
                   f"cannot be read from a file)")
    # With a wrong --arch: one line naming the likely one; the tensor list goes to the log.
    with pytest.raises(SystemExit) as excinfo:
        _valid(tmp_path, bare, "--arch", "network.deepv3.DeepR18V3PlusD", "--wt_layer",
               *BLINDNET_WT)
    message = str(excinfo.value.code)
    log = tmp_path / "logs" / "default" / "default" / "valid.log"
    assert "\n" not in message and f"it looks like --arch {ARCH}" in message
    assert message.endswith(f"(the tensor list is in {log})")
    assert "missing in checkpoint (" in log.read_text()
    assert "layer0.0.weight" not in capsys.readouterr().out  # not on the terminal


# --- a run folder belongs to one run ------------------------------------------------------

def _copy_run(trained, tmp_path):
    shutil.copytree(trained[0] / "ckpt", tmp_path / "ckpt")
    for lock in (tmp_path / "ckpt").rglob(LOCK_NAME):
        lock.unlink()
    return tmp_path / "ckpt" / "d" / "e"


def test_rerunning_a_finished_run_is_refused_and_resume_auto_continues_it(data_env, trained,
                                                                          tmp_path):
    run_dir = _copy_run(trained, tmp_path)
    before = (run_dir / "last.pth").read_bytes()
    with pytest.raises(SystemExit) as excinfo:
        train.main(_train_argv(tmp_path))
    assert str(excinfo.value.code) == (
        f"train.py: error: run folder {run_dir} holds the checkpoints of another run "
        f"(last.pth); this run would overwrite them and append to their history. Continue "
        f"that run with --resume auto, or start a new one with another --exp or --date")
    assert (run_dir / "last.pth").read_bytes() == before  # untouched
    assert train.main(_train_argv(tmp_path, "e", "--resume", "auto")).iteration == 1
    assert not (run_dir / LOCK_NAME).exists()  # released at the end


def test_a_concurrent_run_is_refused_and_a_dead_runs_lock_taken_over(data_env, trained,
                                                                     tmp_path):
    run_dir = _copy_run(trained, tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (run_dir / LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host":
                                                     socket.gethostname()}))
        with pytest.raises(SystemExit) as excinfo:
            train.main(_train_argv(tmp_path, "e", "--resume", "auto"))
        assert str(excinfo.value.code).startswith(
            f"train.py: error: run folder {run_dir} is in use by another run (PID "
            f"{sleeper.pid} on host {socket.gethostname()}")
    finally:
        sleeper.kill()
        sleeper.wait()
    train.main(_train_argv(tmp_path, "e", "--resume", "auto"))  # its process is gone now
    log = (run_dir / "train.log").read_text()
    assert f"was left by PID {sleeper.pid} on this host, which no longer runs" in log


def test_lock_and_owner_rules(tmp_path):
    lock = acquire(tmp_path)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == socket.gethostname()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(RunLockError, match="PID 1 on host elsewhere"):
        acquire(tmp_path)  # another host's process cannot be checked: refused
    lock.release()  # not ours any more: left alone
    assert (tmp_path / LOCK_NAME).exists()
    (tmp_path / "best_cityscapes.pth").write_bytes(b"x")
    check_owner(tmp_path, "some/other/last.pth")  # --resume PATH continues a run
    for resume in (None, "auto"):  # auto: no last.pth to continue
        with pytest.raises(RunFolderError, match="best_cityscapes.pth"):
            check_owner(tmp_path, resume)
    (tmp_path / "last.pth").write_bytes(b"x")
    check_owner(tmp_path, "auto")


def test_the_demo_replaces_its_own_finished_run_but_not_a_live_one(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last.pth").write_bytes(b"x")
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": socket.gethostname()}))
    with pytest.raises(RunFolderError, match="in use by another run"):
        discard_run(run_dir)  # PID 1 is alive
    (run_dir / LOCK_NAME).unlink()
    discard_run(run_dir)
    assert not run_dir.exists()
