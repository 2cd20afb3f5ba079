"""ACDC, the Adverse Conditions Dataset with Correspondences (fog, night, rain, snow).

Layout of the ``rgb_anon`` and ``gt`` downloads (``rgb_anon_trainvaltest.zip``,
``gt_trainval.zip``) relative to the root::

    rgb_anon/<condition>/<split>/<sequence>/<stem>_rgb_anon.png
    gt/<condition>/<split>/<sequence>/<stem>_gt_labelTrainIds.png

Labels are 8-bit Cityscapes train ids (0..18, 255 ignore); any other value decodes to 255.
The other files of the release (``*_gt_labelIds.png``, ``*_gt_labelColor.png``,
``*_gt_invIds.png``, the ``<split>_ref`` reference images, the unlabelled ``test`` split)
are not read. ``acdc`` is all four conditions; ``acdc_fog`` ... ``acdc_snow`` one each,
all from the same root.
"""

from datasets.base import SegmentationDataset
from datasets.bdd100k import decode_bdd_label
from utils.labels import NUM_CLASSES

CONDITIONS = ("fog", "night", "rain", "snow")
IMAGE_SUFFIX = "_rgb_anon.png"
LABEL_SUFFIX = "_gt_labelTrainIds.png"
TRAIN_ID_LABELS = f"8-bit *{LABEL_SUFFIX} files holding train ids 0..{NUM_CLASSES - 1}"


def list_condition_samples(dataset, image_root, label_root):
    """(image, stem, [label]) of ``image_root/<sequence>/*_rgb_anon.png``; label in
    ``label_root/<sequence>/<stem>_gt_labelTrainIds.png``. Layout errors for missing folders."""
    image_root = dataset.require_dir(image_root, "image folder")
    dataset.require_dir(label_root, "label folder")
    if not any(p.is_dir() for p in image_root.iterdir()):
        raise dataset.layout_error(f"no sequence folders in {image_root}")
    listed = []
    for image in dataset.list_files(image_root, IMAGE_SUFFIX, pattern="*"):
        stem = image.name[:-len(IMAGE_SUFFIX)]
        listed.append((image, stem, [label_root / image.parent.name / f"{stem}{LABEL_SUFFIX}"]))
    return listed


class ACDC(SegmentationDataset):
    """ACDC, all four conditions: ``rgb_anon/<condition>/<split>/<sequence>/`` pairs."""

    name = "acdc"
    aliases = ()
    env_var = "BLINDNET_ACDC_DIR"
    root_flag = "--acdc_dir"
    root_name = "acdc"  # the one default root of every ACDC dataset
    conditions = CONDITIONS
    layout = (
        "  <ACDC_DIR>/\n"
        "    rgb_anon/{fog,night,rain,snow}/{train,val}/<sequence>/<stem>_rgb_anon.png\n"
        "    gt/{fog,night,rain,snow}/{train,val}/<sequence>/<stem>_gt_labelTrainIds.png\n"
        "  (8-bit train ids, 255 = ignore; acdc_<condition> needs only its condition)")
    # Train ids stored directly, as in BDD-100K: its decoder (other values -> 255).
    label_decoder = staticmethod(decode_bdd_label)

    @property
    def expected_labels(self):
        return TRAIN_ID_LABELS

    def list_samples(self, folder):
        listed = []
        for condition in self.conditions:
            listed += list_condition_samples(self, self.root / "rgb_anon" / condition / folder,
                                             self.root / "gt" / condition / folder)
        return listed


class ACDCFog(ACDC):
    name = "acdc_fog"
    conditions = ("fog",)


class ACDCNight(ACDC):
    name = "acdc_night"
    conditions = ("night",)


class ACDCRain(ACDC):
    name = "acdc_rain"
    conditions = ("rain",)


class ACDCSnow(ACDC):
    name = "acdc_snow"
    conditions = ("snow",)


ACDC_CLASSES = (ACDC, ACDCFog, ACDCNight, ACDCRain, ACDCSnow)
