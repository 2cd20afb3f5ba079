"""Atomic checkpoint writing and tolerant, safe checkpoint reading (DECISIONS.md D15, D16).

* :func:`atomic_save` writes to a temporary file in the target folder, flushes it to disk
  and renames it over the target, so a crash mid-save leaves the previous file intact.
* :func:`load_checkpoint` uses ``torch.load(weights_only=True)``: no arbitrary code runs. An
  empty, truncated or foreign file gets a :class:`CheckpointError` naming the path and what
  is wrong (never PyTorch's advice to turn ``weights_only`` off).
* A failed save raises :class:`CheckpointError` with the OS reason (e.g. ``No space left on
  device``) in one line; checkpoints get the umask's permissions, not the temp file's 0600.
* :func:`load_state_dict_forgiving` accepts official checkpoints (``module.`` prefixes,
  a raw state dict or ``{'state_dict': ...}``) and reports every key it could not use.
"""

import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from utils.logging import get_logger

MODULE_PREFIX = "module."
ZIP_MAGIC = b"PK\x03\x04"     # torch.save's default (zip) format
PICKLE_MAGIC = b"\x80"         # torch.save's legacy format starts with a pickle protocol opcode
MAX_LISTED = 10                # top-level entries an error message lists


class CheckpointError(RuntimeError):
    """A checkpoint file could not be read or written; the message names the path and why."""


def temp_prefix(path):
    """Name prefix of :func:`atomic_save`'s temporary files for ``path``."""
    return f".{Path(path).name}."


def _open_temp(fd):
    """The binary file object a save writes through (a seam for disk-full tests)."""
    return os.fdopen(fd, "wb")


