"""Small building blocks shared by the trunks: weight init and stride-to-dilation rewriting."""

from torch import nn


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
