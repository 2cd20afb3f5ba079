"""The segmenters: ``get_net(arch, ...)``, :class:`ModelOutput` and :class:`ViewOutput`.

``arch`` is a factory name with its module prefix as ``--arch`` spells it: the official
DeepLabV3+ factories ``network.deepv3.<Factory>`` (the prefix may be left out, e.g.
``DeepR50V3PlusD``; see ``network.deepv3.FACTORIES``) and the vision-foundation-model
segmenters ``network.vfm.<Class>`` (``network.vfm.FACTORIES``, docs/VFM.md).
"""

import inspect

from network import vfm
from network.deepv3 import FACTORIES, DeepV3Plus, build_deepv3
from network.instance_norm import DEFAULT_WT_LAYER, OFFICIAL_WT_LAYER
from network.norm_semantics import (DEFAULT_NORM_SEMANTICS, NORM_SEMANTICS,
                                    apply_norm_semantics, norm_semantics_of)
from network.norms import DEFAULT_NORM_LAYER, NORM_LAYERS, REPLACEMENT_NORM_LAYERS
from network.output import ModelOutput, ViewOutput
from network.pretrained import MissingImageNetWeights
from network.vfm import MissingDinov2Weights
from utils.labels import NUM_CLASSES

__all__ = ["DEFAULT_NORM_LAYER", "DEFAULT_NORM_SEMANTICS", "DEFAULT_WT_LAYER", "FACTORIES",
           "DeepV3Plus", "MissingDinov2Weights", "MissingImageNetWeights", "ModelOutput",
           "NORM_LAYERS", "NORM_SEMANTICS", "OFFICIAL_WT_LAYER", "PIXEL_LOGITS",
           "MASK_PREDICTIONS", "REPLACEMENT_NORM_LAYERS", "ViewOutput", "apply_norm_semantics",
           "arch_option_names", "build_deepv3", "get_net", "is_vfm_arch", "norm_semantics_of",
           "prediction_kind", "resolve_arch"]

ARCH_PREFIXES = ("network.deepv3.", "deepv3.")
VFM_PREFIX = "network.vfm."
# What a segmenter predicts (the criterion's ``prediction``; the same strings as
# loss.terms.PIXEL_LOGITS / MASK_PREDICTIONS, which cli/convert.py passes on).
PIXEL_LOGITS, MASK_PREDICTIONS = "pixel logits", "mask predictions"
# Keywords of the VFM factories that are not --arch_options (set by get_net's callers).
_VFM_RESERVED = ("num_classes", "pretrained", "wt_layer", "in_blocks", "embeddings")


def is_vfm_arch(arch):
    """Whether ``arch`` names a ``network.vfm`` segmenter (a DINOv2 trunk, Mask2Former)."""
    return arch.startswith(VFM_PREFIX)


def resolve_arch(arch):
    """The factory for ``arch``; ValueError listing the valid names when it is unknown."""
    if is_vfm_arch(arch) and arch[len(VFM_PREFIX):] in vfm.FACTORIES:
        return vfm.FACTORIES[arch[len(VFM_PREFIX):]]
    name = arch
    for prefix in ARCH_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name not in FACTORIES:
        valid = ", ".join([f"network.deepv3.{n}" for n in FACTORIES]
                          + [f"{VFM_PREFIX}{n}" for n in vfm.FACTORIES])
        raise ValueError(f"unknown --arch {arch!r}; expected one of: {valid}")
    return FACTORIES[name]


def prediction_kind(arch):
    """:data:`MASK_PREDICTIONS` for the Mask2Former segmenters, else :data:`PIXEL_LOGITS`."""
    resolve_arch(arch)
    return MASK_PREDICTIONS if is_vfm_arch(arch) else PIXEL_LOGITS


def arch_option_names(arch):
    """The ``--arch_options`` keys ``arch`` takes (sizes of the VFM models; none for the
    DeepLabV3+ factories)."""
    if not is_vfm_arch(arch):
        resolve_arch(arch)
        return ()
    resolve_arch(arch)
    return tuple(name for name in inspect.signature(vfm.build_parts).parameters
                 if name not in ("variant", "rein", *_VFM_RESERVED))


