"""MobileNetV2 trunk (torchvision layout) split into ``layer0..layer4`` (METHOD.md §6).

=========  =====================  ==========================================
stage      torchvision features   output (stride at OS32)
=========  =====================  ==========================================
layer0     0-1                    16 ch, /2
layer1     2-6                    32 ch, /8 (feeds ``bot_fine``)
layer2     7-10                   64 ch, /16
layer3     11-17                  320 ch, /32 (feeds the aux head)
layer4     18 (1x1 conv)          1280 ch
=========  =====================  ==========================================

Output stride 16 dilates the stride-2 conv of layer3 (dilation 2); output stride 8 also
dilates layer2's (dilation 2) and uses dilation 4 in layer3. ``wt_layer`` indices 2, 3, 4, 5
put an IN layer at the output of inverted-residual features 1, 6, 10, 17; indices 0, 1 and 6
have no effect on this trunk. ``norm_layer`` builds every other norm (BatchNorm by default).
"""

from torch import nn

from network.instance_norm import BlockWithInstanceNorm, instance_norm_layer
from network.layers import StagedTrunk, init_trunk_weights, set_light_output_stride

# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
INVERTED_RESIDUAL_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# First feature index of layer0..layer4, and one past the last.
STAGE_BOUNDS = (0, 2, 7, 11, 18, 19)
# Feature index -> wt_layer index of the IN layer at its output.
IN_POSITIONS = {1: 2, 6: 3, 10: 4, 17: 5}
STAGE_CHANNELS = (16, 32, 64, 320, 1280)
NATIVE_STRIDES = (2, 8, 16, 32, 32)


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias) -> norm -> ReLU6; keys ``.0`` and ``.1`` as torchvision's."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1,
                 norm_layer=nn.BatchNorm2d):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                      groups=groups, bias=False),
            norm_layer(out_channels),
            nn.ReLU6(inplace=True))


class InvertedResidual(BlockWithInstanceNorm):
    """Expand 1x1 -> depthwise 3x3 -> project 1x1 (linear), residual when shapes allow.

    ``(B, in, H, W) -> (B, out, H/stride, W/stride)``; the optional IN acts on the block output.
    """

    def __init__(self, in_channels, out_channels, stride, expand_ratio, wt=0,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers = ([ConvBNReLU6(in_channels, hidden, kernel_size=1, norm_layer=norm_layer)]
                  if expand_ratio != 1 else [])
        layers += [ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden,
                               norm_layer=norm_layer),
                   nn.Conv2d(hidden, out_channels, 1, bias=False),
                   norm_layer(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.instance_norm_layer = instance_norm_layer(wt, out_channels)

    def forward(self, x, collected=None):
        out = self.conv(x)
        if self.use_res_connect:
            out = x + out
        return self._instance_norm(out, collected)


class MobileNetV2(StagedTrunk):
    """MobileNetV2 (width 1.0) trunk; :meth:`forward` returns the ``layer4`` output.

    ``feature_info``: :data:`STAGE_CHANNELS` at :data:`NATIVE_STRIDES` capped at
    ``output_stride``.
    """

    def __init__(self, wt_layer, output_stride=16, norm_layer=nn.BatchNorm2d):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"MobileNetV2 output stride must be 8, 16 or 32, got "
                             f"{output_stride}")
        features = [ConvBNReLU6(3, 32, stride=2, norm_layer=norm_layer)]
        in_channels = 32
        for expand_ratio, channels, repeats, stride in INVERTED_RESIDUAL_SETTINGS:
            for index in range(repeats):
                position = len(features)
                wt = wt_layer[IN_POSITIONS[position]] if position in IN_POSITIONS else 0
                features.append(InvertedResidual(in_channels, channels,
                                                 stride if index == 0 else 1, expand_ratio, wt,
                                                 norm_layer))
                in_channels = channels
        features.append(ConvBNReLU6(in_channels, 1280, kernel_size=1, norm_layer=norm_layer))
        for index in range(5):
            stage = nn.Sequential(*features[STAGE_BOUNDS[index]:STAGE_BOUNDS[index + 1]])
            setattr(self, f"layer{index}", stage)
        set_light_output_stride(self, output_stride)
        self.set_feature_info(STAGE_CHANNELS, NATIVE_STRIDES, output_stride)
        init_trunk_weights(self)


def torchvision_key(key):
    """Our name of a torchvision ``mobilenet_v2`` key (``features.<i>.…``), or ``None``."""
    if key.startswith(("layer0.", "layer1.", "layer2.", "layer3.", "layer4.")):
        return key
    if not key.startswith("features."):
        return None  # the classifier
    index_text, rest = key[len("features."):].split(".", 1)
    index = int(index_text)
    for stage in range(5):
        if STAGE_BOUNDS[stage] <= index < STAGE_BOUNDS[stage + 1]:
            return f"layer{stage}.{index - STAGE_BOUNDS[stage]}.{rest}"
    return None
