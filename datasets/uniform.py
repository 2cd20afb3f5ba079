"""Class-uniform sampling (DATASETS.md §8): centroids per (image, tile, class) and epochs.

Centroids are computed once per dataset split and tile size, in parallel, and cached
(:mod:`datasets.cache`). Each epoch then mixes ``N - 19 * n_c`` random images with
``n_c = int(N * pct / 19)`` class-centred samples per class (:func:`build_epoch`).

Tiles (DECISIONS.md D6, same as the reference): only whole ``tile x tile`` windows at
origins ``(x * tile, y * tile)`` are used. With the official tile 1024, GTAV (1914x1052)
yields only its top-left 1024x1024 window and BDD (1280x720) and Synthia (1280x760) yield
no centroids at all, so their "class-uniform" epochs contain only the random part.

The centroid pass reads every label anyway, so it also records the labels without a single
valid pixel (cached with the centroids); ``datasets/label_scan.py`` does the same for
training without class-uniform sampling.
"""

import warnings

import numpy as np

from datasets.cache import cache_path, files_fingerprint, load_cache, parallel_map, save_cache
from datasets.readers import load_train_ids
from utils.labels import NUM_CLASSES

# Tag mixed into the epoch RNG seed (item seeds use another tag, datasets/base.py).
EPOCH_SEED_TAG = 2


