"""photometric="device": the device ops against torchvision's tensor kernels and the loader
path (within the bounds of DECISIONS.md D66), per-sample vectorisation, determinism per
(seed, epoch, index), one shared geometric crop for both views, uint8 collate."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import functional as TF

from datasets import build_dataset
from datasets.styleshift.formats import write_gtav_sample
from engine.inputs import training_inputs
from tests.generated_data import photo_canvas, random_scene, sample_photos
from transforms import device_photometric as dev
from transforms.photometric_params import (APPLY, BRIGHTNESS, HUE, ORDER, PARAMS_PER_VIEW,
                                           SIGMA, ItemParams)

# DECISIONS.md D66 (bench/results/photometric_parity.md: 7 photos, 140 whole-photo and 280
# 48x48-crop draws): the loader path's PIL views against the device views, per view: the
# worst mean abs difference of an image and the largest pixel difference, in grey levels.
VIEW_BOUNDS = {"image": (1.75, 17), "image_aug": (4.4, 22)}
PHOTO_SIZE = (72, 120)


@pytest.fixture(scope="module")
def photo_crops():
    """(2, 3, 64, 64) uint8: corners of two sample photographs."""
    photos = sample_photos(("astronaut", "coffee"))
    return torch.stack([torch.from_numpy(p[:64, :64].copy()).permute(2, 0, 1)
                        for p in photos.values()])


@pytest.fixture(scope="module")
def photo_gtav(tmp_path_factory):
    """A GTAV-format training set of 4 photo canvases (natural colours) with scene labels."""
    root = tmp_path_factory.mktemp("photo_gtav")
    rng = np.random.default_rng(0)
    photos = sample_photos()
    for index in range(4):
        _, train_ids = random_scene(rng, PHOTO_SIZE)
        write_gtav_sample(root, "train", f"{index:05d}", photo_canvas(rng, PHOTO_SIZE,
                                                                      photos=photos), train_ids)
    return root


def _build(root, cache_dir, photometric, **options):
    return build_dataset("gtav_jitter", "train", root=root, crop_size=48, color_aug=0.5,
                         gblur=True, cache_dir=cache_dir, photometric=photometric, **options)


@pytest.mark.parametrize("name, low, high", [("brightness", 0.2, 1.8), ("contrast", 0.2, 1.8),
                                             ("saturation", 0.2, 1.8), ("hue", -0.3, 0.3)])
def test_each_op_follows_torchvision_tensor_semantics(photo_crops, name, low, high):
    ours_op, theirs_op = getattr(dev, f"adjust_{name}"), getattr(TF, f"adjust_{name}")
    factors = torch.tensor([low + 0.1, high - 0.1], dtype=torch.float64)
    ours = ours_op(photo_crops.float(), factors)
    theirs = torch.stack([theirs_op(image, float(f)) for image, f in zip(photo_crops, factors)])
    diff = (ours - theirs.float()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01, (name, diff.max())


def _row(order=(0, 1, 2, 3), factors=(1.0, 1.0, 1.0, 0.0), apply=1.0, sigma=0.0):
    row = torch.zeros(PARAMS_PER_VIEW, dtype=torch.float64)
    row[APPLY], row[SIGMA] = apply, sigma
    row[BRIGHTNESS:HUE + 1] = torch.tensor(factors, dtype=torch.float64)
    row[ORDER:ORDER + 4] = torch.tensor(order, dtype=torch.float64)
    return row


def test_every_sample_gets_its_own_order_factors_and_blur(photo_crops):
    images = torch.cat([photo_crops, photo_crops[:1]])
    rows = torch.stack([_row((3, 0, 2, 1), (1.5, 0.6, 1.7, 0.2), sigma=0.9),
                        _row((1, 2, 0, 3), (0.4, 1.3, 0.3, -0.25), sigma=0.3),
                        _row(factors=(1.8, 0.2, 1.8, 0.3), apply=0.0)])  # no jitter, no blur
    batch = dev.apply_view(images, rows)
    alone = [dev.apply_view(images[i:i + 1], rows[i:i + 1])[0] for i in range(3)]
    assert all(torch.equal(batch[i], alone[i]) for i in range(3))
    assert torch.equal(batch[2], images[2])
    # The order matters: the same factors in another order give another image.
    reordered = dev.apply_view(images[:1], _row((0, 1, 2, 3), (1.5, 0.6, 1.7, 0.2),
                                                sigma=0.9)[None])[0]
    assert not torch.equal(reordered, batch[0])


def test_device_path_matches_the_loader_path_within_the_measured_bounds(photo_gtav, tmp_path):
    loader_set = _build(photo_gtav, tmp_path / "cache", "loader")
    device_set = _build(photo_gtav, tmp_path / "cache", "device")
    loader_set.set_epoch(1)  # in epoch 1 view 1's p = 0.5 jitter is on for 3 of the 4 items
    device_set.set_epoch(1)
    jittered = 0
    for index in range(len(loader_set)):
        expected, item = loader_set[index], device_set[index]
        jittered += int(item["photometric"][0, APPLY])
        assert set(item) == {"image", "label", "photometric", "name"}
        # Same draws in the same order: same geometry (label) and the same parameters.
        assert torch.equal(item["label"], expected["label"])
        for view, key in enumerate(VIEW_BOUNDS):
            device = dev.apply_view(item["image"][None], item["photometric"][None, view])[0]
            diff = (device.float() - expected[key].float()).abs()
            worst_mean, worst_max = VIEW_BOUNDS[key]
            assert diff.mean() <= worst_mean and diff.max() <= worst_max, (key, index)
    assert jittered == 3


def test_device_items_are_a_function_of_seed_epoch_and_index(photo_gtav, tmp_path):
    first, second = (_build(photo_gtav, tmp_path / "cache", "device") for _ in range(2))
    for index in (0, 3):
        a, b = first[index], second[index]
        assert all(torch.equal(a[key], b[key]) for key in ("image", "label", "photometric"))
        assert torch.equal(dev.apply_view(a["image"][None], a["photometric"][None, 1]),
                           dev.apply_view(b["image"][None], b["photometric"][None, 1]))
    second.set_epoch(1)
    assert not torch.equal(first[0]["photometric"], second[0]["photometric"])
    other_seed = _build(photo_gtav, tmp_path / "cache", "device", seed=7)
    assert not torch.equal(first[0]["photometric"], other_seed[0]["photometric"])


def test_both_views_are_made_from_one_uint8_crop(photo_gtav, tmp_path):
    device_set = _build(photo_gtav, tmp_path / "cache", "device")
    batch = next(iter(DataLoader(device_set, batch_size=2, num_workers=0)))
    # uint8 collate: 48*48*3 + 48*48 bytes and 2 x 10 parameters per sample.
    assert batch["image"].dtype == batch["label"].dtype == torch.uint8
    assert batch["image"].shape == (2, 3, 48, 48) and "image_aug" not in batch
    assert batch["photometric"].shape == (2, 2, PARAMS_PER_VIEW)
    assert batch["photometric"].dtype == torch.float64
    # Neutral parameters for both views: both equal the crop, so they share its geometry.
    batch["photometric"] = _row(apply=0.0).expand(2, 2, -1).clone()
    images, images_aug, labels = training_inputs(batch, "cpu", two_view=True)
    assert torch.equal(images, images_aug) and torch.equal(labels, batch["label"])
    plain = training_inputs({"image": batch["image"], "label": batch["label"]}, "cpu",
                            two_view=False)[0]
    assert torch.equal(images, plain)


def test_item_params_draw_what_the_loader_views_draw():
    torch.manual_seed(3)
    rows = ItemParams(color_aug=0.5, gblur=True, two_view=True)()
    after_params = torch.rand(1)
    assert rows.shape == (2, PARAMS_PER_VIEW) and rows[1, APPLY] == 1.0
    assert 0.15 <= rows[1, SIGMA] < 1.30 and sorted(rows[1, ORDER:ORDER + 4].tolist()) == [
        0, 1, 2, 3]
    from transforms.photometric import jittered_view_transform, original_view_transform

    picture = TF.to_pil_image(torch.zeros(3, 8, 8, dtype=torch.uint8))
    torch.manual_seed(3)
    original_view_transform(color_aug=0.5, gblur=True)(picture)
    jittered_view_transform()(picture)
    assert torch.equal(torch.rand(1), after_params)  # the same number of draws
