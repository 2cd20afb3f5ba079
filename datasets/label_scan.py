"""Which labels of a training set have no valid pixel (all ignore), cached per file list.

Why a cached scan at dataset construction rather than a check as batches are drawn: a
batch only sees a crop (an empty crop of a good label is normal), so only the whole label
tells; a check in ``__getitem__`` runs in DataLoader workers and could only report after a
whole epoch, after hours of training with loss 0. The scan reads every label once per file
list (in parallel, like the class-uniform centroid pass, which records the same facts and
is used instead when ``class_uniform_pct > 0``); later start-ups read a small JSON file
(``<cache_dir>/<dataset>_<split>_labelscan_<fingerprint>.json``).
"""

from datasets.cache import cache_path, files_fingerprint, load_cache, parallel_map, save_cache
from utils.labels import NUM_CLASSES
from datasets.readers import load_train_ids


def label_has_valid_pixel(task):
    """Pool worker: (label_decoder, label_path) -> True if any pixel has a train id 0..18."""
    label_decoder, label_path = task
    return bool((load_train_ids(label_decoder, label_path) < NUM_CLASSES).any())


def load_or_scan_empty_labels(dataset, cache_dir, workers):
    """Sorted indices into ``dataset.samples`` of the labels without a valid pixel.

    ``dataset`` provides ``name``, ``split``, ``root``, ``samples`` and ``label_decoder``.
    Resizing a label (GTAV size mismatches) cannot change whether it has a valid pixel, so
    labels are read as stored.
    """
    samples = dataset.samples
    fingerprint = files_fingerprint(samples, dataset.root)
    header = {"kind": "labelscan", "dataset": dataset.name, "split": dataset.split,
              "fingerprint": fingerprint, "num_samples": len(samples)}
    path = cache_path(cache_dir, f"{dataset.name}_{dataset.split}_labelscan", fingerprint)
    payload = load_cache(path, header)
    if (isinstance(payload, list) and all(isinstance(i, int) for i in payload)
            and all(0 <= i < len(samples) for i in payload)):
        return payload
    has_valid = parallel_map(label_has_valid_pixel,
                             [(dataset.label_decoder, s.label) for s in samples], workers,
                             desc=f"checking {dataset.name}/{dataset.split} labels")
    empty = [index for index, valid in enumerate(has_valid) if not valid]
    save_cache(path, header, empty)
    return empty
