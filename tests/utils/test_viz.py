import numpy as np
import pytest
import torch
from PIL import Image

from datasets.labels import PALETTE
from utils import viz


def test_colorize_uses_the_cityscapes_palette_and_black_for_ignore():
    ids = np.array([[0, 10, 255], [13, 18, 19]], dtype=np.uint8)
    rgb = viz.colorize(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    assert tuple(rgb[0, 0]) == (128, 64, 128) and tuple(rgb[0, 1]) == (70, 130, 180)
    assert tuple(rgb[1, 0]) == (0, 0, 142) and tuple(rgb[1, 1]) == (119, 11, 32)
    assert tuple(rgb[0, 2]) == (0, 0, 0) and tuple(rgb[1, 2]) == (0, 0, 0)
    np.testing.assert_array_equal(rgb, np.asarray(PALETTE)[ids])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        viz.colorize(np.zeros((2, 2, 3)))


def test_overlay_blends_classes_and_keeps_ignore_pixels():
    image = np.full((1, 2, 3), 100, dtype=np.uint8)
    out = viz.overlay(image, np.array([[0, 255]]), alpha=0.5)
    assert tuple(out[0, 0]) == (114, 82, 114)  # halfway to road (128, 64, 128)
    assert tuple(out[0, 1]) == (100, 100, 100)


def test_denormalize_inverts_normalisation():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3)).astype(np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    tensor = (torch.from_numpy(rgb).permute(2, 0, 1).float() / 255 - torch.tensor(mean)[:, None,
              None]) / torch.tensor(std)[:, None, None]
    np.testing.assert_array_equal(viz.denormalize(tensor, mean, std), rgb)


def test_figures_are_written(tmp_path):
    hist = np.eye(3, dtype=np.int64) * 5 + 1
    viz.confusion_matrix_png(hist, ["road", "sidewalk", "building"], tmp_path / "cm.png")
    viz.bar_chart_png({"source": {"a": 30.0, "b": 25.0}, "fog": {"a": 9.0, "b": 18.0}},
                      tmp_path / "bars.png", title="t")
    tile = np.zeros((8, 10, 3), dtype=np.uint8)
    viz.image_grid([[tile, tile], [tile, tile]], tmp_path / "grid.png",
                   column_titles=["x", "y"], row_titles=["r1", "r2"])
    for name in ("cm.png", "bars.png", "grid.png"):
        with Image.open(tmp_path / name) as png:
            assert png.mode == "RGB" and min(png.size) > 20
