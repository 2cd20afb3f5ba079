"""Norm layers placed by ``--wt_layer`` (METHOD.md §1.3), and the collection of their outputs.

``wt_layer`` holds 7 values, one per position of a trunk. A value is a code of
``utils/wt_layer.py`` (the official spelling) or a name of :mod:`network.norms`; either way it
names the layer put there:

==== ======================== ==================================================
0    nothing                  the stem keeps the trunk's norm, a block gets nothing
1, 2 ``instance_whitening``   ``InstanceNorm2d(affine=False)`` whose output is
                              *collected* for the covariance losses (identical
                              layers; the code picks RobustNet's IW or ISW loss)
3    ``instancenorm``         ``InstanceNorm2d(affine=False)``, not collected
4    ``instancenorm_affine``  ``InstanceNorm2d(affine=True)`` (IBN-Net style)
5    ``switchable_whitening`` Switchable Whitening; ResNet trunks only (:data:`SW_TRUNKS`)
==== ======================== ==================================================

At a stem position the layer replaces the stem's norm (so it must normalise: a layer declaring
``normalises=False`` is refused there); at a block position it is added at the end of the
stage's last block (attribute ``instance_norm_layer``, the official name).

Collection is explicit: trunk stages are run with :func:`run_stage`, which passes a list down
to every block; the output of a layer declaring ``collected`` (pre-ReLU) is appended to it in
forward order.
"""

from torch import nn

from network.norm_layers.instance_whitening import InstanceWhitening
from network.norms import NORM_LAYERS, is_collected
from utils.wt_layer import (DEFAULT_WT_LAYER, OFFICIAL_WT_LAYER, WT_LAYER_CODES,
                            WT_LAYER_LENGTH, WT_LAYER_VALUES, as_wt_value)

__all__ = ["DEFAULT_WT_LAYER", "OFFICIAL_WT_LAYER", "SW_TRUNKS", "WT_LAYER_LENGTH",
           "WT_LAYER_VALUES", "BlockWithInstanceNorm", "InstanceWhitening",
           "collected_layer_count", "instance_norm_layer", "relu_after", "run_stage",
           "stem_norm", "validate_wt_layer", "wt_layer_name"]

SWITCHABLE_WHITENING = "switchable_whitening"
# Trunks built with Switchable Whitening (RobustNet has it in its ResNet files only).
SW_TRUNKS = ("resnet18", "resnet50", "resnet101_deep_stem")


def wt_layer_name(value):
    """The norm-layer name of one ``wt_layer`` value (a code or a name), ``None`` for code 0.

    ValueError for an unknown code or name."""
    value = as_wt_value(value)
    if value in WT_LAYER_CODES:
        return WT_LAYER_CODES[value].norm
    if value in NORM_LAYERS:
        return value
    raise ValueError(f"--wt_layer value {value!r} is neither a code {WT_LAYER_VALUES} nor a "
                     f"norm layer name ({', '.join(NORM_LAYERS)})")


def validate_wt_layer(wt_layer, trunk=None):
    """Return ``wt_layer`` as a tuple of 7 values (ints for codes, names as given), or raise
    ValueError naming ``--wt_layer``.

    With ``trunk`` (a ``network.deepv3.TRUNKS`` name), Switchable Whitening is refused outside
    :data:`SW_TRUNKS` (RobustNet silently made code 5 an identity there, ROBUSTNET_METHODS.md
    §8).
    """
    try:
        values = tuple(as_wt_value(v) for v in wt_layer)
        names = [wt_layer_name(v) for v in values]
    except (TypeError, ValueError):
        values, names = (), []
    if len(values) != WT_LAYER_LENGTH:
        raise ValueError(f"--wt_layer values must be {WT_LAYER_LENGTH} codes from "
                         f"{WT_LAYER_VALUES} or norm layer names ({', '.join(NORM_LAYERS)}), "
                         f"e.g. 0 0 1 1 1 0 0; got {list(wt_layer)}")
    if trunk is not None and SWITCHABLE_WHITENING in names and trunk not in SW_TRUNKS:
        raise ValueError(f"--wt_layer code 5 (Switchable Whitening) is only built on the "
                         f"ResNet trunks ({', '.join(SW_TRUNKS)}), not on {trunk}")
    return values


def instance_norm_layer(wt, channels):
    """The layer ``wt`` (a code or a name) places at a position, or ``None`` for code 0."""
    name = wt_layer_name(wt)
    return None if name is None else NORM_LAYERS[name](channels)


def stem_norm(wt, channels, norm_layer=nn.BatchNorm2d):
    """The stem's ``norm_layer`` when ``wt`` is 0, else the layer ``wt`` puts in its place;
    ValueError naming ``--wt_layer`` for a layer that does not normalise (it cannot stand
    where the stem's norm stands)."""
    name = wt_layer_name(wt)
    if name is None:
        return norm_layer(channels)
    if not NORM_LAYERS[name].normalises:
        raise ValueError(f"--wt_layer {name} at a stem position would replace the stem's norm, "
                         f"and {name} does not normalise: place it at a block position (the "
                         f"end of a stage, e.g. 3-6 on the ResNets)")
    return instance_norm_layer(wt, channels)


def relu_after(norm):
    """ReLU following ``norm``; not in place after a collected layer, whose output must
    survive in ``collected``."""
    return nn.ReLU(inplace=not is_collected(norm))


class BlockWithInstanceNorm(nn.Module):
    """Base of trunk blocks that may end with a ``--wt_layer`` layer (``instance_norm_layer``).

    Subclasses set ``self.instance_norm_layer`` (a module or ``None``) in ``__init__``,
    implement ``forward(x, collected=None)`` and call :meth:`_instance_norm` on their output
    before the final activation. (No class-level default: it would shadow the submodule.)
    """

    def _instance_norm(self, out, collected):
        if self.instance_norm_layer is None:
            return out
        out = self.instance_norm_layer(out)
        if collected is not None and is_collected(self.instance_norm_layer):
            collected.append(out)
        return out


def run_stage(stage, x, collected=None):
    """Run the modules of a trunk stage (``nn.Sequential``) in order.

    Args:
        stage: the stage; its children may be :class:`BlockWithInstanceNorm` blocks, norm
            layers (a stem norm replaced per ``--wt_layer``), other modules, or nested
            ``nn.Sequential`` containers of those, which are run recursively.
        x: ``(B, C, H, W)`` input.
        collected: list receiving the output of every collected layer in forward order, or
            ``None`` to collect nothing (evaluation).
    """
    for module in stage:
        if isinstance(module, BlockWithInstanceNorm):
            x = module(x, collected)
        elif isinstance(module, nn.Sequential):
            x = run_stage(module, x, collected)
        else:
            x = module(x)
            if collected is not None and is_collected(module):
                collected.append(x)
    return x


def collected_layer_count(model):
    """Number of collected layers of ``model``: the features CML/CCL and the RobustNet
    whitening losses receive. 0 when ``--wt_layer`` puts its 1/2 codes only at positions the
    trunk does not have (e.g. 0/1 outside ResNet-101, DECISIONS.md D35)."""
    return sum(is_collected(m) for m in model.modules())
