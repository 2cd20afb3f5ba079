"""Evaluation protocols: normalisation and the Mapillary resize / centre crop-pad quirks."""

import numpy as np
import pytest
import torch
from PIL import Image

from transforms.eval import (
    EvalTransform,
    clean_center_crop_pad,
    mapillary_eval_size,
    reference_center_crop_pad,
)
from transforms.normalization import (IMAGENET_MEAN, IMAGENET_STD, eval_normalization,
                                      normalize_images)


def test_normalisation_per_protocol():
    assert eval_normalization("cityscapes", "blindnet") == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    for protocol in ("robustnet", "clean"):
        assert eval_normalization("cityscapes", protocol) == (IMAGENET_MEAN, IMAGENET_STD)
    for name in ("bdd100k", "mapillary", "gtav", "synthia"):
        assert eval_normalization(name, "blindnet") == (IMAGENET_MEAN, IMAGENET_STD)
    assert [mapillary_eval_size(p) for p in ("robustnet", "blindnet", "clean")] == [
        1536, 1024, 1536]
    with pytest.raises(ValueError, match="eval_protocol"):
        eval_normalization("bdd100k", "official")


def _column_coded(width, height):
    """Image and label whose values encode the column (1-based, so 0 marks padding)."""
    cols = (np.arange(width) % 250 + 1).astype(np.uint8)
    image = Image.fromarray(np.repeat(np.tile(cols, (height, 1))[..., None], 3, axis=2))
    label = Image.fromarray(np.tile(cols, (height, 1)))
    return image, label


def test_reference_crop_of_a_portrait_image():
    """DATASETS.md §7.2: a 682x1024 image in a 1024 crop: columns 0-512 are padding
    (label 0 = road), columns 513-1023 show the image's left 511 columns."""
    image, label = _column_coded(682, 1024)
    out_image, out_label = reference_center_crop_pad(image, label, 1024)
    out_label = np.asarray(out_label)
    assert out_image.size == (1024, 1024)
    assert (out_label[:, :513] == 0).all() and (np.asarray(out_image)[:, :513] == 0).all()
    np.testing.assert_array_equal(out_label[0, 513:], np.asarray(label)[0, :511])


def test_reference_crop_of_a_landscape_image():
    image, label = _column_coded(1365, 1024)
    _, out_label = reference_center_crop_pad(image, label, 1024)
    x1 = round((1365 - 1024) / 2)  # 170 (half to even)
    np.testing.assert_array_equal(np.asarray(out_label)[5], np.asarray(label)[5, x1:x1 + 1024])


def test_clean_crop_centres_and_pads_with_ignore():
    image, label = _column_coded(100, 64)
    out_image, out_label = clean_center_crop_pad(image, label, 64)
    np.testing.assert_array_equal(np.asarray(out_label)[0], np.asarray(label)[0, 18:82])
    image, label = _column_coded(40, 64)
    out_image, out_label = clean_center_crop_pad(image, label, 64)
    out_label = np.asarray(out_label)
    assert (out_label[:, :12] == 255).all() and (out_label[:, 52:] == 255).all()
    np.testing.assert_array_equal(out_label[0, 12:52], np.asarray(label)[0])


@pytest.mark.parametrize("protocol, size, pad_value", [("robustnet", 1536, 0),
                                                       ("blindnet", 1024, 0),
                                                       ("clean", 1536, 255)])
def test_mapillary_eval_transform(protocol, size, pad_value):
    """A portrait Mapillary image: resized to the protocol's height, cropped square."""
    label = np.full((150, 100), 13, dtype=np.uint8)
    image = Image.new("RGB", (100, 150), (255, 255, 255))
    tensor, target = EvalTransform("mapillary", protocol)(image, label)
    assert tensor.shape == (3, size, size) and target.shape == (size, size)
    assert target.dtype == tensor.dtype == torch.uint8  # the item contract
    assert set(target.unique().tolist()) == {13, pad_value}
    width = int(100 / 150 * size)
    # reference crop: the offset round((w - size) / 2) < 0 hides part of the image (§7.2)
    visible = width if protocol == "clean" else width + round((width - size) / 2)
    assert (target == 13).sum().item() == size * visible


def test_other_datasets_keep_full_resolution():
    label = np.array([[0, 255], [18, 7]], dtype=np.uint8)
    image = Image.new("RGB", (2, 2), (0, 0, 0))
    tensor, target = EvalTransform("cityscapes", "blindnet")(image, label)
    assert torch.equal(target, torch.tensor([[0, 255], [18, 7]], dtype=torch.uint8))
    assert (tensor == 0).all() and tensor.shape == (3, 2, 2)
    blindnet = EvalTransform("cityscapes", "blindnet")
    assert (blindnet.mean, blindnet.std) == ((0.0,) * 3, (1.0,) * 3)  # mean 0, std 1
    robustnet = EvalTransform("cityscapes", "robustnet")
    tensor, _ = robustnet(image, label)
    normalised = normalize_images(tensor, robustnet.mean, robustnet.std)
    assert normalised[0, 0, 0].item() == pytest.approx(-0.485 / 0.229)
