"""Mapillary Vistas v1.2 (DATASETS.md §5): 66-id palette PNGs, hard-coded 66 -> 19 table.

``config.json`` is not needed: the mapping is the reference's fixed id table and the
palette index of a label PNG is its id. Evaluated under ``--eval_protocol rein`` the labels
take Rein's mapping instead (docs/VFM_METHODS.md §4.2, ``MAPILLARY_REIN_ID_TO_TRAINID``).
"""

from datasets.base import SegmentationDataset
from datasets.label_codes import MAPILLARY_LUT, MAPILLARY_REIN_LUT, apply_lut
from datasets.readers import read_id_label


def decode_mapillary_label(path):
    """Mapillary v1.2 label PNG (palette index = id 0..65) -> (H, W) uint8 train ids."""
    return apply_lut(read_id_label(path), MAPILLARY_LUT)


def decode_mapillary_label_rein(path):
    """The same label with Rein's 66 -> 19 mapping (its name rules, §4.2)."""
    return apply_lut(read_id_label(path), MAPILLARY_REIN_LUT)


class Mapillary(SegmentationDataset):
    """Mapillary: ``training|validation/images/<key>.jpg`` + ``.../labels/<key>.png``."""

    name = "mapillary"
    aliases = ()
    env_var = "BLINDNET_MAPILLARY_DIR"
    root_flag = "--mapillary_dir"
    split_folders = {"train": ("training",), "val": ("validation",),
                     "trainval": ("training", "validation")}
    layout = (
        "  <MAPILLARY_DIR>/\n"
        "    training/images/<key>.jpg\n"
        "    training/labels/<key>.png       (v1.2 labels: 8-bit palette PNG, ids 0..65)\n"
        "    validation/images/<key>.jpg\n"
        "    validation/labels/<key>.png")
    label_decoder = staticmethod(decode_mapillary_label)

    def __init__(self, root, split, *, training, two_view=False, **options):
        super().__init__(root, split, training=training, two_view=two_view, **options)
        if not training and self.options["eval_protocol"] == "rein":
            self.label_decoder = decode_mapillary_label_rein

    def list_samples(self, folder):
        images = self.list_files(self.root / folder / "images", ".jpg")
        labels = self.require_dir(self.root / folder / "labels", "label folder")
        return [(image, image.stem, [labels / f"{image.stem}.png"]) for image in images]
