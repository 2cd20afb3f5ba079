"""Colour jitter and Gaussian blur of a batch on its device, per sample (``photometric="device"``).

The ``(B, 3, H, W)`` uint8 crops and the ``(B, PARAMS_PER_VIEW)`` rows of
``transforms/photometric_params.py`` go to the training device as they are; this module
applies each sample's own jitter (its op order, its factors, or none) and blur there, in
a fixed number of vectorised tensor operations (no loop over samples, no data-dependent
shapes, nothing read back by the host). The ops follow torchvision's tensor semantics on
uint8 images: every op computes in float32 and truncates to a whole grey level, brightness /
contrast / saturation blend with black / the floored grey mean / the floored grey image
(ITU-R 601-2 weights 0.2989, 0.587, 0.114), hue rotates the HSV hue in float32 and goes back
to uint8 by ``x * 255.999`` truncated. The blur is the loader path's: skimage's kernel
(radius ``int(4 sigma + 0.5)``, edge replication), float64 and truncation (DECISIONS.md D66).
Where this differs from the loader path's PIL ops is measured in ``docs/DECISIONS.md``
(D66) and bounded by ``tests/transforms/test_device_photometric.py``.
"""

import torch
import torch.nn.functional as F

from transforms.photometric import BLUR_SIGMA_MIN, BLUR_SIGMA_SPAN, BLUR_TRUNCATE, blur_radius
from transforms.photometric_params import APPLY, BRIGHTNESS, HUE, ORDER, SIGMA

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
# Largest blur radius the sigma law can give: the taps of every sample's kernel.
MAX_BLUR_RADIUS = blur_radius(BLUR_SIGMA_MIN + BLUR_SIGMA_SPAN)
_HUE_TO_UINT8 = 255.0 + 1.0 - 1e-3  # torchvision's float -> uint8 scale (truncated after)
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = range(4)


def _per_sample(values):
    """``(B,)`` -> ``(B, 1, 1, 1)`` float32, to broadcast over ``(B, C, H, W)``."""
    return values.to(torch.float32).view(-1, 1, 1, 1)


def _to_levels(values):
    """Clamp to [0, 255] and truncate to whole grey levels (a float -> uint8 cast)."""
    return values.clamp(0.0, 255.0).trunc()


def grayscale(images):
    """``(B, 3, H, W)`` grey levels -> ``(B, 1, H, W)`` floored luma (float32)."""
    red, green, blue = images.unbind(dim=1)
    gray = red * GRAY_WEIGHTS[0] + green * GRAY_WEIGHTS[1] + blue * GRAY_WEIGHTS[2]
    return gray.floor().unsqueeze(1)


def _blend(images, other, ratio):
    """``ratio * images + (1 - ratio) * other`` in grey levels; ``ratio`` ``(B, 1, 1, 1)``."""
    return _to_levels(images * ratio + other * (1.0 - ratio))


def adjust_brightness(images, factor, gray=None):
    """Per-sample brightness: a blend with black. ``factor``: ``(B,)``."""
    return _blend(images, 0.0, _per_sample(factor))


def adjust_contrast(images, factor, gray=None):
    """Per-sample contrast: a blend with the mean of the floored grey image."""
    gray = grayscale(images) if gray is None else gray
    return _blend(images, gray.mean(dim=(1, 2, 3), keepdim=True), _per_sample(factor))


def adjust_saturation(images, factor, gray=None):
    """Per-sample saturation: a blend with the floored grey image."""
    return _blend(images, grayscale(images) if gray is None else gray, _per_sample(factor))


