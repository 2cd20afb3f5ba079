"""Per-view photometric transforms (DATASETS.md §9.2-9.3). Labels never pass through here.

View 1 ("original", ``image``):   [ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.5 if color_aug > 0]
                                   [bilateral blur if bblur, else Gaussian blur if gblur]
                                   -> float tensor -> ImageNet normalisation
View 2 ("jittered", ``image_aug``): ColorJitter(0.8, 0.8, 0.8, 0.3) always
                                   -> Gaussian blur always (never bilateral)
                                   -> float tensor -> ImageNet normalisation

Both views start from the same geometrically transformed PIL image and draw their
parameters independently from torch's global RNG (seeded per item by the dataset).
"""

import cv2
import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from transforms.normalization import IMAGENET_MEAN, IMAGENET_STD, to_normalized_tensor


def blur_sigma():
    """The reference's blur sigma law: 0.15 + 1.15 * U[0, 1), i.e. sigma in [0.15, 1.30)."""
    return 0.15 + 1.15 * torch.rand(()).item()


def gaussian_blur(image, sigma, truncate=4.0):
    """Blur a PIL RGB image like ``skimage.filters.gaussian(..., mode='nearest')``.

    Channels are blurred independently with a kernel of radius ``int(truncate * sigma + 0.5)``
    and edge replication, on float64 values in [0, 1]; the result is multiplied by 255 and
    truncated (not rounded) to uint8, which is what the reference does. OpenCV computes the
    same filter as skimage/scipy about 5x faster, but sums in another order: where the exact
    result is a whole grey level (flat regions) the last-bit difference can truncate to the
    level below on one side and not the other, so up to about 1% of the pixels differ by
    one grey level (skimage's sample photos, sigma 0.2-0.5; none at sigma >= 1).
    """
    radius = int(truncate * sigma + 0.5)
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


def original_view_transform(color_aug=0.0, gblur=False, bblur=False,
                            mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """View 1 (the reference's ``img_or``): optional jitter p 0.5, optional blur, normalise.

    ``color_aug`` only switches the jitter on (> 0); its value is otherwise unused, as in
    the reference. ``bblur`` adds the bilateral blur instead of the Gaussian one (with or
    without ``gblur``).
    """
    steps = []
    if color_aug > 0:
        steps.append(v2.RandomApply(
            [v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)], p=0.5))
    if bblur:
        steps.append(RandomBilateralBlur())
    elif gblur:
        steps.append(RandomGaussianBlur())
    steps.append(to_normalized_tensor(mean, std))
    return v2.Compose(steps)


def jittered_view_transform(mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """View 2 (the reference's ``img_color``): strong jitter and Gaussian blur, always."""
    return v2.Compose([
        v2.ColorJitter(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.3),
        RandomGaussianBlur(),
        to_normalized_tensor(mean, std),
    ])
