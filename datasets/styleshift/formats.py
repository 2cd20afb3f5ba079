"""Writers of the five datasets' on-disk formats (the style-shift generator's output, and the
tests' fixtures).

Each ``write_*_sample`` takes an RGB image (H, W, 3) uint8 and train ids (H, W) uint8
(0..18 or 255), encodes the train ids in the dataset's native label format, creates the
folders and returns ``(image_path, label_path)``:

* GTAV: palette PNG whose index is the Cityscapes labelId and whose palette holds the
  official Cityscapes colours (ignore pixels use void ids whose colours are no class colour);
* Synthia: 16-bit, 3-channel PNG, Synthia class id in channel 0 (R), an instance id > 255
  in channel 1 (so a reader that drops the low byte is caught);
* Cityscapes: 8-bit labelIds PNG; ignore pixels use a mix of ids 0/4/6/9/14/18;
* BDD-100K: JPEG image, 8-bit train-id PNG;
* Mapillary: JPEG image, 66-id palette PNG; train ids with several source ids (road,
  sidewalk, pole, rider) and ignore pixels use a position-dependent mix of them.

Labels are always lossless; JPEG images are not. The dataset loaders never import this
module; random fixture datasets for the tests are ``tests/generated_data.py``.
"""

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from datasets.label_codes import (
    CITYSCAPES_ID_TO_TRAINID,
    MAPILLARY_ID_TO_TRAINID,
    SYNTHIA_ID_TO_TRAINID,
)
from utils.labels import IGNORE_LABEL, NUM_CLASSES

