"""Rein through the framework's entry points on generated data (tiny ViT-S, 64-pixel crops):
the recipe file trains and evaluates, the frozen trunk stays the DINOv2 file's and is left
out of checkpoints, a resume is exact, valid.py evaluates our checkpoints and Rein's
released format (mmseg names, adapter + head only) under Rein's protocol."""

import json

import numpy as np
import pytest
import torch

import train
import valid
from config import REPO_ROOT
from network.dinov2_weights import convert_dinov2_state
from tests.vfm_reference import (official_dinov2_shapes, official_head_shapes,
                                 official_reins_shapes, random_state)
from utils.checkpoint import load_checkpoint, strip_module_prefix

RECIPE = str(REPO_ROOT / "configs" / "rein_dinov2_l_mask2former_gtav.toml")
SIZES = ["depth=2", "num_queries=6", "num_decoder_layers=2", "pixel_decoder_layers=1",
         "img_size=64"]
TINY = ["--arch", "network.vfm.ReinDinov2SMask2Former", "--arch_options", *SIZES,
        "--crop_size", "64", "--bs_mult", "2", "--num_workers", "0", "--m2f_num_points", "64",
        "--max_val_images", "1", "--val_dataset", "cityscapes", "--log_every", "1"]


def run_train(tmp_path, *extra, exp="rein"):
    return train.main(["--config", RECIPE, *TINY, "--ckpt", str(tmp_path / "ckpt"),
                       "--tb_path", str(tmp_path / "tb"), "--date", "d", "--exp", exp, *extra])


def dinov2_file(tmp_path, patch=14, grid=5, seed=2):
    """A released-format ViT-S/14 DINOv2 file cut to 2 blocks (converted on load)."""
    shapes = {k: v for k, v in official_dinov2_shapes("vits14", grid=grid, patch=patch).items()
              if not k.startswith("blocks.") or int(k.split(".")[1]) < 2}
    path = tmp_path / f"dinov2_vits14_{seed}.pth"
    torch.save(random_state(shapes, seed=seed), path)
    return path


def test_the_rein_recipe_trains_and_evaluates_with_reins_protocol(data_env, tmp_path):
    result = run_train(tmp_path, "--pretrained", "none", "--max_iter", "1")
    assert result.iteration == 1 and set(result.best) == {"cityscapes"}
    run = tmp_path / "ckpt" / "d" / "rein"
    ckpt = load_checkpoint(run / "last.pth")
    args = ckpt["args"]
    assert (args["optimizer"], args["lr"], args["weight_decay"], args["train_preset"],
            args["eval_protocol"]) == ("adamw", 1e-4, 0.05, "rein", "rein")
    assert args["arch_options"] == SIZES and "external_weights" not in ckpt  # random trunk
    assert len(ckpt["optimizer"]["param_groups"]) == 2  # weight decay 0.05 and 0
    log = (run / "train.log").read_text()
    assert "m2f_cls" in log and "m2f_dice" in log and " main " not in log
    history = [json.loads(line) for line in (run / "val_history.jsonl").read_text().splitlines()]
    assert history[-1]["final"] and history[-1]["miou"]["cityscapes"] is not None


def test_frozen_trunk_stays_the_files_is_left_out_resumes_exactly_and_evaluates(data_env,
                                                                                tmp_path):
    path = dinov2_file(tmp_path)
    common = ("--pretrained", str(path), "--eval_protocol", "robustnet", "--max_iter", "2")
    model = run_train(tmp_path, *common, exp="whole").model
    trunk = model.trunk_state()
    # The trunk is the file's (converted to patch 16 on load) after two AdamW steps.
    for key, value in convert_dinov2_state(torch.load(path), 16, 64).items():
        assert torch.equal(trunk[f"backbone.{key}"], value), key
    assert not any(p.requires_grad for n, p in model.named_parameters() if n in trunk)
    snapshot = tmp_path / "ckpt" / "d" / "whole" / "last.pth"
    ckpt = load_checkpoint(snapshot)
    saved = strip_module_prefix(ckpt["state_dict"])
    assert not set(saved) & set(trunk) and "backbone.reins.learnable_tokens_a" in saved
    assert ckpt["external_weights"]["source"] == str(path)
    # Interrupted after one step and resumed: the same weights as the uninterrupted run.
    run_train(tmp_path, *common, "--stop_at", "1", exp="split")
    resumed = run_train(tmp_path, *common, "--resume", "auto", exp="split")
    for key, value in model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    # valid.py builds the recorded model (arch and sizes), finds the recorded DINOv2 file
    # by itself and refuses another trunk.
    argv = ["--snapshot", str(snapshot), "--val_dataset", "cityscapes", "--max_val_images",
            "1", "--num_workers", "0", "--ckpt", str(tmp_path / "valid"), "--date", "d"]
    assert valid.main(argv)["cityscapes"]["images"] == 1
    with pytest.raises(SystemExit, match=f"pass --pretrained {path}"):
        valid.main([*argv, "--pretrained", str(dinov2_file(tmp_path, seed=5))])
    with pytest.raises(SystemExit, match="leaves out 35 frozen weights"):
        valid.main([*argv, "--pretrained", "none"])


