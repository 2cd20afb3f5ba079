"""The comparison-row scripts (RobustNet's flag sets) run end to end with tiny overrides."""

import json
import os
import re
import subprocess

import pytest

from config import REPO_ROOT
from tests.conftest import run_train_script_tiny
from utils.checkpoint import load_checkpoint, strip_module_prefix

# script stem -> (exp folder under <ckpt>/0101, wt_layer, whitening loss weight)
SCRIPTS = {
    "baseline_train_r50os16_cityscapes": ("r50os16_cty_base", [0] * 7, 0.0),
    "ibn_train_r50os16_gtav": ("r50os16_gtav_ibn", [0, 0, 4, 4, 4, 0, 0], 0.0),
    "ibn_train_r50os16_cityscapes": ("r50os16_cty_ibn", [0, 0, 4, 4, 4, 0, 0], 0.0),
    "iw_train_r50os16_gtav": ("r50os16_gtav_iw", [0, 0, 1, 1, 1, 0, 0], 0.8),
    "iw_train_r50os16_cityscapes": ("r50os16_cty_iw", [0, 0, 1, 1, 1, 0, 0], 0.6),
    "irw_train_r50os16_gtav": ("r50os16_gtav_irw", [0, 0, 1, 1, 1, 0, 0], 0.6),
    "irw_train_r50os16_cityscapes": ("r50os16_cty_irw", [0, 0, 1, 1, 1, 0, 0], 0.6),
    "isw_train_r50os16_gtav": ("r50os16_gtav_isw", [0, 0, 2, 2, 2, 0, 0], 0.6),
    "isw_train_r50os16_cityscapes": ("r50os16_cty_isw", [0, 0, 2, 2, 2, 0, 0], 0.6),
    "sw_train_r50os16_gtav": ("r50os16_gtav_switchable", [0, 0, 5, 5, 5, 0, 0], 0.0),
    "sw_train_r50os16_cityscapes": ("r50os16_cty_switchable", [0, 0, 5, 5, 5, 0, 0], 0.0),
}
# ISW: the mask after epoch 0 (5 generated images, batch 2: 2 iterations) from 2 short trials,
# then one iteration with the loss on.
ISW_TINY = ("--max_iter", "3", "--cov_stat_epoch", "0", "--trials", "2", "--covstat_images", "2",
            "--log_every", "1")


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_method_script_runs_end_to_end(script, data_env, tmp_path):
    exp, wt_layer, weight = SCRIPTS[script]
    extra = ISW_TINY if script.startswith("isw") else ("--log_every", "1")
    out = run_train_script_tiny(f"{script}.sh", data_env, tmp_path, extra)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = tmp_path / "0101" / exp
    ckpt = load_checkpoint(run_dir / "last.pth")
    assert ckpt["args"]["wt_layer"] == wt_layer and ckpt["args"]["wt_reg_weight"] == weight
    log = (run_dir / "train.log").read_text()
    losses = [float(v) for v in re.findall(r" wt (\S+) ", log)]
    if weight == 0:
        assert not losses                       # no whitening term at all
    elif script.startswith("isw"):
        assert "isw_mask" in ckpt and len(ckpt["isw_mask"]) == 3
        assert losses[0] == 0.0 and losses[-1] > 0  # off in epoch 0, on after the mask
    else:
        assert losses and all(v >= 0 for v in losses)
    assert len(strip_module_prefix(ckpt["state_dict"])) > 300
    # Four target datasets evaluated at the end (RobustNet's --val_dataset lists).
    assert log.count("mIoU") >= 4


@pytest.mark.slow
@pytest.mark.parametrize("method, exp", [("isw", "r50os16_gtav_isw"),
                                         ("sw", "r50os16_gtav_switchable")])
def test_valid_script_evaluates_a_trained_checkpoint(method, exp, data_env, tmp_path):
    extra = ISW_TINY if method == "isw" else ()
    train_run = run_train_script_tiny(f"{method}_train_r50os16_gtav.sh", data_env, tmp_path,
                                      extra)
    assert train_run.returncode == 0, train_run.stderr[-3000:]
    weights = tmp_path / "0101" / exp / "last.pth"
    valid_run = subprocess.run(
        ["bash", f"scripts/{method}_valid_r50os16.sh", str(weights), "--max_val_images", "1",
         "--num_workers", "0", "--ckpt", str(tmp_path / "logs")], cwd=REPO_ROOT,
        env={**os.environ, **data_env}, capture_output=True, text=True, timeout=900)
    assert valid_run.returncode == 0, valid_run.stdout[-3000:] + valid_run.stderr[-3000:]
    results = json.loads((tmp_path / "logs" / "0101" / f"r50os16_{method}_valid"
                          / "results.json").read_text())
    assert set(results["datasets"]) == {"cityscapes", "bdd100k", "mapillary", "synthia", "gtav"}
