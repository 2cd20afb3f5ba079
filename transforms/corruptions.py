"""Cityscapes-C style image corruptions from the ``imagecorruptions`` package.

The package (Michaelis et al. 2019, "Benchmarking Robustness in Object Detection"; the
corruptions of Hendrycks & Dietterich 2019) defines the benchmark, so it is used as is:
:func:`corrupt_image` only adds what an evaluation needs on top of it:

* **determinism per image**: every corruption draws from NumPy's global RNG (and
  ``impulse_noise`` from scikit-image's own generator); the draw is seeded with a hash of
  (corruption, severity, image name) and the caller's global RNG state is restored, so the
  same image gets the same corruption in any process, worker or order;
* **severity 0 is the clean image** (the package accepts 1..5 only);
* **compatibility with current NumPy / SciPy / scikit-image / setuptools** (imagecorruptions
  1.1.2, the latest release, predates them). Without these adaptations, measured with NumPy
  2.4, scikit-image 0.26, setuptools 84: the import fails (``pkg_resources`` is gone from
  setuptools), ``fog`` fails (``np.float_`` removed in NumPy 2), ``gaussian_blur`` and
  ``glass_blur`` fail (scikit-image's ``gaussian`` lost ``multichannel=``), and
  ``impulse_noise`` is not reproducible (scikit-image draws from a fresh generator). Each
  adaptation is applied inside the package's own module namespace only
  (:func:`_load_package`); NumPy, scikit-image and ``sys.modules`` stay untouched. None of
  the 19 corruptions needs Wand / ImageMagick (1.1.x has its own motion blur).

``BENCHMARK_CORRUPTIONS`` are the 15 corruptions of the benchmark (``--corruptions all``);
the package's 4 held-out "validation" corruptions can be named explicitly.
"""

import functools
import importlib
import importlib.util
import os
import sys
import threading
import types
import zlib

import numpy as np

from transforms.glass_blur import glass_blur

# The package's corruption order (imagecorruptions.get_corruption_names("common")), grouped
# noise / blur / weather / digital; mPC averages over these.
BENCHMARK_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
# get_corruption_names("validation"): not part of the benchmark's mPC.
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
CORRUPTIONS = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES = (0, 1, 2, 3, 4, 5)
MIN_SIDE = 32  # the package refuses smaller images

_PACKAGE = None
_LOCK = threading.Lock()


class CorruptionsUnavailableError(ImportError):
    """The ``imagecorruptions`` package is not installed."""


def resolve_corruptions(names):
    """``["all"]`` -> :data:`BENCHMARK_CORRUPTIONS`; otherwise the names, validated, in order.

    Raises ValueError naming an unknown corruption, a duplicate, or ``all`` mixed with names.
    """
    names = list(names)
    if not names:
        raise ValueError("--corruptions needs 'all' or at least one corruption name")
    if "all" in names:
        if len(names) > 1:
            raise ValueError(f"--corruptions: 'all' cannot be combined with names, got {names}")
        return BENCHMARK_CORRUPTIONS
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"--corruptions: unknown corruption(s) {unknown}; expected 'all' or "
                         f"names from {list(CORRUPTIONS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--corruptions: a corruption is named twice in {names}")
    return tuple(names)


def check_severities(severities):
    """Validated tuple of severities (0 = clean, 1..5); ValueError otherwise."""
    severities = tuple(int(s) for s in severities)
    if not severities:
        raise ValueError("--severities needs at least one value in 0..5")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad or len(set(severities)) != len(severities):
        raise ValueError(f"--severities must be distinct values in 0..5 (0 = clean), "
                         f"got {list(severities)}")
    return severities


def corruption_seed(corruption, severity, key):
    """32-bit seed of (corruption, severity, image key): stable across processes and runs.

    ``key`` is the image's name (str) or any bytes; Python's ``hash`` is salted per process,
    so CRC-32 of the UTF-8 bytes (surrogates escaped) is used instead.
    """
    raw = key if isinstance(key, bytes) else str(key).encode("utf-8", "surrogateescape")
    words = [zlib.crc32(corruption.encode()), int(severity), zlib.crc32(raw)]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint32)[0])


