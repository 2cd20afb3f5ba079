"""The one home of input normalisation and of the item dtype contract.

Items (training, evaluation, ISW statistics, ``infer.py`` images) carry images as **uint8**
``(3, H, W)`` RGB and labels as **uint8** ``(H, W)`` train ids (255 = ignore): a quarter of
the float32 bytes through the DataLoader workers, shared memory, pinning and the copy to the
device. The engine normalises on the device (:func:`normalize_images`), with exactly the
arithmetic of torchvision's ``ToDtype(float32, scale=True)`` + ``Normalize`` that the items
used to go through on the CPU, so the numbers do not change.

Rein's training preset (``transforms/rein_pipeline.py``) pads its crop after normalising, with
the normalised mean (0): its items add ``content_hw`` (int64 ``(2,)``, the height and width
before the uint8 padding) and :func:`zero_padding` restores that on the device.

Training views are always normalised with ImageNet mean/std. At evaluation, only the
official BlindNet protocol feeds Cityscapes unnormalised ([0, 1] RGB), as the official code
does (DECISIONS.md D1, DATASETS.md §3.3).
"""

import numpy as np
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Identity normalisation: (x - 0) / 1 keeps [0, 1] RGB.
NO_MEAN, NO_STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
# The evaluation protocols (transforms/eval.py gives their resizing rules).
EVAL_PROTOCOLS = ("robustnet", "blindnet", "clean", "rein")


def check_protocol(protocol):
    """Raise ValueError unless ``protocol`` is one of :data:`EVAL_PROTOCOLS`."""
    if protocol not in EVAL_PROTOCOLS:
        raise ValueError(f"eval_protocol must be one of {EVAL_PROTOCOLS}, got {protocol!r}")


ITEM_IMAGE_DTYPE = torch.uint8   # items' images: (3, H, W) RGB 0..255
CONTENT_HW = "content_hw"        # item key: (2,) int64 of a crop padded after normalising
ITEM_LABEL_DTYPE = torch.uint8   # items' labels: (H, W) train ids, 255 = ignore
_STATS_ON_DEVICE = {}            # (mean, std, device) -> (3, 1, 1) float32 tensors


def to_item_image(image):
    """PIL RGB -> the item image: uint8 ``(3, H, W)``."""
    return TF.pil_to_tensor(image)


def to_item_label(train_ids):
    """``(H, W)`` train ids (array or tensor) -> the item label: uint8 ``(H, W)``."""
    if isinstance(train_ids, torch.Tensor):
        return train_ids.as_subclass(torch.Tensor).to(ITEM_LABEL_DTYPE)
    return torch.from_numpy(np.array(train_ids, dtype=np.uint8))


def _device_stats(mean, std, device):
    """``mean``, ``std`` as ``(3, 1, 1)`` float32 tensors on ``device``, made once: creating
    them per batch would copy from pageable host memory (a blocking copy) every step."""
    key = (tuple(mean), tuple(std), torch.device(device))
    if key not in _STATS_ON_DEVICE:
        _STATS_ON_DEVICE[key] = tuple(
            torch.tensor(values, dtype=torch.float32).view(-1, 1, 1).to(device)
            for values in (mean, std))
    return _STATS_ON_DEVICE[key]


def normalize_images(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """uint8 images ``(..., 3, H, W)`` (any device) -> float32 ``(x / 255 - mean) / std``.

    The same operations as ``v2.ToDtype(float32, scale=True)`` then ``v2.Normalize``:
    bit-identical to normalising each item on the CPU.
    """
    if images.dtype != ITEM_IMAGE_DTYPE:
        raise TypeError(f"expected {ITEM_IMAGE_DTYPE} images (the item contract), got "
                        f"{images.dtype}")
    mean_t, std_t = _device_stats(mean, std, images.device)
    return TF.to_dtype(images, torch.float32, scale=True).sub_(mean_t).div_(std_t)


def zero_padding(images, content_hw):
    """Normalised ``(B, C, H, W)`` images with every pixel outside each sample's top-left
    ``content_hw`` window (``(B, 2)`` int64: rows, columns) set to 0, as padding after
    normalisation gives. Masks built on the images' device: nothing read back to the host."""
    height, width = images.shape[-2:]
    rows = torch.arange(height, device=images.device) < content_hw[:, :1]  # (B, H)
    cols = torch.arange(width, device=images.device) < content_hw[:, 1:]   # (B, W)
    outside = ~(rows[:, None, :, None] & cols[:, None, None, :])           # (B, 1, H, W)
    return images.masked_fill(outside, 0.0)


def to_normalized_tensor(mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """PIL RGB -> FloatTensor [3, H, W] in [0, 1] -> ``(x - mean) / std``, on the CPU.

    The per-item normalisation items used to carry; kept as the reference that
    :func:`normalize_images` reproduces bit for bit (tests) and for figures.
    """
    return v2.Compose([
        v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def eval_normalization(dataset_name, protocol="robustnet"):
    """(mean, std) applied to evaluation images of canonical dataset ``dataset_name``.

    ``dataset_name`` is a canonical name (``datasets.parse_dataset_name`` strips aliases and
    the ``_jitter`` suffix); only ``"cityscapes"`` under ``"blindnet"`` is unnormalised.
    """
    check_protocol(protocol)
    if protocol == "blindnet" and dataset_name.lower() == "cityscapes":
        return NO_MEAN, NO_STD
    return IMAGENET_MEAN, IMAGENET_STD

