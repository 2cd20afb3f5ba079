"""Exact (globally optimal) k-means of one-dimensional data.

In one dimension every optimal clustering is a partition of the *sorted* values into k
contiguous runs, so k-means is a dynamic programme over split points:

    D_1(b) = cost(0, b),    D_j(b) = min_{j-1 <= a < b} D_{j-1}(a) + cost(a, b)

where ``cost(a, b)`` is the within-cluster sum of squares of sorted values ``a..b-1``
(from prefix sums, O(1) each). The smallest optimal split ``a*(b)`` is non-decreasing in
``b`` (the cost satisfies the quadrangle inequality), so each row is found by divide and
conquer in O(n log n): the middle ``b`` of a range is solved first and bounds the split of
both halves. All ranges of one recursion depth are solved together with vectorised numpy
(ragged candidate lists, segment minima), so a row costs about log2(n) array passes.
k rows make O(k n log n) work; 262,144 values (a 512 x 512 covariance) and k = 3 take well
under a second. RobustNet's ISW uses the ``kmeans1d`` package (SMAWK, O(kn)) for the same
exact optimum; see ``bench/kmeans1d_speed.py`` for the comparison.
"""

import numpy as np


def _segment_cost(prefix, prefix_sq, start, stop):
    """Within-cluster sum of squares of sorted values ``start..stop-1`` (arrays, stop > start)."""
    count = stop - start
    total = prefix[stop] - prefix[start]
    return (prefix_sq[stop] - prefix_sq[start]) - total * total / count


def _ragged_ranges(starts, counts):
    """Concatenation of ``arange(s, s + c)`` for every (s, c): ``(values, segment starts)``."""
    offsets = np.cumsum(counts) - counts
    values = np.arange(int(counts.sum())) - np.repeat(offsets, counts) + np.repeat(starts, counts)
    return values, offsets


def _next_row(previous, prefix, prefix_sq, clusters):
    """Row ``D_clusters`` and its smallest optimal splits from row ``D_{clusters-1}``."""
    n = len(prefix) - 1
    row = np.full(n + 1, np.inf)
    split = np.zeros(n + 1, dtype=np.int64)
    # Pending ranges: b in [b_lo, b_hi], split searched in [a_lo, a_hi]; a_lo <= b_lo - 1.
    b_lo, b_hi = np.array([clusters]), np.array([n])
    a_lo, a_hi = np.array([clusters - 1]), np.array([n - 1])
    while b_lo.size:
        mid = (b_lo + b_hi) // 2
        counts = np.minimum(a_hi, mid - 1) - a_lo + 1
        candidates, offsets = _ragged_ranges(a_lo, counts)
        ends = np.repeat(mid, counts)
        values = previous[candidates] + _segment_cost(prefix, prefix_sq, candidates, ends)
        best = np.minimum.reduceat(values, offsets)
        # The first candidate reaching the minimum of its range (the smallest optimal split).
        hits = np.flatnonzero(values == np.repeat(best, counts))
        best_split = candidates[hits[np.searchsorted(hits, offsets)]]
        row[mid], split[mid] = best, best_split
        left, right = b_lo <= mid - 1, mid + 1 <= b_hi
        b_lo, b_hi, a_lo, a_hi = (
            np.concatenate([b_lo[left], mid[right] + 1]),
            np.concatenate([mid[left] - 1, b_hi[right]]),
            np.concatenate([a_lo[left], best_split[right]]),
            np.concatenate([best_split[left], a_hi[right]]))
    return row, split


def kmeans_1d(values, k):
    """Optimal k-means clustering of 1-D ``values``.

    Args:
        values: array-like of n finite numbers (any shape; flattened).
        k: number of clusters, >= 1. Fewer clusters are used when n < k.

    Returns:
        ``(labels, centroids)``: int64 labels of shape ``(n,)`` (in the order of the
        flattened input) and float64 centroids of shape ``(min(k, n),)``. Labels are ordered
        by ascending centroid: label 0 is the cluster of the smallest values. Equal values
        at a boundary go to the lower cluster (first in a stable sort).
    """
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    if k < 1:
        raise ValueError(f"k-means needs k >= 1 clusters, got {k}")
    if data.size == 0:
        raise ValueError("k-means needs at least one value")
    if not np.isfinite(data).all():
        raise ValueError("k-means values must be finite (got NaN or Inf)")
    k = min(int(k), data.size)
    order = np.argsort(data, kind="stable")
    ordered = data[order]
    centred = ordered - ordered.mean()   # smaller prefix sums, less cancellation
    prefix = np.concatenate([[0.0], np.cumsum(centred)])
    prefix_sq = np.concatenate([[0.0], np.cumsum(centred * centred)])
    n = data.size
    stops = np.arange(1, n + 1)
    row = np.full(n + 1, np.inf)
    row[1:] = _segment_cost(prefix, prefix_sq, np.zeros(n, dtype=np.int64), stops)
    splits = []
    for clusters in range(2, k + 1):
        row, split = _next_row(row, prefix, prefix_sq, clusters)
        splits.append(split)
    # Walk the splits back from the full range: boundaries of clusters k-1, ..., 1.
    bounds, stop = [n], n
    for split in reversed(splits):
        stop = int(split[stop])
        bounds.append(stop)
    bounds.append(0)
    bounds = bounds[::-1]
    sorted_labels = np.repeat(np.arange(k), np.diff(bounds))
    labels = np.empty(n, dtype=np.int64)
    labels[order] = sorted_labels
    centroids = np.array([ordered[bounds[i]:bounds[i + 1]].mean() for i in range(k)])
    return labels, centroids
