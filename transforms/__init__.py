"""Training and evaluation transforms.

* :mod:`transforms.normalization` - ImageNet statistics and the per-protocol normalisation;
* :mod:`transforms.joint` - geometric transforms shared by image, label and both views;
* :mod:`transforms.photometric` - per-view colour jitter and blur;
* :mod:`transforms.eval` - evaluation resizing/cropping per protocol;
* :mod:`transforms.presets` - the composed presets datasets use (train two-view, train
  one-view, eval per protocol).
"""

from transforms.eval import EvalTransform, mapillary_eval_size
from transforms.joint import JointTransform, RandomScaleCrop
from transforms.normalization import (
    EVAL_PROTOCOLS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_normalization,
    to_normalized_tensor,
)
from transforms.photometric import (
    RandomBilateralBlur,
    RandomGaussianBlur,
    gaussian_blur,
    jittered_view_transform,
    original_view_transform,
)

__all__ = [
    "EVAL_PROTOCOLS", "EvalTransform", "IMAGENET_MEAN", "IMAGENET_STD", "JointTransform",
    "RandomBilateralBlur", "RandomGaussianBlur", "RandomScaleCrop", "eval_normalization",
    "gaussian_blur", "jittered_view_transform", "mapillary_eval_size",
    "original_view_transform", "to_normalized_tensor",
]