# Official Cityscapes colours of labelIds 0..33 (DATASETS.md §3.2), incl. polegroup = pole.
CITYSCAPES_ID_COLOURS = (
    (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (111, 74, 0), (81, 0, 81),
    (128, 64, 128), (244, 35, 232), (250, 170, 160), (230, 150, 140), (70, 70, 70),
    (102, 102, 156), (190, 153, 153), (180, 165, 180), (150, 100, 100), (150, 120, 90),
    (153, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35),
    (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 0, 90), (0, 0, 110), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)
# Raw ids written for ignore pixels (none decodes to a class).
CITYSCAPES_IGNORE_IDS = (0, 4, 6, 9, 14, 18)
GTAV_IGNORE_IDS = (0, 5, 6, 9, 14, 29)  # their colours are not among the 19 class colours
SYNTHIA_IGNORE_IDS = (0, 13, 14, 22)
MAPILLARY_IGNORE_IDS = (0, 4, 23, 49, 63, 65)
JPEG_QUALITY = 95


def _inverse(id_to_train, ignore_ids):
    """train id -> tuple of raw ids (all sources of that class; ignore -> ``ignore_ids``)."""
    sources = {t: tuple(sorted(r for r, tr in id_to_train.items() if tr == t))
               for t in range(NUM_CLASSES)}
    sources[IGNORE_LABEL] = tuple(ignore_ids)
    return sources


def encode_train_ids(train_ids, sources):
    """Map train ids to raw ids; classes with several sources alternate by pixel position."""
    train_ids = np.asarray(train_ids, dtype=np.uint8)
    bad = np.setdiff1d(np.unique(train_ids), list(sources))
    if bad.size:
        raise ValueError(f"train_ids must be 0..{NUM_CLASSES - 1} or {IGNORE_LABEL}, got {bad}")
    width = max(len(s) for s in sources.values())
    table = np.zeros((256, width), dtype=np.int64)
    counts = np.ones(256, dtype=np.int64)
    for train_id, raw_ids in sources.items():
        table[train_id, :len(raw_ids)] = raw_ids
        counts[train_id] = len(raw_ids)
    rows, cols = np.indices(train_ids.shape)
    choice = (rows * 7 + cols * 3) % counts[train_ids]
    return table[train_ids, choice]


def _check(image, train_ids):
    image = np.asarray(image, dtype=np.uint8)
    train_ids = np.asarray(train_ids, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != train_ids.shape:
        raise ValueError(f"need image (H, W, 3) and train_ids (H, W) of the same size, got "
                         f"{image.shape} and {train_ids.shape}")
    return image, train_ids


def _save_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def _save_jpg(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=JPEG_QUALITY)
    return path


def _palette_image(ids, colours):
    """Palette PNG content: 'P' image with indices ``ids`` and palette ``colours``."""
    picture = Image.fromarray(np.asarray(ids, dtype=np.uint8))  # mode L
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:len(colours)] = colours
    picture.putpalette(palette.ravel().tolist())  # L -> P, indices unchanged
    return picture


def write_gtav_sample(root, split, stem, image, train_ids, folder="folder"):
    """GTAV: ``images|labels/{train,valid}/<folder>/<stem>.png``; label is a palette PNG."""
    image, train_ids = _check(image, train_ids)
    split_dir = {"train": "train", "val": "valid"}[split]
    root = Path(root)
    image_path = _save_png(root / "images" / split_dir / folder / f"{stem}.png", image)
    label_ids = encode_train_ids(train_ids, _inverse(CITYSCAPES_ID_TO_TRAINID, GTAV_IGNORE_IDS))
    label_path = root / "labels" / split_dir / folder / f"{stem}.png"
    label_path.parent.mkdir(parents=True, exist_ok=True)
    _palette_image(label_ids, CITYSCAPES_ID_COLOURS).save(label_path)
    return image_path, label_path


def write_synthia_sample(root, split, stem, image, train_ids):
    """Synthia: ``RGB/<split>/<stem>.png`` + 16-bit 3-channel ``GT/LABELS/<split>/<stem>.png``."""
    image, train_ids = _check(image, train_ids)
    root = Path(root)
    image_path = _save_png(root / "RGB" / split / f"{stem}.png", image)
    class_ids = encode_train_ids(train_ids, _inverse(SYNTHIA_ID_TO_TRAINID, SYNTHIA_IGNORE_IDS))
    rows, cols = np.indices(train_ids.shape)
    instance_ids = 256 + (rows // 8 * 31 + cols // 8) % 4000
    label = np.stack([class_ids, instance_ids, np.zeros_like(class_ids)], axis=-1)
    label_path = root / "GT" / "LABELS" / split / f"{stem}.png"
    label_path.parent.mkdir(parents=True, exist_ok=True)
    # OpenCV writes B, G, R order: reverse so that the class id lands in the first channel.
    if not cv2.imwrite(str(label_path), label[..., ::-1].astype(np.uint16)):
        raise OSError(f"could not write {label_path}")
    return image_path, label_path


def write_cityscapes_sample(root, split, city, stem, image, train_ids):
    """Cityscapes: ``<stem>_leftImg8bit.png`` + ``<stem>_gtFine_labelIds.png`` in ``<city>``."""
    image, train_ids = _check(image, train_ids)
    root = Path(root)
    image_path = _save_png(root / "leftImg8bit_trainvaltest" / "leftImg8bit" / split / city
                           / f"{stem}_leftImg8bit.png", image)
    label_ids = encode_train_ids(train_ids,
                                 _inverse(CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_IGNORE_IDS))
    label_path = _save_png(root / "gtFine_trainvaltest" / "gtFine" / split / city
                           / f"{stem}_gtFine_labelIds.png", label_ids)
    return image_path, label_path


def write_bdd_sample(root, split, stem, image, train_ids):
    """BDD-100K: ``images/<split>/<stem>.jpg`` + train-id ``labels/<split>/<stem>.png``."""
    image, train_ids = _check(image, train_ids)
    root = Path(root)
    image_path = _save_jpg(root / "images" / split / f"{stem}.jpg", image)
    label_path = _save_png(root / "labels" / split / f"{stem}.png", train_ids)
    return image_path, label_path


def mapillary_palette():
    """66 distinct, deterministic colours for the Mapillary label palette (no config.json)."""
    ids = np.arange(66)
    return np.stack([(ids * 37) % 256, (ids * 91 + 50) % 256, (ids * 53 + 100) % 256],
                    axis=1).astype(np.uint8)


def write_mapillary_sample(root, split, stem, image, train_ids):
    """Mapillary: ``{training,validation}/images/<stem>.jpg`` + 66-id palette label PNG."""
    image, train_ids = _check(image, train_ids)
    folder = {"train": "training", "val": "validation"}[split]
    root = Path(root)
    image_path = _save_jpg(root / folder / "images" / f"{stem}.jpg", image)
    label_ids = encode_train_ids(train_ids,
                                 _inverse(MAPILLARY_ID_TO_TRAINID, MAPILLARY_IGNORE_IDS))
    label_path = root / folder / "labels" / f"{stem}.png"
    label_path.parent.mkdir(parents=True, exist_ok=True)
    _palette_image(label_ids, mapillary_palette()).save(label_path)
    return image_path, label_path