def corrupt_image(image, corruption, severity, key):
    """Corrupt one image deterministically.

    Args:
        image: (H, W, 3) uint8 RGB array (or a PIL RGB image), H and W >= 32.
        corruption: a name from :data:`CORRUPTIONS`.
        severity: 0 (returns an unchanged copy) .. 5.
        key: identifies the image (its name); the same key gives the same corruption.

    Returns:
        (H, W, 3) uint8 array.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"corrupt_image needs an (H, W, 3) uint8 image, got shape "
                         f"{image.shape} dtype {image.dtype}")
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; expected one of {list(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be in 0..5 (0 = clean), got {severity!r}")
    if severity == 0:
        return image.copy()
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image {key!s} is {image.shape[1]}x{image.shape[0]}; corruptions "
                         f"need both sides >= {MIN_SIDE} pixels")
    package = _load_package()
    with _LOCK:
        state = np.random.get_state()
        try:
            np.random.seed(corruption_seed(corruption, severity, key))
            out = package.corrupt(np.ascontiguousarray(image), severity=int(severity),
                                  corruption_name=corruption)
        finally:
            np.random.set_state(state)
    return np.asarray(out, dtype=np.uint8)


# --------------------------------------------------------------------- package loading
def _load_package():
    """Import ``imagecorruptions`` once, with the adaptations listed in the module docstring."""
    global _PACKAGE
    if _PACKAGE is not None:
        return _PACKAGE
    with _LOCK:
        if _PACKAGE is None:
            _PACKAGE = _import_adapted()
    return _PACKAGE


def _import_adapted():
    if importlib.util.find_spec("imagecorruptions") is None:
        raise CorruptionsUnavailableError(
            "corruption evaluation needs the 'imagecorruptions' package: "
            "pip install --no-deps 'imagecorruptions>=1.1.2' (its other requirements are in "
            "requirements.txt; --no-deps keeps it from pulling opencv-python next to "
            "opencv-python-headless)")
    shimmed = False
    if importlib.util.find_spec("pkg_resources") is None:
        # imagecorruptions binds pkg_resources.resource_filename at import time (frost
        # textures); the stand-in is removed again right after the import.
        sys.modules["pkg_resources"] = _pkg_resources_stand_in()
        shimmed = True
    try:
        import warnings
        with warnings.catch_warnings():
            # "scipy.ndimage.interpolation is deprecated": the package's import, not ours.
            warnings.simplefilter("ignore", DeprecationWarning)
            package = importlib.import_module("imagecorruptions")
    finally:
        if shimmed:
            sys.modules.pop("pkg_resources", None)
    module = package.corruptions
    module.gaussian = _gaussian_compat(module.gaussian)
    if not _has_attr(np, "float_"):
        module.np = _proxy(np, float_=np.float64)
    module.sk = _proxy(module.sk, util=_proxy(module.sk.util,
                                              random_noise=_seeded_random_noise(module.sk)))
    # The same output as the package's glass_blur, 17-41x faster (transforms/glass_blur.py).
    package.corruption_dict["glass_blur"] = functools.partial(glass_blur,
                                                              gaussian=module.gaussian)
    return package


def _pkg_resources_stand_in():
    stand_in = types.ModuleType("pkg_resources")

    def resource_filename(package, resource):
        origin = importlib.util.find_spec(package).origin
        return os.path.join(os.path.dirname(origin), resource)

    stand_in.resource_filename = resource_filename
    return stand_in


def _has_attr(obj, name):
    try:
        getattr(obj, name)
        return True
    except AttributeError:
        return False


def _proxy(module, **overrides):
    """A module object that answers ``overrides`` and delegates everything else to ``module``."""
    proxy = types.ModuleType(f"{module.__name__}_blindnet_compat")
    proxy.__dict__.update(overrides)
    proxy.__getattr__ = lambda name: getattr(module, name)
    return proxy


def _gaussian_compat(gaussian):
    """scikit-image's ``gaussian`` accepting the removed ``multichannel=True`` keyword."""
    import inspect

    if "multichannel" in inspect.signature(gaussian).parameters:
        return gaussian

    def compat(image, *args, multichannel=None, **kwargs):
        if multichannel:
            kwargs.setdefault("channel_axis", -1)
        return gaussian(image, *args, **kwargs)

    return compat


def _seeded_random_noise(skimage):
    """``skimage.util.random_noise`` drawing its seed from NumPy's (seeded) global RNG."""
    import inspect

    random_noise = skimage.util.random_noise
    keyword = next((k for k in ("rng", "seed")
                    if k in inspect.signature(random_noise).parameters), None)

    def seeded(image, *args, **kwargs):
        if keyword is not None:
            kwargs.setdefault(keyword, int(np.random.randint(0, 2**31 - 1)))
        return random_noise(image, *args, **kwargs)

    return seeded
