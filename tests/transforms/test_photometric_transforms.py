"""Per-view photometric transforms: blur law, jitter strength, normalisation."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.filters import gaussian
from torchvision.transforms import v2

from transforms.normalization import (IMAGENET_MEAN, IMAGENET_STD, normalize_images,
                                      to_normalized_tensor)
from transforms.photometric import (
    RandomBilateralBlur,
    RandomGaussianBlur,
    blur_sigma,
    gaussian_blur,
    jittered_view_transform,
    original_view_transform,
)


@pytest.fixture
def picture():
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    array[:12, :12] = 117  # a flat patch: the reference's truncation lowers it to 116
    return Image.fromarray(array)


@pytest.mark.parametrize("sigma", [0.15, 0.3, 0.77, 1.29])
def test_gaussian_blur_matches_skimage(picture, sigma):
    expected = (gaussian(np.asarray(picture), sigma=sigma, channel_axis=-1, truncate=4.0,
                         mode="nearest") * 255).astype(np.uint8)
    got = np.asarray(gaussian_blur(picture, sigma))
    assert (got != expected).mean() < 1e-3  # float64 rounding at exact .0 values only
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_blur_sigma_law():
    torch.manual_seed(0)
    sigmas = np.array([blur_sigma() for _ in range(2000)])
    assert sigmas.min() >= 0.15 and sigmas.max() < 1.30
    assert abs(sigmas.mean() - (0.15 + 1.15 / 2)) < 0.03


def test_view_1_structure():
    def names(transform):
        return [type(t).__name__ for t in transform.transforms]

    assert names(original_view_transform()) == ["PILToTensor"]  # uint8, normalised later
    with_everything = original_view_transform(color_aug=0.5, gblur=True)
    apply, blur, _ = with_everything.transforms
    assert isinstance(apply, v2.RandomApply) and apply.p == 0.5
    jitter = apply.transforms[0]
    assert jitter.brightness == pytest.approx((0.6, 1.4))
    assert jitter.hue == pytest.approx((-0.1, 0.1))
    assert isinstance(blur, RandomGaussianBlur)
    assert isinstance(original_view_transform(gblur=True, bblur=True).transforms[0],
                      RandomBilateralBlur)


def test_view_2_always_jitters_strongly_and_blurs():
    jitter, blur, _ = jittered_view_transform().transforms
    assert isinstance(jitter, v2.ColorJitter) and isinstance(blur, RandomGaussianBlur)
    for factor in (jitter.brightness, jitter.contrast, jitter.saturation):
        assert factor == pytest.approx((0.2, 1.8))
    assert jitter.hue == pytest.approx((-0.3, 0.3))


def test_views_change_colour_but_keep_shape(picture):
    torch.manual_seed(0)
    plain = original_view_transform()(picture)  # no options: the picture itself, uint8
    strong = jittered_view_transform()(picture)
    assert plain.shape == strong.shape == (3, 40, 56)
    assert plain.dtype == strong.dtype == torch.uint8
    assert (plain.float() - strong.float()).abs().mean() > 0.1 * 255
    assert torch.equal(plain, torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1))


def test_device_normalisation_is_bit_identical_to_the_items_cpu_normalisation(picture):
    """The engine normalises uint8 batches; items used to carry ToDtype + Normalize output."""
    reference = to_normalized_tensor()(picture)
    batch = torch.stack([original_view_transform()(picture)] * 2)
    assert torch.equal(normalize_images(batch)[1], reference)
    expected = (torch.tensor(np.asarray(picture)[0, 0] / 255.0, dtype=torch.float32)
                - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(reference[:, 0, 0], expected, atol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        normalize_images(reference)


def test_bilateral_blur_smooths(picture):
    torch.manual_seed(0)
    blurred = np.asarray(RandomBilateralBlur()(picture)).astype(float)
    assert blurred.shape == (40, 56, 3) and blurred.std() < np.asarray(picture).std()
