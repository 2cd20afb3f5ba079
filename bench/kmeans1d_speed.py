"""Exact 1-D k-means for the ISW mask: ours (utils.kmeans1d) against the ``kmeans1d`` package.

    python bench/kmeans1d_speed.py

The mask clusters the C*C entries of a variance matrix (4096, 65536, 262144 values for
C = 64, 256, 512; MobileNetV2 ISW uses k = 20 on C = 320). Prints the seconds per call and
whether both give the same labels. ``kmeans1d`` (RobustNet's dependency) is optional: when
it is not installed only our timings are printed.
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from utils.kmeans1d import kmeans_1d  # noqa: E402  (needs the repository root on sys.path)

CASES = ((64, 3), (256, 3), (512, 3), (320, 20), (512, 2))


def variance_like(channels, rng):
    """Zero on and below the diagonal, heavy-tailed positive values above (like ISW's V)."""
    values = np.zeros((channels, channels))
    upper = np.triu_indices(channels, 1)
    values[upper] = rng.gamma(0.5, 1e-3, size=len(upper[0]))
    return values.reshape(-1)


def seconds(function, repeats=3):
    best = np.inf
    for _ in range(repeats):
        tic = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - tic)
    return best, result


def main():
    try:
        import kmeans1d
    except ImportError:
        kmeans1d = None
    rng = np.random.default_rng(0)
    print("| C | k | values | ours (s) | kmeans1d (s) | same labels |")
    print("|---|---|---|---|---|---|")
    for channels, k in CASES:
        values = variance_like(channels, rng)
        ours, (labels, _) = seconds(lambda: kmeans_1d(values, k))
        if kmeans1d is None:
            theirs, same = "not installed", "-"
        else:
            data = values.tolist()
            elapsed, (other, _) = seconds(lambda: kmeans1d.cluster(data, k))
            theirs, same = f"{elapsed:.3f}", str(bool(np.array_equal(labels, other)))
        print(f"| {channels} | {k} | {values.size} | {ours:.3f} | {theirs} | {same} |")


if __name__ == "__main__":
    main()
