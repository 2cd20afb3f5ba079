"""Released DINOv2 weights: reading a file, chunked names, and Rein's patch-16 conversion.

docs/VFM_METHODS.md §1.5 (the released files are plain fp32 state dicts; FSDP training
checkpoints nest blocks as ``blocks.<chunk>.<block>.``) and §3.6 (Rein trains from weights
whose 14x14 patch kernel is resized bicubically to 16x16 and whose 37x37 position grid is
resized to 32x32, for 512 crops). ``tools/convert_dinov2.py`` writes the converted file;
:func:`fit_dinov2_state` converts on load instead when a model's grid asks for it.
"""

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F

CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.")


def strip_block_chunks(state):
    """``blocks.<chunk>.<i>.*`` -> ``blocks.<i>.*`` (the global block index is kept);
    unchunked names are returned unchanged."""
    return {CHUNKED_BLOCK.sub(r"blocks.\1.", key): value for key, value in state.items()}


def resize_patch_embed(weight, patch_size):
    """``(C, 3, p, p)`` kernel -> ``(C, 3, patch_size, patch_size)``: bicubic,
    ``align_corners=False``, no antialias, values not rescaled (§3.6)."""
    if weight.shape[-1] == patch_size and weight.shape[-2] == patch_size:
        return weight
    return F.interpolate(weight.float(), size=(patch_size, patch_size), mode="bicubic",
                         align_corners=False).to(weight.dtype)


def resize_pos_embed(pos_embed, grid):
    """``(1, 1 + M*M, C)`` -> ``(1, 1 + grid*grid, C)``: the cls row kept, the patch grid
    resized bicubically to ``grid x grid`` (``align_corners=False``, no antialias, §3.6)."""
    patches = pos_embed.shape[1] - 1
    side = math.isqrt(patches)
    if side * side != patches:
        raise ValueError(f"pos_embed has {patches} patch rows, not a square grid")
    if side == grid:
        return pos_embed
    dim = pos_embed.shape[-1]
    patch_pos = pos_embed[:, 1:].float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos, size=(grid, grid), mode="bicubic", align_corners=False)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)
    return torch.cat([pos_embed[:, :1].float(), patch_pos], dim=1).to(pos_embed.dtype)


def convert_dinov2_state(state, patch_size=16, img_size=512):
    """Rein's conversion (§3.6) of a released DINOv2 state dict: patch kernel resized to
    ``patch_size``, position grid to ``img_size // patch_size``; every other tensor as is.
    Chunked block names are flattened first. Returns a new dict."""
    if img_size % patch_size:
        raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
    for key in ("pos_embed", "patch_embed.proj.weight"):
        if key not in state:
            raise ValueError(f"not a DINOv2 state dict: no {key!r}")
    state = strip_block_chunks(state)
    state["patch_embed.proj.weight"] = resize_patch_embed(state["patch_embed.proj.weight"],
                                                          patch_size)
    state["pos_embed"] = resize_pos_embed(state["pos_embed"], img_size // patch_size)
    return state


def fit_dinov2_state(state, model):
    """``state`` converted for ``model`` (a :class:`network.dinov2.DinoVisionTransformer`)
    when its patch size or position grid differ (convert on load); unchanged otherwise."""
    state = strip_block_chunks(state)
    weight, pos = state.get("patch_embed.proj.weight"), state.get("pos_embed")
    if weight is None or pos is None:
        return state
    if weight.shape[-1] == model.patch_size and pos.shape == model.pos_embed.shape:
        return state
    grid = math.isqrt(model.pos_embed.shape[1] - 1)
    return convert_dinov2_state(state, model.patch_size, grid * model.patch_size)


def read_dinov2_file(path):
    """The state dict of a DINOv2 weight file (a released ``*_pretrain.pth``, a converted
    file, or a dict wrapping it under ``state_dict``/``model``); ValueError naming the file
    when it holds no DINOv2 tensors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DINOv2 weight file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or "pos_embed" not in state:
        raise ValueError(f"{path}: not a DINOv2 state dict (no 'pos_embed' tensor); expected "
                         f"a released dinov2_vit*14*_pretrain.pth or its conversion")
    return state
