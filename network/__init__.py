"""The BlindNet segmenters: ``get_net(arch, ...)``, :class:`ModelOutput` and :class:`ViewOutput`.

``arch`` is an official factory name, with or without the ``network.deepv3.`` prefix of
``--arch`` (e.g. ``network.deepv3.DeepR50V3PlusD``); see ``network.deepv3.FACTORIES``.
"""

from network.deepv3 import FACTORIES, DeepV3Plus, build_deepv3
from network.instance_norm import DEFAULT_WT_LAYER, OFFICIAL_WT_LAYER
from network.norm_semantics import (DEFAULT_NORM_SEMANTICS, NORM_SEMANTICS,
                                    apply_norm_semantics, norm_semantics_of)
from network.norms import DEFAULT_NORM_LAYER, NORM_LAYERS, REPLACEMENT_NORM_LAYERS
from network.output import ModelOutput, ViewOutput
from network.pretrained import MissingImageNetWeights
from utils.labels import NUM_CLASSES

__all__ = ["DEFAULT_NORM_LAYER", "DEFAULT_NORM_SEMANTICS", "DEFAULT_WT_LAYER", "FACTORIES",
           "DeepV3Plus", "MissingImageNetWeights", "ModelOutput", "NORM_LAYERS", "NORM_SEMANTICS",
           "OFFICIAL_WT_LAYER", "REPLACEMENT_NORM_LAYERS", "ViewOutput", "apply_norm_semantics",
           "build_deepv3", "get_net", "norm_semantics_of", "resolve_arch"]

ARCH_PREFIXES = ("network.deepv3.", "deepv3.")


def resolve_arch(arch):
    """The factory for ``arch``; ValueError listing the valid names when it is unknown."""
    name = arch
    for prefix in ARCH_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name not in FACTORIES:
        valid = ", ".join(f"network.deepv3.{n}" for n in FACTORIES)
        raise ValueError(f"unknown --arch {arch!r}; expected one of: {valid}")
    return FACTORIES[name]


def get_net(arch, num_classes=NUM_CLASSES, wt_layer=DEFAULT_WT_LAYER, pretrained=None,
            norm_semantics=DEFAULT_NORM_SEMANTICS, norm_layer=DEFAULT_NORM_LAYER,
            head_norm_layer=DEFAULT_NORM_LAYER):
    """Build the segmenter ``arch`` (an ``nn.Module``, in train mode).

    Args:
        arch: factory name, e.g. ``network.deepv3.DeepR50V3PlusD`` or ``DeepR50V3PlusD``.
        num_classes: output classes (``utils.labels.NUM_CLASSES`` = 19, the Cityscapes set).
        wt_layer: 7 values placing norm layers (METHOD.md §1.3): ``utils/wt_layer.py`` codes
            or ``network.norms`` names; by default none, as ``--wt_layer``'s default
            (BlindNet's ``OFFICIAL_WT_LAYER`` is a recipe).
        pretrained: trunk ImageNet weights: a torchvision-format file, ``None`` for the
            torch hub cache (EfficientNet-Lite0: the installed package's file), or ``False``
            for a deliberate random init. ``None`` that finds no file raises
            :class:`network.pretrained.MissingImageNetWeights` (a ``FileNotFoundError``
            naming the paths it looked in), never a silent random trunk.
        norm_semantics: ``modern`` or ``torch1.2`` (instance norms use batch statistics in
            training, BatchNorm/affine-IN weights and biases are frozen; see
            :mod:`network.norm_semantics`). Applied after the weights are loaded.
        norm_layer: the trunk's norm wherever ``wt_layer`` places none (``--norm_layer``): a
            name of :data:`REPLACEMENT_NORM_LAYERS` or a timm-style callable
            ``(channels, **kwargs) -> nn.Module``.
        head_norm_layer: the same for ASPP, decoder and aux head (``--head_norm_layer``).
    """
    model = resolve_arch(arch)(num_classes=num_classes, wt_layer=wt_layer,
                               pretrained=pretrained, norm_layer=norm_layer,
                               head_norm_layer=head_norm_layer)
    return apply_norm_semantics(model, norm_semantics)
