"""Fixture writers of the adverse-condition targets, in their real on-disk layouts.

Like the writers of ``datasets/styleshift/formats.py`` (whose helpers they use) each
``write_*_sample`` takes an RGB image (H, W, 3) uint8 and train ids (H, W) uint8 (0..18 or
255), writes the files of one image as the release stores them and returns the paths.
Besides the label the loader reads, the files the release ships next to it are written too
(other label encodings, reference images, the other fog densities), so a loader that picks
the wrong file is caught:

* ACDC: ``rgb_anon/<condition>/<split>/<sequence>/<stem>_rgb_anon.png``, 8-bit train-id
  ``gt/.../<stem>_gt_labelTrainIds.png``; also ``_gt_labelIds.png`` (Cityscapes ids),
  ``_gt_labelColor.png`` and a ``<split>_ref`` reference image;
* Dark Zurich: the same naming under ``rgb_anon/val/night`` / ``gt/val/night``; also a day
  reference image under ``rgb_anon/val_ref/day``;
* Foggy Cityscapes: one ``<stem>_leftImg8bit_foggy_beta_<β>.png`` per β (each with its own
  fog, :func:`fog_fixture_image`) and the Cityscapes ``gtFine`` labelIds PNG.
"""

from pathlib import Path

import numpy as np

from datasets.acdc import CONDITIONS, IMAGE_SUFFIX, LABEL_SUFFIX
from datasets.foggy_cityscapes import BETAS, image_suffix
from datasets.label_codes import CITYSCAPES_ID_TO_TRAINID
from datasets.styleshift.formats import (
    CITYSCAPES_IGNORE_IDS,
    _check,
    _inverse,
    _save_png,
    encode_train_ids,
)
from tests.generated_data import ADVERSE_DATASETS, random_scene
from utils.labels import PALETTE



def _write_train_id_sample(image_dir, label_dir, stem, image, train_ids):
    """The ACDC / Dark Zurich file set of one image; returns (image path, label path)."""
    image, train_ids = _check(image, train_ids)
    image_path = _save_png(Path(image_dir) / f"{stem}{IMAGE_SUFFIX}", image)
    label_path = _save_png(Path(label_dir) / f"{stem}{LABEL_SUFFIX}", train_ids)
    ids = encode_train_ids(train_ids, _inverse(CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_IGNORE_IDS))
    _save_png(Path(label_dir) / f"{stem}_gt_labelIds.png", ids)
    _save_png(Path(label_dir) / f"{stem}_gt_labelColor.png", PALETTE[train_ids])
    return image_path, label_path


def write_acdc_sample(root, condition, split, sequence, stem, image, train_ids):
    """ACDC: ``rgb_anon|gt/<condition>/<split>/<sequence>/``; a ``<split>_ref`` image too."""
    if condition not in CONDITIONS:
        raise ValueError(f"ACDC condition must be one of {CONDITIONS}, got {condition!r}")
    root = Path(root)
    paths = _write_train_id_sample(root / "rgb_anon" / condition / split / sequence,
                                   root / "gt" / condition / split / sequence,
                                   stem, image, train_ids)
    _save_png(root / "rgb_anon" / condition / f"{split}_ref" / sequence
              / f"{stem}_rgb_ref_anon.png", 255 - np.asarray(image, dtype=np.uint8))
    return paths


def write_dark_zurich_sample(root, sequence, stem, image, train_ids):
    """Dark Zurich val: ``rgb_anon|gt/val/night/<sequence>/``; a day reference image too."""
    root = Path(root)
    paths = _write_train_id_sample(root / "rgb_anon" / "val" / "night" / sequence,
                                   root / "gt" / "val" / "night" / sequence,
                                   stem, image, train_ids)
    _save_png(root / "rgb_anon" / "val_ref" / "day" / f"{sequence}_ref"
              / f"{stem}_ref{IMAGE_SUFFIX}", 255 - np.asarray(image, dtype=np.uint8))
    return paths


def fog_fixture_image(image, beta):
    """The fixture's fogged image for density ``beta``: a blend towards grey, denser for a
    larger β (only so the β files differ; not the dataset's optical model)."""
    transmission = float(np.exp(-float(beta) * 40.0))
    fogged = np.asarray(image, dtype=np.float64) * transmission + 200.0 * (1 - transmission)
    return np.clip(np.rint(fogged), 0, 255).astype(np.uint8)


def write_foggy_cityscapes_sample(root, split, city, stem, image, train_ids, betas=BETAS):
    """Foggy Cityscapes: an image per β + ``gtFine/<split>/<city>/<stem>_gtFine_labelIds.png``.

    Returns ({β string: image path}, label path).
    """
    image, train_ids = _check(image, train_ids)
    root = Path(root)
    images = {}
    for beta in betas:
        suffix = image_suffix(beta)
        images[suffix[len("_leftImg8bit_foggy_beta_"):-len(".png")]] = _save_png(
            root / "leftImg8bit_foggy" / split / city / f"{stem}{suffix}",
            fog_fixture_image(image, beta))
    ids = encode_train_ids(train_ids, _inverse(CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_IGNORE_IDS))
    label_path = _save_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", ids)
    return images, label_path


def generate_adverse_dataset(name, root, num_images=2, size=(48, 64), seed=0,
                             splits=("train", "val")):
    """Random scenes of ``acdc`` (every condition), ``dark_zurich`` (val only) or
    ``foggy_cityscapes`` (every β) under ``root``.

    ``num_images`` per split (and per condition for ACDC), in two sequences / cities.
    Returns {stem: (H, W) uint8 ground-truth train ids}; stems are unique.
    """
    if name not in ADVERSE_DATASETS:
        raise ValueError(f"unknown adverse dataset {name!r}; expected one of {ADVERSE_DATASETS}")
    rng = np.random.default_rng(seed)
    truth = {}
    groups = ([(c, s) for c in CONDITIONS for s in splits] if name == "acdc"
              else [("night", "val")] if name == "dark_zurich" else [(None, s) for s in splits])
    for group, (condition, split) in enumerate(groups):
        for index in range(num_images):
            image, train_ids = random_scene(rng, size)
            sequence = f"GOPR{seed:02d}{group:01d}{index % 2}"
            stem = f"{sequence}_frame_{group:03d}{index:03d}"
            if name == "acdc":
                write_acdc_sample(root, condition, split, sequence, stem, image, train_ids)
            elif name == "dark_zurich":
                write_dark_zurich_sample(root, sequence, stem, image, train_ids)
            else:
                city = ("aachen", "bremen")[index % 2]
                stem = f"{city}_{seed:02d}{group:02d}{index:02d}_000019"
                write_foggy_cityscapes_sample(root, split, city, stem, image, train_ids)
            truth[stem] = train_ids
    return truth
