"""Which training crops a segmenter accepts, found by a shape-only forward (no weights, no data).

Instance normalisation (``--wt_layer``) refuses a 1x1 feature map in training ("Expected more
than 1 spatial element when training"), and every trunk shrinks the crop by its stride, so the
smallest usable crop depends on ``--arch`` and ``--wt_layer`` (measured with real tensors in
``bench/min_crop_size.py``, batch 2, official ``--wt_layer``: 9 for every ResNet and the
output-stride-8 MobileNetV2 / ShuffleNetV2, 17 for MobileNetV2 and ShuffleNetV2 at stride 16
or 32; without instance normalisation any crop trains). Building the model on the ``meta``
device and running it on a ``(2, 3, crop, crop)`` meta tensor finds exactly the same failures
(checked for all 20 combinations) in a fraction of a second: only shapes are computed.
"""

import inspect

import torch

from network import get_net, is_vfm_arch
from network.vfm import build_parts

# The patch size of the network.vfm segmenters unless --arch_options says otherwise.
VIT_PATCH_SIZE = inspect.signature(build_parts).parameters["patch_size"].default

PROBE_BATCH = 2        # > 1, so BatchNorm's own batch check never fires here
LARGEST_PROBED_CROP = 4096


def _meta_model(arch, num_classes, wt_layer, norm_layers):
    with torch.device("meta"):
        return get_net(arch, num_classes, wt_layer, pretrained=False,
                       **(norm_layers or {})).train()


def train_crop_error(model, crop_size):
    """PyTorch's error of a two-view training forward of ``model`` at ``crop_size``, or None."""
    images = torch.empty(PROBE_BATCH, 3, crop_size, crop_size, device="meta")
    try:
        model(images, images, with_embeddings=True)
    except (RuntimeError, ValueError) as exc:
        return str(exc).splitlines()[0]
    return None


def smallest_train_crop(model, start):
    """Smallest crop >= ``start`` the model trains on (failures stop at some size; bisected)."""
    low, high = start, start
    while train_crop_error(model, high) is not None:
        low, high = high + 1, high * 2
        if high > LARGEST_PROBED_CROP:
            raise ValueError(f"no training crop up to {LARGEST_PROBED_CROP} works")
    while low < high:  # invariant: high works
        middle = (low + high) // 2
        if train_crop_error(model, middle) is None:
            high = middle
        else:
            low = middle + 1
    return high


def check_vit_crop(crop_size, patch_size):
    """A ViT segmenter (``network.vfm``) trains on crops whose side is a multiple of the
    patch size and at least two patches (its stride-2p pyramid level); ValueError naming
    ``--crop_size`` otherwise."""
    if crop_size % patch_size or crop_size < 2 * patch_size:
        raise ValueError(f"--crop_size {crop_size}: a network.vfm arch with patch size "
                         f"{patch_size} trains on multiples of {patch_size} from "
                         f"{2 * patch_size} on (Rein: 512)")


def check_train_crop(arch, num_classes, wt_layer, crop_size, options=None, norm_layers=None):
    """Raise ValueError naming ``--crop_size`` when ``arch`` cannot train on that crop.

    Args:
        arch: ``--arch`` factory name.
        num_classes: output classes.
        wt_layer: the 7 ``--wt_layer`` values.
        crop_size: the square ``--crop_size``.
        options: ``--arch_options`` (a ``network.vfm`` arch's ``patch_size``).
        norm_layers: ``get_net``'s ``norm_layer`` / ``head_norm_layer`` keywords, or None.
    """
    if is_vfm_arch(arch):
        check_vit_crop(crop_size, (options or {}).get("patch_size", VIT_PATCH_SIZE))
        return
    model = _meta_model(arch, num_classes, wt_layer, norm_layers)
    error = train_crop_error(model, crop_size)
    if error is None:
        return
    smallest = smallest_train_crop(model, crop_size + 1)
    raise ValueError(
        f"--crop_size {crop_size} is too small for --arch {arch} with --wt_layer "
        f"{' '.join(map(str, wt_layer))}: the trunk's stride leaves a 1x1 feature map "
        f"({error}); use --crop_size >= {smallest}")
