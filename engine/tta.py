"""Test-time augmentation: multi-scale and horizontal-flip inference, logits averaged.

``valid.py --eval_scales 0.5 0.75 1.0 1.25 1.5 1.75 --eval_flip`` evaluates every image at
each scale (bilinear resize of the normalised image), and with ``--eval_flip`` also its
mirror image (whose logits are mirrored back); every logit map is resized bilinearly to
the input resolution and the maps are averaged (the arithmetic mean of logits, not of
probabilities). Whatever computes the logits of one input -- whole-image inference or
sliding windows -- is passed in as ``predict``, so sliding windows run at every scale.

The default, one scale 1.0 without flip, calls ``predict`` once on the unchanged input and
returns its result untouched: exactly single-scale evaluation.
"""

import math

import torch
import torch.nn.functional as F

SINGLE_SCALE = (1.0,)


def check_eval_scales(scales):
    """Validated tuple of scales (positive, finite, distinct); ValueError naming the flag."""
    scales = tuple(float(s) for s in scales)
    if not scales:
        raise ValueError("--eval_scales needs at least one scale")
    bad = [s for s in scales if not math.isfinite(s) or s <= 0]
    if bad:
        raise ValueError(f"--eval_scales must be positive and finite, got {list(scales)}")
    if len(set(scales)) != len(scales):
        raise ValueError(f"--eval_scales: a scale is given twice in {list(scales)}")
    return scales


def is_single_scale(scales, flip):
    """True for the default evaluation (scale 1.0 only, no flip)."""
    return tuple(float(s) for s in scales) == SINGLE_SCALE and not flip


def tta_name(scales, flip):
    """The name results use: ``single-scale``, ``flip``, ``ms(0.5,1,1.5)`` or ``ms(...)+flip``."""
    scales = check_eval_scales(scales)
    if scales == SINGLE_SCALE:
        return "flip" if flip else "single-scale"
    name = "ms(" + ",".join(f"{s:g}" for s in scales) + ")"
    return name + "+flip" if flip else name


def tta_description(scales, flip):
    """The ``tta`` entry of ``results.json``: name, scales and flip."""
    scales = check_eval_scales(scales)
    return {"name": tta_name(scales, flip), "scales": list(scales), "flip": bool(flip)}


def scaled_size(height, width, scale):
    """(H', W') of an input scaled by ``scale``: rounded half up, at least 1 pixel."""
    return (max(1, int(math.floor(height * scale + 0.5))),
            max(1, int(math.floor(width * scale + 0.5))))


@torch.no_grad()
def tta_logits(predict, images, scales=SINGLE_SCALE, flip=False):
    """Logits averaged over ``scales`` x (identity[, horizontal flip]) at the input size.

    Args:
        predict: callable (B, 3, h, w) -> logits (B, C, h, w) (e.g. whole-image or
            sliding-window inference of an eval-mode model).
        images: (B, 3, H, W) normalised images.
        scales: input scale factors; the default (1.0,) with ``flip=False`` is exactly
            ``predict(images)``.
        flip: also predict the mirrored input and mirror its logits back.

    Returns:
        (B, C, H, W) logits (float32 when more than one prediction is averaged).
    """
    scales = check_eval_scales(scales)
    if is_single_scale(scales, flip):
        return predict(images)
    height, width = images.shape[-2:]
    total, count = None, 0
    for scale in scales:
        size = scaled_size(height, width, scale)
        inputs = images if size == (height, width) else F.interpolate(
            images, size=size, mode="bilinear", align_corners=False)
        for mirrored in ((False, True) if flip else (False,)):
            view = inputs.flip(-1) if mirrored else inputs
            logits = predict(view).float()
            if mirrored:
                logits = logits.flip(-1)
            if logits.shape[-2:] != (height, width):
                logits = F.interpolate(logits, size=(height, width), mode="bilinear",
                                       align_corners=False)
            total = logits if total is None else total + logits
            count += 1
    return total / count
