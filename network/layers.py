"""Small building blocks shared by the trunks: the staged forward, weight init and
stride-to-dilation rewriting."""

from torch import nn

from network.instance_norm import run_stage

STAGE_NAMES = ("layer0", "layer1", "layer2", "layer3", "layer4")


class StagedTrunk(nn.Module):
    """Base of every trunk: ``layer0..layer4`` run in order.

    ``forward(x, collected=None)``: ``(B, 3, H, W) -> (B, out_channels, H/OS, W/OS)``; the
    outputs of collecting IN layers are appended to ``collected`` (a list) in forward order.
    """

    def forward(self, x, collected=None):
        for name in STAGE_NAMES:
            x = run_stage(getattr(self, name), x, collected)
        return x


def init_trunk_weights(trunk):
    """Kaiming-normal (fan_out, ReLU) convs, norm weight 1 / bias 0 (METHOD.md §1.1)."""
    for module in trunk.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


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
