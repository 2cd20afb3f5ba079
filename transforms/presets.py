"""Composed transform presets: what a dataset applies to one (image, train ids) pair.

* :class:`TrainPreset` - one geometric draw (:class:`~transforms.joint.JointTransform`)
  shared by the label and every view, then per-view photometric transforms: view 1
  (``image``) always, view 2 (``image_aug``) only for two-view (BlindNet) training. With
  ``photometric="device"`` the item keeps the geometric crop itself as ``image`` and the
  views' parameters as ``photometric`` (``transforms/photometric_params.py``); the engine
  makes the views on the device;
* :class:`EvalPreset` - the evaluation transform of a protocol
  (:class:`~transforms.eval.EvalTransform`);
* :func:`build_train_preset` - the training preset by name: ``blindnet`` (the official
  RobustNet/BlindNet pipeline above) or ``rein`` (Rein's mmseg pipeline,
  :class:`~transforms.rein_pipeline.ReinTrainPreset`).

Both return the item dict of ``datasets/base.py`` without ``name``, images and labels uint8
(``transforms/normalization.py``): ``{"image": uint8[3, H, W], "label": uint8[H, W]}``
(+ ``"image_aug"`` for two views on the loader path, + ``"photometric": float64[V, 10]`` on
the device path). Randomness comes from torch's global RNG; the dataset seeds it per item.
"""

from transforms.eval import EvalTransform
from transforms.joint import JointTransform
from transforms.normalization import to_item_image, to_item_label
from transforms.photometric import jittered_view_transform, original_view_transform
from transforms.photometric_params import ItemParams, check_photometric
from transforms.rein_pipeline import ReinTrainPreset

TRAIN_PRESETS = ("blindnet", "rein")


class TrainPreset:
    """Training crop of a PIL RGB image and its (H, W) uint8 train ids.

    Args:
        crop_size, scale_min, scale_max, pre_size, crop_nopad, rrotate: the geometric
            options (see :class:`~transforms.joint.JointTransform`).
        color_aug, gblur, bblur: view-1 photometric options.
        two_view: also produce the strongly jittered ``image_aug`` view.
        photometric: ``loader`` (the views made here, on PIL images) or ``device`` (the
            crop and the views' parameters; no bilateral blur there).
    """

    def __init__(self, crop_size, scale_min=0.5, scale_max=2.0, pre_size=None,
                 crop_nopad=False, rrotate=0, color_aug=0.0, gblur=False, bblur=False,
                 two_view=False, photometric="loader"):
        check_photometric(photometric, bblur)
        self.joint_transform = JointTransform(crop_size, scale_min, scale_max, pre_size,
                                              crop_nopad, rrotate)
        self.photometric = photometric
        self.two_view = two_view
        if photometric == "device":
            self.params = ItemParams(color_aug, gblur, two_view)
        else:
            self.view_transform = original_view_transform(color_aug, gblur, bblur)
            self.aug_transform = jittered_view_transform() if two_view else None

    def __call__(self, image, train_ids, centroid=None):
        """``centroid`` (x, y) centres a class-uniform crop (None: random crop)."""
        image, mask = self.joint_transform(image, train_ids, centroid)
        if self.photometric == "device":
            item = {"image": to_item_image(image), "photometric": self.params()}
        else:
            item = {"image": self.view_transform(image)}
            if self.two_view:
                item["image_aug"] = self.aug_transform(image)
        item["label"] = to_item_label(mask)
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
