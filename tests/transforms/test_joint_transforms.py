"""Geometric transforms: scale/pad/crop equal the reference's resize-pad-crop, centroid rule."""

import numpy as np
import pytest
import torch
from PIL import Image

from transforms.joint import JointTransform, RandomScaleCrop, nearest_indices


def _pair(width=60, height=34, seed=0):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    label = np.kron(rng.integers(0, 19, (height // 2 + 1, width // 2 + 1)),
                    np.ones((2, 2)))[:height, :width].astype(np.uint8)
    return image, label


def nearest_resize(label, width, height):
    """Nearest resize of the whole label: pixel i takes source floor((i + 0.5) * in / out)."""
    rows = np.floor((np.arange(height) + 0.5) * label.shape[0] / height).astype(int)
    cols = np.floor((np.arange(width) + 0.5) * label.shape[1] / width).astype(int)
    return label[rows[:, None], cols[None, :]]


def reference_scale_crop(transform, image, label, plan, label_resize=nearest_resize):
    """What the reference does: resize everything, pad both sides, crop, resize if needed."""
    w, h = plan.scaled_size
    big = np.asarray(image.resize((w, h), Image.BICUBIC)).astype(int)
    big_label = label_resize(label, w, h)
    px, py = plan.pad
    big = np.pad(big, ((py, py), (px, px), (0, 0)))
    big_label = np.pad(big_label, ((py, py), (px, px)), constant_values=255)
    x, y, cw, ch = plan.window
    crop, crop_label = big[y:y + ch, x:x + cw], big_label[y:y + ch, x:x + cw]
    if (cw, ch) != (transform.crop_size,) * 2:
        size = (transform.crop_size,) * 2
        crop = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize(size, Image.BICUBIC))
        crop_label = label_resize(crop_label, *size)
    return crop.astype(int), crop_label


@pytest.mark.parametrize("crop_nopad", [False, True])
def test_window_resampling_equals_resize_pad_crop(crop_nopad):
    image, label = _pair()
    transform = RandomScaleCrop(40, scale_min=0.4, scale_max=2.5, crop_nopad=crop_nopad)
    torch.manual_seed(0)
    padded = 0
    for _ in range(30):
        plan = transform.plan(image.size)
        padded += plan.pad != (0, 0)
        fast_image, fast_label = transform.apply(image, label, plan)
        ref_image, ref_label = reference_scale_crop(transform, image, label, plan)
        assert fast_image.size == (40, 40)
        assert np.abs(np.asarray(fast_image).astype(int) - ref_image).max() <= 1
        np.testing.assert_array_equal(fast_label, ref_label)
        # PIL's nearest resize differs only where a source coordinate is an exact tie.
        _, pil_label = reference_scale_crop(
            transform, image, label, plan,
            lambda a, w, h: np.asarray(Image.fromarray(a).resize((w, h), Image.NEAREST)))
        assert (pil_label != fast_label).mean() < 0.1
    assert padded > 0 if not crop_nopad else padded == 0


def test_nearest_indices_are_exact():
    assert nearest_indices(0, 10, 10, 4).tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert nearest_indices(2, 4, 4, 10).tolist() == [6, 8]


def test_padding_rule_of_the_reference():
    """GTAV at scale 0.5 with crop 768: 957x526 -> 122 rows on top and bottom (DATASETS §9.1)."""
    transform = RandomScaleCrop(768, scale_min=0.5, scale_max=0.5)
    plan = transform.plan((1914, 1052))
    assert plan.scaled_size == (957, 526) and plan.pad == (0, 122)
    assert plan.window[2:] == (768, 768) and 0 <= plan.window[1] <= 526 + 244 - 768


def test_exact_size_is_left_alone():
    image, label = _pair(40, 40)
    transform = RandomScaleCrop(40, scale_min=1.0, scale_max=1.0)
    out_image, out_label = transform(image, label)
    assert np.array_equal(np.asarray(out_image), np.asarray(image))
    assert np.array_equal(np.asarray(out_label), label)


def test_centroid_lies_inside_the_crop():
    transform = RandomScaleCrop(32, scale_min=0.5, scale_max=2.0)
    torch.manual_seed(1)
    for _ in range(200):
        centroid = (int(torch.randint(0, 200, ())), int(torch.randint(0, 120, ())))
        plan = transform.plan((200, 120), centroid)
        scale = plan.scaled_size[0] / 200
        x, y, w, h = plan.window
        cx, cy = int(centroid[0] * scale), int(centroid[1] * scale)
        max_x = plan.scaled_size[0] + 2 * plan.pad[0] - w
        max_y = plan.scaled_size[1] + 2 * plan.pad[1] - h
        assert 0 <= x <= max_x and 0 <= y <= max_y
        assert x <= cx <= x + w or x == max_x  # only the clamp can push it out
        assert y <= cy <= y + h or y == max_y


def test_joint_transform_flip_and_rotation_move_image_and_label_together():
    # A left/right split image lets us check that image and label flip together.
    array = np.zeros((30, 30, 3), dtype=np.uint8)
    array[:, 15:] = 255
    label = np.zeros((30, 30), dtype=np.uint8)
    label[:, 15:] = 1
    transform = JointTransform(30, scale_min=1.0, scale_max=1.0)
    flips = 0
    for seed in range(12):
        torch.manual_seed(seed)
        image, mask = transform(Image.fromarray(array), label)
        bright_right = np.asarray(image)[:, 20:, 0].mean() > 128
        assert bool((mask[:, 20:] == 1).all()) == bright_right
        flips += not bright_right
    assert 0 < flips < 12
    rotate = JointTransform(30, scale_min=1.0, scale_max=1.0, rrotate=30)
    torch.manual_seed(0)
    _, mask = rotate(Image.fromarray(array), label)
    assert set(mask.unique().tolist()) <= {0, 1, 255} and (mask == 255).any()


@pytest.mark.parametrize("pre_size", [0, -8])
def test_non_positive_pre_size_is_refused(pre_size):
    # It used to scale every image to 1x1 pixel, so crops were almost all padding.
    with pytest.raises(ValueError, match="pre_size must be positive"):
        RandomScaleCrop(16, pre_size=pre_size)
