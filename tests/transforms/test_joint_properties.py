"""Property-based tests (hypothesis) of the joint transforms: alignment, label values, no crash.

Alignment: the image encodes each pixel's source coordinates as linear ramps (R = x, G = y,
scaled to 0..255), which bicubic resampling and rotation reproduce away from the borders;
two labels encode them as ``x % 19`` and ``y % 19`` (valid train ids), which nearest
resampling copies exactly. Both labels go through the transform with the same seed (the
same draws). After any scale, crop, flip and rotation, the source pixel each label shows
must lie within a few pixels (the nearest-neighbour rounding) of where the image says the
pixel came from.
"""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy.ndimage import minimum_filter

from utils.labels import IGNORE_LABEL, NUM_CLASSES
from transforms.joint import JointTransform

VALID = np.r_[np.arange(NUM_CLASSES), IGNORE_LABEL]
SETTINGS = settings(max_examples=40, deadline=None)
PERIOD = NUM_CLASSES  # label codes 0..18
# Bicubic support at scale <= 2 is about 4 output pixels; rotation adds one.
RADIUS = 6
EDGE = 2  # source pixels this close to the border see the clamped (non-linear) ramp


def coordinate_scene(height, width):
    """(PIL image with coordinate ramps, label x % 19, label y % 19), labels (H, W) uint8."""
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 0] = np.rint(xs * 255 / max(1, width - 1))
    image[..., 1] = np.rint(ys * 255 / max(1, height - 1))
    return Image.fromarray(image), (xs % PERIOD).astype(np.uint8), (ys % PERIOD).astype(np.uint8)


def misaligned_pixels(out_image, label_x, label_y, height, width, tol=1, border=0):
    """(number of checked output pixels whose labels point more than ``tol`` source pixels
    away from the coordinates the image encodes, number checked). ``border`` output pixels
    at each edge, ignore pixels and their neighbourhood are not checked."""
    rgb = np.asarray(out_image, dtype=np.float64)
    label_x, label_y = np.asarray(label_x).astype(int), np.asarray(label_y).astype(int)
    xf = rgb[..., 0] * (width - 1) / 255
    yf = rgb[..., 1] * (height - 1) / 255
    inside = minimum_filter((label_x != IGNORE_LABEL).astype(np.uint8), size=2 * RADIUS + 1,
                            mode="constant", cval=0).astype(bool)
    if border:
        inside[:border] = inside[-border:] = False
        inside[:, :border] = inside[:, -border:] = False
    inside &= (xf >= EDGE) & (xf <= width - 1 - EDGE) & (yf >= EDGE) & (yf <= height - 1 - EDGE)

    def off(code, coordinate):  # circular distance between label code and coordinate
        d = np.abs(code - np.rint(coordinate).astype(int) % PERIOD)
        return np.minimum(d, PERIOD - d)

    wrong = inside & ((off(label_x, xf) > tol) | (off(label_y, yf) > tol))
    return int(wrong.sum()), int(inside.sum())


@SETTINGS
@given(height=st.integers(1, 48), width=st.integers(1, 48), crop=st.integers(4, 40),
       scale=st.floats(0.5, 2.0), spread=st.floats(0.0, 1.0), nopad=st.booleans(),
       rotate=st.sampled_from([0, 15]), seed=st.integers(0, 2**31 - 1),
       use_centroid=st.booleans())
def test_joint_transform_keeps_image_and_label_aligned(height, width, crop, scale, spread, nopad,
                                                       rotate, seed, use_centroid):
    image, label_x, label_y = coordinate_scene(height, width)
    transform = JointTransform(crop, scale, min(2.0, scale * (1.0 + spread)),
                               crop_nopad=nopad, rrotate=rotate)
    centroid = (width // 2, height // 2) if use_centroid else None
    outputs = []
    for label in (label_x, label_y):
        torch.manual_seed(seed)
        outputs.append(transform(image, label, centroid))
    (out_image, out_x), (again, out_y) = outputs
    assert np.array_equal(np.asarray(out_image), np.asarray(again))  # same draws
    for out in (out_x, out_y):
        assert out_image.size == (crop, crop) and tuple(out.shape) == (crop, crop)
        assert out.dtype == torch.uint8 and np.isin(np.asarray(out), VALID).all()
    # Nearest sampling is up to 1 source pixel off; each further nearest step (rotation,
    # the crop_nopad resize) up to one scaled pixel, i.e. 1 / scale source pixels.
    step = math.ceil(1 / scale)
    tol, border = 1 + (step if rotate else 0), 0
    smallest = max(1, int(min(height, width) * scale))
    if nopad and smallest < crop:  # the crop is resized up; bicubic clamps at its edges
        tol, border = tol + step, int(np.ceil(2 * crop / smallest)) + 1
    wrong, checked = misaligned_pixels(out_image, out_x, out_y, height, width, tol, border)
    assert wrong == 0, f"{wrong} of {checked} pixels misaligned"


def test_the_alignment_check_sees_a_shift():
    """The property above is not vacuous: shifting a label by two pixels is caught."""
    image, label_x, label_y = coordinate_scene(40, 40)
    torch.manual_seed(0)
    out_image, out_x = JointTransform(32, 1.0, 1.0)(image, label_x)
    torch.manual_seed(0)
    _, out_y = JointTransform(32, 1.0, 1.0)(image, label_y)
    wrong, checked = misaligned_pixels(out_image, out_x, out_y, 40, 40)
    assert wrong == 0 and checked > 100
    for dims, shifted in ((1, (torch.roll(out_x, 2, dims=1), out_y)),
                          (0, (out_x, torch.roll(out_y, 2, dims=0)))):
        wrong, _ = misaligned_pixels(out_image, *shifted, 40, 40)
        assert wrong > 0.5 * checked, dims
    wrong, _ = misaligned_pixels(out_image, torch.flip(out_x, dims=[1]), out_y, 40, 40)
    assert wrong > 0.5 * checked  # a label flipped without its image


@SETTINGS
@given(height=st.integers(1, 40), width=st.integers(1, 40), crop=st.integers(1, 32),
       scale_min=st.floats(0.05, 1.0), nopad=st.booleans(), seed=st.integers(0, 1000),
       values=st.sampled_from([0, 7, 18, 255]))
def test_any_size_and_scale_gives_a_full_crop_without_crashing(height, width, crop, scale_min,
                                                               nopad, seed, values):
    image = Image.new("RGB", (width, height), (10, 20, 30))
    label = np.full((height, width), values, dtype=np.uint8)
    torch.manual_seed(seed)
    out_image, out_label = JointTransform(crop, scale_min, 2.0, crop_nopad=nopad)(image, label)
    assert out_image.size == (crop, crop) and tuple(out_label.shape) == (crop, crop)
    assert set(np.unique(np.asarray(out_label)).tolist()) <= {values, IGNORE_LABEL}
