"""One run per run folder: a lock file holding the owner's PID and host.

:func:`acquire` creates ``<folder>/run.lock`` atomically (written to a temporary file, then
hard-linked to its name, which fails if it exists), so two runs started at the same moment
cannot both get it. A lock whose process is gone (same host, PID not alive: a run killed
with SIGKILL or by a second signal, which leaves no time to remove it) is taken over with a
warning; a lock of a live process, or of another host (whose processes cannot be checked),
refuses the new run with :class:`RunLockError` naming the holder.
"""

import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "run.lock"


class RunLockError(RuntimeError):
    """The folder is in use by another run; the message names it and the way out."""


def pid_alive(pid):
    """Whether a process with this PID exists on this host."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    except (OverflowError, ValueError):
        return False
    return True


def read_holder(path):
    """The lock's ``{"pid", "host", "started"}``, or None when it cannot be read or parsed."""
    try:
        holder = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and "pid" in holder and "host" in holder else None


def _link_new(path, record):
    """Create ``path`` holding ``record`` unless it exists (then FileExistsError)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(record))
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


@dataclass
class RunLock:
    """A held lock; :meth:`release` removes it (only while it is still this process's)."""

    path: Path
    pid: int

    def release(self):
        holder = read_holder(self.path)
        if holder is not None and holder.get("pid") == self.pid and \
                holder.get("host") == socket.gethostname():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def acquire(folder, what="run folder", on_takeover=None):
    """Lock ``folder`` (an existing directory) for this process; returns a :class:`RunLock`.

    ``on_takeover(message)`` is called when a stale lock of a dead process is replaced.
    Raises :class:`RunLockError` when a live process (or one on another host) holds it.
    OSError (e.g. a read-only folder) propagates.
    """
    path = Path(folder) / LOCK_NAME
    host, pid = socket.gethostname(), os.getpid()
    record = {"pid": pid, "host": host, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
        try:
            _link_new(path, record)
            return RunLock(path, pid)
        except FileExistsError:
            pass
        holder = read_holder(path)
        if holder is None:
            raise RunLockError(
                f"{what} {folder} holds a lock file {path} that cannot be read; if no run "
                f"uses this folder, delete it")
        stale = holder["host"] == host and (holder["pid"] == pid or not pid_alive(holder["pid"]))
        if not stale:
            raise RunLockError(
                f"{what} {folder} is in use by another run (PID {holder['pid']} on host "
                f"{holder['host']}, started {holder.get('started', '?')}): wait for it to "
                f"end, or use another --exp or --date. If that process is gone, delete {path}")
        if on_takeover is not None:
            on_takeover(f"{path} was left by PID {holder['pid']} on this host, which no longer "
                        f"runs (killed?); taking the folder over")
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    raise RunLockError(f"could not lock {what} {folder}: {path} keeps changing (another run "
                       f"starting at the same time?)")
