"""What the benchmark scripts share: a median timer and the JSON + Markdown report."""

import json
import statistics
import time
from pathlib import Path


def median_seconds(function, repeats, clock=time.perf_counter):
    """Median over ``repeats`` calls of ``function`` of the time ``clock`` measures (wall
    time by default; ``time.process_time`` for this process's CPU time)."""
    times = []
    for _ in range(repeats):
        start = clock()
        function()
        times.append(clock() - start)
    return statistics.median(times)


def report(results, table, out=None):
    """Print ``results`` as JSON and the Markdown ``table``; also write the JSON to ``out``."""
    text = json.dumps(results, indent=2)
    print(text)
    print()
    print(table)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
