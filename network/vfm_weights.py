"""Loading Rein's released checkpoints into :mod:`network.vfm` models.

Rein's files (``dinov2_rein_and_head.pth``, ``iter_40000_published.pth``) are mmengine
checkpoints whose ``state_dict`` holds only ``backbone.reins.*`` and ``decode_head.*``: the
DINOv2 weights come from a separate file (docs/VFM_METHODS.md §2.6, §8 item 2). The models
here are laid out with mmseg's names, so the key map is the identity on those prefixes
(:data:`MMSEG_KEY_MAP`, the one place a renaming would go); this module unwraps the
checkpoint, maps the keys, adds the DINOv2 trunk under ``backbone.`` (converted to the
model's patch size and grid when needed), and loads everything strictly.
"""

import pickle
import re
from pathlib import Path

import torch

from network.dinov2_weights import fit_dinov2_state

# mmseg prefix -> ours. Each mmseg key must start with one of these; its remainder (mmdet /
# mmcv module names: pixel_decoder.encoder.layers.{i}.self_attn.sampling_offsets,
# transformer_decoder.layers.{i}.cross_attn.attn.in_proj_weight, querys2feat...) is kept.
MMSEG_KEY_MAP = {"backbone.reins.": "backbone.reins.", "decode_head.": "decode_head.",
                 "backbone.": "backbone."}


def unwrap_checkpoint(obj, source="checkpoint"):
    """The state dict of an mmengine checkpoint (``{"meta", "state_dict", ...}``) or of a
    bare state dict; a ``module.`` (DDP) prefix is removed."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{source}: not a state dict of tensors (nor an mmengine checkpoint "
                         f"with one under 'state_dict')")
    return {key.removeprefix("module."): value for key, value in state.items()}


def map_mmseg_keys(state, source="checkpoint", strict=True):
    """Rename mmseg keys to ours with :data:`MMSEG_KEY_MAP`. A key that fits no prefix is a
    ValueError naming it, or with ``strict=False`` kept as it is (our own checkpoints also
    hold ``projection_heads.*``)."""
    mapped, unknown = {}, []
    for key, value in state.items():
        prefix = next((p for p in MMSEG_KEY_MAP if key.startswith(p)), None)
        if prefix is None:
            unknown.append(key)
            mapped[key] = value
        else:
            mapped[MMSEG_KEY_MAP[prefix] + key[len(prefix):]] = value
    if unknown and strict:
        raise ValueError(f"{source}: keys outside backbone./decode_head.: {unknown[:5]}")
    return mapped


def _numpy_metadata_globals():
    """The NumPy types mmengine's checkpoint metadata may pickle (arrays, scalars, dtypes):
    data, not code, so the safe loader may rebuild them."""
    import numpy as np

    multiarray = getattr(np, "_core", np.core).multiarray
    dtypes = [type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGSUVO"]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def read_release(path):
    """A Rein checkpoint file, read with ``torch.load(weights_only=True)``; NumPy values in
    its mmengine metadata are allowed, any other pickled object is refused (ValueError
    naming them): nothing in the file can run code."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_numpy_metadata_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        raise ValueError(f"{path} holds Python objects other than tensors and NumPy metadata "
                         f"({found.group(1) if found else 'unknown'}); they are refused because "
                         f"loading them could run code. Keep only its state dict "
                         f"(torch.save({{'state_dict': ...}}, path))") from None


def rein_release_state(release_state, dinov2_state, model):
    """The full state dict of ``model`` from Rein's adapter + head tensors (already
    unwrapped) and a DINOv2 state dict (released or converted)."""
    state = map_mmseg_keys(release_state)
    trunk = fit_dinov2_state(dinov2_state, model.backbone)
    for key, value in trunk.items():
        state.setdefault(f"backbone.{key}", value)
    return state


def load_rein_release(model, release_path, dinov2_state):
    """Load ``release_path`` (Rein's checkpoint) and the DINOv2 trunk strictly into
    ``model``; a missing or unexpected key is a ValueError naming the file."""
    path = Path(release_path)
    state = rein_release_state(unwrap_checkpoint(read_release(path), str(path)), dinov2_state,
                               model)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: does not fit {type(model).__name__}: missing "
                         f"{missing[:5]}, unexpected {unexpected[:5]}")
    return model
