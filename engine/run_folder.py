"""A run folder belongs to one run (docs/FAILURES.md).

:func:`open_run_dir` creates ``<ckpt>/<date>/<exp>`` and, on rank 0 only, locks it
(``utils.run_lock``: PID and host, a dead process's lock taken over with a warning) and
refuses a folder that holds another run's checkpoints unless ``--resume`` continues it; only
then does it remove the temporary files an interrupted save left there (another live run
could still be writing them). The other ranks wait for rank 0's verdict and raise the same
error, so a refusal never leaves them waiting on a collective.
"""

import shutil
from pathlib import Path

from utils import dist as dist_utils
from utils.checkpoint import remove_stale_temp_files
from utils.output import OutputError, ensure_writable_dir, writing
from utils.run_lock import RunLockError, acquire

MAX_LISTED = 4


class RunFolderError(RuntimeError):
    """The run folder is another run's (or locked by one); the message says what to do."""


def checkpoints_in(run_dir):
    """Names of the checkpoints (``*.pth``) in ``run_dir``, sorted."""
    return sorted(p.name for p in Path(run_dir).glob("*.pth") if p.is_file())


def check_owner(run_dir, resume):
    """Raise :class:`RunFolderError` when a run with ``resume`` (the ``--resume`` value) would
    overwrite another run's checkpoints in ``run_dir``.

    ``--resume auto`` continues the folder's ``last.pth``; ``--resume PATH`` continues that
    run; without ``--resume`` (or with ``auto`` and no ``last.pth``) the folder must hold no
    checkpoint.
    """
    found = checkpoints_in(run_dir)
    if not found or (resume is not None and resume != "auto"):
        return
    if resume == "auto" and "last.pth" in found:
        return
    listed = ", ".join(found[:MAX_LISTED]) + (", ..." if len(found) > MAX_LISTED else "")
    why = ("--resume auto finds no last.pth there to continue" if resume == "auto" else
           "this run would overwrite them and append to their history")
    raise RunFolderError(
        f"run folder {run_dir} holds the checkpoints of another run ({listed}); {why}. "
        f"Continue that run with --resume auto, or start a new one with another --exp or "
        f"--date")


def _claim(run_dir, resume, on_takeover):
    """Rank 0's part: (lock, removed temp files) or raise."""
    ensure_writable_dir(run_dir, "--ckpt")
    lock = acquire(run_dir, on_takeover=on_takeover)
    try:
        check_owner(run_dir, resume)
        removed = remove_stale_temp_files(run_dir)
    except BaseException:
        lock.release()
        raise
    return lock, removed


def open_run_dir(run_dir, *, is_main, resume, on_takeover=None):
    """Create and claim ``run_dir`` for this run; every rank calls it.

    Returns ``(lock, removed)``: rank 0's :class:`utils.run_lock.RunLock` (None elsewhere;
    release it when the run ends) and the stale temporary files it deleted. Raises
    :class:`RunFolderError` or ``utils.output.OutputError`` (rank 0's, on every rank).
    """
    lock, removed, failure = None, [], None
    if is_main:
        try:
            lock, removed = _claim(Path(run_dir), resume, on_takeover)
        except (OutputError, RunLockError, RunFolderError) as exc:
            failure = exc
    verdict = dist_utils.broadcast_object(None if failure is None else str(failure))
    if failure is not None:
        raise failure if isinstance(failure, (OutputError, RunFolderError)) else \
            RunFolderError(str(failure))
    if verdict is not None:
        raise RunFolderError(verdict)
    return lock, removed


def discard_run(run_dir):
    """Delete the run folder ``run_dir`` unless a live run holds it (then
    :class:`RunFolderError`): for a driver that owns its runs and re-runs them (demo.py)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return
    try:
        with writing(run_dir, "--ckpt"):
            acquire(run_dir, on_takeover=lambda message: None)  # refuses a live holder
            shutil.rmtree(run_dir)  # the lock goes with it
    except RunLockError as exc:
        raise RunFolderError(str(exc)) from None
