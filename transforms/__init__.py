"""Training and evaluation transforms.

* :mod:`transforms.joint` - geometric transforms shared by image, label and both views;
* :mod:`transforms.photometric` - per-view colour jitter, blur and normalisation;
* :mod:`transforms.eval` - evaluation transforms and normalisation per protocol.
"""

from transforms.eval import (
    EVAL_PROTOCOLS,
    EvalTransform,
    eval_normalization,
    mapillary_eval_size,
)
from transforms.joint import JointTransform, RandomScaleCrop
from transforms.photometric import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RandomBilateralBlur,
    RandomGaussianBlur,
    gaussian_blur,
    jittered_view_transform,
    original_view_transform,
    to_normalized_tensor,
)

__all__ = [
    "EVAL_PROTOCOLS", "EvalTransform", "IMAGENET_MEAN", "IMAGENET_STD", "JointTransform",
    "RandomBilateralBlur", "RandomGaussianBlur", "RandomScaleCrop", "eval_normalization",
    "gaussian_blur", "jittered_view_transform", "mapillary_eval_size",
    "original_view_transform", "to_normalized_tensor",
]
