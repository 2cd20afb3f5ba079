"""Cityscapes (DATASETS.md §3): ``*_gtFine_labelIds.png`` decoded with the 34-id table.

Besides the official ``leftImg8bit_trainvaltest/leftImg8bit`` and ``gtFine_trainvaltest/
gtFine`` folders, the common flattened layout (``leftImg8bit/`` and ``gtFine/`` directly
under the root) is accepted.
"""

from datasets.base import SegmentationDataset
from datasets.label_codes import CITYSCAPES_LUT, apply_lut
from datasets.readers import read_id_label

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def decode_cityscapes_label(path):
    """Cityscapes labelIds PNG -> (H, W) uint8 train ids."""
    return apply_lut(read_id_label(path), CITYSCAPES_LUT)


class Cityscapes(SegmentationDataset):
    """Cityscapes fine annotations: ``<split>/<city>/<stem>_leftImg8bit.png`` pairs."""

    name = "cityscapes"
    aliases = ()
    env_var = "BLINDNET_CITYSCAPES_DIR"
    root_flag = "--cityscapes_dir"
    layout = (
        "  <CITYSCAPES_DIR>/\n"
        "    leftImg8bit_trainvaltest/leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png\n"
        "    gtFine_trainvaltest/gtFine/{train,val}/<city>/<stem>_gtFine_labelIds.png\n"
        "  (or leftImg8bit/ and gtFine/ directly under the root)")
    label_decoder = staticmethod(decode_cityscapes_label)

    def _image_and_label_roots(self):
        official = (self.root / "leftImg8bit_trainvaltest" / "leftImg8bit",
                    self.root / "gtFine_trainvaltest" / "gtFine")
        flat = (self.root / "leftImg8bit", self.root / "gtFine")
        return flat if not official[0].is_dir() and flat[0].is_dir() else official

    def list_samples(self, folder):
        image_root, label_root = self._image_and_label_roots()
        image_split = self.require_dir(image_root / folder, "image split folder")
        label_split = self.require_dir(label_root / folder, "label split folder")
        if not any(p.is_dir() for p in image_split.iterdir()):
            raise self.layout_error(f"no city folders in {image_split}")
        listed = []
        for image in self.list_files(image_split, IMAGE_SUFFIX, pattern="*"):
            stem = image.name[:-len(IMAGE_SUFFIX)]
            city = image.parent.name
            listed.append((image, stem, [label_split / city / f"{stem}{LABEL_SUFFIX}"]))
        return listed
