"""Random fixture datasets for the tests (and bench/data_pipeline.py) in the real formats.

:func:`generate_dataset` writes a random shapes dataset with the format writers of
``datasets/styleshift/formats.py`` and returns its ground-truth train ids.
:func:`sample_photos` and :func:`photo_canvas` give natural images (scikit-image's bundled
sample photographs, no download) for what procedural scenes misrepresent: colour statistics
(the photometric parity) and PNG size and decode time (the data-pipeline benchmark).
"""

import numpy as np
from PIL import Image

from datasets import DATASET_CLASSES, parse_dataset_name
from datasets.styleshift.formats import (
    write_bdd_sample,
    write_cityscapes_sample,
    write_gtav_sample,
    write_mapillary_sample,
    write_synthia_sample,
)
from utils.labels import IGNORE_LABEL, NUM_CLASSES, PALETTE, TrainId

ADVERSE_DATASETS = ("acdc", "dark_zurich", "foggy_cityscapes")  # tests/generated_adverse.py


# scikit-image's sample photographs that are colour photos (bundled with the package).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina")


def sample_photos(names=PHOTOS):
    """name -> (H, W, 3) uint8 RGB photograph from ``skimage.data``."""
    import skimage.data  # a test/bench dependency only

    return {name: getattr(skimage.data, name)() for name in names}


def photo_canvas(rng, size, noise_sigma=3.0, photos=None):
    """(H, W, 3) uint8: rows of randomly sized tiles of the sample photos (bilinear resized)
    plus Gaussian sensor noise of ``noise_sigma`` grey levels. At GTAV's 1914x1052 and
    sigma 3 its PNG is about 3.7 MB, like a real GTAV frame (procedural scenes compress to
    a fraction of that and decode far faster)."""
    photos = list((photos or sample_photos()).values())
    height, width = size
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    y = 0
    while y < height:
        tile_h, x = int(rng.integers(max(1, height // 4), max(2, height // 2))), 0
        while x < width:
            tile_w = int(rng.integers(max(1, width // 5), max(2, width // 2)))
            photo = Image.fromarray(photos[int(rng.integers(len(photos)))])
            tile = np.asarray(photo.resize((tile_w, tile_h), Image.BILINEAR))
            canvas[y:y + tile_h, x:x + tile_w] = tile[:height - y, :width - x]
            x += tile_w
        y += tile_h
    noisy = canvas + rng.normal(0.0, noise_sigma, canvas.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def random_scene(rng, size, num_shapes=6):
    """A random street-like train-id map (H, W) uint8 and a matching noisy RGB image.

    Sky on top, building in the middle, road at the bottom, then random rectangles of
    random classes (ignore included).
    """
    height, width = size
    train_ids = np.full(size, TrainId.BUILDING, dtype=np.uint8)
    train_ids[: height // 3] = TrainId.SKY
    train_ids[2 * height // 3:] = TrainId.ROAD
    for _ in range(num_shapes):
        cls = rng.choice(np.r_[np.arange(NUM_CLASSES), IGNORE_LABEL])
        h = int(rng.integers(max(2, height // 8), max(3, height // 2)))
        w = int(rng.integers(max(2, width // 8), max(3, width // 2)))
        y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        train_ids[y:y + h, x:x + w] = cls
    colours = PALETTE[train_ids].astype(np.int16)
    colours[train_ids == IGNORE_LABEL] = 90
    noise = rng.integers(-20, 21, size=(*size, 3))
    image = np.clip(colours + noise, 0, 255).astype(np.uint8)
    return image, train_ids


def _stem(name, index, seed):
    """File stem of generated image ``index`` (Cityscapes stems also name the city)."""
    if name == "cityscapes":
        city = "aachen" if index % 2 == 0 else "frankfurt"
        return city, f"{city}_{seed:02d}{index:04d}_000019"
    return None, {
        "gtav": f"{index + 1:05d}",
        "synthia": f"{index:07d}",
        "bdd100k": f"{seed:04x}{index:04x}-b{index:07d}",
        "mapillary": f"mapkey{seed:03d}x{index:06d}",
    }[name]


def generate_dataset(name, root, num_images=4, size=(64, 96), seed=0, splits=("train", "val")):
    """Write ``num_images`` random scenes per split of dataset ``name`` under ``root``.

    ``size`` is (H, W). Returns {stem: (H, W) uint8 ground-truth train ids}; stems are unique
    across splits (Cityscapes alternates two cities).
    """
    name, _ = parse_dataset_name(name)
    root_folder = DATASET_CLASSES[name].root_folder()
    if root_folder in ADVERSE_DATASETS:  # ACDC (every condition), Dark Zurich, Foggy CS
        from tests.generated_adverse import generate_adverse_dataset

        return generate_adverse_dataset(root_folder, root, num_images, size, seed, splits)
    rng = np.random.default_rng(seed)
    truth = {}
    index = 0
    for split in splits:
        for _ in range(num_images):
            image, train_ids = random_scene(rng, size)
            city, stem = _stem(name, index, seed)
            if name == "gtav":
                write_gtav_sample(root, split, stem, image, train_ids)
            elif name == "synthia":
                write_synthia_sample(root, split, stem, image, train_ids)
            elif name == "cityscapes":
                write_cityscapes_sample(root, split, city, stem, image, train_ids)
            elif name == "bdd100k":
                write_bdd_sample(root, split, stem, image, train_ids)
            else:
                write_mapillary_sample(root, split, stem, image, train_ids)
            truth[stem] = train_ids
            index += 1
    return truth
