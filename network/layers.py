"""Small building blocks shared by the trunks: the stages a trunk publishes
(:class:`FeatureInfo`), the staged forward, weight init and stride-to-dilation rewriting."""

from dataclasses import dataclass

from torch import nn

from network.instance_norm import run_stage
from network.norms import init_unit_affine

STAGE_NAMES = ("layer0", "layer1", "layer2", "layer3", "layer4")


@dataclass(frozen=True)
class FeatureInfo:
    """One stage a trunk publishes (timm's ``feature_info``): the output of its child
    ``module`` has ``channels`` channels at ``1/stride`` of the input resolution."""

    module: str     # attribute name of the stage in the trunk (kept by the segmenter)
    channels: int
    stride: int     # input pixels per output pixel, dilation taken into account (a ViT's
    #                 rescaled pyramid may hold a fractional one, e.g. patch 14 / 4 = 3.5)


class StagedTrunk(nn.Module):
    """Base of the CNN trunks: stages ``layer0..layer4`` run in order.

    ``feature_info``: one :class:`FeatureInfo` per stage, in forward order (what a segmenter
    reads). ``forward(x, collected=None)``: ``(B, 3, H, W) -> (B, C_last, H/OS, W/OS)``; the
    outputs of collected norm layers are appended to ``collected`` (a list) in forward order.
    """

    def set_feature_info(self, channels, native_strides, output_stride):
        """Publish ``layer0..layer4`` with ``channels`` and strides: each stage's stride
        without dilation (``native_strides``), capped at ``output_stride`` (the stages past
        it are dilated instead of strided)."""
        self.feature_info = [FeatureInfo(name, int(c), min(s, output_stride))
                             for name, c, s in zip(STAGE_NAMES, channels, native_strides,
                                                   strict=True)]

    def forward(self, x, collected=None):
        for info in self.feature_info:
            x = run_stage(getattr(self, info.module), x, collected)
        return x


def init_trunk_weights(trunk):
    """Kaiming-normal (fan_out, ReLU) convs, norm weight 1 / bias 0 (METHOD.md §1.1) for the
    norm layers that declare ``unit_affine_init`` (``network/norms.py``)."""
    for module in trunk.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        else:
            init_unit_affine(module)


def set_light_output_stride(trunk, output_stride):
    """Output stride of a light trunk (native 32): dilate ``layer3`` for OS16, ``layer2`` and
    ``layer3`` for OS8 (METHOD.md §6)."""
    if output_stride == 16:
        dilate_strided_convs(trunk.layer3, 2)
    elif output_stride == 8:
        dilate_strided_convs(trunk.layer2, 2)
        dilate_strided_convs(trunk.layer3, 4)
    elif output_stride != 32:
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")


def dilate_strided_convs(stage, dilation):
    """Turn every stride-2 ``Conv2d`` of ``stage`` into stride 1 with ``dilation``, in place.

    This is how the light trunks reach output stride 16 or 8 (METHOD.md §6): only the convs
    that used to downsample are dilated; the padding keeps the spatial size.
    """
    for module in stage.modules():
        if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
            kernel = module.kernel_size[0]
            module.stride = (1, 1)
            module.dilation = (dilation, dilation)
            module.padding = (dilation * (kernel - 1) // 2,) * 2
    return stage
