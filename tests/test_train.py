"""End-to-end tests of train.py on generated data (tiny crops, the light ResNet-18 trunk)."""

import json
import os
import subprocess
import sys

import pytest
import torch

import cli
import train
from config import REPO_ROOT
from tests.conftest import run_train_script_tiny
from utils.checkpoint import load_checkpoint, strip_module_prefix

TINY = ["--arch", "network.deepv3.DeepR18V3PlusD", "--pretrained", "none", "--crop_size", "64",
        "--bs_mult", "2",
        "--num_workers", "0", "--class_uniform_tile", "32", "--class_uniform_pct", "0.5",
        "--scale_min", "0.75", "--scale_max", "1.25", "--lr", "0.01"]
BLINDNET = ["--dataset", "gtav_jitter", "--wt_layer", "0", "0", "1", "1", "1", "0", "0",
            "--use_ca", "--use_cwcl", "--use_sdcl", "--w1", "0.2", "--w2", "0.2", "--w3", "0.3",
            "--w4", "0.3", "--contrast_max_classes", "4", "--contrast_max_views", "8",
            "--num_patch", "4", "--gblur", "--color_aug", "0.5"]


def _run(tmp_path, *extra, exp="exp"):
    argv = TINY + BLINDNET + ["--ckpt", str(tmp_path / "ckpt"), "--tb_path", str(tmp_path / "tb"),
                              "--date", "d", "--exp", exp, *extra]
    return train.main(argv)


def test_training_lowers_the_loss_on_a_fixed_batch(data_env):
    import datasets
    import network
    from engine.config import OptimConfig
    from engine.trainer import new_train_state, train_step
    from loss import BlindNetCriterion

    args = cli.parse_args("train", TINY + BLINDNET)
    torch.manual_seed(0)
    dataset = datasets.build_dataset("gtav_jitter", "train", training=True,
                                     **cli.dataset_options(args))
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    model = network.get_net(args.arch, 19, args.wt_layer, pretrained=False)
    criterion = BlindNetCriterion(**cli.criterion_kwargs(args))
    state = new_train_state(model, OptimConfig(lr=0.01, momentum=0.9, weight_decay=0.0),
                            device=torch.device("cpu"))
    model.train()
    totals = []
    for _ in range(12):
        terms = train_step(state, batch, criterion, device=torch.device("cpu"), two_view=True,
                           with_embeddings=True)
        totals.append(terms["total"])
    assert list(terms) == ["main", "aux", "cml", "ccl", "cwcl", "sdcl", "total"]
    assert state.iteration == state.epoch_iter == 12
    assert totals[-1] < 0.7 * totals[0], totals


def test_single_process_run_writes_checkpoints_logs_and_tensorboard(data_env, tmp_path):
    result = _run(tmp_path, "--max_iter", "3", "--val_dataset", "cityscapes", "bdd-100k",
                  "--save_every", "2")
    run_dir = tmp_path / "ckpt" / "d" / "exp"
    assert result.iteration == 3
    assert set(result.best) == {"cityscapes", "bdd100k"}
    for name in ("last.pth", "best_cityscapes.pth", "best_bdd100k.pth", "args.json",
                 "train.log", "val_history.jsonl"):
        assert (run_dir / name).is_file(), name
    ckpt = load_checkpoint(run_dir / "last.pth")
    for key in ("state_dict", "optimizer", "scheduler", "epoch", "mean_iu", "command",
                "iteration", "epoch_iter", "rng", "scaler", "best"):
        assert key in ckpt, key
    assert ckpt["iteration"] == 3
    # The command that really ran (train.main's argv), not the test runner's sys.argv.
    assert ckpt["command"] == " ".join(TINY + BLINDNET + [
        "--ckpt", str(tmp_path / "ckpt"), "--tb_path", str(tmp_path / "tb"), "--date", "d",
        "--exp", "exp", "--max_iter", "3", "--val_dataset", "cityscapes", "bdd-100k",
        "--save_every", "2"])
    assert all(k.startswith("module.") for k in ckpt["state_dict"])  # official layout
    best = load_checkpoint(run_dir / "best_cityscapes.pth")
    assert best["mean_iu"] == pytest.approx(result.best["cityscapes"])
    history_lines = (run_dir / "val_history.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in history_lines]
    assert history[-1]["final"] and history[-1]["iteration"] == 3
    assert list((tmp_path / "tb" / "d" / "exp").glob("events.out.tfevents.*"))
    log = (run_dir / "train.log").read_text()
    assert "cityscapes: mIoU" in log and "done after 3 iterations" in log


def test_resume_continues_exactly(data_env, tmp_path):
    """A run stopped mid-epoch and resumed with --resume auto ends with the same weights."""
    common = ["--max_iter", "7", "--val_dataset", "cityscapes", "--save_every", "100"]
    full = _run(tmp_path, *common, exp="full")
    _run(tmp_path, *common, "--stop_at", "3", exp="split")
    resumed = _run(tmp_path, *common, "--resume", "auto", exp="split")
    assert resumed.iteration == full.iteration == 7
    expected, actual = full.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-5, atol=1e-6,
                                   msg=f"{key} differs after resume")
    last = load_checkpoint(tmp_path / "ckpt" / "d" / "split" / "last.pth")
    assert last["iteration"] == 7


