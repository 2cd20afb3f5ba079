"""Dark Zurich, the labelled night-time validation set (``Dark_Zurich_val_anon.zip``).

Layout relative to the root::

    rgb_anon/val/night/<sequence>/<stem>_rgb_anon.png
    gt/val/night/<sequence>/<stem>_gt_labelTrainIds.png

Labels are 8-bit Cityscapes train ids (0..18, 255 ignore), decoded like ACDC's. Only the
``val`` split has labels; the day / twilight reference images (``rgb_anon/val_ref``,
``rgb_anon/val/day``), ``*_gt_labelIds.png``, ``*_gt_labelColor.png`` and
``*_gt_invGray.png`` are not read.
"""

from datasets.acdc import TRAIN_ID_LABELS, list_condition_samples
from datasets.bdd100k import decode_bdd_label
from datasets.base import SegmentationDataset


class DarkZurich(SegmentationDataset):
    """Dark Zurich val (night): ``rgb_anon/val/night/<sequence>/`` pairs."""

    name = "dark_zurich"
    aliases = ("darkzurich", "dark-zurich")
    env_var = "BLINDNET_DARK_ZURICH_DIR"
    root_flag = "--dark_zurich_dir"
    split_folders = {"val": ("val",)}
    layout = (
        "  <DARK_ZURICH_DIR>/\n"
        "    rgb_anon/val/night/<sequence>/<stem>_rgb_anon.png\n"
        "    gt/val/night/<sequence>/<stem>_gt_labelTrainIds.png\n"
        "  (8-bit train ids, 255 = ignore; only the val split is labelled)")
    label_decoder = staticmethod(decode_bdd_label)  # train ids stored directly, as BDD's

    @property
    def expected_labels(self):
        return TRAIN_ID_LABELS

    def list_samples(self, folder):
        return list_condition_samples(self, self.root / "rgb_anon" / folder / "night",
                                      self.root / "gt" / folder / "night")
