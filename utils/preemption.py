"""Graceful stop on SIGTERM (cluster preemption, ``scancel``) and SIGINT (Ctrl-C).

The first signal only sets a flag; the training loop asks :meth:`StopSignal.should_stop`
after every step, which all-reduces the flag so that every rank stops after the same
iteration, saves ``last.pth`` there and exits with :data:`EXIT_PREEMPTED`. A second signal
exits at once with ``128 + signal number`` (the shell's code for death by that signal),
writing nothing; the last complete checkpoint stays intact (atomic saves).

Outside the training loop (start-up, data preparation, ``valid.py``, ``infer.py``, the exit
path) :func:`exit_on_second_signal` applies the same rule: the first signal raises (SIGINT:
KeyboardInterrupt, SIGTERM: ``SystemExit(143)``), so workers are stopped and locks released
on the way out; a second one, e.g. while that clean-up waits, exits at once. Both handlers
share one count, so a signal the training loop received counts as the first.

DataLoader workers ignore both signals (:func:`worker_init`): the main process shuts them down
itself, and a worker killed first would abort the main process before it could save.
"""

import os
import signal
import sys
from contextlib import contextmanager

import torch

from utils import dist as dist_utils

EXIT_PREEMPTED = 75  # sysexits.h EX_TEMPFAIL: "temporary failure, try again" (resume it)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """Context manager catching :data:`STOP_SIGNALS` while it is active (main thread only)."""

    def __init__(self, signals=STOP_SIGNALS):
        self.signals = tuple(signals)
        self.received = None     # the first signal's number, or None
        self._previous = {}

    def install(self):
        """Catch the signals from now on; returns self."""
        _RECEIVED.clear()
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self):
        """Put the previous handlers back (safe to call twice)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.restore()
        return False

    def _handle(self, signum, frame):
        if self.received is not None or _RECEIVED:
            _exit_now(signum)
        _RECEIVED.append(signum)
        self.received = signum

    def should_stop(self, device):
        """The signal any rank received (its number, 0 if none); every rank must call it at
        the same point and gets the same answer (a MAX all-reduce of one number per step)."""
        flag = torch.tensor([self.received or 0], device=device)
        if dist_utils.is_distributed():
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return int(flag.item())


# Signals received since exit_on_second_signal() was entered (shared with StopSignal).
_RECEIVED = []


def _exit_now(signum):
    """The second signal: exit with 128 + its number, no clean-up, nothing written."""
    try:
        sys.stderr.write(f"second signal ({signal.Signals(signum).name}): exiting now "
                         f"without saving\n")
        sys.stderr.flush()
    finally:
        os._exit(128 + signum)


def _first_signal_raises(signum, frame):
    if _RECEIVED:
        _exit_now(signum)
    _RECEIVED.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


@contextmanager
def exit_on_second_signal(signals=STOP_SIGNALS):
    """Within the block: the first stop signal raises, a second one exits at once (module
    docstring). Previous handlers come back afterwards; outside the main thread (where
    handlers cannot be set) it does nothing."""
    _RECEIVED.clear()
    try:
        previous = {signum: signal.signal(signum, _first_signal_raises) for signum in signals}
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def worker_init(inner, worker_id):
    """DataLoader ``worker_init_fn``: ignore stop signals, then run ``inner(worker_id)``.

    Use as ``functools.partial(worker_init, datasets.worker_init_fn)`` (picklable).
    """
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if inner is not None:
        inner(worker_id)


def signal_name(signum):
    """``SIGTERM`` for 15."""
    return signal.Signals(signum).name