def _umask():
    """The process umask, read without changing it where /proc allows (thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _os_error_in(exc):
    """The first OSError in ``exc``'s cause/context chain (torch wraps write errors)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def tensors_to_cpu(obj):
    """``obj`` with every tensor moved to the CPU (dicts, lists, tuples and named tuples walked;
    a state dict's ``_metadata`` kept). CPU tensors are returned as they are, not copied."""
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        moved = obj.copy()  # keeps the dict's type (OrderedDict, defaultdict)
        for key, value in obj.items():
            moved[key] = tensors_to_cpu(value)
        if hasattr(obj, "_metadata"):  # module versions load_state_dict reads
            moved._metadata = obj._metadata
        return moved
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(tensors_to_cpu(value) for value in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(tensors_to_cpu(value) for value in obj)
    return obj


def atomic_save(obj, path):
    """``torch.save(obj)`` to ``path`` atomically (temp file in its folder, then ``os.replace``).

    Every tensor is written from the CPU (:func:`tensors_to_cpu`), so a plain
    ``torch.load(path, map_location="cpu", weights_only=True)`` reads a GPU run's file on a
    machine without a GPU, and ``torch.load(path)`` never needs the saving device.

    Raises :class:`CheckpointError` ``could not save checkpoint PATH: <OS reason>`` when the
    write fails (the previous file stays intact and the temp file is removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with _open_temp(fd) as handle:
            torch.save(tensors_to_cpu(obj), handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; a checkpoint should be as readable as any file we write.
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, path)
    except BaseException as exc:
        # Whatever went wrong (disk full, KeyboardInterrupt), the old file stays untouched.
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        os_error = _os_error_in(exc) if isinstance(exc, Exception) else None
        if os_error is not None:
            reason = os.strerror(os_error.errno) if os_error.errno else str(os_error)
            raise CheckpointError(f"could not save checkpoint {path}: {reason}") from exc
        raise
    return path


def remove_stale_temp_files(folder, pattern="*.pth"):
    """Delete temporary files that an interrupted :func:`atomic_save` left in ``folder``.

    Only names :func:`atomic_save` produces (``.<name>.pth.<random>.tmp``) are touched.
    Returns the removed paths. Call it before anything saves into ``folder``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in sorted(folder.glob(f".{pattern}.*.tmp")):
        if tmp.is_file():
            tmp.unlink()
            removed.append(tmp)
    return removed


def _describe_unreadable(path, exc):
    """Our one-line reason why torch.load could not read ``path`` (an existing, non-empty file)."""
    if isinstance(exc, pickle.UnpicklingError):
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found:
            return (f"checkpoint {path} holds Python objects other than tensors and plain "
                    f"containers ({found.group(1)}); they are refused because loading them "
                    f"could run code from the file. Save a state dict instead.")
        return f"checkpoint {path} is corrupt (its pickled data cannot be read)"
    if isinstance(exc, EOFError):
        return f"checkpoint {path} is truncated (the file ends early; was it fully copied?)"
    return f"checkpoint {path} is corrupt or truncated (torch.load: {str(exc).splitlines()[0]})"


def load_checkpoint(path, map_location="cpu", mmap=False):
    """Load a checkpoint file safely (``weights_only=True``).

    ``mmap``: map the tensors instead of reading them (zip files; to look at a checkpoint's
    entries and shapes cheaply); the legacy format is read in full.
    Raises FileNotFoundError when ``path`` is missing and :class:`CheckpointError` (naming
    the path: empty, not a checkpoint, truncated, corrupt, unsafe objects) when it cannot
    be read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (check --snapshot/--resume)")
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head:
        raise CheckpointError(f"checkpoint {path} is an empty file (0 bytes), not a checkpoint")
    if not (head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_MAGIC)):
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (it starts with bytes "
                              f"{head!r}; torch.save files start with {ZIP_MAGIC!r})")
    if head.startswith(ZIP_MAGIC) and not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path} is truncated ({path.stat().st_size} bytes, "
                              f"the zip directory at its end is missing; was it fully copied?)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True,
                          mmap=mmap and head.startswith(ZIP_MAGIC))
    except Exception as exc:
        # from None: PyTorch's text advises weights_only=False, which is unsafe here.
        raise CheckpointError(_describe_unreadable(path, exc)) from None


def extract_state_dict(checkpoint, path=None):
    """The model weights of a checkpoint: ``checkpoint['state_dict']`` or the dict itself.

    Raises ValueError naming ``path`` (when given) and the entries the file does hold.
    """
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        return checkpoint["state_dict"]
    if isinstance(checkpoint, dict) and all(torch.is_tensor(v) for v in checkpoint.values()):
        return checkpoint
    held = (f"its top-level entries are {sorted(map(str, checkpoint))[:MAX_LISTED]}"
            if isinstance(checkpoint, dict) else f"it holds a {type(checkpoint).__name__}")
    raise ValueError(f"checkpoint{'' if path is None else f' {path}'} holds neither a "
                     f"'state_dict' entry nor a plain state dict ({held}); save "
                     f"{{'state_dict': model.state_dict()}} or the state dict itself")


def checkpoint_norm_semantics(checkpoint):
    """The ``--norm_semantics`` a checkpoint was trained with, or ``None`` when it does not
    say (official checkpoints, bare state dicts, ours from before the flag existed)."""
    if not isinstance(checkpoint, dict):
        return None
    mode = checkpoint.get("norm_semantics")
    flags = checkpoint.get("args")  # the flag values our checkpoints record
    if mode is None and isinstance(flags, dict):
        mode = flags.get("norm_semantics")
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

    def brief(self):
        """One line: how many tensors are missing / unused / mis-shaped, an example of each."""
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing in checkpoint (e.g. {self.missing[0]})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unused from checkpoint (e.g. "
                         f"{self.unexpected[0]})")
        if self.mismatched:
            key, file_shape, model_shape = self.mismatched[0]
            parts.append(f"{len(self.mismatched)} shape mismatch (e.g. {key}: checkpoint "
                         f"{file_shape} vs model {model_shape})")
        return "; ".join(parts) or f"all {len(self.loaded)} tensors fit"

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


# Top-level names of torchvision ImageNet classifiers (ResNet, MobileNetV2, ShuffleNetV2) that
# our segmenters do not have, and of our segmentation head, which those files never have.
IMAGENET_ROOTS = ("conv1", "bn1", "fc", "features", "classifier", "stage2", "conv5")
SEGMENTATION_HEAD_ROOTS = ("aspp", "bot_aspp", "bot_fine", "final1", "final2")
IMAGENET_CLASSES = 1000


def looks_like_imagenet_weights(state_dict):
    """Whether ``state_dict`` is a torchvision ImageNet classifier (or its trunk alone)."""
    roots = {key.split(".", 1)[0] for key in strip_module_prefix(state_dict)}
    if roots & set(SEGMENTATION_HEAD_ROOTS):
        return False
    heads = [v for k, v in strip_module_prefix(state_dict).items()
             if k.split(".", 1)[0] in ("fc", "classifier") and k.endswith("weight")]
    has_imagenet_head = any(v.dim() == 2 and v.shape[0] == IMAGENET_CLASSES for v in heads)
    return has_imagenet_head or bool(roots & set(IMAGENET_ROOTS))


def snapshot_mismatch(report, flag, path, arch, num_classes, wt_layer, allow_unused=True):
    """The one-line refusal when ``report`` leaves part of the model random (else None);
    the full list is ``report.summary()`` (for the log file).

    Missing or shape-mismatched tensors always count; tensors of the file the model does not
    use count unless ``allow_unused`` (``valid.py``). Training refuses them too: BatchNorm
    statistics left unused mean the file was trained with another ``--wt_layer``.
    """
    if not (report.missing or report.mismatched or (report.unexpected and not allow_unused)):
        return None
    return (f"{flag} {path} does not fit --arch {arch} ({num_classes} classes) with --wt_layer "
            f"{' '.join(map(str, wt_layer))}: {report.brief()}")
