"""A folder (or glob) of unlabelled images, for ``infer.py --images``."""

import glob
from pathlib import Path

from torch.utils.data import Dataset

from datasets.readers import read_rgb_image
from transforms.photometric import IMAGENET_MEAN, IMAGENET_STD, to_normalized_tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageFolder(Dataset):
    """Images of a directory (not recursive) or of a glob pattern, sorted by path.

    Items: ``(image FloatTensor[3, H, W], name str)``, the name being the file stem; the
    image is ImageNet-normalised when ``normalize`` is True, else RGB in [0, 1].
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
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalize else ((0.0,) * 3, (1.0,) * 3)
        self.to_tensor = to_normalized_tensor(mean, std)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        return self.to_tensor(read_rgb_image(path)), path.stem
