"""Atomic checkpoint writing and tolerant, safe checkpoint reading (DECISIONS.md D15, D16).

* :func:`atomic_save` writes to a temporary file in the target folder, flushes it to disk
  and renames it over the target, so a crash mid-save leaves the previous file intact.
* :func:`load_checkpoint` uses ``torch.load(weights_only=True)``: no arbitrary code runs.
* :func:`load_state_dict_forgiving` accepts official checkpoints (``module.`` prefixes,
  a raw state dict or ``{'state_dict': ...}``) and reports every key it could not use.
"""

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from utils.logging import get_logger

MODULE_PREFIX = "module."


def atomic_save(obj, path):
    """``torch.save(obj)`` to ``path`` atomically (temp file in its folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # Whatever went wrong (disk full, KeyboardInterrupt), the old file stays untouched.
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint file safely (``weights_only=True``); clear error if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (check --snapshot/--resume)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt file, or objects weights_only refuses
        raise RuntimeError(
            f"could not load checkpoint {path} with weights_only=True: {exc}") from exc


def extract_state_dict(checkpoint):
    """The model weights of a checkpoint: ``checkpoint['state_dict']`` or the dict itself."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        return checkpoint["state_dict"]
    if isinstance(checkpoint, dict) and all(torch.is_tensor(v) for v in checkpoint.values()):
        return checkpoint
    raise ValueError("checkpoint holds neither a 'state_dict' entry nor a plain state dict")


def checkpoint_norm_semantics(checkpoint):
    """The ``--norm_semantics`` a checkpoint was trained with, or ``None`` when it does not
    say (official checkpoints, bare state dicts, ours from before the flag existed)."""
    if not isinstance(checkpoint, dict):
        return None
    mode = checkpoint.get("norm_semantics")
    args = checkpoint.get("args")
    if mode is None and isinstance(args, dict):
        mode = args.get("norm_semantics")
    return mode if isinstance(mode, str) else None


def strip_module_prefix(state_dict):
    """Remove one leading ``module.`` (the DDP wrapper's prefix) from every key that has it."""
    return {k[len(MODULE_PREFIX):] if k.startswith(MODULE_PREFIX) else k: v
            for k, v in state_dict.items()}


def unwrap_model(model):
    """The bare model inside DDP / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


@dataclass
class LoadReport:
    """What :func:`load_state_dict_forgiving` did."""

    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)      # in the model, not in the file
    unexpected: list = field(default_factory=list)   # in the file, not in the model
    mismatched: list = field(default_factory=list)   # (key, file shape, model shape)

    @property
    def complete(self):
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self):
        lines = [f"loaded {len(self.loaded)} tensors"]
        if self.missing:
            lines.append(f"missing in checkpoint ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"unused from checkpoint ({len(self.unexpected)}): "
                         f"{', '.join(self.unexpected)}")
        for key, file_shape, model_shape in self.mismatched:
            lines.append(f"shape mismatch {key}: checkpoint {file_shape} vs model {model_shape}")
        return "\n".join(lines)


def load_state_dict_forgiving(model, state_dict, log=True):
    """Copy every tensor whose name and shape match; list everything else.

    The model may be wrapped in DDP; ``module.`` prefixes on either side are handled by
    stripping them from the file and loading into the unwrapped model.
    """
    target = unwrap_model(model)
    source = strip_module_prefix(state_dict)
    own = target.state_dict()
    report = LoadReport()
    merged = {}
    for key, value in own.items():
        if key not in source:
            report.missing.append(key)
            merged[key] = value
        elif tuple(source[key].shape) != tuple(value.shape):
            report.mismatched.append((key, tuple(source[key].shape), tuple(value.shape)))
            merged[key] = value
        else:
            report.loaded.append(key)
            merged[key] = source[key]
    report.unexpected = [k for k in source if k not in own]
    target.load_state_dict(merged, strict=True)
    if log:
        logger = get_logger()
        (logger.info if report.complete else logger.warning)(report.summary())
    return report
