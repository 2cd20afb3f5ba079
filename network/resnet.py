"""ResNet-18/50/101 trunks exposing ``layer0..layer4`` with the official parameter names.

METHOD.md §1.1-1.3: ``layer0`` is the stem (7x7 conv for ResNet-18/50, the 3x3 "deep stem"
for ResNet-101), ``layer1..layer4`` are the residual stages. Output strides 32/16/8/4 are made
by replacing the stride of the last stages with dilation (every block of a dilated stage
uses the same dilation, no multi-grid). ``wt_layer`` places IN layers:

* index 0, 1: deep-stem norms after conv1/conv2 (ResNet-101 only);
* index 2: the last stem norm (``layer0.1`` for R18/R50, ``layer0.7`` for R101);
* index 3..6: the end of the last block of ``layer1..layer4``.

``norm_layer`` (``network.norms``, timm style: ``norm_layer(channels)``) builds every other
norm: the blocks' ``bn*``, the projection shortcuts' and the stem's (where ``wt_layer`` puts
nothing); BatchNorm by default.
"""

from torch import nn

from network.instance_norm import (BlockWithInstanceNorm, instance_norm_layer, relu_after,
                                   stem_norm)
from network.layers import StagedTrunk, init_trunk_weights

STAGE_WIDTHS = (64, 128, 256, 512)


def conv3x3(in_channels, out_channels, stride=1, dilation=1):
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation,
                     dilation=dilation, bias=False)


def conv1x1(in_channels, out_channels, stride=1):
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(BlockWithInstanceNorm):
    """Two 3x3 convs (ResNet-18/34). ``(B, in, H, W) -> (B, planes, H/stride, W/stride)``."""

    expansion = 1

    def __init__(self, in_channels, planes, stride=1, dilation=1, downsample=None, wt=0,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = conv3x3(in_channels, planes, stride, dilation)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, 1, dilation)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.instance_norm_layer = instance_norm_layer(wt, planes)

    def forward(self, x, collected=None):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out)) + identity
        out = self._instance_norm(out, collected)
        # Not in place: the IN output may sit in ``collected``.
        return out.relu() if self.instance_norm_layer is not None else out.relu_()


class Bottleneck(BlockWithInstanceNorm):
    """1x1 -> 3x3 (stride, dilation) -> 1x1, "ResNet v1.5" as in torchvision.

    ``(B, in, H, W) -> (B, 4 * planes, H/stride, W/stride)``.
    """

    expansion = 4

    def __init__(self, in_channels, planes, stride=1, dilation=1, downsample=None, wt=0,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = conv1x1(in_channels, planes)
        self.bn1 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = norm_layer(planes)
        self.conv3 = conv1x1(planes, out_channels)
        self.bn3 = norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.instance_norm_layer = instance_norm_layer(wt, out_channels)

    def forward(self, x, collected=None):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out)) + identity
        out = self._instance_norm(out, collected)
        return out.relu() if self.instance_norm_layer is not None else out.relu_()


def stage_dilations(output_stride):
    """(stride, dilation) of layer1..layer4 for an output stride of 4, 8, 16 or 32."""
    if output_stride not in (4, 8, 16, 32):
        raise ValueError(f"output stride must be 4, 8, 16 or 32, got {output_stride}")
    strides, dilations = [1, 2, 2, 2], [1, 1, 1, 1]
    # The stem already reduces by 4; each further halving of the output stride turns one more
    # trailing stage from stride 2 into stride 1, doubling the dilation from there on.
    num_dilated = {32: 0, 16: 1, 8: 2, 4: 3}[output_stride]
    dilation = 1
    for stage in range(4 - num_dilated, 4):
        dilation *= 2
        strides[stage], dilations[stage] = 1, dilation
    return list(zip(strides, dilations))


