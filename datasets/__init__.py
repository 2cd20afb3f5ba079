"""Datasets: a registry of the five datasets and their two-view (``*_jitter``) variants.

    >>> train_set = build_dataset("gtav_jitter", "train", crop_size=768, class_uniform_pct=0.5)
    >>> val_set = build_dataset("cityscapes", "val", eval_protocol="robustnet")

Roots: ``root`` argument > ``BLINDNET_*_DIR`` environment variable > ``config.py`` default
(DECISIONS.md D13). See ``datasets/base.py`` for items, options and determinism.
"""

import random
from pathlib import Path

import numpy as np
import torch

from config import canonical_dataset_name, dataset_root
from datasets.base import DEFAULT_OPTIONS, DatasetLayoutError, Sample, SegmentationDataset
from datasets.bdd100k import BDD100K
from datasets.cityscapes import Cityscapes
from datasets.gtav import GTAV
from datasets.image_folder import ImageFolder
from datasets.mapillary import Mapillary
from datasets.readers import DatasetReadError
from datasets.synthia import Synthia
from utils.args import dataset_root_overrides

DATASET_CLASSES = {
    "gtav": GTAV,
    "synthia": Synthia,
    "cityscapes": Cityscapes,
    "bdd100k": BDD100K,
    "mapillary": Mapillary,
}
TWO_VIEW_SUFFIX = "_jitter"
DATASET_NAMES = tuple(DATASET_CLASSES) + tuple(f"{n}{TWO_VIEW_SUFFIX}" for n in DATASET_CLASSES)
TRAINING_SPLITS = ("train", "trainval")


def parse_dataset_name(name):
    """``"bdd-100k_jitter"`` -> ``("bdd100k", True)``; a clear error for unknown names."""
    two_view = name.lower().endswith(TWO_VIEW_SUFFIX)
    base = name[:-len(TWO_VIEW_SUFFIX)] if two_view else name
    try:
        return canonical_dataset_name(base), two_view
    except ValueError:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASET_NAMES} "
                         "(alias: bdd-100k)") from None


def is_two_view(name):
    """True for the two-view (BlindNet) ``*_jitter`` dataset names."""
    return parse_dataset_name(name)[1]


def build_dataset(name, split, root=None, *, training=None, **options):
    """Build dataset ``name`` (see :data:`DATASET_NAMES`) for ``split`` (train/val/trainval).

    Args:
        root: dataset root; None resolves it with ``config.dataset_root`` (env var, default).
        training: training items (dict, random crops) or evaluation items (tuple, full
            image); defaults to True for train/trainval splits and every ``*_jitter`` name.
        options: any of :data:`DEFAULT_OPTIONS` (crop_size, scale_min, ..., max_images).
    """
    canonical, two_view = parse_dataset_name(name)
    if training is None:
        training = two_view or split in TRAINING_SPLITS
    root = dataset_root(canonical) if root is None else root
    return DATASET_CLASSES[canonical](root, split, training=training, two_view=two_view,
                                      **options)


def worker_init_fn(worker_id):
    """DataLoader ``worker_init_fn``: seed ``random`` and NumPy's global RNG per worker.

    Dataset items use their own per-item RNG and need nothing here; this only keeps any
    other code that draws from the global RNGs from repeating one stream in every worker.
    It deliberately does not call ``cv2.setNumThreads``: in a forked worker whose parent has
    already used OpenCV's thread pool that call deadlocks.
    """
    seed = (torch.initial_seed() + worker_id) % 2**32
    random.seed(seed)
    np.random.seed(seed)


def options_from_args(args):
    """Dataset options from the ``utils/args.py`` namespace (training-set options).

    ``max_images`` is left out: quick runs set it explicitly. The cache directory defaults
    to ``<--ckpt>/cache`` (DECISIONS.md D5).
    """
    options = {key: getattr(args, key) for key in DEFAULT_OPTIONS
               if key not in ("max_images", "centroid_workers") and hasattr(args, key)}
    options["cache_dir"] = _cache_dir(args)
    return options


def eval_options_from_args(args):
    """Options of evaluation datasets: the protocol, GTAV mismatch policy and cache folder."""
    return {"eval_protocol": args.eval_protocol, "gtav_mismatch": args.gtav_mismatch,
            "cache_dir": _cache_dir(args)}


def build_eval_dataset(name, args):
    """The validation split of ``name`` as train.py, valid.py and infer.py evaluate it.

    Returns ``(canonical name, dataset)``; the root comes from the ``--<name>_dir`` flags,
    the environment or the default, the options from :func:`eval_options_from_args`.
    """
    base, _ = parse_dataset_name(name)
    root = dataset_root_overrides(args)[base]
    return base, build_dataset(base, "val", root=root, training=False,
                               **eval_options_from_args(args))


def _cache_dir(args):
    """``--cache_dir``, else ``<--ckpt>/cache`` (DECISIONS.md D5)."""
    if getattr(args, "cache_dir", None) is None and getattr(args, "ckpt", None):
        return Path(args.ckpt) / "cache"
    return getattr(args, "cache_dir", None)


__all__ = [
    "BDD100K", "Cityscapes", "DATASET_CLASSES", "DATASET_NAMES", "DEFAULT_OPTIONS",
    "DatasetLayoutError", "DatasetReadError", "GTAV", "ImageFolder", "Mapillary", "Sample",
    "SegmentationDataset", "Synthia", "build_dataset", "build_eval_dataset",
    "eval_options_from_args", "is_two_view",
    "options_from_args",
    "parse_dataset_name", "worker_init_fn",
]
