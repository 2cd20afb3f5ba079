"""Progress bars for people at a terminal, plain periodic lines for log files.

A tqdm bar redraws itself with carriage returns and escape codes: fine on a terminal, noise
in a redirected log (SLURM, nohup, ``> run.log``). :func:`progress` gives a tqdm bar when its
stream is a terminal and a :class:`PlainProgress` otherwise, which prints one ordinary line
at most every :data:`PLAIN_INTERVAL_S` seconds. Both take the same calls (iteration,
``update``, ``set_postfix``, ``close``).
"""

import sys
import time

from tqdm import tqdm

PLAIN_INTERVAL_S = 60.0  # seconds between two plain progress lines


def is_terminal(stream):
    """Whether ``stream`` is an interactive terminal (False for files, pipes, closed ones)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class PlainProgress:
    """The part of tqdm's interface used here, as plain lines: ``desc: n/total (p%), rate``.

    A line is printed when at least ``interval`` seconds passed since the previous one, and
    a last one on :meth:`close` when any was printed (so a long loop's log ends on its
    total; a short one prints nothing).
    """

    def __init__(self, iterable=None, *, total=None, desc="", initial=0, unit="it",
                 interval=PLAIN_INTERVAL_S, file=None):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.file = file
        self.n = self.start_n = initial
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.printed = 0

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def __len__(self):
        return self.total or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._print(now)

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        values = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{key} {value}" for key, value in values.items())

    def close(self):
        if self.printed and self.n != self._printed_n:
            self._print(time.monotonic())

    def _print(self, now):
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        percent = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        elapsed = now - self.start
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        line = f"{self.desc}: {done} {self.unit}{percent}, {rate:.2f} {self.unit}/s"
        stream = self.file or sys.stderr
        print(line + (f", {self.postfix}" if self.postfix else ""), file=stream, flush=True)
        self.printed += 1
        self._printed_n = self.n

    _printed_n = None


def progress(iterable=None, *, total=None, desc="", initial=0, unit="it", disable=False,
             leave=True, file=None):
    """A tqdm bar on a terminal, :class:`PlainProgress` lines elsewhere, nothing if
    ``disable``. ``file``: the stream (default stderr, read when called)."""
    stream = file or sys.stderr
    if disable:
        return tqdm(iterable, total=total, disable=True)
    if is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, initial=initial, unit=unit, leave=leave,
                    dynamic_ncols=True, file=stream)
    return PlainProgress(iterable, total=total, desc=desc, initial=initial, unit=unit,
                         file=file)
