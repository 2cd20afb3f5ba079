"""DataLoader workers that never outlive a failure, and the one-line reason of their errors.

Training workers ignore SIGTERM/SIGINT (:func:`utils.preemption.worker_init`), so nobody but
the main process can stop them. When an exception leaves a loop over a loader (a worker's
read error, a NaN, a failed save, Ctrl-C), the loader's iterator stays referenced by the
traceback until the interpreter ends, and at exit ``multiprocessing`` terminates its
children with SIGTERM and joins them: forever. :func:`worker_batches` stops the workers
itself as soon as the exception leaves the loop (orderly first, SIGKILL for any left).

A worker's exception reaches the main process re-raised with its whole traceback as the
message (``Caught DatasetReadError in DataLoader worker process 0. Original Traceback
...``); :func:`error_message` gives back the original one-line reason.
"""

from contextlib import contextmanager

KILL_WAIT_S = 5.0  # seconds to wait for a SIGKILLed worker to be reaped


def stop_workers(iterator):
    """Shut down the worker processes of a DataLoader ``iterator`` (no-op without any).

    The loader's own shutdown first (workers exit their loop; it waits a few seconds per
    busy worker), then SIGKILL for any still alive: they ignore the SIGTERM the loader
    would send.
    """
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    for worker in getattr(iterator, "_workers", ()):
        if worker.is_alive():
            worker.kill()
            worker.join(KILL_WAIT_S)


@contextmanager
def worker_batches(loader):
    """``with worker_batches(loader) as batches: for batch in batches: ...``

    Iterates ``loader`` as usual; when any exception (or KeyboardInterrupt) leaves the
    ``with`` body, the loader's workers are stopped before it propagates.
    """
    iterator = iter(loader)
    try:
        yield iterator
    except BaseException:
        stop_workers(iterator)
        raise


_WORKER_HEADER = "in DataLoader worker process"


def error_message(exc):
    """The message of ``exc`` without the DataLoader worker's traceback around it.

    A worker's exception is re-raised in the main process as the same type whose message is
    ``Caught <Type> in DataLoader worker process N.`` followed by the formatted traceback;
    the traceback's last entry is ``<module>.<Type>: <original message>``. Any other
    exception's message is returned unchanged.
    """
    text = str(exc)
    first_line = text.split("\n", 1)[0]
    if not (text.startswith("Caught ") and _WORKER_HEADER in first_line):
        return text
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ in ("builtins", "__main__") else \
        f"{cls.__module__}.{cls.__qualname__}"
    start = text.rfind(f"\n{name}: ")
    if start < 0:
        return first_line
    return text[start + len(name) + 3:].rstrip("\n")
