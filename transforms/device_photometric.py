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
(radius ``int(4 sigma + 0.5)``, edge replication) and truncation (DECISIONS.md D66).
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


def rotate_hue(images, shift):
    """Add ``shift`` ``(B, 1, 1, 1)`` (in turns) to the HSV hue of grey levels ``images``."""
    rgb = images * (1.0 / 255.0)  # torchvision's uint8 -> float scale
    value, _ = rgb.max(dim=1, keepdim=True)
    chroma = value - rgb.min(dim=1, keepdim=True).values
    grey = chroma == 0
    safe_chroma = torch.where(grey, torch.ones_like(chroma), chroma)
    saturation = chroma / torch.where(value == 0, torch.ones_like(value), value)
    red, green, blue = rgb.unbind(dim=1)
    red, green, blue = red.unsqueeze(1), green.unsqueeze(1), blue.unsqueeze(1)
    # Hue in sixths: the sector of the largest channel plus the offset inside it.
    sector = torch.where(value == red, ((green - blue) / safe_chroma) % 6.0,
                         torch.where(value == green, (blue - red) / safe_chroma + 2.0,
                                     (red - green) / safe_chroma + 4.0))
    hue = torch.where(grey, torch.zeros_like(sector), sector / 6.0)
    hue = (hue + shift) % 1.0
    # HSV -> RGB: channel n (5 red, 3 green, 1 blue) is v - v s clamp(min(k, 4 - k), 0, 1)
    # with k = (n + 6 h) mod 6.
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (n + 6.0 * hue) % 6.0
        ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
        channels.append(value - value * saturation * ramp)
    return (torch.cat(channels, dim=1) * _HUE_TO_UINT8).clamp(0.0, 255.0).trunc()


def color_jitter(images, params):
    """Per-sample ColorJitter of grey levels ``images`` ``(B, 3, H, W)`` float32.

    ``params``: ``(B, PARAMS_PER_VIEW)``; samples whose ``APPLY`` is 0 are returned as they
    are. The four ops run in four stages; at stage k every sample does its own k-th op.
    """
    apply = params[:, APPLY].view(-1, 1, 1, 1) > 0
    factors = params[:, BRIGHTNESS:HUE + 1].to(torch.float32)
    order = params[:, ORDER:ORDER + 4].to(torch.long)
    for stage in range(4):
        op = order[:, stage].view(-1, 1, 1, 1)
        gray = grayscale(images)
        mean = gray.mean(dim=(1, 2, 3), keepdim=True)
        # Brightness blends with black, contrast with the grey mean, saturation with the
        # grey image; hue (and jitter that is off) gets ratio 1, the image itself.
        other = torch.where(op == _CONTRAST, mean,
                            torch.where(op == _SATURATION, gray, torch.zeros_like(gray)))
        ratio = torch.gather(torch.cat([factors[:, :3], torch.ones_like(factors[:, :1])], 1),
                             1, order[:, stage:stage + 1]).view(-1, 1, 1, 1)
        blended = _to_levels(images * ratio + other * (1.0 - ratio))
        rotated = rotate_hue(images, _per_sample(factors[:, 3]))
        stepped = torch.where(op == _HUE, rotated, blended)
        images = torch.where(apply, stepped, images)
    return images


def gaussian_blur(images, sigma):
    """Per-sample Gaussian blur of grey levels ``images`` ``(B, C, H, W)`` float32.

    ``sigma``: ``(B,)``; 0 leaves the sample as it is. Each sample's kernel is skimage's
    (taps within ``int(4 sigma + 0.5)``, normalised) on :data:`MAX_BLUR_RADIUS` taps with
    zeros beyond its radius; edges are replicated; the result is truncated to grey levels.
    The two passes are sums of shifted slices, in float32 whatever the backend's matmul or
    convolution precision (TF32) is.
    """
    sigma = sigma.to(torch.float32).view(-1, 1)
    taps = torch.arange(-MAX_BLUR_RADIUS, MAX_BLUR_RADIUS + 1, device=images.device,
                        dtype=torch.float32)
    radius = torch.floor(BLUR_TRUNCATE * sigma + 0.5)
    safe_sigma = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    weights = torch.exp(-0.5 * (taps / safe_sigma) ** 2) * (taps.abs() <= radius)
    weights = torch.where(sigma > 0, weights, (taps == 0).to(torch.float32))
    weights = weights / weights.sum(dim=1, keepdim=True)                    # (B, T)
    r = MAX_BLUR_RADIUS
    padded = F.pad(images, (r, r, r, r), mode="replicate")
    height, width = images.shape[-2:]
    rows = sum(weights[:, t].view(-1, 1, 1, 1) * padded[:, :, t:t + height, :]
               for t in range(2 * r + 1))
    blurred = sum(weights[:, t].view(-1, 1, 1, 1) * rows[:, :, :, t:t + width]
                  for t in range(2 * r + 1))
    return _to_levels(blurred)


def apply_view(images, params):
    """One view of a batch: uint8 ``(B, 3, H, W)`` and ``(B, PARAMS_PER_VIEW)`` -> uint8.

    Colour jitter (if the row says so), then the blur (if its sigma is > 0), as the loader
    path's view transforms do.
    """
    levels = images.to(torch.float32)
    levels = color_jitter(levels, params)
    levels = gaussian_blur(levels, params[:, SIGMA])
    return levels.to(torch.uint8)
