"""Rein's training pipeline and test-time resize (transforms/rein_pipeline.py) against the
numbers and rules of docs/VFM_METHODS.md §3.3, §4.1-4.2."""

import numpy as np
import pytest
import torch
from PIL import Image

import transforms.rein_pipeline as rein
from datasets.label_codes import MAPILLARY_ID_TO_TRAINID, MAPILLARY_REIN_ID_TO_TRAINID
from transforms.eval import EvalTransform
from utils.labels import IGNORE_LABEL


def scripted(monkeypatch, name, values):
    """Make ``rein.<name>`` return ``values`` in turn (the random draws of one call)."""
    values = iter(values)
    monkeypatch.setattr(rein, name, lambda *args: next(values))


def test_resize_scales_and_sizes_follow_mmcv():
    assert rein.short_edge_scales(512) == [256, 307, 358, 409, 460, 512, 563, 614, 665, 716,
                                           768, 819, 870, 921, 972, 1024]  # §3.3
    # GTAV 1914x1052, short side 512: long 1914 * 512 / 1052 = 931.5 -> 932.
    assert rein.short_edge_size(1914, 1052, 512, 2048) == (932, 512)
    assert rein.rescale_size(1914, 1052, (932, 512)) == (932, 512)
    # A long side over max_size scales both down: 4000x1000 at 1024 -> 4096x1024 -> 2048x512.
    assert rein.short_edge_size(4000, 1000, 1024, 2048) == (2048, 512)
    # Test scales (§4.1): Cityscapes 2048x1024 -> 1024x512, BDD unchanged, 4:3 -> 683x512.
    assert rein.rescale_size(2048, 1024, (1024, 512)) == (1024, 512)
    assert rein.rescale_size(1280, 720, (1280, 720)) == (1280, 720)
    assert rein.rescale_size(1600, 1200, (1024, 512)) == (683, 512)


def test_balanced_crop_redraws_until_two_classes_share_the_window(monkeypatch):
    label = np.zeros((10, 10), dtype=np.uint8)
    label[:, 5:] = 1
    label[0, 0] = IGNORE_LABEL
    # Single-class windows at x = 0 and x = 5, then one straddling both classes.
    scripted(monkeypatch, "crop_box", [(0, 0), (0, 5), (0, 3)])
    assert rein.balanced_crop(label, 4) == (0, 3)
    # Never balanced: the eleventh draw is kept unchecked.
    scripted(monkeypatch, "crop_box", [(0, 0)] * 10 + [(5, 5)])
    assert rein.balanced_crop(label, 4) == (5, 5)


def test_photometric_steps_clip_and_truncate(monkeypatch):
    image = np.array([[[10, 200, 250]]], dtype=np.uint8)
    scripted(monkeypatch, "_randint", [0, 1, 0, 0, 0])  # contrast last, all steps off
    assert np.array_equal(rein.photometric_distortion(image), image)
    # Brightness +10.7 (truncated), contrast first x1.5 (clipped at 255).
    scripted(monkeypatch, "_randint", [1, 1, 1, 0, 0])
    scripted(monkeypatch, "_uniform", [10.7, 1.5])
    assert rein.photometric_distortion(image).tolist() == [[[30, 255, 255]]]


def test_item_is_padded_to_the_crop_with_the_mean_colour_and_ignore(monkeypatch):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    label = rng.integers(0, 19, (64, 96), dtype=np.uint8)
    preset = rein.ReinTrainPreset(64, two_view=True)
    monkeypatch.setattr(rein, "_randint", lambda high: 0)  # scale 32 (x0.5), no flip, no jitter
    item = preset(image, label)
    assert item["image"].shape == item["image_aug"].shape == (3, 64, 64)
    assert item["label"].shape == (64, 64) and item["label"].dtype == torch.int64
    assert (item["label"][32:] == IGNORE_LABEL).all() and (item["label"][:, 48:] == 255).all()
    assert (item["image"][:, 32:] == 0).all() and (item["image"][:, :32, :48] != 0).any()
    assert set(item["label"][:32, :48].unique().tolist()) <= set(range(19))
    with pytest.raises(ValueError, match="class_uniform_pct"):
        preset(image, label, centroid=(3, 4))


def test_mapillary_half_and_reins_class_names():
    image = Image.fromarray(np.full((41, 63, 3), 128, dtype=np.uint8))
    label = np.arange(41 * 63, dtype=np.int64).reshape(41, 63) % 19
    half, half_label = rein.halve_like_rein(image, label.astype(np.uint8))
    assert half.size == (31, 20) and half_label.shape == (20, 31)
    assert set(np.unique(half_label)) <= set(np.unique(label))
    # §4.2 rules: lane markings, parking, bike lanes are road; street lights pole; both traffic
    # sign sides and the frame traffic sign; manhole is not mapped (RobustNet: road).
    for raw_id, train_id in {7: 0, 10: 0, 23: 0, 24: 0, 9: 1, 44: 5, 46: 7, 49: 7, 58: 16,
                             22: 12, 48: 6}.items():
        assert MAPILLARY_REIN_ID_TO_TRAINID[raw_id] == train_id, raw_id
    assert 41 not in MAPILLARY_REIN_ID_TO_TRAINID and MAPILLARY_ID_TO_TRAINID[41] == 0


def test_rein_eval_resizes_the_image_only():
    image = Image.fromarray(np.zeros((100, 200, 3), dtype=np.uint8))
    label = np.ones((100, 200), dtype=np.uint8)
    tensor, target = EvalTransform("cityscapes", "rein")(image, label)
    assert tensor.shape == (3, 512, 1024) and target.shape == (100, 200)
    tensor, target = EvalTransform("mapillary", "rein")(image, label)
    assert tensor.shape == (3, 512, 1024) and target.shape == (50, 100)
