"""Corruptions: the package's benchmark list, determinism per image, severity 0 = clean."""

import numpy as np
import pytest

from transforms import corruptions as C


def _image(seed=0, size=(48, 64)):
    return (np.random.default_rng(seed).random((*size, 3)) * 255).astype(np.uint8)


def test_names_are_the_packages():
    package = C._load_package()
    assert list(C.BENCHMARK_CORRUPTIONS) == package.get_corruption_names("common")
    assert list(C.EXTRA_CORRUPTIONS) == package.get_corruption_names("validation")


@pytest.mark.parametrize("name", C.CORRUPTIONS)
def test_every_corruption_runs_and_is_deterministic_per_image(name):
    image = _image()
    first = C.corrupt_image(image, name, 3, "frankfurt_000000_000294")
    again = C.corrupt_image(image, name, 3, "frankfurt_000000_000294")
    assert first.shape == image.shape and first.dtype == np.uint8
    assert (first != image).any(), f"{name} left the image unchanged"
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("name", ("gaussian_noise", "impulse_noise", "glass_blur", "frost"))
def test_random_corruptions_differ_between_images_and_severities(name):
    image = _image()
    a = C.corrupt_image(image, name, 2, "a")
    assert (a != C.corrupt_image(image, name, 2, "b")).any()
    assert (a != C.corrupt_image(image, name, 4, "a")).any()


def test_severity_zero_is_the_clean_image():
    image = _image()
    for name in C.CORRUPTIONS:
        out = C.corrupt_image(image, name, 0, "x")
        np.testing.assert_array_equal(out, image)
        assert out is not image


def test_callers_global_rng_is_untouched():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    C.corrupt_image(_image(), "gaussian_noise", 5, "x")
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_seed_is_stable_and_distinguishes_its_inputs():
    seed = C.corruption_seed("fog", 3, "aachen_000000_000019")
    assert seed == C.corruption_seed("fog", 3, "aachen_000000_000019")
    assert seed != C.corruption_seed("fog", 4, "aachen_000000_000019")
    assert seed != C.corruption_seed("snow", 3, "aachen_000000_000019")
    assert seed != C.corruption_seed("fog", 3, "aachen_000000_000020")
    C.corruption_seed("fog", 1, "caf\udce9")  # non-UTF-8 file names are fine


def test_resolve_corruptions():
    assert C.resolve_corruptions(["all"]) == C.BENCHMARK_CORRUPTIONS
    assert C.resolve_corruptions(["fog", "saturate"]) == ("fog", "saturate")
    for bad, message in ((["fgo"], "unknown corruption"), (["all", "fog"], "cannot be combined"),
                         (["fog", "fog"], "twice"), ([], "needs")):
        with pytest.raises(ValueError, match=message):
            C.resolve_corruptions(bad)


def test_check_severities():
    assert C.check_severities([1, 2, 3, 4, 5]) == (1, 2, 3, 4, 5)
    assert C.check_severities(["0", "3"]) == (0, 3)
    for bad in ([6], [1, 1], [], [-1]):
        with pytest.raises(ValueError, match="--severities"):
            C.check_severities(bad)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="uint8"):
        C.corrupt_image(_image().astype(np.float32), "fog", 1, "x")
    with pytest.raises(ValueError, match="unknown corruption"):
        C.corrupt_image(_image(), "fgo", 1, "x")
    with pytest.raises(ValueError, match="severity"):
        C.corrupt_image(_image(), "fog", 6, "x")
    with pytest.raises(ValueError, match=">= 32"):
        C.corrupt_image(_image(size=(20, 64)), "fog", 1, "tiny")
