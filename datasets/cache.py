"""Precomputed per-dataset data (centroids, GTAV size checks): fingerprints, JSON cache, pool.

A cache file is named after what it holds and a fingerprint of the dataset's file list
(DECISIONS.md D5), e.g. ``gtav_train_tile1024_3f2a...json``. The fingerprint hashes every
pair's root-relative paths and byte sizes, so adding, removing, renaming or rewriting a file
gives a new fingerprint and the data are recomputed; copies of a dataset at another root
share the cache. A file that cannot be parsed or does not match its name is recomputed with
a warning.
"""

import hashlib
import json
import os
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


from datasets.readers import single_threaded_opencv
from utils.dist import is_main_process
from utils.progress import progress

# 2: centroid caches also list the labels without a valid pixel (a new format gives new
# fingerprints, so files of the old one are simply not found and recomputed).
CACHE_FORMAT = 2


def files_fingerprint(samples, root):
    """Hex digest of the (image, label) file list: relative paths and byte sizes.

    Paths are hashed as their file-system bytes (UTF-8 with ``surrogateescape``), so a name
    that is not valid UTF-8 (PEP 383 surrogates in the ``str``) hashes like any other and
    valid names keep the digest they always had.
    """
    root = Path(root)
    digest = hashlib.sha1(f"format={CACHE_FORMAT}\n".encode())
    for sample in samples:
        for path in (sample.image, sample.label):
            digest.update(f"{Path(path).relative_to(root).as_posix()}\t"
                          f"{os.stat(path).st_size}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def cache_path(cache_dir, kind, fingerprint):
    """Cache file for ``kind`` (e.g. ``gtav_train_tile1024``) of the given file list."""
    return Path(cache_dir) / f"{kind}_{fingerprint[:16]}.json"


def load_cache(path, header):
    """Payload of the cache file at ``path`` if it exists and its header equals ``header``.

    Returns None when the file is missing (silently) or unusable (with a warning), i.e.
    whenever the caller must recompute.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text())
        stored_header = content["header"]
        payload = content["payload"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        warnings.warn(f"cache file {path} is corrupt ({error!r}); recomputing it",
                      RuntimeWarning, stacklevel=2)
        return None
    if stored_header != header:
        warnings.warn(f"cache file {path} does not match this dataset (stored {stored_header}, "
                      f"expected {header}); recomputing it", RuntimeWarning, stacklevel=2)
        return None
    return payload


def save_cache(path, header, payload):
    """Write ``{"header": ..., "payload": ...}`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"header": header, "payload": payload}, handle, separators=(",", ":"))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def parallel_map(function, items, workers, desc):
    """``[function(item) for item in items]`` on a process pool, with a tqdm bar.

    ``function`` must be a module-level function (it is pickled by name). With
    ``workers <= 1`` or a single item everything runs in this process. The bar shows on
    rank 0 (plain lines when stderr is not a terminal). The first failure is raised at once:
    the work still queued is cancelled.
    """
    items = list(items)
    bar = dict(total=len(items), desc=desc, unit="file", leave=False,
               disable=not is_main_process())
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in progress(items, **bar)]
    chunksize = max(1, min(64, len(items) // (workers * 4)))
    single_threaded_opencv()  # forked workers must not inherit OpenCV's thread pool
    pool = ProcessPoolExecutor(max_workers=min(workers, len(items)))
    try:
        results = list(progress(pool.map(function, items, chunksize=chunksize), **bar))
    except BaseException:
        # An unreadable file: drop the queued work and report now, not after the last file.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
