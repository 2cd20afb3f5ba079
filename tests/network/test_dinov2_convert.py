"""Rein's patch-16 conversion (docs/VFM_METHODS.md §3.6): tools/convert_dinov2.py and the
convert-on-load path give the same tensors, equal to an independent bicubic resize."""

import subprocess
import sys

import pytest
import torch

from config import REPO_ROOT
from network.dinov2 import build_dinov2
from network.dinov2_weights import convert_dinov2_state, fit_dinov2_state, read_dinov2_file
from tools.convert_dinov2 import main as convert_main
from tests.vfm_reference import bicubic_matrix, official_dinov2_shapes, random_state, resize_grid


def released_tiny_state(grid=5):
    """A released-format ViT-S state (patch 14, ``grid x grid`` positions), two blocks."""
    shapes = {k: v for k, v in official_dinov2_shapes("vits14", grid=grid).items()
              if not k.startswith("blocks.") or int(k.split(".")[1]) < 2}
    return random_state(shapes, seed=1)


def test_conversion_resizes_kernel_and_grid_as_documented():
    state = released_tiny_state()
    converted = convert_dinov2_state(dict(state), patch_size=16, img_size=64)  # grid 4
    kernel = state["patch_embed.proj.weight"]
    assert converted["patch_embed.proj.weight"].shape == (384, 3, 16, 16)
    expected = resize_grid(kernel.reshape(-1, 14, 14), bicubic_matrix(14, 16, 16 / 14),
                           bicubic_matrix(14, 16, 16 / 14)).reshape(384, 3, 16, 16)
    torch.testing.assert_close(converted["patch_embed.proj.weight"].double(), expected,
                               rtol=1e-5, atol=1e-5)  # values not rescaled
    grid = state["pos_embed"][0, 1:].reshape(5, 5, 384).permute(2, 0, 1)
    expected = resize_grid(grid, bicubic_matrix(5, 4, 4 / 5), bicubic_matrix(5, 4, 4 / 5))
    torch.testing.assert_close(converted["pos_embed"][0, 1:].double(),
                               expected.permute(1, 2, 0).reshape(16, 384), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(converted["pos_embed"][0, 0], state["pos_embed"][0, 0])
    for key in ("patch_embed.proj.bias", "mask_token", "norm.weight", "blocks.1.ls2.gamma"):
        assert torch.equal(converted[key], state[key])


def test_the_tool_writes_a_file_that_loads_strictly_and_equals_conversion_on_load(tmp_path):
    source, output = tmp_path / "dinov2_vits14_pretrain.pth", tmp_path / "out" / "conv.pth"
    state = released_tiny_state()
    torch.save(state, source)
    run = subprocess.run([sys.executable, "tools/convert_dinov2.py", str(source), str(output),
                          "--img_size", "64"], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "pos_embed (1, 17, 384)" in run.stdout
    model = build_dinov2("vits14", depth=2, patch_size=16, img_size=64)
    written = read_dinov2_file(output)
    model.load_state_dict(written, strict=True)
    on_load = fit_dinov2_state(state, model)
    assert on_load.keys() == written.keys()
    for key in written:
        assert torch.equal(on_load[key], written[key]), key


def test_the_tool_and_reader_name_bad_inputs(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    torch.save({"weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="bad.pth: not a DINOv2 state dict"):
        read_dinov2_file(bad)
    assert convert_main([str(tmp_path / "none.pth"), str(tmp_path / "o.pth")]) == 2
    assert "convert_dinov2.py: error:" in capsys.readouterr().err
    assert convert_main([str(bad), str(tmp_path / "o.pth"), "--img_size", "500"]) == 2
    assert "multiple of --patch_size 16" in capsys.readouterr().err
    assert not (tmp_path / "o.pth").exists()
