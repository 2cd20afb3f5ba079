"""Datasets: the registry of the datasets and their two-view (``*_jitter``) variants.

The five of the official code (GTAV, SYNTHIA, Cityscapes, BDD-100K, Mapillary) and the
adverse-condition targets (ACDC and its four conditions, Dark Zurich, Foggy Cityscapes).

    >>> train_set = build_dataset("gtav_jitter", "train", crop_size=768, class_uniform_pct=0.5)
    >>> train_set.prepare()        # centroids / empty-label scan (cached); set_epoch does it too
    >>> name, val_set = build_eval_dataset("cityscapes", eval_protocol="robustnet")

Identity (names, aliases, env vars, root flags, default roots) is declared by each dataset
class and collected in ``datasets/registry.py``. Roots: ``root`` argument >
``BLINDNET_*_DIR`` environment variable > ``<data root>/<name>`` (DECISIONS.md D13). See
``datasets/base.py`` for items, options, ``prepare()`` and determinism.
"""

import random

import numpy as np
import torch

from datasets.base import (
    DEFAULT_OPTIONS,
    DatasetLayoutError,
    Sample,
    SegmentationDataset,
    check_options,
)
from datasets.acdc import ACDC, CONDITIONS as ACDC_CONDITIONS
from datasets.bdd100k import BDD100K
from datasets.cityscapes import Cityscapes
from datasets.concat import EpochConcatDataset
from datasets.dark_zurich import DarkZurich
from datasets.foggy_cityscapes import BETAS as FOGGY_BETAS, DEFAULT_BETA, FoggyCityscapes
from datasets.foggy_cityscapes import beta_string as foggy_beta_string
from datasets.gtav import GTAV
from datasets.image_folder import ImageFolder
from datasets.mapillary import Mapillary
from datasets.readers import DatasetReadError, single_threaded_opencv
from datasets.registry import (
    DATASET_ALIASES,
    DATASET_CLASSES,
    DATASET_NAMES,
    TWO_VIEW_SUFFIX,
    canonical_dataset_name,
    dataset_root,
    default_root,
    parse_dataset_name,
    root_flag_dest,
    root_flags,
)
from datasets.synthia import Synthia

TRAINING_SPLITS = ("train", "trainval")


def build_dataset(name, split, root=None, *, training=None, **options):
    """Build dataset ``name`` (see :data:`DATASET_NAMES`) for ``split`` (train/val/trainval).

    Args:
        root: dataset root; None resolves it with :func:`dataset_root` (env var, default).
        training: training items (random crops) or evaluation items (full image); defaults
            to True for train/trainval splits and every ``*_jitter`` name.
        options: any of :data:`DEFAULT_OPTIONS` (crop_size, scale_min, ..., max_images).

    Lists and pairs the files only; training sets do their heavy set-up in ``prepare()``.
    """
    canonical, two_view = parse_dataset_name(name)
    if training is None:
        training = two_view or split in TRAINING_SPLITS
    root = dataset_root(canonical) if root is None else root
    return DATASET_CLASSES[canonical](root, split, training=training, two_view=two_view,
                                      **options)


def build_eval_dataset(name, root=None, *, eval_protocol="robustnet", gtav_mismatch="drop",
                       cache_dir=None, foggy_beta=DEFAULT_BETA):
    """The validation split of ``name`` as train.py, valid.py and infer.py evaluate it.

    ``root`` is the ``--<name>_dir`` value (None: environment variable, then default);
    ``foggy_beta`` (``--foggy_beta``) is the fog density of ``foggy_cityscapes`` (the only
    dataset with that option). Returns ``(canonical name, dataset)``.
    """
    base, _ = parse_dataset_name(name)
    extra = {"foggy_beta": foggy_beta} if DATASET_CLASSES[base] is FoggyCityscapes else {}
    return base, build_dataset(base, "val", root=dataset_root(base, root), training=False,
                               eval_protocol=eval_protocol, gtav_mismatch=gtav_mismatch,
                               cache_dir=cache_dir, **extra)


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


__all__ = [
    "ACDC", "ACDC_CONDITIONS", "BDD100K", "DEFAULT_BETA", "DarkZurich", "FOGGY_BETAS",
    "FoggyCityscapes", "foggy_beta_string",
    "Cityscapes", "DATASET_ALIASES", "DATASET_CLASSES", "DATASET_NAMES",
    "DEFAULT_OPTIONS", "DatasetLayoutError", "DatasetReadError", "EpochConcatDataset", "GTAV",
    "ImageFolder", "Mapillary", "Sample", "SegmentationDataset", "Synthia", "TWO_VIEW_SUFFIX",
    "build_dataset", "build_eval_dataset", "canonical_dataset_name", "check_options",
    "dataset_root", "default_root", "parse_dataset_name", "root_flag_dest", "root_flags",
    "single_threaded_opencv", "worker_init_fn",
]
