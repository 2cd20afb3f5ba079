"""The one home of input normalisation: ImageNet statistics and the per-protocol rule.

Training views are always normalised with ImageNet mean/std. At evaluation, only the
official BlindNet protocol feeds Cityscapes unnormalised ([0, 1] RGB), as the official code
does (DECISIONS.md D1, DATASETS.md §3.3).
"""

import torch
from torchvision.transforms import v2

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


def to_normalized_tensor(mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """PIL RGB -> FloatTensor [3, H, W] in [0, 1] -> ``(x - mean) / std``."""
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