def adjust_hue(images, shift, gray=None):
    """Add ``shift`` ``(B,)`` (in turns) to the HSV hue of grey levels ``images``."""
    rgb = images * (1.0 / 255.0)  # torchvision's uint8 -> float scale
    value, _ = rgb.max(dim=1, keepdim=True)
    chroma = value - rgb.min(dim=1, keepdim=True).values
    grey = chroma == 0
    safe_chroma = torch.where(grey, torch.ones_like(chroma), chroma)
    saturation = chroma / torch.where(value == 0, torch.ones_like(value), value)
    red, green, blue = (channel.unsqueeze(1) for channel in rgb.unbind(dim=1))
    # Hue in sixths: the sector of the largest channel plus the offset inside it.
    sector = torch.where(value == red, ((green - blue) / safe_chroma) % 6.0,
                         torch.where(value == green, (blue - red) / safe_chroma + 2.0,
                                     (red - green) / safe_chroma + 4.0))
    hue = torch.where(grey, torch.zeros_like(sector), sector / 6.0)
    hue = (hue + _per_sample(shift)) % 1.0
    # HSV -> RGB: channel n (5 red, 3 green, 1 blue) is v - v s clamp(min(k, 4 - k), 0, 1)
    # with k = (n + 6 h) mod 6.
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (n + 6.0 * hue) % 6.0
        channels.append(value - value * saturation * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return _to_levels(torch.cat(channels, dim=1) * _HUE_TO_UINT8)


# ColorJitter's op ids (torchvision's ``fn_idx``) -> the op.
JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(images, params):
    """Per-sample ColorJitter of grey levels ``images`` ``(B, 3, H, W)`` float32.

    ``params``: ``(B, PARAMS_PER_VIEW)``; samples whose ``APPLY`` is 0 are returned as they
    are. The four ops run in four stages; at stage k every sample does its own k-th op
    (all four are computed for the batch and each sample keeps its own).
    """
    apply = params[:, APPLY].view(-1, 1, 1, 1) > 0
    factors = params[:, BRIGHTNESS:HUE + 1]
    order = params[:, ORDER:ORDER + 4].to(torch.long)
    for stage in range(4):
        op = order[:, stage].view(-1, 1, 1, 1)
        gray = grayscale(images)
        stepped = images
        for op_id, adjust in enumerate(JITTER_OPS):
            stepped = torch.where(op == op_id, adjust(images, factors[:, op_id], gray), stepped)
        images = torch.where(apply, stepped, images)
    return images


def gaussian_blur(images, sigma):
    """Per-sample Gaussian blur of grey levels ``images`` ``(B, C, H, W)``.

    ``sigma``: ``(B,)``; 0 leaves the sample as it is. Each sample's kernel is skimage's
    (taps within ``int(4 sigma + 0.5)``, normalised) on :data:`MAX_BLUR_RADIUS` taps with
    zeros beyond its radius; edges are replicated; the result is truncated to grey levels.
    Computed in float64, as the loader path: a flat region's exact result is a whole grey
    level, and float32's rounding error would truncate it to the level below for whole
    images (the weights of a small sigma sum to 1 - 2**-24). The two passes are sums of
    shifted slices, whatever the backend's convolution precision (TF32) is.
    """
    sigma = sigma.to(torch.float64).view(-1, 1)
    taps = torch.arange(-MAX_BLUR_RADIUS, MAX_BLUR_RADIUS + 1, device=images.device,
                        dtype=torch.float64)
    radius = torch.floor(BLUR_TRUNCATE * sigma + 0.5)
    safe_sigma = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    weights = torch.exp(-0.5 * (taps / safe_sigma) ** 2) * (taps.abs() <= radius)
    weights = torch.where(sigma > 0, weights, (taps == 0).to(torch.float64))
    weights = weights / weights.sum(dim=1, keepdim=True)                    # (B, T)
    r = MAX_BLUR_RADIUS
    padded = F.pad(images.to(torch.float64), (r, r, r, r), mode="replicate")
    height, width = images.shape[-2:]
    rows = sum(weights[:, t].view(-1, 1, 1, 1) * padded[:, :, t:t + height, :]
               for t in range(2 * r + 1))
    blurred = sum(weights[:, t].view(-1, 1, 1, 1) * rows[:, :, :, t:t + width]
                  for t in range(2 * r + 1))
    return _to_levels(blurred).to(images.dtype)


def apply_view(images, params):
    """One view of a batch: uint8 ``(B, 3, H, W)`` and ``(B, PARAMS_PER_VIEW)`` -> uint8.

    Colour jitter (if the row says so), then the blur (if its sigma is > 0), as the loader
    path's view transforms do.
    """
    levels = images.to(torch.float32)
    levels = color_jitter(levels, params)
    levels = gaussian_blur(levels, params[:, SIGMA])
    return levels.to(torch.uint8)
