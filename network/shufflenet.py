"""ShuffleNetV2 x1.0 trunk (torchvision layout) split into ``layer0..layer4`` (METHOD.md §6).

=========  =========================  =============================
stage      torchvision modules        output (stride at OS32)
=========  =========================  =============================
layer0     conv1 (3x3/2) + maxpool    24 ch, /4
layer1     stage2                     116 ch, /8 (feeds ``bot_fine``)
layer2     stage3                     232 ch, /16
layer3     stage4                     464 ch, /32 (feeds the aux head)
layer4     conv5 (1x1)                1024 ch
=========  =========================  =============================

Output stride 16 dilates the stride-2 convs of layer3 (dilation 2); 8 also dilates layer2's
(dilation 2) and uses 4 in layer3. ``wt_layer``: index 2 replaces conv1's BN by IN, 3/4/5 add
IN at the output of the last block of stage2/3/4, 6 replaces conv5's BN; 0 and 1 have no effect.
``norm_layer`` builds every other norm (BatchNorm by default).
"""

import torch
from torch import nn

from network.instance_norm import (BlockWithInstanceNorm, instance_norm_layer, relu_after,
                                   stem_norm)
from network.layers import StagedTrunk, init_trunk_weights, set_light_output_stride

STAGE_REPEATS = (4, 8, 4)
STAGE_CHANNELS = (24, 116, 232, 464, 1024)
NATIVE_STRIDES = (4, 8, 16, 32, 32)


def channel_shuffle(x, groups):
    """Interleave the channels of ``groups`` groups: ``(B, C, H, W) -> (B, C, H, W)``."""
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)


def depthwise_conv(channels, stride):
    return nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False)


class ShuffleUnit(BlockWithInstanceNorm):
    """ShuffleNetV2 unit. Stride 1: half the channels pass through, the other half go through
    ``branch2``; stride 2: both branches see the whole input. Then a 2-group channel shuffle
    and the optional IN. ``(B, in, H, W) -> (B, out, H/stride, W/stride)``.
    """

    def __init__(self, in_channels, out_channels, stride, wt=0, norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.stride = stride
        branch_channels = out_channels // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                depthwise_conv(in_channels, stride), norm_layer(in_channels),
                nn.Conv2d(in_channels, branch_channels, 1, bias=False),
                norm_layer(branch_channels), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()  # keeps torchvision's (empty) module name
        branch2_in = in_channels if stride > 1 else branch_channels
        self.branch2 = nn.Sequential(
            nn.Conv2d(branch2_in, branch_channels, 1, bias=False),
            norm_layer(branch_channels), nn.ReLU(inplace=True),
            depthwise_conv(branch_channels, stride), norm_layer(branch_channels),
            nn.Conv2d(branch_channels, branch_channels, 1, bias=False),
            norm_layer(branch_channels), nn.ReLU(inplace=True))
        self.instance_norm_layer = instance_norm_layer(wt, out_channels)

    def forward(self, x, collected=None):
        if self.stride == 1:
            passthrough, processed = x.chunk(2, dim=1)
            out = torch.cat((passthrough, self.branch2(processed)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return self._instance_norm(channel_shuffle(out, 2), collected)


def conv_norm_relu(in_channels, out_channels, kernel_size, stride, wt,
                   norm_layer=nn.BatchNorm2d):
    """Conv -> ``norm_layer`` (or the layer ``wt`` puts in its place) -> ReLU."""
    norm = stem_norm(wt, out_channels, norm_layer)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                  bias=False),
        norm, relu_after(norm))


class ShuffleNetV2(StagedTrunk):
    """ShuffleNetV2 x1.0 trunk; :meth:`forward` returns the ``layer4`` output.

    ``feature_info``: :data:`STAGE_CHANNELS` at :data:`NATIVE_STRIDES` capped at
    ``output_stride``.
    """

    def __init__(self, wt_layer, output_stride=16, norm_layer=nn.BatchNorm2d):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"ShuffleNetV2 output stride must be 8, 16 or 32, got "
                             f"{output_stride}")
        self.layer0 = nn.Sequential(
            conv_norm_relu(3, STAGE_CHANNELS[0], 3, 2, wt_layer[2], norm_layer),
            nn.MaxPool2d(3, stride=2, padding=1))
        in_channels = STAGE_CHANNELS[0]
        for index, (repeats, channels) in enumerate(zip(STAGE_REPEATS, STAGE_CHANNELS[1:4])):
            units = [ShuffleUnit(in_channels if i == 0 else channels, channels,
                                 2 if i == 0 else 1,
                                 wt_layer[3 + index] if i == repeats - 1 else 0, norm_layer)
                     for i in range(repeats)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*units))
            in_channels = channels
        self.layer4 = conv_norm_relu(in_channels, STAGE_CHANNELS[4], 1, 1, wt_layer[6],
                                     norm_layer)
        set_light_output_stride(self, output_stride)
        self.set_feature_info(STAGE_CHANNELS, NATIVE_STRIDES, output_stride)
        init_trunk_weights(self)


# torchvision ``shufflenet_v2_x1_0`` key prefix -> ours.
TORCHVISION_PREFIXES = {"conv1.": "layer0.0.", "stage2.": "layer1.", "stage3.": "layer2.",
                        "stage4.": "layer3.", "conv5.": "layer4."}


def torchvision_key(key):
    """Our name of a torchvision ``shufflenet_v2_x1_0`` key, or ``None`` (the classifier)."""
    if key.startswith(("layer0.", "layer1.", "layer2.", "layer3.", "layer4.")):
        return key
    for source, target in TORCHVISION_PREFIXES.items():
        if key.startswith(source):
            return target + key[len(source):]
    return None
