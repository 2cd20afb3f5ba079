"""BDD-100K 10K segmentation subset (DATASETS.md §4, DECISIONS.md D14).

Labels hold train ids already. Found under ``labels/<split>/`` or the newer release's
``labels/sem_seg/masks/<split>/``, named ``<stem>.png`` (BlindNet, new release) or
``<stem>_train_id.png`` (2018 release, RobustNet). Images under ``images/<split>/`` or
``images/10k/<split>/``.
"""

from datasets.base import SegmentationDataset
from datasets.label_codes import BDD_LUT, apply_lut
from datasets.readers import read_id_label

LABEL_NAMES = ("{stem}.png", "{stem}_train_id.png")


def decode_bdd_label(path):
    """BDD train-id PNG -> (H, W) uint8 train ids (values other than 0..18 -> 255)."""
    return apply_lut(read_id_label(path), BDD_LUT)


class BDD100K(SegmentationDataset):
    """BDD-100K: ``images/<split>/<stem>.jpg`` + ``labels/<split>/<stem>.png``."""

    name = "bdd100k"
    aliases = ("bdd-100k", "bdd")
    env_var = "BLINDNET_BDD_DIR"
    root_flag = "--bdd_dir"
    layout = (
        "  <BDD_DIR>/\n"
        "    images/{train,val}/<stem>.jpg            (or images/10k/{train,val}/)\n"
        "    labels/{train,val}/<stem>.png            (train ids; <stem>_train_id.png also\n"
        "                                              accepted, or labels/sem_seg/masks/...)")
    label_decoder = staticmethod(decode_bdd_label)

    def list_samples(self, folder):
        image_dirs = [self.root / "images" / folder, self.root / "images" / "10k" / folder]
        label_dirs = [self.root / "labels" / folder,
                      self.root / "labels" / "sem_seg" / "masks" / folder]
        image_dir = next((d for d in image_dirs if d.is_dir()), None)
        if image_dir is None:
            raise self.layout_error("image split folder not found: tried "
                                    + ", ".join(map(str, image_dirs)))
        label_dirs = [d for d in label_dirs if d.is_dir()] or label_dirs
        if not label_dirs[0].is_dir():
            raise self.layout_error("label split folder not found: tried "
                                    + ", ".join(map(str, label_dirs)))
        return [(image, image.stem,
                 [d / pattern.format(stem=image.stem) for d in label_dirs
                  for pattern in LABEL_NAMES])
                for image in self.list_files(image_dir, ".jpg")]
