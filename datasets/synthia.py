"""SYNTHIA-RAND-CITYSCAPES (DATASETS.md §2): 16-bit, 3-channel label PNGs.

The class id is in the first (R) channel, an instance id in the second. Pillow would keep
only the high byte of each 16-bit sample (every class id becomes 0), so labels are read
losslessly with OpenCV, which returns B, G, R order: the class id is channel 2 there.
"""

import numpy as np

from datasets.base import SegmentationDataset
from datasets.label_codes import SYNTHIA_LUT, apply_lut
from datasets.readers import read_png_unchanged
from utils.labels import IGNORE_LABEL


def decode_synthia_label(path):
    """Synthia ``GT/LABELS`` PNG -> (H, W) uint8 train ids (ids above 255 -> 255)."""
    raw = read_png_unchanged(path)
    if raw.ndim == 3:
        # OpenCV order: B, G, R(, A) -> R holds the class; 2-channel files are gray + alpha.
        class_ids = raw[..., 2] if raw.shape[2] >= 3 else raw[..., 0]
    else:
        class_ids = raw
    if class_ids.dtype != np.uint8:
        class_ids = np.minimum(class_ids, IGNORE_LABEL).astype(np.uint8)
    return apply_lut(class_ids, SYNTHIA_LUT)


class Synthia(SegmentationDataset):
    """Synthia: ``RGB/<split>/<id>.png`` + ``GT/LABELS/<split>/<id>.png``."""

    name = "synthia"
    aliases = ()
    env_var = "BLINDNET_SYNTHIA_DIR"
    root_flag = "--synthia_dir"
    layout = (
        "  <SYNTHIA_DIR>/\n"
        "    RGB/train/0000001.png\n"
        "    RGB/val/0000000.png\n"
        "    GT/LABELS/train/0000001.png     (16-bit PNG: class id in channel 0)\n"
        "    GT/LABELS/val/0000000.png")
    label_decoder = staticmethod(decode_synthia_label)

    def list_samples(self, folder):
        images = self.list_files(self.root / "RGB" / folder, ".png")
        labels = self.require_dir(self.root / "GT" / "LABELS" / folder, "label split folder")
        return [(image, image.stem, [labels / image.name]) for image in images]
