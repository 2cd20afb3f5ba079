"""Output files and folders that fail with one line naming the path, its flag and the reason.

Every writer of a run (logs, ``args.json``, ``val_history.jsonl``, results, predictions,
figures) writes inside :func:`writing`, so a read-only, missing or full destination becomes
an :class:`OutputError` (``cannot write PATH (--flag): Read-only file system``) that the
entry points print as one ``<script>.py: error:`` line, instead of an OSError traceback.
:func:`ensure_writable_dir` probes a folder when a run starts, so a bad destination fails in
seconds, not after hours of training or evaluation. (Checkpoints have their own
``utils.checkpoint.CheckpointError``.)
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from utils.logging import printable


class OutputError(OSError):
    """An output file or folder cannot be written; the message names it and why."""

    def __init__(self, message):
        super().__init__(printable(message))

    def __str__(self):
        return self.args[0]


def describe(path, flag, exc):
    """``cannot write PATH (FLAG): reason`` for the OSError ``exc``."""
    reason = exc.strerror or str(exc)
    where = exc.filename if exc.filename not in (None, "") else path
    if exc.filename not in (None, "") and Path(str(exc.filename)) != Path(str(path)):
        reason = f"{reason}: {exc.filename}"
        where = path
    named = f" ({flag})" if flag else ""
    return f"cannot write {where}{named}: {reason}"


@contextmanager
def writing(path, flag=None):
    """Turn an OSError raised inside the block into :class:`OutputError` naming ``path``
    (and ``flag``, the option that chose it)."""
    try:
        yield Path(path)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(describe(path, flag, exc)) from exc


def ensure_writable_dir(path, flag=None):
    """Create the folder ``path`` (and its parents) and check that a file can be created in
    it; raises :class:`OutputError` otherwise. Returns the path."""
    path = Path(path)
    with writing(path, flag):
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    return path


def write_text(path, text, flag=None):
    """``Path(path).write_text(text)`` inside :func:`writing`."""
    with writing(path, flag):
        Path(path).write_text(text)
    return Path(path)
