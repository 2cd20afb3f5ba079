"""``python -m torch.distributed.run`` for the shell scripts, ending a failure in one line.

    python scripts/_launch.py SCRIPT_NAME [torchrun arguments] ENTRY.py [its arguments]

Runs torch.distributed.run in this process (no ``torchrun`` executable on ``PATH`` needed).
The processes' stderr passes through this launcher line by line, which remembers the last
``train.py: ...`` / ``valid.py: ...`` / ``infer.py: ...`` line; when a process fails,
torchrun's ChildFailedError (a traceback and a table, about 30 lines) is replaced by that
line, printed last, and the launcher exits with the failed process's exit code. torchrun's
own one-line log entries stay.
"""

import os
import re
import sys
import threading

ENTRY_LINE = re.compile(r"^(train|valid|infer)\.py: ")
SIGNAL_EXIT_BASE = 128


def forward(source_fd, target_fd, last):
    """Copy lines from ``source_fd`` to ``target_fd``; keep the last entry-point line."""
    with os.fdopen(source_fd, "rb") as source:
        for line in source:
            os.write(target_fd, line)
            text = line.decode(errors="replace").rstrip("\n")
            if ENTRY_LINE.match(text):
                last[0] = text


def exit_code(failure):
    """A failed process's exit code as the shell reports it (signal N: 128 + N)."""
    code = failure.exitcode
    return SIGNAL_EXIT_BASE - code if code < 0 else (code or 1)


def main(argv):
    name, torchrun_args = argv[0], argv[1:]
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    terminal = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)  # this process and every child it starts write stderr to the pipe
    os.close(write_fd)
    last = [None]
    reader = threading.Thread(target=forward, args=(read_fd, terminal, last), daemon=True)
    reader.start()
    code, rank = 0, None
    try:
        run(parse_args(torchrun_args))
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        code = exit_code(failure)
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # the pipe's last writer is gone: the reader sees its end
        reader.join(timeout=10)
    if code:
        print(last[0] or f"{name}: process of rank {rank} failed with exit code {code} (its "
                         f"output is above)", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