# Dies (like SIGKILL: no cleanup, no final checkpoint) just before step `kill_at`.
KILL_SCRIPT = """
import os, sys
sys.path.insert(0, {repo!r})
import train
def dying(state):
    if state.iteration + 1 == {kill_at}:
        os._exit(137)
train.main({argv!r}, before_step=dying)
"""


def test_hard_kill_then_resume_auto_matches_uninterrupted_run(data_env, tmp_path):
    """A process killed without warning resumes from its last periodic checkpoint and ends
    with the weights of an uninterrupted run."""
    common = ["--max_iter", "7", "--val_dataset", "cityscapes", "--save_every", "2"]
    full = _run(tmp_path, *common, exp="full")
    argv = TINY + BLINDNET + ["--ckpt", str(tmp_path / "ckpt"), "--tb_path",
                              str(tmp_path / "tb"), "--date", "d", "--exp", "killed", *common]
    script = KILL_SCRIPT.format(repo=str(REPO_ROOT), kill_at=6, argv=argv)
    killed = subprocess.run([sys.executable, "-c", script], env={**os.environ, **data_env},
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == 137, killed.stderr[-2000:]
    run_dir = tmp_path / "ckpt" / "d" / "killed"
    assert load_checkpoint(run_dir / "last.pth")["iteration"] == 4
    resumed = _run(tmp_path, *common, "--resume", "auto", exp="killed")
    assert resumed.iteration == 7
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=1e-5,
                                   atol=1e-6, msg=f"{key} differs after kill + resume")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(data_env, tmp_path):
    # Two good iterations, then the run continues with a temperature that underflows to 0 in
    # float32: the CWCL logits are 0/0 = NaN at iteration 3.
    common = ["--max_iter", "6", "--val_dataset", "cityscapes", "--save_every", "1"]
    _run(tmp_path, *common, "--stop_at", "2")
    with pytest.raises(SystemExit) as excinfo:
        _run(tmp_path, *common, "--resume", "auto", "--nce_T", "1e-300")
    assert excinfo.value.code == train.EXIT_NON_FINITE == 3
    run_dir = tmp_path / "ckpt" / "d" / "exp"
    assert "non-finite loss at iteration 3: cwcl=nan" in (run_dir / "train.log").read_text()
    last = load_checkpoint(run_dir / "last.pth")
    assert last["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values()
               if v.is_floating_point())


def test_blindnet_losses_need_two_view_data(data_env, tmp_path):
    with pytest.raises(SystemExit, match="--use_cwcl needs two views"):
        train.main(TINY + ["--dataset", "gtav", "--use_cwcl", "--max_iter", "1",
                           "--val_dataset", "--ckpt", str(tmp_path)])


def test_baseline_single_view_training_runs(data_env, tmp_path):
    argv = TINY + ["--dataset", "gtav", "--max_iter", "2", "--val_dataset", "cityscapes",
                   "--gblur", "--color_aug", "0.5", "--ckpt", str(tmp_path / "c"),
                   "--tb_path", str(tmp_path / "tb")]
    result = train.main(argv)
    assert result.iteration == 2 and "cityscapes" in result.best


def _torchrun(args, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", *args], cwd=REPO_ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_torchrun_two_cpu_processes(data_env, tmp_path):
    argv = ["train.py", *TINY, *BLINDNET, "--max_iter", "3", "--val_dataset", "cityscapes",
            "--ckpt", str(tmp_path / "ckpt"), "--tb_path", str(tmp_path / "tb"),
            "--date", "d", "--exp", "ddp"]
    out = _torchrun(argv, data_env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = (tmp_path / "ckpt" / "d" / "ddp" / "train.log").read_text()
    assert "2 process(es)" in log and "backend gloo" in log
    assert "weights identical on all 2 ranks" in log
    # 5 validation images split 3 + 2 over the ranks, all counted once after the all-reduce.
    assert "(5 images)" in log


@pytest.mark.slow
def test_official_train_script_runs_with_tiny_overrides(data_env, tmp_path):
    out = run_train_script_tiny("blindnet_train_r50os16_gtav.sh", data_env, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = tmp_path / "0326" / "BlindNet_r50os16_gtav"
    ckpt = load_checkpoint(run_dir / "last.pth")
    weights = strip_module_prefix(ckpt["state_dict"])
    assert len(weights) == 390  # the official R50-D16 state dict
    assert ckpt["args"]["contrast_max_views"] == 50 and ckpt["args"]["w4"] == 0.3


def test_bf16_autocast_and_channels_last_train(data_env, tmp_path):
    result = _run(tmp_path, "--max_iter", "2", "--val_dataset", "cityscapes", "--amp", "bf16",
                  "--channels_last")
    assert result.iteration == 2
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert result.model.final2[0].weight.dtype == torch.float32  # master weights stay fp32
