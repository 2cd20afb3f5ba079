"""How an evaluation protocol runs the model (``--eval_protocol``): the windows it evaluates
in and the resolution its metrics are computed at. ``engine/evaluation.py`` applies them."""

import torch.nn.functional as F

from datasets import DEFAULT_OPTIONS
from transforms.rein_pipeline import REIN_STRIDE, REIN_WINDOW


def inference_settings(protocol, sliding_window=False, crop_size=DEFAULT_OPTIONS["crop_size"],
                       stride=None):
    """How a protocol's images are run: ``{"sliding_window", "crop_size", "stride",
    "pad_windows"}`` (``engine.evaluation.predict_logits``' keywords). ``rein`` fixes Rein's test
    inference (docs/VFM_METHODS.md §4.1): 512 windows every 341 pixels, never padded
    (whatever ``--sliding_window`` / ``--crop_size`` / ``--stride`` say); the other
    protocols take the flags."""
    if protocol == "rein":
        return {"sliding_window": True, "crop_size": REIN_WINDOW, "stride": REIN_STRIDE,
                "pad_windows": False}
    return {"sliding_window": bool(sliding_window), "crop_size": crop_size, "stride": stride,
            "pad_windows": True}


def to_label_size(logits, labels):
    """``logits (B, C, h, w)`` resized bilinearly (``align_corners=False``) to the labels'
    ``(H, W)`` when they differ (protocols that resize only the image, e.g. ``rein``)."""
    if logits.shape[-2:] == labels.shape[-2:]:
        return logits
    return F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
