"""Rein's training pipeline (``--train_preset rein``) and its test-time resize
(``--eval_protocol rein``), after mmseg's transforms (docs/VFM_METHODS.md §3.3, §3.4, §4.1).

Training (:class:`ReinTrainPreset`), for a square ``crop``:

1. short side to ``s``, drawn uniformly from ``int(crop * x * 0.1)`` for ``x = 5..20``
   (Rein's 512 recipe: 256, 307, ..., 1024), the long side scaled alike and capped at
   ``4 * crop`` (2048), then mmcv's keep-ratio rescale to that size (both roundings as mmcv
   does them; image bilinear, label nearest, OpenCV as mmcv);
2. a random ``crop x crop`` window (shorter where the image is), redrawn up to 10 times
   until it holds more than one labelled class and none covers 75% of its labelled pixels
   (the 11th draw is kept unchecked);
3. horizontal flip with p 0.5;
4. mmseg's ``PhotoMetricDistortion`` on the uint8 image: brightness, then contrast first or
   last (50/50), saturation and hue in OpenCV's HSV; each step with p 0.5;
5. normalisation, then padding right/bottom to ``crop``: image 0 (the mean colour after
   normalisation), label 255.

Randomness comes from torch's global RNG (seeded per item by the dataset), not NumPy's: the
distributions are Rein's, the streams are ours. The two-view option adds BlindNet's jittered
view of the step-3 crop (``transforms/photometric.py``), padded alike.
"""

import io

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from transforms.normalization import to_normalized_tensor
from transforms.photometric import jittered_view_transform
from utils.labels import IGNORE_LABEL

SCALE_STEPS = tuple(range(5, 21))  # x of int(crop * x * 0.1): 0.5 .. 2.0 times the crop
LONG_SIDE_FACTOR = 4               # max_size 2048 for the 512 crop (4096 for 1024)
CAT_MAX_RATIO, CROP_TRIES = 0.75, 10
BRIGHTNESS_DELTA, CONTRAST, SATURATION, HUE_DELTA = 32, (0.5, 1.5), (0.5, 1.5), 18


def _randint(high):
    """An integer in ``[0, high)`` from torch's global RNG (``np.random.randint(high)``)."""
    return int(torch.randint(high, ()).item())


def _uniform(low, high):
    return low + (high - low) * torch.rand(()).item()


def short_edge_scales(crop):
    """Rein's ``RandomChoiceResize`` scales for a ``crop`` (§3.3): ``int(crop * x * 0.1)``."""
    return [int(crop * x * 0.1) for x in SCALE_STEPS]


def short_edge_size(width, height, short, max_size):
    """``ResizeShortestEdge``'s target ``(w, h)``: the short side ``short``, the long side
    alike, both scaled down when the long one exceeds ``max_size``; ``int(v + 0.5)``."""
    scale = short / min(height, width)
    new_h, new_w = (short, scale * width) if height < width else (scale * height, short)
    if max(new_h, new_w) > max_size:
        factor = max_size / max(new_h, new_w)
        new_h, new_w = new_h * factor, new_w * factor
    return int(new_w + 0.5), int(new_h + 0.5)


def rescale_size(width, height, target):
    """mmcv's keep-ratio rescale of a ``width x height`` image to fit ``target = (w, h)``:
    factor ``min(max(target) / max(h, w), min(target) / min(h, w))``, sides
    ``int(side * factor + 0.5)``. Returns ``(w, h)``."""
    factor = min(max(target) / max(height, width), min(target) / min(height, width))
    return int(width * factor + 0.5), int(height * factor + 0.5)


def resize_pair(image, label, size):
    """uint8 ``(H, W, 3)`` image (bilinear) and ``(H, W)`` label (nearest) to ``size =
    (w, h)`` with OpenCV, as mmcv's ``imresize``."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image, label
    return (cv2.resize(image, size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(label, size, interpolation=cv2.INTER_NEAREST))


def crop_box(height, width, crop):
    """A uniform ``(y, x)`` offset of a ``crop`` window (``0`` where the side is shorter)."""
    return _randint(max(height - crop, 0) + 1), _randint(max(width - crop, 0) + 1)


def balanced_crop(label, crop, ignore_index=IGNORE_LABEL):
    """mmseg's ``RandomCrop(cat_max_ratio=0.75)`` offset for ``label (H, W)``: redrawn up to
    :data:`CROP_TRIES` times while the window holds at most one labelled class or one that
    covers :data:`CAT_MAX_RATIO` or more of its labelled pixels."""
    height, width = label.shape
    y, x = crop_box(height, width, crop)
    for _ in range(CROP_TRIES):
        window = label[y:y + crop, x:x + crop]
        counts = np.bincount(window[window != ignore_index].ravel(), minlength=1)
        counts = counts[counts > 0]
        if len(counts) > 1 and counts.max() / counts.sum() < CAT_MAX_RATIO:
            break
        y, x = crop_box(height, width, crop)
    return y, x


def _convert(values, alpha=1.0, beta=0.0):
    """``values * alpha + beta``, clipped to [0, 255] and cast (truncated) to uint8."""
    return np.clip(values.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def photometric_distortion(image):
    """mmseg's ``PhotoMetricDistortion`` with its defaults on an RGB uint8 ``(H, W, 3)``."""
    if _randint(2):
        image = _convert(image, beta=_uniform(-BRIGHTNESS_DELTA, BRIGHTNESS_DELTA))
    contrast_last = _randint(2) == 0

    def contrast(img):
        return _convert(img, alpha=_uniform(*CONTRAST)) if _randint(2) else img

    if not contrast_last:
        image = contrast(image)
    if _randint(2):  # saturation
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[..., 1] = _convert(hsv[..., 1], alpha=_uniform(*SATURATION))
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if _randint(2):  # hue: randint(-18, 18) with numpy's exclusive upper bound, mod 180
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        shift = _randint(2 * HUE_DELTA) - HUE_DELTA
        hsv[..., 0] = (hsv[..., 0].astype(np.int64) + shift) % 180
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if contrast_last:
        image = contrast(image)
    return image


