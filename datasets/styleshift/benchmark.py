"""``generate_benchmark``: write the style-shift benchmark to disk in the real dataset formats.

Layout of ``<root>``::

    manifest.json                    what was generated, with which parameters
    gtav/                            source style, GTAV format: train + val (folder "valid")
    <style>/                         each target style, Cityscapes format, split "val",
                                     city "<style>" (one style may be BDD-100K format)

Two sets of scene layouts are drawn: "train" (source training images only) and "heldout".
The source val split and every target style render the *same* held-out layouts (the first
``n_val`` / ``n_target`` of them), so their label maps are identical and the domains differ
in appearance only. Every image depends only on (seed, set, index, style): generation is
deterministic whatever the number of worker processes, and byte-identical between runs.
"""

import hashlib
import json
import multiprocessing
import os
import shutil
import time
import zlib
from pathlib import Path

import numpy as np
from datasets.readers import single_threaded_opencv
from utils.cpus import pool_size
from utils.labels import NUM_CLASSES
from utils.logging import get_logger
from utils.progress import progress as progress_bar

from .formats import write_bdd_sample, write_cityscapes_sample, write_gtav_sample
from .scene import render_scene
from .styles import SOURCE_STYLE, STYLES, TARGET_STYLES, render_style

GENERATOR_VERSION = 1  # bump whenever the generated files change for the same parameters
MANIFEST = "manifest.json"
SOURCE_DIR = "gtav"


def code_fingerprint():
    """Hash of the generator's source: the ``*.py`` files of this package (incl. the format
    writers, ``formats.py``), nothing else (no test code).

    Part of the cache key, so that editing a style or a scene never leaves stale images
    behind, even if ``GENERATOR_VERSION`` was not bumped.
    """
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def layout_rng(seed, layout_set, index):
    """Generator of layout ``index`` of set ``layout_set`` ("train", "heldout", ...)."""
    return np.random.default_rng([seed, zlib.crc32(layout_set.encode()), index])


def style_rng(seed, layout_set, index, style):
    """Generator of the per-image style draws of that layout rendered in ``style``."""
    return np.random.default_rng([seed, zlib.crc32(layout_set.encode()), index,
                                  zlib.crc32(style.encode())])


def generate_benchmark(root, seed=0, size=(256, 512), n_train=400, n_val=50, n_target=50,
                       target_styles=None, bdd_style="night", workers=None, progress=True):
    """Generate (or reuse) the benchmark under ``root``; returns the manifest dict.

    Args:
        root: output folder; only its ``manifest.json`` and the dataset folders the manifest
            names are ever written or deleted.
        seed: non-negative int; the same seed gives byte-identical files.
        size: (H, W) of every image.
        n_train, n_val: source (GTAV-format) training / validation images.
        n_target: images per target style.
        target_styles: names from ``TARGET_STYLES`` (default: all of them).
        bdd_style: a target style written in BDD-100K format instead of Cityscapes format
            (ignored if it is not among ``target_styles``; None: all Cityscapes).
        workers: processes (default: one per CPU core, at most 8; 1 = in this process).
        progress: show a tqdm bar.

    If ``<root>/manifest.json`` exists, is complete, has the same parameters, generator
    version and source-code fingerprint, and all its files exist, nothing is generated. The
    returned manifest
    holds absolute dataset roots under ``source["root"]`` and ``targets[name]["root"]``.
    """
    root = Path(root)
    params = _checked_params(seed, size, n_train, n_val, n_target, target_styles, bdd_style)
    cached = _read_manifest(root)
    if cached is not None and _is_current(root, cached, params):
        return _with_roots(root, cached)
    if cached is not None:  # never silently: say what changed
        changed = [f"{key} {cached.get('params', {}).get(key)} -> {value}"
                   for key, value in params.items() if cached.get("params", {}).get(key) != value]
        get_logger().warning(f"regenerating the benchmark in {root}: "
                             + ("; ".join(changed) or "the cached one is incomplete"))

    dirs = [SOURCE_DIR] + params["target_styles"]
    _clear_outputs(root, dirs, cached)
    _write_manifest(root, {"generator": "styleshift", "version": GENERATOR_VERSION,
                           "complete": False, "params": params, "dirs": dirs})
    start = time.perf_counter()
    units = _work_units(root, params)
    class_pixels = {"train": np.zeros(NUM_CLASSES, np.int64),
                    "heldout": np.zeros(NUM_CLASSES, np.int64)}
    files = []
    for layout_set, counts, written in _run(units, workers, progress):
        class_pixels[layout_set] += counts
        files += written
    manifest = _manifest(params, dirs, files, class_pixels, time.perf_counter() - start)
    _write_manifest(root, manifest)
    return _with_roots(root, manifest)


def _checked_params(seed, size, n_train, n_val, n_target, target_styles, bdd_style):
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    height, width = (int(v) for v in size)
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_target", n_target)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    styles = list(TARGET_STYLES if target_styles is None else target_styles)
    unknown = [name for name in styles if name not in TARGET_STYLES]
    if unknown or not styles or len(set(styles)) != len(styles):
        raise ValueError(f"target_styles must be distinct names from {list(TARGET_STYLES)}, "
                         f"got {styles!r}")
    if bdd_style is not None and bdd_style not in TARGET_STYLES:
        raise ValueError(f"bdd_style must be None or one of {list(TARGET_STYLES)}, "
                         f"got {bdd_style!r}")
    return {"seed": int(seed), "size": [height, width], "n_train": int(n_train),
            "n_val": int(n_val), "n_target": int(n_target), "target_styles": styles,
            "bdd_style": bdd_style if bdd_style in styles else None,
            "code": code_fingerprint()}


