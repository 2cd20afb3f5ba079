"""Instance-normalisation layers placed by ``--wt_layer`` (METHOD.md §1.3).

``wt_layer`` holds 7 ints, one per position of a trunk. The value at a position picks the layer:

==== ============================================================================
0    nothing (the BatchNorm of a stem stays, a block gets no extra layer)
1, 2 :class:`InstanceWhitening`: ``InstanceNorm2d(affine=False)`` whose output is also
     *collected* for the covariance losses (identical in BlindNet)
3    ``InstanceNorm2d(affine=False)``, not collected
4    ``InstanceNorm2d(affine=True)`` (IBN-Net style), not collected
5    :class:`network.switchable_whitening.SwitchWhiten2d` (Switchable Whitening), not
     collected; ResNet trunks only (:data:`SW_TRUNKS`)
==== ============================================================================

Values 1-4 keep no running statistics, so they behave the same in train and eval mode, and
only value 4 adds state-dict entries (``weight``, ``bias``). Value 5 keeps running batch
statistics (used in eval mode) and adds its affine, mixing logits and running buffers.

Collection is explicit: trunk stages are run with :func:`run_stage`, which passes a list down
to every block; the IN output (pre-ReLU) is appended to it in forward order.
"""

from torch import nn

from network.switchable_whitening import SwitchWhiten2d

WT_LAYER_LENGTH = 7
WT_LAYER_VALUES = (0, 1, 2, 3, 4, 5)
OFFICIAL_WT_LAYER = (0, 0, 1, 1, 1, 0, 0)  # the official BlindNet recipe's (configs/)
# A library caller's default, as --wt_layer's (the official argparse's): no instance norm.
DEFAULT_WT_LAYER = (0,) * WT_LAYER_LENGTH
SWITCHABLE_WHITENING = 5
# Trunks built with Switchable Whitening (RobustNet has it in its ResNet files only).
SW_TRUNKS = ("resnet18", "resnet50", "resnet101_deep_stem")


class InstanceWhitening(nn.InstanceNorm2d):
    """Per-sample, per-channel standardisation whose output the trunk collects (wt 1 or 2).

    Shape: ``(B, C, H, W) -> (B, C, H, W)``; biased variance over H*W, eps 1e-5, no state.
    """

    def __init__(self, num_features):
        super().__init__(num_features, eps=1e-5, affine=False, track_running_stats=False)


def validate_wt_layer(wt_layer, trunk=None):
    """Return ``wt_layer`` as a tuple of 7 ints in :data:`WT_LAYER_VALUES`, or raise ValueError.

    With ``trunk`` (a ``network.deepv3.TRUNKS`` name), code 5 is refused outside
    :data:`SW_TRUNKS` (RobustNet silently made it an identity there, ROBUSTNET_METHODS.md §8).
    """
    values = tuple(int(v) for v in wt_layer)
    if len(values) != WT_LAYER_LENGTH or any(v not in WT_LAYER_VALUES for v in values):
        raise ValueError(f"--wt_layer must be {WT_LAYER_LENGTH} ints from {WT_LAYER_VALUES} "
                         f"(e.g. 0 0 1 1 1 0 0), got {list(wt_layer)}")
    if trunk is not None and SWITCHABLE_WHITENING in values and trunk not in SW_TRUNKS:
        raise ValueError(f"--wt_layer code 5 (Switchable Whitening) is only built on the "
                         f"ResNet trunks ({', '.join(SW_TRUNKS)}), not on {trunk}")
    return values


def instance_norm_layer(wt, channels):
    """The IN layer for ``wt`` (see the module docstring), or ``None`` for 0."""
    if wt == 0:
        return None
    if wt in (1, 2):
        return InstanceWhitening(channels)
    if wt == 3:
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if wt == 4:
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if wt == SWITCHABLE_WHITENING:
        return SwitchWhiten2d(channels)
    raise ValueError(f"--wt_layer value must be one of {WT_LAYER_VALUES}, got {wt}")


def stem_norm(wt, channels):
    """BatchNorm when ``wt`` is 0, else the IN layer that replaces it."""
    return nn.BatchNorm2d(channels) if wt == 0 else instance_norm_layer(wt, channels)


def relu_after(norm):
    """ReLU following ``norm``; not in place after a collected IN, whose output must survive."""
    return nn.ReLU(inplace=not isinstance(norm, InstanceWhitening))


class BlockWithInstanceNorm(nn.Module):
    """Base of trunk blocks that may end with an IN layer (``self.instance_norm_layer``).

    Subclasses set ``self.instance_norm_layer`` (a module or ``None``) in ``__init__``,
    implement ``forward(x, collected=None)`` and call :meth:`_instance_norm` on their output
    before the final activation. (No class-level default: it would shadow the submodule.)
    """

    def _instance_norm(self, out, collected):
        if self.instance_norm_layer is None:
            return out
        out = self.instance_norm_layer(out)
        if collected is not None and isinstance(self.instance_norm_layer, InstanceWhitening):
            collected.append(out)
        return out


def run_stage(stage, x, collected=None):
    """Run the modules of a trunk stage (``nn.Sequential``) in order.

    Args:
        stage: the stage; its children may be :class:`BlockWithInstanceNorm` blocks,
            :class:`InstanceWhitening` layers (a stem norm replaced by IN) or nested
            ``nn.Sequential`` containers of those, which are run recursively.
        x: ``(B, C, H, W)`` input.
        collected: list receiving every collected IN output in forward order, or ``None``
            to collect nothing (evaluation).
    """
    for module in stage:
        if isinstance(module, BlockWithInstanceNorm):
            x = module(x, collected)
        elif isinstance(module, nn.Sequential):
            x = run_stage(module, x, collected)
        else:
            x = module(x)
            if collected is not None and isinstance(module, InstanceWhitening):
                collected.append(x)
    return x


def collected_layer_count(model):
    """Number of :class:`InstanceWhitening` layers of ``model``: the features CML/CCL and the
    RobustNet whitening losses receive. 0 when ``--wt_layer`` puts its 1/2 codes only at
    positions the trunk does not have (e.g. 0/1 outside ResNet-101, DECISIONS.md D35)."""
    return sum(isinstance(m, InstanceWhitening) for m in model.modules())