def pad_to(tensor, crop, value):
    """Pad the last two dims of ``tensor`` right/bottom to ``crop x crop`` with ``value``."""
    height, width = tensor.shape[-2:]
    return F.pad(tensor, (0, crop - width, 0, crop - height), value=value)


class ReinTrainPreset:
    """Rein's training item of a PIL RGB image and its ``(H, W)`` uint8 train ids.

    Args:
        crop_size: the square crop (Rein: 512).
        two_view: also produce BlindNet's jittered ``image_aug`` view.
    """

    def __init__(self, crop_size, two_view=False):
        self.crop = crop_size
        self.scales = short_edge_scales(crop_size)
        self.to_tensor = to_normalized_tensor()
        self.aug_transform = jittered_view_transform() if two_view else None

    @property
    def two_view(self):
        return self.aug_transform is not None

    def geometric(self, image, label):
        """Steps 1-3: uint8 ``(h, w, 3)`` and ``(h, w)`` with ``h, w <= crop``."""
        short = self.scales[_randint(len(self.scales))]
        target = short_edge_size(image.shape[1], image.shape[0], short,
                                 LONG_SIDE_FACTOR * self.crop)
        image, label = resize_pair(image, label, rescale_size(image.shape[1], image.shape[0],
                                                              target))
        y, x = balanced_crop(label, self.crop)
        image, label = image[y:y + self.crop, x:x + self.crop], label[y:y + self.crop,
                                                                      x:x + self.crop]
        if _randint(2):
            image, label = image[:, ::-1], label[:, ::-1]
        return np.ascontiguousarray(image), np.ascontiguousarray(label)

    def __call__(self, image, train_ids, centroid=None):
        if centroid is not None:
            raise ValueError("the rein preset has no class-centred crops "
                             "(--class_uniform_pct must be 0)")
        image, label = self.geometric(np.asarray(image), np.asarray(train_ids, dtype=np.uint8))
        item = {"image": pad_to(self.to_tensor(Image.fromarray(photometric_distortion(image))),
                                self.crop, 0.0)}
        if self.aug_transform is not None:
            item["image_aug"] = pad_to(self.aug_transform(Image.fromarray(image)), self.crop, 0.0)
        item["label"] = pad_to(torch.from_numpy(label).long(), self.crop, IGNORE_LABEL)
        return item


# Test-time resize of --eval_protocol rein (§4.1): the image is fitted into this (w, h)
# (keep ratio, OpenCV bilinear); labels stay at their file resolution.
REIN_TEST_SCALES = {"cityscapes": (1024, 512), "bdd100k": (1280, 720), "mapillary": (1024, 512)}
REIN_DEFAULT_TEST_SCALE = (1024, 512)  # datasets Rein's 512 recipe does not test (D99)
# Slide inference of Rein's test_cfg (§3.2): 512 windows every 341 pixels, never padded.
REIN_WINDOW, REIN_STRIDE = 512, 341


def rein_test_image(image, dataset_name):
    """PIL RGB -> the uint8 ``(H', W', 3)`` array Rein's test pipeline feeds the network."""
    array = np.asarray(image)
    scale = REIN_TEST_SCALES.get(dataset_name, REIN_DEFAULT_TEST_SCALE)
    size = rescale_size(array.shape[1], array.shape[0], scale)
    if size == (array.shape[1], array.shape[0]):
        return array
    return cv2.resize(array, size, interpolation=cv2.INTER_LINEAR)


def halve_like_rein(image, label):
    """Rein's offline Mapillary "half" preparation (§4.2): the image resized to
    ``(W // 2, H // 2)`` bicubically and re-encoded as a JPEG at PIL's default quality, the
    ``(H, W)`` uint8 label resized with nearest. Returns ``(PIL RGB, (H/2, W/2) uint8)``."""
    size = (image.width // 2, image.height // 2)
    buffer = io.BytesIO()
    image.resize(size, Image.BICUBIC).save(buffer, format="JPEG")
    buffer.seek(0)
    with Image.open(buffer) as half:
        half = half.convert("RGB")
    return half, np.asarray(Image.fromarray(label).resize(size, Image.NEAREST))