def tile_centroids(train_ids, tile, num_classes=NUM_CLASSES):
    """Centroid of every class present in every whole tile of a train-id map.

    Args:
        train_ids: (H, W) uint8 array, values 0..num_classes-1 or 255 (ignored).
        tile: tile side; partial tiles at the right/bottom edge are ignored.

    Returns:
        (K, 3) int64 array of (x, y, class): the centre of mass of the class mask inside
        the tile, each coordinate truncated to an integer, in full-image pixels. Rows are
        ordered by tile (row-major), then class.
    """
    height, width = train_ids.shape
    tiles_y, tiles_x = height // tile, width // tile
    if tiles_y == 0 or tiles_x == 0:
        return np.zeros((0, 3), dtype=np.int64)
    covered = train_ids[:tiles_y * tile, :tiles_x * tile]
    # Labels are piecewise constant, so work on horizontal runs of equal value (a few
    # thousand per image) instead of a million pixels: a run starts where the value
    # changes or a tile begins; its pixel count and coordinate sums have closed forms.
    starts = np.empty(covered.shape, dtype=bool)
    np.not_equal(covered[:, 1:], covered[:, :-1], out=starts[:, 1:])
    starts[:, ::tile] = True
    rows, cols = np.nonzero(starts)  # row-major, so each run ends where the next begins
    lengths = np.diff(rows * covered.shape[1] + cols, append=covered.size)
    classes = covered[rows, cols].astype(np.int64)
    keep = classes < num_classes
    rows, cols, lengths, classes = rows[keep], cols[keep], lengths[keep], classes[keep]
    keys = ((rows // tile) * tiles_x + cols // tile) * num_classes + classes
    num_bins = tiles_y * tiles_x * num_classes
    counts = np.bincount(keys, weights=lengths, minlength=num_bins)
    # sum of x over a run [c, c + n) is n * (2c + n - 1) / 2; keep it doubled (integer).
    twice_sum_x = np.bincount(keys, weights=lengths * (2 * cols + lengths - 1),
                              minlength=num_bins)
    sum_y = np.bincount(keys, weights=rows * lengths, minlength=num_bins)
    present = np.nonzero(counts)[0]
    n = counts[present]
    # Integer sums are exact in float64, so flooring the mean matches the reference's
    # int(center_of_mass) + tile origin.
    x = np.floor(twice_sum_x[present] / (2 * n)).astype(np.int64)
    y = np.floor(sum_y[present] / n).astype(np.int64)
    return np.stack([x, y, present % num_classes], axis=1)


def file_centroids(task):
    """Pool worker: (label_decoder, label_path, resize_to or None, tile) -> ((K, 3) array,
    whether the label has any pixel of a valid train id anywhere, not only in whole tiles)."""
    label_decoder, label_path, resize_to, tile = task
    train_ids = load_train_ids(label_decoder, label_path, resize_to)
    return tile_centroids(train_ids, tile), bool((train_ids < NUM_CLASSES).any())


def group_by_class(per_file, num_classes=NUM_CLASSES):
    """Per-file (K, 3) arrays -> {class: (M, 3) int64 array of (sample_index, x, y)}."""
    chunks = [np.column_stack([np.full(len(rows), index), rows])
              for index, rows in enumerate(per_file) if len(rows)]
    if not chunks:
        return {}
    records = np.concatenate(chunks).astype(np.int64)  # (sample, x, y, class)
    return {int(c): records[records[:, 3] == c][:, :3]
            for c in range(num_classes) if np.any(records[:, 3] == c)}


def _centroids_from_payload(payload, num_samples, num_classes=NUM_CLASSES):
    """Parse and validate a cached payload -> (centroids, empty label indices).

    Raises ValueError (or TypeError, KeyError) if it is inconsistent.
    """
    empty = [int(i) for i in payload["empty_labels"]]
    if any(not 0 <= i < num_samples for i in empty):
        raise ValueError("empty_labels: index out of range")
    centroids = {}
    for key, records in payload["centroids"].items():
        cls = int(key)
        array = np.asarray(records, dtype=np.int64).reshape(-1, 3)
        if not 0 <= cls < num_classes or (len(array) and (
                array[:, 0].min() < 0 or array[:, 0].max() >= num_samples
                or array[:, 1:].min() < 0)):
            raise ValueError(f"class {key}: records out of range")
        centroids[cls] = array
    return centroids, empty


def load_or_compute_centroids(dataset, tile, cache_dir, workers):
    """Centroids of ``dataset`` for ``tile``: from the cache if valid, else computed and saved.

    ``dataset`` provides ``name``, ``split``, ``root``, ``samples``, ``label_decoder`` and
    ``label_target_size(sample)``. Returns ({class: (M, 3) int64 (sample_index, x, y)},
    sorted indices of the samples whose label has no valid pixel).
    """
    fingerprint = files_fingerprint(dataset.samples, dataset.root)
    kind = f"{dataset.name}_{dataset.split}_tile{tile}"
    header = {"kind": "centroids", "dataset": dataset.name, "split": dataset.split,
              "tile": tile, "fingerprint": fingerprint, "num_samples": len(dataset.samples)}
    path = cache_path(cache_dir, kind, fingerprint)
    payload = load_cache(path, header)
    if payload is not None:
        try:
            return _centroids_from_payload(payload, len(dataset.samples))
        except (ValueError, TypeError, KeyError) as error:
            warnings.warn(f"cache file {path} is corrupt ({error}); recomputing it",
                          RuntimeWarning, stacklevel=2)
    tasks = [(dataset.label_decoder, sample.label, dataset.label_target_size(sample), tile)
             for sample in dataset.samples]
    results = parallel_map(file_centroids, tasks, workers,
                           desc=f"centroids {dataset.name}/{dataset.split}")
    centroids = group_by_class([rows for rows, _ in results])
    empty = [index for index, (_, has_valid) in enumerate(results) if not has_valid]
    save_cache(path, header, {
        "centroids": {str(c): rows.tolist() for c, rows in centroids.items()},
        "empty_labels": empty})
    return centroids, empty


def build_epoch(num_samples, centroids, class_uniform_pct, rng, num_classes=NUM_CLASSES):
    """One epoch of training entries (DATASETS.md §8.2).

    Args:
        num_samples: N, the number of (image, label) pairs.
        centroids: {class: (M, 3) array of (sample_index, x, y)}.
        class_uniform_pct: fraction of class-centred entries.
        rng: ``numpy.random.Generator`` (seeded by the caller from (seed, epoch)).

    Returns:
        (L, 3) int64 array of (sample_index, x, y); x = y = -1 for random entries. The
        ``N - 19 * n_c`` random entries come first, then ``n_c`` entries per class that has
        centroids (cycling through its shuffled list when it has fewer). L is the same
        every epoch for a given centroid dict.
    """
    per_class = int(num_samples * class_uniform_pct / num_classes)
    num_random = num_samples - num_classes * per_class
    order = rng.permutation(num_samples)
    random_part = np.resize(order, num_random)  # cycles if num_random > N (never happens)
    parts = [np.column_stack([random_part, np.full((num_random, 2), -1)])]
    for cls in range(num_classes):
        records = centroids.get(cls)
        if records is None or len(records) == 0 or per_class == 0:
            continue
        picks = np.resize(rng.permutation(len(records)), per_class)
        parts.append(records[picks])
    return np.concatenate(parts).astype(np.int64)


def seed_words(*words, stream=0):
    """Entropy words of a seed; a source's ``stream`` in a multi-source concatenation is
    appended, so stream 0 (a single source) keeps the words, and the seeds, it always had."""
    return [*words, stream] if stream else list(words)


class EpochEntries:
    """The explicit epoch wrapper: the training entries of every epoch of one dataset.

    ``entries(epoch)`` -> (L, 3) int64 rows of (sample_index, x, y) (x = y = -1: random
    crop). With ``class_uniform_pct > 0`` the rows come from :func:`build_epoch` with an RNG
    seeded from (seed, epoch, and the source's ``stream`` in a concatenation) only, so all
    DDP ranks and any resume agree; otherwise each
    sample appears once, in order, every epoch.
    """

    def __init__(self, num_samples, centroids=None, class_uniform_pct=0.0, seed=0, stream=0):
        self.num_samples = num_samples
        self.centroids = centroids or {}
        self.class_uniform_pct = class_uniform_pct
        self.seed = seed
        self.stream = stream  # a source's own stream in a concatenation (0: single source)

    def entries(self, epoch):
        if self.class_uniform_pct > 0:
            rng = np.random.default_rng(
                seed_words(self.seed, int(epoch), 0, EPOCH_SEED_TAG, stream=self.stream))
            return build_epoch(self.num_samples, self.centroids, self.class_uniform_pct, rng)
        n = self.num_samples
        return np.column_stack([np.arange(n), np.full((n, 2), -1)]).astype(np.int64)
