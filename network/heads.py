"""ASPP, decoder blocks, aux head and projection heads of DeepLabV3+ (METHOD.md §1.4-1.7).

Every module here keeps the official sequential indices, so the state-dict keys are
``aspp.features.{0..3}.{0,1}``, ``aspp.img_conv.{0,1}``, ``final1.{0,1,3,4}``, ``dsn.{0,1,4}``,
``ProjectionHead_cls_*.proj.{0,2}`` and so on. ``norm_layer`` (timm style,
``norm_layer(channels)``; ``network/norms.py``) builds every norm; BatchNorm by default.
"""

import torch
import torch.nn.functional as F
from torch import nn

from network.norms import declared, init_unit_affine

ASPP_RATES_AT_OS16 = (6, 12, 18)
ASPP_CHANNELS = 256
FINE_CHANNELS = 48
PROJECTION_DIM = 256


def conv_bn_relu(in_channels, out_channels, kernel_size=1, dilation=1,
                 norm_layer=nn.BatchNorm2d):
    """Conv (no bias, "same" padding) -> norm -> ReLU, keys ``.0`` and ``.1``."""
    padding = dilation * (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                  bias=False),
        norm_layer(out_channels),
        nn.ReLU(inplace=True))


def aspp_rates(output_stride):
    """Atrous rates scaled with the output stride: (6, 12, 18) at 16, x2 at 8, //2 at 32."""
    return tuple(rate * 16 // output_stride for rate in ASPP_RATES_AT_OS16)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling without output projection.

    ``(B, in_channels, h, w) -> (B, 5 * 256, h, w)``: the concatenation of the image-pooling
    branch, a 1x1 branch and three dilated 3x3 branches, in that order.

    In training the image-pooling BatchNorm sees one value per image, so it needs a batch of
    at least 2 images (as in the official code); a norm layer declaring ``per_image``
    statistics cannot normalise that 1x1 map at all and is refused (ValueError).
    """

    def __init__(self, in_channels, output_stride=16, channels=ASPP_CHANNELS,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.rates = aspp_rates(output_stride)
        self.features = nn.ModuleList(
            [conv_bn_relu(in_channels, channels, 1, norm_layer=norm_layer)]
            + [conv_bn_relu(in_channels, channels, 3, rate, norm_layer) for rate in self.rates])
        self.img_pooling = nn.AdaptiveAvgPool2d(1)
        self.img_conv = conv_bn_relu(in_channels, channels, 1, norm_layer=norm_layer)
        entry = declared(self.img_conv[1])
        if entry is not None and entry.per_image:
            raise ValueError(f"--head_norm_layer {entry.name}: the ASPP image-pooling branch "
                             f"normalises a 1x1 map, where statistics over one image's pixels "
                             f"do not exist; use a norm with batch statistics (e.g. batchnorm)")
        self.out_channels = channels * (1 + len(self.features))

    def forward(self, x):
        pooled = self.img_conv(self.img_pooling(x))
        pooled = F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return torch.cat([pooled] + [branch(x) for branch in self.features], dim=1)


def decoder_final1(in_channels, channels=256, norm_layer=nn.BatchNorm2d):
    """Two 3x3 conv-norm-ReLU (``final1``): ``(B, 304, h, w) -> (B, 256, h, w)``."""
    return nn.Sequential(*conv_bn_relu(in_channels, channels, 3, norm_layer=norm_layer),
                         *conv_bn_relu(channels, channels, 3, norm_layer=norm_layer))


def classifier_1x1(in_channels, num_classes):
    """``final2``: a biased 1x1 conv to the class logits, key ``final2.0``."""
    return nn.Sequential(nn.Conv2d(in_channels, num_classes, 1, bias=True))


def aux_head(in_channels, num_classes, channels=512, norm_layer=nn.BatchNorm2d):
    """``dsn``: 3x3 conv (bias) -> norm -> ReLU -> Dropout2d(0.1) -> 1x1 conv (bias).

    ``(B, in_channels, h, w) -> (B, num_classes, h, w)``; used in training only.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1, bias=True),
        norm_layer(channels),
        nn.ReLU(inplace=True),
        nn.Dropout2d(0.1),
        nn.Conv2d(channels, num_classes, 1, bias=True))


class ProjectionHead(nn.Module):
    """1x1 conv -> ReLU -> 1x1 conv, then per-pixel L2 normalisation over channels.

    ``(B, dim_in, h, w) -> (B, 256, h, w)`` with ``||z||_2 = 1`` at every pixel (up to 1e-7).
    """

    def __init__(self, dim_in, proj_dim=PROJECTION_DIM):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(dim_in, dim_in, 1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim_in, proj_dim, 1, bias=True))

    def forward(self, x):
        z = self.proj(x)
        return z / (torch.linalg.vector_norm(z, dim=1, keepdim=True) + 1e-7)


def init_head_weights(*modules):
    """Kaiming-normal (fan_in) conv weights, zero biases, norm weight 1 / bias 0 (§1.7) for
    the norm layers that declare ``unit_affine_init``."""
    for root in modules:
        for module in root.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            else:
                init_unit_affine(module)
