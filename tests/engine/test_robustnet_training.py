"""RobustNet methods through train.main: the ISW switch-on, the mask in the checkpoint and an
exact resume after a kill, IW/IRW/IBN/SW runs (tiny ResNet-18, generated data)."""

import os
import re
import subprocess
import sys

import pytest
import torch

import train
from config import REPO_ROOT
from tests.test_train import KILL_SCRIPT, TINY
from utils.checkpoint import load_checkpoint

ISW = ["--dataset", "gtav", "--wt_layer", *"0022200", "--wt_reg_weight", "0.6",
       "--relax_denom", "0.0", "--clusters", "3", "--cov_stat_epoch", "0", "--trials", "2",
       "--covstat_images", "3", "--covstat_val_dataset", "gtav", "--gblur", "--color_aug", "0.5",
       "--val_dataset", "--log_every", "1"]


def _argv(tmp_path, method, exp, *extra):
    return TINY + method + ["--ckpt", str(tmp_path / "ckpt"), "--tb_path", str(tmp_path / "tb"),
                            "--date", "d", "--exp", exp, *extra]


def _wt_per_iteration(log):
    return {int(i): float(v) for i, v in re.findall(r"iter (\d+)/\d+ .* wt (\S+) ", log)}


def test_isw_loss_is_zero_until_cov_stat_epoch_ends_then_on(data_env, tmp_path):
    # 5 generated images, batch 2: 2 iterations per epoch; the mask comes after epoch 0.
    result = train.main(_argv(tmp_path, ISW, "isw", "--max_iter", "4"))
    log = (tmp_path / "ckpt" / "d" / "isw" / "train.log").read_text()
    wt = _wt_per_iteration(log)
    assert sorted(wt) == [1, 2, 3, 4]
    assert wt[1] == wt[2] == 0.0 and wt[3] > 0 and wt[4] > 0
    assert log.count("ISW mask: style-sensitive covariance entries") == 1
    masks = load_checkpoint(tmp_path / "ckpt" / "d" / "isw" / "last.pth")["isw_mask"]
    assert [tuple(m.shape) for m in masks] == [(64, 64), (64, 64), (128, 128)]
    assert result.iteration == 4


def test_isw_killed_after_the_mask_epoch_resumes_with_the_mask_and_the_same_weights(
        data_env, tmp_path):
    full = train.main(_argv(tmp_path, ISW, "full", "--max_iter", "6"))
    # Killed before step 4: last.pth is the end of epoch 0 (iteration 2), mask included.
    argv = _argv(tmp_path, ISW, "killed", "--max_iter", "6")
    script = KILL_SCRIPT.format(repo=str(REPO_ROOT), kill_at=4, argv=argv)
    killed = subprocess.run([sys.executable, "-c", script], env={**os.environ, **data_env},
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == 137, killed.stderr[-2000:]
    run_dir = tmp_path / "ckpt" / "d" / "killed"
    saved = load_checkpoint(run_dir / "last.pth")
    assert saved["iteration"] == 2 and "isw_mask" in saved
    resumed = train.main(argv + ["--resume", "auto"])
    log = (run_dir / "train.log").read_text()
    assert log.count("(from the checkpoint)") == 1
    assert log.count("trials x") == 1          # the mask was computed once, before the kill
    final_full = load_checkpoint(tmp_path / "ckpt" / "d" / "full" / "last.pth")["isw_mask"]
    final_resumed = load_checkpoint(run_dir / "last.pth")["isw_mask"]
    assert all(torch.equal(a, b) for a, b in zip(final_full, final_resumed))
    assert resumed.iteration == 6
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=1e-5,
                                   atol=1e-6, msg=f"{key} differs after kill + resume")


@pytest.mark.parametrize("method", [
    ["--wt_layer", *"0011100", "--wt_reg_weight", "0.8", "--relax_denom", "0.0"],    # IW
    ["--wt_layer", *"0011100", "--wt_reg_weight", "0.6", "--relax_denom", "64.0"],   # IRW
])
def test_iw_and_irw_train_with_the_loss_from_iteration_1(data_env, tmp_path, method):
    argv = _argv(tmp_path, ["--dataset", "gtav", "--val_dataset", "--log_every", "1"] + method,
                 "iw", "--max_iter", "2")
    train.main(argv)
    wt = _wt_per_iteration((tmp_path / "ckpt" / "d" / "iw" / "train.log").read_text())
    assert sorted(wt) == [1, 2] and all(v >= 0 for v in wt.values())
    if method[-1] == "0.0":
        assert wt[1] > 0    # IW: no margin, so uncorrelated channels still cost something


@pytest.mark.parametrize("wt_layer", ["0044400", "0055500"])
def test_ibn_and_sw_train_and_save_their_layers(data_env, tmp_path, wt_layer):
    argv = _argv(tmp_path, ["--dataset", "gtav", "--val_dataset", "cityscapes",
                            "--max_val_images", "1", "--wt_layer", *wt_layer], "run",
                 "--max_iter", "2")
    result = train.main(argv)
    weights = load_checkpoint(tmp_path / "ckpt" / "d" / "run" / "last.pth")["state_dict"]
    assert "module.layer0.1.weight" in weights
    if wt_layer == "0055500":
        assert "module.layer1.1.instance_norm_layer.running_cov" in weights
        assert result.model.layer0[1].running_cov.abs().sum() > 0
    assert "cityscapes" in result.best


@pytest.mark.parametrize("flags, message", [
    (["--wt_reg_weight", "0.6"], "needs a --wt_layer code 1"),
    (["--wt_reg_weight", "0.6", "--wt_layer", *"0012000"], "mixes 1"),
    (["--use_isw", "--wt_layer", *"0011100"], "--use_isw needs"),
    (["--wt_reg_weight", "0.6", "--wt_layer", *"0022200", "--clusters", "1"], "--clusters >= 2"),
    (["--wt_layer", *"0066000"], "--wt_layer values"),
])
def test_bad_robustnet_flags_are_refused(tmp_path, flags, message, capsys):
    with pytest.raises(SystemExit) as excinfo:
        train.main(TINY + ["--dataset", "gtav", "--ckpt", str(tmp_path), *flags])
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_isw_with_two_gloo_processes_ends_with_one_mask(data_env, tmp_path):
    from tests.test_train import _torchrun

    argv = ["train.py", *_argv(tmp_path, ISW, "ddp", "--max_iter", "2")]
    out = _torchrun(argv, data_env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = (tmp_path / "ckpt" / "d" / "ddp" / "train.log").read_text()
    assert "2 process(es)" in log and "weights identical on all 2 ranks" in log
    # Every rank checked the others' mask (engine.isw.check_masks_identical) before logging.
    assert log.count("ISW mask: style-sensitive covariance entries") == 1
    assert "identical on all 2 ranks" in log
    masks = load_checkpoint(tmp_path / "ckpt" / "d" / "ddp" / "last.pth")["isw_mask"]
    assert [tuple(m.shape) for m in masks] == [(64, 64), (64, 64), (128, 128)]
