"""Joint geometric transforms: applied once per training sample and shared by both views.

Order and parameters follow DATASETS.md §9.1 (and §8.3 for class-centred crops):

1. :class:`RandomScaleCrop` - random scale ``s ~ U(scale_min, scale_max)`` (times
   ``pre_size / shorter side`` if set), image bicubic / label nearest, pad with 0 / 255 by
   the reference's rule, crop ``crop_size`` (random or around a centroid), then resize to
   ``crop_size`` if the crop came out smaller (only with ``crop_nopad``);
2. horizontal flip with p = 0.5;
3. rotation by U(-rrotate, rrotate) degrees when ``rrotate > 0`` (image bicubic, fill 0;
   label nearest, fill 255).

Randomness comes from torch's global RNG, like torchvision's own transforms; the datasets
seed it per item (see ``datasets/base.py``), so every draw is a function of
(seed, epoch, index).
"""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from utils.labels import IGNORE_LABEL


def nearest_indices(start, stop, scaled, source):
    """Nearest-neighbour source index of output pixels ``start..stop-1``.

    For a resize of ``source`` pixels to ``scaled``: ``floor((i + 0.5) * source / scaled)``,
    in exact integer arithmetic, so a window gives the same pixels as the whole image.
    """
    return (2 * np.arange(start, stop) + 1) * source // (2 * scaled)


def _uniform(low, high):
    """One float from U(low, high) drawn from torch's global RNG."""
    return low + (high - low) * torch.rand(()).item()


def _randint(low, high):
    """One integer from [low, high] (both inclusive, like ``random.randint``)."""
    return int(torch.randint(low, high + 1, ()).item())


@dataclass(frozen=True)
class ScaleCropPlan:
    """Where one training crop comes from.

    scaled_size: (w, h) of the whole image after random scaling.
    pad: (x, y) columns/rows of padding added on each side of the scaled image.
    window: (x, y, w, h) of the crop in padded, scaled coordinates.
    """

    scaled_size: tuple
    pad: tuple
    window: tuple


