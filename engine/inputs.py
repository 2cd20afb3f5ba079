"""From a loader batch to the model's inputs on the device (the item contract's engine side).

Batches arrive as the items made them (``transforms/normalization.py``): uint8 images and
labels, pinned by the DataLoader on CUDA. They are copied to the device without blocking,
as they are (a quarter of float32's bytes); there the photometric views are made when the
items carry their parameters (``photometric="device"``), the images are normalised and put
in the requested memory format. Nothing here reads a value back to the host.
"""

import torch

from transforms.device_photometric import apply_view
from transforms.normalization import (CONTENT_HW, IMAGENET_MEAN, IMAGENET_STD,
                                      normalize_images, zero_padding)


def to_device(tensor, device):
    """``tensor`` on ``device``; a non-blocking copy (asynchronous from pinned memory)."""
    return tensor.to(device, non_blocking=True)


def model_images(images, device, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 channels_last=False):
    """uint8 ``(B, 3, H, W)`` (any device) -> normalised float32 on ``device``."""
    images = normalize_images(to_device(images, device), mean, std)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def training_inputs(batch, device, *, two_view, channels_last=False):
    """``(images, images_aug or None, labels)`` of a training batch on ``device``.

    Loader path: ``image`` (and ``image_aug``) already hold the views. Device path
    (``photometric`` in the batch): both views are made here from the one ``image`` crop,
    each sample with its own parameters. Training views are ImageNet-normalised; with
    ``content_hw`` in the batch (the rein preset) their padding is 0 after normalisation.
    Labels stay uint8 ``(B, H, W)`` (the criterion takes them as they are).
    """
    images = to_device(batch["image"], device)
    if "photometric" in batch:
        params = to_device(batch["photometric"], device)
        views = [apply_view(images, params[:, view]) for view in range(1 + two_view)]
    else:
        views = [images] + ([to_device(batch["image_aug"], device)] if two_view else [])
    views = [model_images(view, device) for view in views]
    if CONTENT_HW in batch:  # a crop padded after normalisation (the rein preset)
        content_hw = to_device(batch[CONTENT_HW], device)
        views = [zero_padding(view, content_hw) for view in views]
    if channels_last:
        views = [view.contiguous(memory_format=torch.channels_last) for view in views]
    labels = to_device(batch["label"], device)
    return views[0], (views[1] if two_view else None), labels
