"""A folder (or glob) of unlabelled images, for ``infer.py --images``."""

import glob
from collections import Counter
from pathlib import Path

from torch.utils.data import Dataset

from datasets.readers import read_rgb_image
from transforms.normalization import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    NO_MEAN,
    NO_STD,
    to_item_image,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def unique_output_stems(names, paths):
    """Output stems for inputs with names ``names`` (usually stems) and source ``paths``.

    A name no other input shares (compared case-insensitively, for case-insensitive file
    systems) is kept; inputs that share one use their whole file name instead, source
    extension included (``coffee.png`` and ``coffee.jpg`` -> ``coffee.png``, ``coffee.jpg``,
    so ``coffee.png_color.png``, ...). Names still shared after that (the same file name in
    two folders of a recursive glob) get ``~2``, ``~3``, ... in input order. The result has
    no two stems equal up to case.
    """
    names = [str(n) for n in names]
    counts = Counter(n.casefold() for n in names)
    stems = [name if counts[name.casefold()] == 1 else Path(path).name
             for name, path in zip(names, paths)]
    taken, unique = set(), []
    for stem in stems:
        candidate, k = stem, 1
        while candidate.casefold() in taken:
            k += 1
            candidate = f"{stem}~{k}"
        taken.add(candidate.casefold())
        unique.append(candidate)
    return unique


class ImageFolder(Dataset):
    """Images of a directory (not recursive) or of a glob pattern, sorted by path.

    Items: ``{"image": uint8[3, H, W], "name": str}``, the name being the file stem;
    :attr:`normalization` is what the engine normalises it with: ImageNet when
    ``normalize`` is True, else none (RGB in [0, 1]). Grayscale,
    palette and 16-bit files are scaled to 8-bit RGB first (``datasets.readers.to_rgb8``).
    """

    def __init__(self, dir_or_glob, normalize=True):
        source = Path(dir_or_glob)
        if source.is_dir():
            candidates = source.iterdir()
        else:
            candidates = (Path(p) for p in glob.glob(str(dir_or_glob), recursive=True))
        self.paths = sorted(p for p in candidates
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise FileNotFoundError(
                f"--images {dir_or_glob}: no images found (expected a directory or glob "
                f"matching files with suffix {', '.join(IMAGE_SUFFIXES)})")
        self.normalization = (IMAGENET_MEAN, IMAGENET_STD) if normalize else (NO_MEAN, NO_STD)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        return {"image": to_item_image(read_rgb_image(path)), "name": path.stem}
