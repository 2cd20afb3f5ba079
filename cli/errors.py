"""The failures an entry point reports as one ``<script>.py: error: ...`` line (exit 1).

Each names the file (or flag) and what was expected: an unreadable or inconsistent dataset
file (also when a DataLoader worker raised it: :func:`utils.workers.error_message` strips
the worker's traceback), a missing dataset folder, a checkpoint that cannot be read or
written, an output that cannot be written, a run folder that belongs to another run, a
split without a valid label pixel. Anything else is a bug and keeps its traceback.
"""

from contextlib import contextmanager

from datasets import DatasetLayoutError, DatasetReadError
from engine.run_folder import RunFolderError
from utils.checkpoint import CheckpointError
from utils.empty_labels import EmptyLabelsError
from utils.logging import FILE_ONLY, get_logger
from utils.output import OutputError
from utils.workers import error_message

ONE_LINE_ERRORS = (DatasetReadError, DatasetLayoutError, CheckpointError, OutputError,
                   RunFolderError, EmptyLabelsError)


def error_line(script, exc):
    """``<script>.py: error: <reason>`` of ``exc`` (a worker's traceback removed)."""
    return f"{script}.py: error: {error_message(exc)}"


@contextmanager
def one_line_errors(script):
    """Turn :data:`ONE_LINE_ERRORS` raised inside the block into ``SystemExit`` (exit code 1,
    the one line on stderr; also written to the log file, if any)."""
    try:
        yield
    except ONE_LINE_ERRORS as exc:
        line = error_line(script, exc)
        get_logger().error(line, extra=FILE_ONLY)  # the run's log file says why it ended
        raise SystemExit(line) from None
