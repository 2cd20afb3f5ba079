import numpy as np
import torch
from PIL import Image

from utils import viz


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