def check_vfm_settings(arch, norm_semantics=DEFAULT_NORM_SEMANTICS,
                       norm_layer=DEFAULT_NORM_LAYER, head_norm_layer=DEFAULT_NORM_LAYER):
    """ValueError naming the flag when a VFM segmenter ``arch`` is asked for a setting it
    has nothing to apply to: its DINOv2 trunk and Mask2Former head normalise with LayerNorm /
    GroupNorm of their own (the released weights'), with no BatchNorm for ``--norm_semantics``
    torch1.2, ``--norm_layer`` or ``--head_norm_layer`` to change."""
    if norm_semantics != DEFAULT_NORM_SEMANTICS:
        raise ValueError(f"--norm_semantics {norm_semantics}: {arch} has no BatchNorm or "
                         f"instance norm to change; use {DEFAULT_NORM_SEMANTICS}")
    for flag, value in (("--norm_layer", norm_layer), ("--head_norm_layer", head_norm_layer)):
        if value != DEFAULT_NORM_LAYER:
            raise ValueError(f"{flag} {getattr(value, '__name__', value)}: {arch} has no "
                             f"BatchNorm to replace (its DINOv2 trunk and Mask2Former head "
                             f"use their own LayerNorm / GroupNorm); leave {flag} at "
                             f"{DEFAULT_NORM_LAYER}")


def get_net(arch, num_classes=NUM_CLASSES, wt_layer=DEFAULT_WT_LAYER, pretrained=None,
            norm_semantics=DEFAULT_NORM_SEMANTICS, norm_layer=DEFAULT_NORM_LAYER,
            head_norm_layer=DEFAULT_NORM_LAYER, **options):
    """Build the segmenter ``arch`` (an ``nn.Module``, in train mode).

    Args:
        arch: factory name, e.g. ``network.deepv3.DeepR50V3PlusD`` or
            ``network.vfm.ReinDinov2LMask2Former``.
        num_classes: output classes (``utils.labels.NUM_CLASSES`` = 19, the Cityscapes set).
        wt_layer: 7 values placing norm layers (METHOD.md §1.3): ``utils/wt_layer.py`` codes
            or ``network.norms`` names; by default none, as ``--wt_layer``'s default
            (BlindNet's ``OFFICIAL_WT_LAYER`` is a recipe). The VFM segmenters take only
            zeros.
        pretrained: trunk weights. The CNNs: a torchvision-format ImageNet file, ``None`` for
            the torch hub cache (EfficientNet-Lite0: the installed package's file), or
            ``False`` for a deliberate random init; ``None`` that finds no file raises
            :class:`network.pretrained.MissingImageNetWeights` (a ``FileNotFoundError`` naming
            the paths it looked in), never a silent random trunk. The VFM segmenters: a DINOv2
            file (released or converted, converted on load) or ``False``; ``None`` raises
            :class:`MissingDinov2Weights` (nothing is downloaded).
        norm_semantics: ``modern`` or ``torch1.2`` (instance norms use batch statistics in
            training, BatchNorm/affine-IN weights and biases are frozen; see
            :mod:`network.norm_semantics`). Applied after the weights are loaded. The VFM
            segmenters have no BatchNorm / instance norm: ``modern`` only.
        norm_layer: the trunk's norm wherever ``wt_layer`` places none (``--norm_layer``): a
            name of :data:`REPLACEMENT_NORM_LAYERS` or a timm-style callable
            ``(channels, **kwargs) -> nn.Module``. The VFM segmenters: the default only.
        head_norm_layer: the same for ASPP, decoder and aux head (``--head_norm_layer``).
        **options: VFM segmenters only: :func:`arch_option_names` sizes (``depth``,
            ``num_queries``...), ``in_blocks`` and ``embeddings`` (BlindNet's losses).
    """
    factory = resolve_arch(arch)
    if is_vfm_arch(arch):
        check_vfm_settings(arch, norm_semantics, norm_layer, head_norm_layer)
        unknown = sorted(set(options) - set(arch_option_names(arch)) - set(_VFM_RESERVED))
        if unknown:
            raise ValueError(f"--arch_options {', '.join(unknown)}: {arch} takes "
                             f"{', '.join(arch_option_names(arch))}")
        model = factory(num_classes=num_classes, wt_layer=wt_layer, pretrained=pretrained,
                        **options)
        return apply_norm_semantics(model, norm_semantics)
    if options:
        raise ValueError(f"--arch_options {', '.join(sorted(options))}: {arch} takes no "
                         f"options (they size the network.vfm models)")
    model = factory(num_classes=num_classes, wt_layer=wt_layer, pretrained=pretrained,
                    norm_layer=norm_layer, head_norm_layer=head_norm_layer)
    return apply_norm_semantics(model, norm_semantics)
