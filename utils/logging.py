"""Rank-aware logging: rank 0 prints to the console, every rank may write its own log file."""

import logging
import sys
from pathlib import Path

from tqdm import tqdm

from utils.progress import is_terminal

LOGGER_NAME = "blindnet"


def printable(text):
    """``str(text)`` safe to write anywhere: undecodable file-name bytes as ``\\xNN``.

    On Linux a file name that is not valid UTF-8 (e.g. Latin-1 ``caf\\xe9.png``) becomes a
    ``str`` holding lone surrogates (PEP 383); writing it to a UTF-8 log file or stream
    raises ``UnicodeEncodeError``. Such bytes are shown backslash-escaped instead, valid
    names are returned unchanged.
    """
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _PrintableFormatter(logging.Formatter):
    """A formatter whose output never holds surrogates (see :func:`printable`)."""

    def format(self, record):
        return printable(super().format(record))


class _ConsoleHandler(logging.StreamHandler):
    """Console lines that do not break a progress bar: on a terminal they go through
    ``tqdm.write`` (which clears the bars, prints, and redraws them below)."""

    def emit(self, record):
        if not is_terminal(self.stream):
            return super().emit(record)
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # as StreamHandler: a logging failure never stops the program
            self.handleError(record)


# ``logger.info(..., extra=FILE_ONLY)``: the line goes to the log file, not the console
# (long listings the console names in one line, e.g. a checkpoint's key mismatch).
FILE_ONLY = {"file_only": True}


class _RankFilter(logging.Filter):
    """Drop console records on ranks other than 0 unless ``all_ranks`` is set."""

    def __init__(self, rank, all_ranks):
        super().__init__()
        self.rank = rank
        self.all_ranks = all_ranks

    def filter(self, record):
        record.rank = self.rank
        return self.all_ranks or self.rank == 0


class _ConsoleFilter(logging.Filter):
    """Drop the records marked :data:`FILE_ONLY`."""

    def filter(self, record):
        return not getattr(record, "file_only", False)


def setup_logging(rank=0, log_file=None, all_ranks=False, level=logging.INFO):
    """Configure the ``blindnet`` logger and return it.

    Args:
        rank: global rank of this process; only rank 0 logs to the console unless
            ``all_ranks`` is true.
        log_file: optional path; rank 0 writes it as given, other ranks (when
            ``all_ranks``) write ``<stem>_rank<r><suffix>`` beside it.
        all_ranks: let every rank print (prefixed with its rank).
        level: logging level.

    Calling it again replaces the handlers, so entry points and tests may call it freely.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()

    prefix = "[rank %(rank)s] " if all_ranks else ""
    fmt = _PrintableFormatter(prefix + "%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    console = _ConsoleHandler(sys.stdout)
    console.setFormatter(fmt)
    console.addFilter(_RankFilter(rank, all_ranks))
    console.addFilter(_ConsoleFilter())
    logger.addHandler(console)

    if log_file is not None and (rank == 0 or all_ranks):
        path = Path(log_file)
        if rank != 0:
            path = path.with_name(f"{path.stem}_rank{rank}{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(path)
        file_handler.setFormatter(_PrintableFormatter(
            "%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        file_handler.addFilter(_RankFilter(rank, True))
        logger.addHandler(file_handler)
    return logger


def get_logger():
    """The project logger (configure it once with :func:`setup_logging`)."""
    return logging.getLogger(LOGGER_NAME)
