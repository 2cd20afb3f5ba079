"""Composed transform presets: what a dataset applies to one (image, train ids) pair.

* :class:`TrainPreset` - one geometric draw (:class:`~transforms.joint.JointTransform`)
  shared by the label and every view, then per-view photometric transforms: view 1
  (``image``) always, view 2 (``image_aug``) only for two-view (BlindNet) training;
* :class:`EvalPreset` - the evaluation transform of a protocol
  (:class:`~transforms.eval.EvalTransform`);
* :func:`build_train_preset` - the training preset by name: ``blindnet`` (the official
  RobustNet/BlindNet pipeline above) or ``rein`` (Rein's mmseg pipeline,
  :class:`~transforms.rein_pipeline.ReinTrainPreset`).

Both return the item dict of ``datasets/base.py`` without ``name``:
``{"image": FloatTensor[3, H, W], "label": LongTensor[H, W]}`` (+ ``"image_aug"``).
Randomness comes from torch's global RNG; the dataset seeds it per item.
"""

import torch

from transforms.eval import EvalTransform
from transforms.joint import JointTransform
from transforms.photometric import jittered_view_transform, original_view_transform
from transforms.rein_pipeline import ReinTrainPreset

TRAIN_PRESETS = ("blindnet", "rein")


class TrainPreset:
    """Training crop of a PIL RGB image and its (H, W) uint8 train ids.

    Args:
        crop_size, scale_min, scale_max, pre_size, crop_nopad, rrotate: the geometric
            options (see :class:`~transforms.joint.JointTransform`).
        color_aug, gblur, bblur: view-1 photometric options.
        two_view: also produce the strongly jittered ``image_aug`` view.
    """

    def __init__(self, crop_size, scale_min=0.5, scale_max=2.0, pre_size=None,
                 crop_nopad=False, rrotate=0, color_aug=0.0, gblur=False, bblur=False,
                 two_view=False):
        self.joint_transform = JointTransform(crop_size, scale_min, scale_max, pre_size,
                                              crop_nopad, rrotate)
        self.view_transform = original_view_transform(color_aug, gblur, bblur)
        self.aug_transform = jittered_view_transform() if two_view else None

    @property
    def two_view(self):
        return self.aug_transform is not None

    def __call__(self, image, train_ids, centroid=None):
        """``centroid`` (x, y) centres a class-uniform crop (None: random crop)."""
        image, mask = self.joint_transform(image, train_ids, centroid)
        item = {"image": self.view_transform(image)}
        if self.aug_transform is not None:
            item["image_aug"] = self.aug_transform(image)
        item["label"] = mask.as_subclass(torch.Tensor).long()
        return item


def build_train_preset(name, two_view=False, **options):
    """The training preset ``name`` (:data:`TRAIN_PRESETS`). ``options``: those of
    :class:`TrainPreset`; the ``rein`` preset reads only ``crop_size``."""
    if name == "rein":
        return ReinTrainPreset(options["crop_size"], two_view=two_view)
    if name != "blindnet":
        raise ValueError(f"train_preset must be one of {TRAIN_PRESETS}, got {name!r}")
    return TrainPreset(**options, two_view=two_view)


class EvalPreset:
    """Full-image evaluation item of canonical dataset ``dataset_name`` under ``protocol``."""

    def __init__(self, dataset_name, protocol="robustnet"):
        self.transform = EvalTransform(dataset_name, protocol)

    @property
    def normalization(self):
        """(mean, std) the images were normalised with (to undo it for figures)."""
        return self.transform.mean, self.transform.std

    def __call__(self, image, train_ids):
        image, label = self.transform(image, train_ids)
        return {"image": image, "label": label}

    def __repr__(self):
        return f"{type(self).__name__}({self.transform!r})"
