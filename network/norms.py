"""Normalisation layers by name: the one registry, and the questions asked of a built layer.

:data:`NORM_LAYERS` maps a name to a :class:`network.norm_layers.NormLayer`: PyTorch's
BatchNorm / SyncBatchNorm / InstanceNorm entries below, plus every file of
``network/norm_layers/`` (each declares its ``NORM_LAYER``; found here, no list to extend).

Names are used by ``get_net(..., norm_layer=NAME, head_norm_layer=NAME)`` (the BatchNorm of
the trunk blocks and stems, and of the decoder heads, replaced by name; ``--norm_layer``,
``--head_norm_layer``) and by ``--wt_layer`` (whose codes are spellings of names,
``utils/wt_layer.py``). Code that must treat a layer specially asks :func:`declared` for its
entry and reads the declared property (``collected``, ``unit_affine_init``, ``imagenet``,
``per_image``, ``torch12_*``, ``normalises``, ``synced_statistics``; see
:class:`~network.norm_layers.NormLayer`) instead of testing the module's class, so a new
layer is one new file.
"""

import importlib
import pkgutil

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

import network.norm_layers as norm_layers
from network.norm_layers import IMAGENET_ALL, NormLayer

DEFAULT_NORM_LAYER = "batchnorm"

_IN_OPTIONS = {"affine": False, "track_running_stats": False}
TORCH_NORM_LAYERS = (
    NormLayer("batchnorm", nn.BatchNorm2d, imagenet=IMAGENET_ALL, torch12_frozen_affine=True,
              summary="BatchNorm (the default of trunks and heads)"),
    NormLayer("syncbatchnorm", nn.SyncBatchNorm, imagenet=IMAGENET_ALL,
              torch12_frozen_affine=True, synced_statistics=True,
              summary="BatchNorm over every process's batch (train.py converts batchnorm to it "
                      "under multi-GPU DDP)"),
    NormLayer("instancenorm", nn.InstanceNorm2d, _IN_OPTIONS, per_image=True,
              torch12_batch_statistics=True, torch12_frozen_affine=True,
              summary="IN without affine, no running statistics (--wt_layer code 3)"),
    NormLayer("instancenorm_affine", nn.InstanceNorm2d, {**_IN_OPTIONS, "affine": True},
              per_image=True, torch12_batch_statistics=True, torch12_frozen_affine=True,
              summary="IBN-Net's IN: with affine, no running statistics (--wt_layer code 4)"),
)


def discover_norm_layers(package=norm_layers):
    """The ``NORM_LAYER`` of every module of ``package`` (``network/norm_layers/``), in
    file-name order; TypeError naming a file that declares none."""
    entries = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        entry = getattr(module, "NORM_LAYER", None)
        if not isinstance(entry, NormLayer):
            raise TypeError(f"{package.__name__.replace('.', '/')}/{info.name}.py must declare "
                            f"NORM_LAYER = NormLayer(name, cls, ...)")
        entries.append(entry)
    return entries


def build_registry(entries):
    """``(name -> entry, class -> entries)``; ValueError on a repeated name, or on entries of
    one class whose declared properties differ (what a built module needs must not depend on
    which of them built it)."""
    by_name, by_class = {}, {}
    for entry in entries:
        if entry.name in by_name:
            raise ValueError(f"norm layer name {entry.name!r} is declared twice")
        by_name[entry.name] = entry
        same_class = by_class.setdefault(entry.cls, [])
        if same_class and same_class[0].properties() != entry.properties():
            raise ValueError(f"norm layers {same_class[0].name!r} and {entry.name!r} build the "
                             f"same class {entry.cls.__name__} but declare different "
                             f"properties")
        same_class.append(entry)
    return by_name, by_class


NORM_LAYERS, _BY_CLASS = build_registry([*TORCH_NORM_LAYERS, *discover_norm_layers()])
# PyTorch's other BatchNorm / InstanceNorm classes (1d, 3d, ...) declare what their 2d entries
# declare, so a module tree built without the registry (a future trunk) is treated the same.
_BY_CLASS[_BatchNorm] = [NORM_LAYERS["batchnorm"]]
_BY_CLASS[_InstanceNorm] = [NORM_LAYERS["instancenorm"], NORM_LAYERS["instancenorm_affine"]]
# Names that can replace BatchNorm (--norm_layer / --head_norm_layer): not the collected ones,
# not the ones that do not normalise.
REPLACEMENT_NORM_LAYERS = tuple(name for name, entry in NORM_LAYERS.items()
                                if not entry.collected and entry.normalises)


def declared(module):
    """The registry entry of a built ``module``, or ``None`` when it is no registered norm.

    Found by its class or nearest registered base (a torch1.2 subclass answers as its
    original); of several entries of one class (``instancenorm`` / ``instancenorm_affine``),
    the one whose ``options`` the module's attributes show."""
    for cls in type(module).__mro__:
        if cls in _BY_CLASS:
            entries = _BY_CLASS[cls]
            return next((entry for entry in entries
                         if all(getattr(module, key, None) == value
                                for key, value in entry.options.items())), entries[0])
    return None


def is_collected(module):
    """True when ``module``'s output belongs in ``ViewOutput.in_feats``."""
    entry = declared(module)
    return entry is not None and entry.collected


def resolve_norm_layer(spec, flag="--norm_layer"):
    """The builder for ``spec``: a registered name (its :class:`NormLayer`) or a callable
    ``(num_features, **kwargs) -> nn.Module`` (timm style), returned unchanged.

    A name that is unknown, that names a collected layer (which only ``--wt_layer``
    positions collect) or a layer that does not normalise, raises ValueError naming ``flag``.
    """
    if callable(spec) and not isinstance(spec, str):
        return spec
    if spec not in NORM_LAYERS:
        raise ValueError(f"{flag} {spec!r} is not a registered norm layer; expected one of: "
                         f"{', '.join(REPLACEMENT_NORM_LAYERS)}")
    if NORM_LAYERS[spec].collected:
        raise ValueError(f"{flag} {spec}: its output is collected for the losses only where "
                         f"--wt_layer places it; as a replacement of every BatchNorm it would "
                         f"not be. Use one of: {', '.join(REPLACEMENT_NORM_LAYERS)}")
    if not NORM_LAYERS[spec].normalises:
        raise ValueError(f"{flag} {spec}: {spec} does not normalise (it transforms features); "
                         f"it cannot replace a norm, only be added at a --wt_layer block "
                         f"position. Use one of: {', '.join(REPLACEMENT_NORM_LAYERS)}")
    return NORM_LAYERS[spec]


def init_unit_affine(module):
    """Weight 1 and bias 0 for a norm layer that declares ``unit_affine_init`` (and has an
    affine); anything else is left alone. Returns True when ``module`` is such a layer."""
    entry = declared(module)
    if entry is None or not entry.unit_affine_init:
        return False
    if getattr(module, "weight", None) is not None:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    return True


def imagenet_matching_prefixes(model):
    """``"<module name>."`` of every layer of ``model`` declaring ``imagenet="matching"``:
    the key prefixes whose tensors strict ImageNet loading may leave to their init."""
    return tuple(f"{name}." for name, module in model.named_modules()
                 if (entry := declared(module)) is not None
                 and entry.imagenet != IMAGENET_ALL)
