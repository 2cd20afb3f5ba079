"""transforms/glass_blur.py gives exactly the package's glass_blur (its own loop, run here)."""

import numpy as np
import pytest
from PIL import Image

from transforms import corruptions
from transforms.glass_blur import glass_blur, shuffle_sources


def _package_glass_blur():
    """The package's original function (the one ``corrupt`` no longer dispatches to)."""
    return corruptions._load_package().corruptions.glass_blur


def _loop_reference(height, width, max_delta, iterations):
    """The package's walk written with NumPy pixel views, as it runs it."""
    x = np.arange(height * width, dtype=np.int64).reshape(height, width, 1).repeat(3, axis=2)
    for _ in range(iterations):
        for h in range(height - max_delta, max_delta, -1):
            for w in range(width - max_delta, max_delta, -1):
                dx, dy = np.random.randint(-max_delta, max_delta, size=(2,))
                h_prime, w_prime = h + dy, w + dx
                x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
    return x[..., 0].ravel()


@pytest.mark.parametrize("max_delta, iterations", [(1, 2), (2, 3), (4, 2)])
def test_source_indices_follow_the_packages_walk(max_delta, iterations):
    np.random.seed(7)
    expected = _loop_reference(37, 45, max_delta, iterations)
    np.random.seed(7)
    sources = shuffle_sources(37, 45, max_delta, iterations)
    assert np.array_equal(sources, expected)
    assert not np.array_equal(sources, np.arange(37 * 45))


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_bit_identical_to_the_package_and_consumes_the_same_random_numbers(severity):
    rng = np.random.default_rng(severity)
    image = Image.fromarray(rng.integers(0, 256, (48, 70, 3), dtype=np.uint8))
    original = _package_glass_blur()
    np.random.seed(11)
    expected, after_expected = original(image, severity), np.random.rand()
    np.random.seed(11)
    ours, after_ours = glass_blur(image, severity, gaussian=original.__globals__["gaussian"]), \
        np.random.rand()
    assert np.array_equal(ours, expected)
    assert after_ours == after_expected


def test_corrupt_image_dispatches_to_the_fast_version(monkeypatch):
    calls = []
    import transforms.glass_blur as module

    real = module.shuffle_sources
    monkeypatch.setattr(module, "shuffle_sources", lambda *a: calls.append(a) or real(*a))
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    out = corruptions.corrupt_image(image, "glass_blur", 2, "img")
    assert calls == [(40, 50, 2, 1)] and out.shape == image.shape and out.dtype == np.uint8
