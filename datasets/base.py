"""The one base class of the five datasets.

A dataset subclass declares its identity (``name``, ``aliases``, ``env_var``, ``root_flag``;
collected by ``datasets/registry.py``), where its files are
(:meth:`SegmentationDataset.list_samples`) and how a label file becomes train ids
(``label_decoder``, one LUT lookup). Everything else lives here: layout checks with errors
that print the expected folder tree, reading, the transform preset
(``transforms/presets.py``), class-uniform epochs (``datasets/uniform.py``
:class:`~datasets.uniform.EpochEntries`) and per-item seeding.

Items are ONE dict shape in every mode: ``{"image": FloatTensor[3, H, W],
"label": LongTensor[H, W], "name": str}``, plus ``"image_aug"`` (same shape as ``image``)
for two-view training. Evaluation items (``training=False``) are full images normalised and
resized per ``eval_protocol``; training items are ``crop x crop`` crops.

Building a dataset only lists and pairs files. The heavy part of a training set (centroids
or the empty-label scan, both cached on disk) runs in :meth:`SegmentationDataset.prepare`,
which is idempotent; :meth:`~SegmentationDataset.set_epoch` (and so ``len`` and item access)
calls it if nobody did. Under DDP, call ``prepare()`` on rank 0 first, then on the other
ranks (they read the cache).

Determinism: every random draw of a training item (scale, crop, flip, rotation, jitter,
blur) comes from torch's RNG seeded with a hash of (seed, epoch, index) inside
:meth:`__getitem__` (the caller's RNG state is restored afterwards), and the class-uniform
epoch list is a function of (seed, epoch). The sources of a multi-source concatenation
also mix in their position (:meth:`SegmentationDataset.set_stream`, set by
``EpochConcatDataset``), so their items do not share draws. So any number of DataLoader
workers, any DDP rank and an exact resume produce the same samples. Epoch changes reach
DataLoader workers only when they are re-created, i.e. use ``persistent_workers=False``
(the default).
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from config import REPO_ROOT
from datasets.label_codes import EXPECTED_LABEL_VALUES
from datasets.label_scan import load_or_scan_empty_labels
from datasets.readers import DatasetReadError, load_train_ids, read_rgb_image
from datasets.uniform import EpochEntries, load_or_compute_centroids, seed_words
from transforms.normalization import EVAL_PROTOCOLS
from transforms.presets import TRAIN_PRESETS, EvalPreset, build_train_preset
from utils.empty_labels import check_empty_labels
from utils.logging import printable

GTAV_MISMATCH_MODES = ("drop", "resize")
DEFAULT_CACHE_DIR = REPO_ROOT / "logs" / "ckpt" / "cache"
# Every option of build_dataset and its default (the official values, DATASETS.md §8-9).
# Each default is its flag's (the official argparse's, docs/METHOD.md §7); recipe values such
# as the official scripts' 768 crop live in configs/ (tests/test_default_homes.py).
DEFAULT_OPTIONS = {
    "crop_size": 720, "scale_min": 0.5, "scale_max": 2.0, "pre_size": None,
    "crop_nopad": False, "rrotate": 0, "color_aug": 0.0, "gblur": False, "bblur": False,
    "class_uniform_pct": 0.0, "class_uniform_tile": 1024, "max_cu_epoch": 100000,
    "cache_dir": None, "eval_protocol": "robustnet", "gtav_mismatch": "drop", "seed": 304,
    "max_images": None, "centroid_workers": None, "train_preset": "blindnet",
}
# Options of the training transform preset (transforms/presets.py TrainPreset).
TRAIN_PRESET_OPTIONS = ("crop_size", "scale_min", "scale_max", "pre_size", "crop_nopad",
                        "rrotate", "color_aug", "gblur", "bblur")
_ITEM_SEED_TAG = 1  # the epoch RNG uses datasets.uniform.EPOCH_SEED_TAG


class DatasetLayoutError(FileNotFoundError):
    """A dataset root, split folder or file is missing; the message shows the expected tree.

    The message is made printable (file names that are not valid UTF-8 backslash-escaped).
    """

    def __init__(self, message):
        super().__init__(printable(message))


@dataclass(frozen=True)
class Sample:
    """One (image, label) pair; ``name`` is the image file name without its suffix."""

    image: Path
    label: Path
    name: str


def check_options(options, flag_prefix=""):
    """Merge ``options`` over :data:`DEFAULT_OPTIONS` and validate them (the one place).

    ``flag_prefix`` is put before option names in error messages (the CLI passes ``"--"``,
    so ``class_uniform_pct`` is reported as ``--class_uniform_pct``). Raises ValueError.
    """
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown dataset option(s) {unknown}; valid: {sorted(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    p = flag_prefix
    for key in ("crop_size", "class_uniform_tile"):
        if opts[key] <= 0:
            raise ValueError(f"{p}{key} must be positive, got {opts[key]}")
    if not 0 < opts["scale_min"] <= opts["scale_max"]:
        raise ValueError(f"need 0 < {p}scale_min <= {p}scale_max, got {opts['scale_min']}, "
                         f"{opts['scale_max']}")
    if opts["pre_size"] is not None and opts["pre_size"] <= 0:
        # 0 or less would scale every image to 1x1 pixel: crops of pure padding.
        raise ValueError(f"{p}pre_size must be positive (or unset), got {opts['pre_size']}")
    if not 0.0 <= opts["class_uniform_pct"] <= 1.0:
        raise ValueError(f"{p}class_uniform_pct must be in [0, 1], "
                         f"got {opts['class_uniform_pct']}")
    if opts["eval_protocol"] not in EVAL_PROTOCOLS:
        raise ValueError(f"{p}eval_protocol must be one of {EVAL_PROTOCOLS}, "
                         f"got {opts['eval_protocol']!r}")
    if opts["gtav_mismatch"] not in GTAV_MISMATCH_MODES:
        raise ValueError(f"{p}gtav_mismatch must be one of {GTAV_MISMATCH_MODES}, "
                         f"got {opts['gtav_mismatch']!r}")
    if opts["train_preset"] not in TRAIN_PRESETS:
        raise ValueError(f"{p}train_preset must be one of {TRAIN_PRESETS}, "
                         f"got {opts['train_preset']!r}")
    if opts["train_preset"] == "rein" and opts["class_uniform_pct"] > 0:
        raise ValueError(f"{p}class_uniform_pct {opts['class_uniform_pct']}: the rein "
                         f"preset (Rein's pipeline) has no class-centred crops; use 0")
    if opts["max_images"] is not None and opts["max_images"] <= 0:
        raise ValueError(f"{p}max_images must be positive or None, got {opts['max_images']}")
    return opts


class SegmentationDataset(Dataset):
    """Base class: see the module docstring for items, determinism and options.

    Subclasses set ``name``, ``aliases``, ``env_var``, ``root_flag``, ``split_folders``,
    ``layout`` and ``label_decoder`` and implement :meth:`list_samples`.
    """

    name = ""
    aliases = ()      # other accepted spellings of ``name`` (lower case)
    env_var = ""      # environment variable overriding the root
    root_flag = ""    # CLI flag of the root (train.py/valid.py/infer.py)
    root_name = ""    # folder of the default root under the data root ("": ``name``)
    # split -> folder names passed to list_samples
    split_folders = {"train": ("train",), "val": ("val",), "trainval": ("train", "val")}
    layout = ""
    # Module-level function (picklable for the centroid pool): label path -> (H, W) uint8.
    label_decoder = None

    def __init__(self, root, split, *, training, two_view=False, **options):
        opts = check_options(options)
        if split not in self.split_folders:
            raise ValueError(f"{self.name}: split must be one of {tuple(self.split_folders)}, "
                             f"got {split!r}")
        self.root = Path(root)
        self.split = split
        self.training = training
        self.two_view = two_view
        self.options = opts
        self.seed = opts["seed"]
        self.class_uniform_pct = opts["class_uniform_pct"]
        self.max_cu_epoch = opts["max_cu_epoch"]
        self.cache_dir = Path(opts["cache_dir"] or DEFAULT_CACHE_DIR)
        self.workers = opts["centroid_workers"] or min(8, os.cpu_count() or 1)
        # label path -> (W, H) for labels resized to their image when loaded (GTAV, D4).
        self.label_sizes = {}

        if not self.root.is_dir():
            raise self.layout_error(f"dataset root {self.root} does not exist")
        listed = []
        for folder in self.split_folders[split]:
            listed.extend(self.list_samples(folder))
        samples = sorted(self._pair(listed), key=lambda s: str(s.image))
        if opts["max_images"]:
            samples = samples[:opts["max_images"]]
        self.samples = self.check_samples(samples)

        self.eval_transform = EvalPreset(self.name, opts["eval_protocol"])
        self.train_transform = build_train_preset(
            opts["train_preset"], two_view, **{key: opts[key] for key in TRAIN_PRESET_OPTIONS}
        ) if training else None
        # Filled by prepare(): class-uniform centroids, the labels without a valid pixel and
        # the epoch wrapper.
        self.centroids = {}
        self.empty_labels = []
        self.epochs = None
        self.epoch, self.cut, self._entries = 0, False, None
        # Position in a multi-source concatenation (set_stream); 0 = the single-source seeds.
        self.stream = 0

    def prepare(self):
        """Do the heavy, cached set-up of a training set once; returns ``self``.

        Centroids (class-uniform) or the scan for labels without a valid pixel, both
        cached under ``cache_dir``; some such labels are a warning, a split of nothing but
        such labels raises :class:`~utils.empty_labels.EmptyLabelsError` (it would train
        with loss 0). Evaluation sets need nothing (they are checked as they are evaluated,
        ``engine/evaluation.py``). Idempotent.
        """
        if self.epochs is not None:
            return self
        if self.training:
            tile = self.options["class_uniform_tile"]
            if self.class_uniform_pct > 0:
                self.centroids, empty = load_or_compute_centroids(
                    self, tile, self.cache_dir, self.workers)
            else:
                empty = load_or_scan_empty_labels(self, self.cache_dir, self.workers)
            self.empty_labels = [self.samples[i].label for i in empty]
            check_empty_labels(self.name, self.split, self.root, self.empty_labels,
                               len(self.samples), self.expected_labels)
        pct = self.class_uniform_pct if self.training else 0.0
        self.epochs = EpochEntries(len(self.samples), self.centroids, pct, self.seed,
                                   stream=self.stream)
        return self

    def set_stream(self, stream):
        """Give this set its own random streams as part ``stream`` of a concatenation.

        Without it, item k of every source of a multi-source run would draw the same scale,
        crop, flip and jitter (and the class-uniform lists the same shuffles). Stream 0
        keeps the single-source seeds.
        """
        self.stream = int(stream)
        if self.epochs is not None:
            self.epochs.stream = self.stream
        self._entries = None

    @classmethod
    def root_folder(cls):
        """Name of the default root folder (``root_name`` or ``name``)."""
        return cls.root_name or cls.name

    @property
    def expected_labels(self):
        """What this dataset's label files must contain (named in empty-label reports)."""
        return EXPECTED_LABEL_VALUES.get(self.name, "")

    # ----------------------------------------------------------------- layout and pairing
    def list_samples(self, folder):
        """(image path, name, [label path candidates]) for every image of one split folder.

        Must raise :meth:`layout_error` for a missing or empty folder.
        """
        raise NotImplementedError

    def check_samples(self, samples):
        """Hook for dataset-specific checks of the paired samples (GTAV sizes, D4)."""
        return samples

    def layout_error(self, problem):
        """A :class:`DatasetLayoutError` for ``problem`` with the expected tree and the flags."""
        return DatasetLayoutError(
            f"{self.name} ({self.split}): {problem}\n"
            f"Expected layout under the {self.name} root ({self.root}):\n{self.layout}\n"
            f"Set the root with {self.root_flag or '--<name>_dir'} or ${self.env_var} "
            f"(default: <data root>/{self.root_folder()}, "
            f"data root = $BLINDNET_DATA_DIR or <repo>/data).")

    def require_dir(self, path, what):
        """``path`` if it is a directory, else a layout error naming ``what``."""
        if not Path(path).is_dir():
            raise self.layout_error(f"{what} not found: {path}")
        return Path(path)

    def list_files(self, folder, suffix, pattern=None):
        """Sorted files named ``*<suffix>`` in ``folder`` (or in its sub-folders matching
        ``pattern``, e.g. ``"*"``); a layout error if there are none."""
        folder = self.require_dir(folder, "folder")
        parents = [folder] if pattern is None else sorted(
            p for p in folder.glob(pattern) if p.is_dir())
        files = sorted(p for parent in parents for p in parent.iterdir()
                       if p.name.endswith(suffix) and p.is_file())
        if not files:
            where = folder if pattern is None else f"{folder}/{pattern}/"
            raise self.layout_error(f"no *{suffix} files in {where}")
        return files

    def _pair(self, listed):
        samples, missing = [], []
        for image, name, candidates in listed:
            label = next((c for c in candidates if c.is_file()), None)
            if label is None:
                missing.append((image, candidates))
            else:
                samples.append(Sample(Path(image), Path(label), name))
        if missing:
            image, candidates = missing[0]
            expected = " or ".join(str(c) for c in candidates)
            raise self.layout_error(
                f"{len(missing)} image(s) without a label, e.g. {image}: expected {expected}")
        return samples

    # ------------------------------------------------------------------------- reading
    def label_target_size(self, sample):
        """(W, H) the label of ``sample`` is resized to when loaded, or None (as stored)."""
        return self.label_sizes.get(sample.label)

    def load_label(self, sample):
        """Train ids of ``sample`` as (H, W) uint8 (resized per :meth:`label_target_size`)."""
        return load_train_ids(self.label_decoder, sample.label, self.label_target_size(sample))

    def load_pair(self, sample):
        """(PIL RGB image, (H, W) uint8 train ids) of ``sample``; sizes must agree."""
        image = read_rgb_image(sample.image)
        train_ids = self.load_label(sample)
        if (train_ids.shape[1], train_ids.shape[0]) != image.size:
            raise DatasetReadError(
                f"label {sample.label} is {train_ids.shape[1]}x{train_ids.shape[0]} but image "
                f"{sample.image} is {image.size[0]}x{image.size[1]} (W x H)")
        return image, train_ids

    # ------------------------------------------------------------------------- epochs
    def set_epoch(self, epoch):
        """Select the entries of ``epoch`` (class-uniform list, DATASETS.md §8.2).

        Calls :meth:`prepare` first if nobody did. The list depends only on (seed, epoch),
        so all DDP ranks agree, and its length is the same every epoch. ``cut``
        (epoch > max_cu_epoch) would keep only fine-annotated data; every supported dataset
        is fine-only, so it changes nothing and is recorded in ``self.cut`` for logging.
        """
        self.prepare()
        self.epoch = int(epoch)
        self.cut = self.epoch > self.max_cu_epoch
        self._entries = self.epochs.entries(self.epoch)

    @property
    def entries(self):
        """(L, 3) int64 (sample_index, x, y) of the current epoch (x = y = -1: random crop)."""
        if self._entries is None:
            self.set_epoch(self.epoch)
        return self._entries

    def item_seed(self, index):
        """64-bit seed of training item ``index`` in the current epoch."""
        sequence = np.random.SeedSequence(
            seed_words(self.seed, self.epoch, index, _ITEM_SEED_TAG, stream=self.stream))
        return int(sequence.generate_state(1, dtype=np.uint64)[0])

    @property
    def normalization(self):
        """(mean, std) of this dataset's evaluation images (to undo it for figures)."""
        return self.eval_transform.normalization

    # ------------------------------------------------------------------------- items
    def __len__(self):
        return len(self.entries) if self.training else len(self.samples)

    def __getitem__(self, index):
        """The item dict (module docstring) of entry ``index`` (sample ``index`` in eval)."""
        if not self.training:
            sample = self.samples[index]
            item = self.eval_transform(*self.load_pair(sample))
            item["name"] = sample.name
            return item
        sample_index, x, y = (int(v) for v in self.entries[index])
        sample = self.samples[sample_index]
        image, train_ids = self.load_pair(sample)
        centroid = None if x < 0 else (x, y)
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only (the transforms draw from it): torch.manual_seed would
            # also reseed every CUDA device, which fork_rng(devices=[]) does not restore.
            torch.default_generator.manual_seed(self.item_seed(index))
            item = self.train_transform(image, train_ids, centroid)
        item["name"] = sample.name
        return item

    def __repr__(self):
        mode = "train" if self.training else f"eval/{self.options['eval_protocol']}"
        views = "two-view" if self.two_view else "single-view"
        pairs = len(getattr(self, "samples", ()))  # repr may run before __init__ finished
        return (f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
                f"{mode}, {views}, {pairs} pairs)")