class RandomScaleCrop:
    """Random scale, pad and crop of an (image, label) pair (the reference's RandomSizeAndCrop).

    Rather than resizing the whole image (up to 3828x2104 for GTAV at scale 2) and then
    cropping, only the crop window is resampled from the source: the image through PIL's
    ``box`` argument with the same scale factor (bicubic; equal to resize-then-crop up to
    +-1 grey level of floating-point rounding), the label by gathering its nearest source
    pixels (exactly equal to a nearest resize-then-crop; PIL's own nearest resize breaks
    exact half-pixel ties the other way for a few columns).

    Args:
        crop_size: side of the square output crop.
        scale_min, scale_max: range of the random scale factor.
        pre_size: if set, the scale is multiplied by ``pre_size / shorter side``.
        crop_nopad: if the scaled image is smaller than the crop, crop a square of its
            shorter side (no padding) and resize that to ``crop_size``.
        ignore_index: label value of padded pixels.
    """

    def __init__(self, crop_size, scale_min=0.5, scale_max=2.0, pre_size=None,
                 crop_nopad=False, ignore_index=IGNORE_LABEL):
        if crop_size <= 0:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        if not 0 < scale_min <= scale_max:
            raise ValueError(f"need 0 < scale_min <= scale_max, got {scale_min}, {scale_max}")
        if pre_size is not None and pre_size <= 0:
            raise ValueError(f"pre_size must be positive or None, got {pre_size}")
        self.crop_size = crop_size
        self.scale_min = scale_min
        self.scale_max = scale_max
        self.pre_size = pre_size
        self.crop_nopad = crop_nopad
        self.ignore_index = ignore_index

    def plan(self, image_size, centroid=None):
        """Draw scale and crop origin for an image of ``image_size`` = (W, H).

        ``centroid`` (x, y) in full-resolution pixels places the crop so that the scaled
        centroid lies at a uniformly random position inside it (DATASETS.md §8.3). As in the
        reference, the centroid is not shifted by the padding offset.
        """
        width, height = image_size
        base = 1.0 if self.pre_size is None else self.pre_size / min(width, height)
        scale = base * _uniform(self.scale_min, self.scale_max)
        # At least one pixel: a tiny image at a small scale would otherwise become 0 pixels
        # wide and crash the resize (the reference's int() alone gives 0).
        w, h = max(1, int(width * scale)), max(1, int(height * scale))
        crop = self.crop_size
        crop_w = crop_h = crop
        pad_x = pad_y = 0
        if (w, h) == (crop, crop):
            return ScaleCropPlan((w, h), (0, 0), (0, 0, crop, crop))
        if self.crop_nopad and (w < crop or h < crop):
            crop_w = crop_h = min(w, h)
        else:
            # The reference pads (missing // 2 + 1) on BOTH sides, so the padded image is
            # one or two pixels larger than the crop.
            pad_y = (crop_h - h) // 2 + 1 if crop_h > h else 0
            pad_x = (crop_w - w) // 2 + 1 if crop_w > w else 0
        max_x = w + 2 * pad_x - crop_w
        max_y = h + 2 * pad_y - crop_h
        if centroid is None:
            x1, y1 = _randint(0, max_x), _randint(0, max_y)
        else:
            cx, cy = int(centroid[0] * scale), int(centroid[1] * scale)
            x1 = min(max(_randint(cx - crop_w, cx), 0), max_x)
            y1 = min(max(_randint(cy - crop_h, cy), 0), max_y)
        return ScaleCropPlan((w, h), (pad_x, pad_y), (x1, y1, crop_w, crop_h))

    def apply(self, image, label, plan):
        """Cut ``plan`` out of a PIL RGB ``image`` and an (H, W) uint8 ``label`` array.

        Returns (PIL RGB image, (crop, crop) uint8 array).
        """
        width, height = image.size
        w, h = plan.scaled_size
        pad_x, pad_y = plan.pad
        x1, y1, crop_w, crop_h = plan.window
        # Part of the window that lies on the scaled image (the rest is padding).
        left, top = x1 - pad_x, y1 - pad_y
        ix0, iy0 = max(left, 0), max(top, 0)
        ix1, iy1 = min(left + crop_w, w), min(top + crop_h, h)
        box = (ix0 * width / w, iy0 * height / h, ix1 * width / w, iy1 * height / h)
        image_part = image.resize((ix1 - ix0, iy1 - iy0), Image.BICUBIC, box=box)
        label_part = label[nearest_indices(iy0, iy1, h, height)[:, None],
                           nearest_indices(ix0, ix1, w, width)[None, :]]
        if (ix1 - ix0, iy1 - iy0) != (crop_w, crop_h):
            image_canvas = Image.new("RGB", (crop_w, crop_h), (0, 0, 0))
            image_canvas.paste(image_part, (ix0 - left, iy0 - top))
            label_canvas = np.full((crop_h, crop_w), self.ignore_index, dtype=label.dtype)
            label_canvas[iy0 - top:iy1 - top, ix0 - left:ix1 - left] = label_part
            image_part, label_part = image_canvas, label_canvas
        if (crop_w, crop_h) != (self.crop_size, self.crop_size):
            crop = self.crop_size
            image_part = image_part.resize((crop, crop), Image.BICUBIC)
            label_part = label_part[nearest_indices(0, crop, crop, crop_h)[:, None],
                                    nearest_indices(0, crop, crop, crop_w)[None, :]]
        return image_part, label_part

    def __call__(self, image, label, centroid=None):
        return self.apply(image, np.asarray(label), self.plan(image.size, centroid))


class JointTransform:
    """Scale/crop, flip and optional rotation of an (image, label) pair, shared by both views.

    Call with a PIL RGB image, a (H, W) uint8 train-id array and an optional centroid
    (x, y). Returns (PIL RGB image crop x crop, ``tv_tensors.Mask``
    uint8 [crop, crop]).
    """

    def __init__(self, crop_size, scale_min=0.5, scale_max=2.0, pre_size=None,
                 crop_nopad=False, rrotate=0, ignore_index=IGNORE_LABEL):
        self.scale_crop = RandomScaleCrop(crop_size, scale_min, scale_max, pre_size,
                                          crop_nopad, ignore_index)
        flips_and_turns = [v2.RandomHorizontalFlip(p=0.5)]
        if rrotate > 0:
            flips_and_turns.append(v2.RandomRotation(
                rrotate, interpolation=v2.InterpolationMode.BICUBIC,
                fill={Image.Image: 0, tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}))
        # v2 transforms move the PIL image and the Mask together with one random draw;
        # masks always use nearest interpolation.
        self.flip_rotate = v2.Compose(flips_and_turns)

    def __call__(self, image, label, centroid=None):
        image, label = self.scale_crop(image, np.asarray(label, dtype=np.uint8), centroid)
        return self.flip_rotate(image, tv_tensors.Mask(torch.from_numpy(label)))