class ResNet(StagedTrunk):
    """``layer0..layer4`` of a ResNet; :meth:`forward` returns the ``layer4`` output.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)``.
        wt_layer: 7 values (see the module docstring).
        output_stride: 4, 8, 16 or 32.
        deep_stem: the ResNet-101 3x3 stem (3 convs, 128 output channels).
        norm_layer: builds the norms ``wt_layer`` does not place (BatchNorm by default).

    ``feature_info``: ``layer0..layer4`` at strides 4, 4, 8, 16, 32 (capped at
    ``output_stride``) with 64 (128 for the deep stem), 64/128/256/512 x expansion channels.
    """

    def __init__(self, block, layers, wt_layer, output_stride=16, deep_stem=False,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        stem = self._deep_stem if deep_stem else self._stem
        self.layer0 = stem(wt_layer, norm_layer)
        self.in_channels = 128 if deep_stem else 64
        stages = stage_dilations(output_stride)
        for index, (planes, num_blocks, (stride, dilation)) in enumerate(
                zip(STAGE_WIDTHS, layers, stages)):
            stage = self._make_layer(block, planes, num_blocks, stride, dilation,
                                     wt_layer[3 + index], norm_layer)
            setattr(self, f"layer{index + 1}", stage)
        self.set_feature_info(
            [128 if deep_stem else 64] + [width * block.expansion for width in STAGE_WIDTHS],
            native_strides=(4, 4, 8, 16, 32), output_stride=output_stride)
        init_trunk_weights(self)

    @staticmethod
    def _stem(wt_layer, norm_layer):
        norm = stem_norm(wt_layer[2], 64, norm_layer)
        return nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), norm,
                             relu_after(norm), nn.MaxPool2d(3, stride=2, padding=1))

    @staticmethod
    def _deep_stem(wt_layer, norm_layer):
        norms = [stem_norm(wt, channels, norm_layer)
                 for wt, channels in zip(wt_layer[:3], (64, 64, 128))]
        return nn.Sequential(
            conv3x3(3, 64, stride=2), norms[0], relu_after(norms[0]),
            conv3x3(64, 64), norms[1], relu_after(norms[1]),
            conv3x3(64, 128), norms[2], relu_after(norms[2]),
            nn.MaxPool2d(3, stride=2, padding=1))

    def _make_layer(self, block, planes, num_blocks, stride, dilation, wt_last, norm_layer):
        out_channels = planes * block.expansion
        # A projection shortcut wherever the shape changes; for R50/R101 that includes
        # layer1.0 (64 or 128 -> 256 channels) and the dilated, stride-1 first blocks.
        downsample = None
        if stride != 1 or self.in_channels != out_channels:
            downsample = nn.Sequential(conv1x1(self.in_channels, out_channels, stride),
                                       norm_layer(out_channels))
        blocks = []
        for index in range(num_blocks):
            # Only the last block of a stage receives the stage's IN layer.
            wt = wt_last if index == num_blocks - 1 else 0
            blocks.append(block(self.in_channels, planes, stride if index == 0 else 1,
                                dilation, downsample if index == 0 else None, wt, norm_layer))
            self.in_channels = out_channels
        return nn.Sequential(*blocks)


def resnet18(wt_layer, output_stride=32, norm_layer=nn.BatchNorm2d):
    return ResNet(BasicBlock, (2, 2, 2, 2), wt_layer, output_stride, norm_layer=norm_layer)


def resnet50(wt_layer, output_stride=16, norm_layer=nn.BatchNorm2d):
    return ResNet(Bottleneck, (3, 4, 6, 3), wt_layer, output_stride, norm_layer=norm_layer)


def resnet101_deep_stem(wt_layer, output_stride=16, norm_layer=nn.BatchNorm2d):
    return ResNet(Bottleneck, (3, 4, 23, 3), wt_layer, output_stride, deep_stem=True,
                  norm_layer=norm_layer)


# torchvision ImageNet checkpoint key prefix -> our prefix (layer1..layer4 keep their names).
TORCHVISION_STEM_KEYS = {"conv1.": "layer0.0.", "bn1.": "layer0.1."}
DEEP_STEM_KEYS = {"conv1.": "layer0.0.", "bn1.": "layer0.1.", "conv2.": "layer0.3.",
                  "bn2.": "layer0.4.", "conv3.": "layer0.6.", "bn3.": "layer0.7."}


def torchvision_key(key, deep_stem=False):
    """Our name of a torchvision-format ResNet key, or ``None`` when the trunk has no such tensor.

    ``fc.*`` (the classifier) has no counterpart. Keys already in our format pass through.
    """
    if key.startswith(("layer0.", "layer1.", "layer2.", "layer3.", "layer4.")):
        return key
    for source, target in (DEEP_STEM_KEYS if deep_stem else TORCHVISION_STEM_KEYS).items():
        if key.startswith(source):
            return target + key[len(source):]
    return None