def _read_manifest(root):
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("generator") != "styleshift":
        raise ValueError(f"{path} exists but is not a style-shift manifest; choose another "
                         f"root or remove it")
    return manifest


def _is_current(root, manifest, params):
    return (manifest.get("complete") and manifest.get("version") == GENERATOR_VERSION
            and manifest.get("params") == params
            and all((root / name).is_file() for name in manifest.get("files", [])))


def _clear_outputs(root, dirs, previous):
    """Delete the dataset folders of a previous run; refuse to touch anything else."""
    owned = set(previous.get("dirs", [])) if previous else set()
    for name in sorted(owned):
        if name and "/" not in name and "\\" not in name and name not in (".", ".."):
            shutil.rmtree(root / name, ignore_errors=True)
    for name in dirs:
        path = root / name
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} exists and was not written by the style-shift "
                                  f"generator (no manifest lists it); remove it or choose "
                                  f"another root")


def _write_manifest(root, manifest):
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, root / MANIFEST)


def _work_units(root, params):
    """One unit per layout: (root, params, layout set, index, [(style, dataset), ...]).

    Held-out layouts (rendered in every style, the slowest units) come first, so that the
    pool does not end waiting on them.
    """
    n_train, n_val, n_target = params["n_train"], params["n_val"], params["n_target"]
    units = []
    for i in range(max(n_val, n_target)):
        outputs = [(SOURCE_STYLE, "gtav")] if i < n_val else []
        if i < n_target:
            outputs += [(style, "bdd100k" if style == params["bdd_style"] else "cityscapes")
                        for style in params["target_styles"]]
        units.append((str(root), params, "heldout", i, outputs))
    units += [(str(root), params, "train", i, [(SOURCE_STYLE, "gtav")]) for i in range(n_train)]
    return units


def _render_unit(unit):
    """Render one layout in its styles and write the files; runs in a worker process."""
    root, params, layout_set, index, outputs = unit
    root = Path(root)
    seed = params["seed"]
    layout, train_ids = render_scene(layout_rng(seed, layout_set, index), params["size"])
    written = []
    for style, dataset in outputs:
        image = render_style(layout, style, style_rng(seed, layout_set, index, style))
        if dataset == "gtav":
            split = "train" if layout_set == "train" else "val"
            number = index + 1 if split == "train" else params["n_train"] + index + 1
            paths = write_gtav_sample(root / SOURCE_DIR, split, f"{number:05d}", image,
                                      train_ids, folder="styleshift")
        elif dataset == "cityscapes":
            paths = write_cityscapes_sample(root / style, "val", style,
                                            f"{style}_{index:06d}_000019", image, train_ids)
        else:
            paths = write_bdd_sample(root / style, "val", f"{style}-{index:07d}", image,
                                     train_ids)
        written += [str(Path(path).relative_to(root)) for path in paths]
    counts = np.bincount(train_ids.ravel(), minlength=256)[:NUM_CLASSES]
    return layout_set, counts, written


def _run(units, workers, progress):
    """Yield ``_render_unit`` results (in order), in a process pool when worth it."""
    if workers is None:
        workers = pool_size(8)
    bar = progress_bar(total=len(units), desc="style-shift benchmark", unit="scene",
                       disable=not progress)
    with bar:
        if workers <= 1 or len(units) < 8:
            for unit in units:
                yield _render_unit(unit)
                bar.update()
            return
        methods = multiprocessing.get_all_start_methods()
        # A forked child that uses OpenCV's thread pool, once the parent has, hangs on a lock
        # copied mid-use (seen in the test suite); one thread in the parent avoids the pool.
        single_threaded_opencv()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with context.Pool(workers) as pool:
            for result in pool.imap(_render_unit, units, chunksize=2):
                yield result
                bar.update()


def _manifest(params, dirs, files, class_pixels, seconds):
    n_val, n_target = params["n_val"], params["n_target"]
    targets = {}
    for style in params["target_styles"]:
        dataset = "bdd100k" if style == params["bdd_style"] else "cityscapes"
        targets[style] = {"dataset": dataset, "dir": style, "split": "val", "count": n_target,
                          "description": STYLES[style].description}
    return {
        "generator": "styleshift", "version": GENERATOR_VERSION, "complete": True,
        "params": params, "dirs": dirs,
        "source": {"style": SOURCE_STYLE, "dataset": "gtav", "dir": SOURCE_DIR,
                   "splits": {"train": params["n_train"], "val": n_val},
                   "description": STYLES[SOURCE_STYLE].description},
        "targets": targets,
        "shared_layouts": min(n_val, n_target),
        "class_pixels": {name: counts.tolist() for name, counts in class_pixels.items()},
        "seconds": round(seconds, 2),
        "files": sorted(files),
    }


def _with_roots(root, manifest):
    """The manifest with absolute ``root`` entries for the source and each target."""
    manifest = json.loads(json.dumps(manifest))  # a private deep copy
    base = root.resolve()
    manifest["root"] = str(base)
    manifest["source"]["root"] = str(base / manifest["source"]["dir"])
    for entry in manifest["targets"].values():
        entry["root"] = str(base / entry["dir"])
    return manifest
