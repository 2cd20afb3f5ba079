"""Per-view photometric transforms (DATASETS.md §9.2-9.3). Labels never pass through here.

View 1 ("original", ``image``):   [ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.5 if color_aug > 0]
                                   [bilateral blur if bblur, else Gaussian blur if gblur]
                                   -> uint8 tensor (normalised on the device)
View 2 ("jittered", ``image_aug``): ColorJitter(0.8, 0.8, 0.8, 0.3) always
                                   -> Gaussian blur always (never bilateral)
                                   -> uint8 tensor (normalised on the device)

Both views start from the same geometrically transformed PIL image and draw their
parameters independently from torch's global RNG (seeded per item by the dataset). This is
the ``photometric="loader"`` path (the official one, on PIL images in the DataLoader
workers); ``transforms/photometric_params.py`` draws the same parameters for the
``photometric="device"`` path and ``transforms/device_photometric.py`` applies them.
"""

import cv2
import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2


# ColorJitter (brightness, contrast, saturation, hue) strengths of the two views.
ORIGINAL_JITTER = (0.4, 0.4, 0.4, 0.1)
JITTERED_JITTER = (0.8, 0.8, 0.8, 0.3)
ORIGINAL_JITTER_P = 0.5
BLUR_SIGMA_MIN, BLUR_SIGMA_SPAN = 0.15, 1.15
BLUR_TRUNCATE = 4.0


def blur_sigma():
    """The reference's blur sigma law: 0.15 + 1.15 * U[0, 1), i.e. sigma in [0.15, 1.30)."""
    return BLUR_SIGMA_MIN + BLUR_SIGMA_SPAN * torch.rand(()).item()


def blur_radius(sigma, truncate=BLUR_TRUNCATE):
    """Kernel radius of :func:`gaussian_blur` (skimage/scipy's ``int(truncate * sigma + 0.5)``)."""
    return int(truncate * sigma + 0.5)


def gaussian_blur(image, sigma, truncate=BLUR_TRUNCATE):
    """Blur a PIL RGB image like ``skimage.filters.gaussian(..., mode='nearest')``.

    Channels are blurred independently with a kernel of radius ``int(truncate * sigma + 0.5)``
    and edge replication, on float64 values in [0, 1]; the result is multiplied by 255 and
    truncated (not rounded) to uint8, which is what the reference does. OpenCV computes the
    same filter as skimage/scipy about 5x faster, but sums in another order: where the exact
    result is a whole grey level (flat regions) the last-bit difference can truncate to the
    level below on one side and not the other, so up to about 1% of the pixels differ by
    one grey level (skimage's sample photos, sigma 0.2-0.5; none at sigma >= 1).
    """
    radius = blur_radius(sigma, truncate)
    pixels = np.asarray(image, dtype=np.float64) / 255.0
    blurred = cv2.GaussianBlur(pixels, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma,
                               sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    return Image.fromarray((blurred * 255.0).astype(np.uint8))


class RandomGaussianBlur:
    """Gaussian blur with sigma from :func:`blur_sigma`; always applied (no probability)."""

    def __call__(self, image):
        return gaussian_blur(image, blur_sigma())

    def __repr__(self):
        return f"{type(self).__name__}(sigma=0.15+1.15*U[0,1), truncate=4.0)"


class RandomBilateralBlur:
    """Edge-preserving blur for ``--bblur`` (skimage ``denoise_bilateral``).

    DATASETS.md does not give the reference's bilateral parameters; we draw the spatial
    sigma with the same law as the Gaussian blur and keep skimage's other defaults. It is
    slow (about a second per 768x768 crop) and off in the official recipe.
    """

    def __call__(self, image):
        from skimage.restoration import denoise_bilateral  # slow import, rarely needed

        blurred = denoise_bilateral(np.asarray(image), sigma_spatial=blur_sigma(),
                                    channel_axis=-1)
        return Image.fromarray((blurred * 255.0).astype(np.uint8))

    def __repr__(self):
        return f"{type(self).__name__}(sigma_spatial=0.15+1.15*U[0,1))"


def color_jitter(strengths):
    """``v2.ColorJitter`` of (brightness, contrast, saturation, hue) ``strengths``."""
    brightness, contrast, saturation, hue = strengths
    return v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation,
                          hue=hue)


def original_view_transform(color_aug=0.0, gblur=False, bblur=False):
    """View 1 (the reference's ``img_or``): optional jitter p 0.5, optional blur; uint8.

    ``color_aug`` only switches the jitter on (> 0); its value is otherwise unused, as in
    the reference. ``bblur`` adds the bilateral blur instead of the Gaussian one (with or
    without ``gblur``).
    """
    steps = []
    if color_aug > 0:
        steps.append(v2.RandomApply([color_jitter(ORIGINAL_JITTER)], p=ORIGINAL_JITTER_P))
    if bblur:
        steps.append(RandomBilateralBlur())
    elif gblur:
        steps.append(RandomGaussianBlur())
    steps.append(v2.PILToTensor())  # the uint8 item image (transforms/normalization.py)
    return v2.Compose(steps)


def jittered_view_transform():
    """View 2 (the reference's ``img_color``): strong jitter and Gaussian blur, always; uint8."""
    return v2.Compose([color_jitter(JITTERED_JITTER), RandomGaussianBlur(), v2.PILToTensor()])
