"""The composed presets: train two-view / train one-view / eval per protocol."""

import numpy as np
import pytest
import torch
from PIL import Image

from transforms.normalization import (IMAGENET_MEAN, IMAGENET_STD, NO_MEAN, NO_STD,
                                      normalize_images)
from transforms.presets import EvalPreset, TrainPreset


def _pair(height=40, width=56):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    ids = rng.choice(np.r_[0:19, 255], size=(height, width)).astype(np.uint8)
    return image, ids


def _seeded(preset, seed, *args):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return preset(*args)


def test_train_two_view_and_one_view_items():
    image, ids = _pair()
    two = TrainPreset(24, scale_min=0.8, scale_max=1.2, color_aug=0.5, gblur=True,
                      two_view=True)
    item = _seeded(two, 1, image, ids)
    assert list(item) == ["image", "image_aug", "label"] and two.two_view
    assert item["image"].shape == item["image_aug"].shape == (3, 24, 24)
    assert item["label"].shape == (24, 24) and item["label"].dtype == torch.uint8
    assert item["image"].dtype == item["image_aug"].dtype == torch.uint8
    assert not torch.equal(item["image"], item["image_aug"])  # independent photometric draws
    assert set(item["label"].unique().tolist()) <= set(np.unique(ids).tolist())
    one = TrainPreset(24, scale_min=0.8, scale_max=1.2, color_aug=0.5, gblur=True)
    single = _seeded(one, 1, image, ids)
    assert list(single) == ["image", "label"] and not one.two_view
    # the same seed gives the same geometry (label) and view 1, with or without view 2
    assert torch.equal(single["label"], item["label"])
    assert torch.equal(single["image"], item["image"])
    again = _seeded(two, 1, image, ids)
    assert all(torch.equal(again[key], item[key]) for key in item)


def test_train_preset_centroid_crop_contains_the_class():
    image, ids = _pair(64, 64)
    ids[:] = 0
    ids[50:56, 8:14] = 12
    preset = TrainPreset(16, scale_min=1.0, scale_max=1.0)
    for seed in range(5):
        assert (_seeded(preset, seed, image, ids, (10, 52))["label"] == 12).any()


@pytest.mark.parametrize("protocol, name, normalization", [
    ("robustnet", "cityscapes", (IMAGENET_MEAN, IMAGENET_STD)),
    ("blindnet", "cityscapes", (NO_MEAN, NO_STD)),
    ("blindnet", "bdd100k", (IMAGENET_MEAN, IMAGENET_STD))])
def test_eval_preset_items_and_normalization(protocol, name, normalization):
    image, ids = _pair()
    preset = EvalPreset(name, protocol)
    item = preset(image, ids)
    assert list(item) == ["image", "label"] and preset.normalization == normalization
    assert item["image"].shape == (3, 40, 56)  # full resolution, no crop
    np.testing.assert_array_equal(item["label"].numpy(), ids)
    raw = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
    assert item["image"].dtype == torch.uint8 and torch.equal(item["image"], raw)
    mean = torch.tensor(normalization[0]).view(3, 1, 1)
    std = torch.tensor(normalization[1]).view(3, 1, 1)
    torch.testing.assert_close(normalize_images(item["image"], *normalization),
                               (raw.float() / 255 - mean) / std)
    with pytest.raises(ValueError, match="eval_protocol must be one of"):
        EvalPreset(name, "fast")