def release_file(tmp_path):
    """Rein's released format: an mmengine checkpoint (NumPy metadata) holding only
    ``backbone.reins.*`` and ``decode_head.*`` in mmseg names (docs/VFM_METHODS.md §2.6)."""
    state = {f"backbone.reins.{k}": v for k, v in random_state(official_reins_shapes(
        num_layers=2, dims=384, tokens=6)).items()}
    state.update({f"decode_head.{k}": v for k, v in random_state(official_head_shapes(
        in_dims=384, queries=6, enc_layers=1, dec_layers=2), seed=1).items()})
    path = tmp_path / "iter_40000_published.pth"
    torch.save({"meta": {"iter": np.int64(40000), "seed": np.array([42])},
                "state_dict": state}, path)
    return path, state


def test_valid_evaluates_reins_released_weights_with_reins_protocol(data_env, tmp_path):
    import cli

    release, state = release_file(tmp_path)
    dinov2 = dinov2_file(tmp_path)
    argv = ["--config", str(REPO_ROOT / "configs" / "rein_valid_dinov2_l.toml"),
            "--arch", "network.vfm.ReinDinov2SMask2Former", "--arch_options", *SIZES,
            "--snapshot", str(release), "--pretrained", str(dinov2), "--val_dataset",
            "cityscapes", "--max_val_images", "1", "--num_workers", "0",
            "--ckpt", str(tmp_path / "valid")]
    args = cli.parse_args("valid", argv)
    model, _, _ = cli.load_eval_model(args, torch.device("cpu"), None)
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    valid.main(argv)
    results = json.loads((tmp_path / "valid" / "rein" / "rein_dinov2_l_mask2former_gtav" /
                          "results.json").read_text())
    assert results["eval_protocol"] == "rein"
    assert results["inference"]["name"] == "sliding-window(512,341,unpadded)"
    assert results["datasets"]["cityscapes"]["images"] == 1
    without_trunk = [a for a in argv if a not in ("--pretrained", str(dinov2))]
    with pytest.raises(SystemExit, match="holds no DINOv2 trunk.*--pretrained"):
        valid.main(without_trunk)


def test_blindnet_losses_train_a_step_on_a_vit(data_env, tmp_path):
    result = run_train(tmp_path, "--pretrained", "none", "--max_iter", "1", "--dataset",
                       "gtav_jitter", "--use_ca", "--use_cwcl", "--use_sdcl", "--w1", "0.2",
                       "--w2", "0.2", "--w3", "0.3", "--w4", "0.3", "--contrast_max_classes",
                       "4", "--contrast_max_views", "8", "--num_patch", "4",
                       "--vit_in_blocks", "0", "1", "--eval_protocol", "robustnet",
                       exp="blind")
    assert result.model.in_blocks == (0, 1) and len(result.model.projection_heads) == 3
    log = (tmp_path / "ckpt" / "d" / "blind" / "train.log").read_text()
    line = next(entry for entry in log.splitlines() if "iter 1/1" in entry)
    assert all(f" {name} " in line for name in ("m2f_cls", "cml", "ccl", "cwcl", "sdcl"))


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_rein_from_a_dinov2_file(data_env, tmp_path):
    from tests.test_train import _torchrun

    path = dinov2_file(tmp_path)
    argv = ["train.py", "--config", RECIPE, *TINY, "--pretrained", str(path), "--max_iter", "2",
            "--eval_protocol", "robustnet", "--ckpt", str(tmp_path / "ckpt"),
            "--tb_path", str(tmp_path / "tb"), "--date", "d", "--exp", "ddp"]
    out = _torchrun(argv, data_env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = (tmp_path / "ckpt" / "d" / "ddp" / "train.log").read_text()
    assert "2 process(es)" in log and "weights identical on all 2 ranks" in log
    ckpt = load_checkpoint(tmp_path / "ckpt" / "d" / "ddp" / "last.pth")
    assert ckpt["external_weights"]["source"] == str(path) and len(ckpt["rng"]) == 2
