"""Evaluation transforms per protocol (DECISIONS.md D1, DATASETS.md §3.3, §7.1-7.2).

| protocol  | Mapillary                                         | Cityscapes norm. | others   |
|-----------|---------------------------------------------------|------------------|----------|
| robustnet | height 1536, reference centre crop/pad 1536       | ImageNet         | ImageNet |
| blindnet  | height 1024, reference centre crop/pad 1024       | mean 0, std 1    | ImageNet |
| clean     | height 1536, centred crop/pad 1536, label pad 255 | ImageNet         | ImageNet |
| rein      | Rein's "half" images and labels, fitted to 1024x512 | ImageNet       | ImageNet |

Under ``robustnet``, ``blindnet`` and ``clean`` every other dataset is evaluated at full
resolution, single scale, no flip. Under ``rein`` (docs/VFM_METHODS.md §4.1) every image is
fitted into its dataset's Rein test scale (Cityscapes 1024x512, BDD 1280x720, others
1024x512; ``transforms/rein_pipeline.py``) while the label keeps its file resolution (the
scores are resized to it, ``engine/protocols.py``). The normalisation rule lives in
``transforms/normalization.py``.
"""

import numpy as np
import torch
from PIL import Image, ImageOps

from transforms.normalization import (
    check_protocol,
    eval_normalization,
    to_normalized_tensor,
)
from transforms.rein_pipeline import halve_like_rein, rein_test_image
from utils.labels import IGNORE_LABEL

_MAPILLARY_EVAL_SIZE = {"robustnet": 1536, "blindnet": 1024, "clean": 1536}


def mapillary_eval_size(protocol="robustnet"):
    """Height and square crop side used for Mapillary under ``protocol`` (not ``rein``,
    which halves and fits the images instead)."""
    check_protocol(protocol)
    if protocol not in _MAPILLARY_EVAL_SIZE:
        raise ValueError(f"the {protocol} protocol does not resize Mapillary to a height")
    return _MAPILLARY_EVAL_SIZE[protocol]


def resize_height(image, label, height):
    """Resize so the height is ``height``; width ``int(W / H * height)``.

    image: PIL RGB (bicubic); label: PIL ``L`` (nearest).
    """
    width = int(image.width / image.height * height)
    return (image.resize((width, height), Image.BICUBIC),
            label.resize((width, height), Image.NEAREST))


def reference_center_crop_pad(image, label, size, label_fill=0):
    """RobustNet's / BlindNet's ``CenterCropPad`` including its quirks (DATASETS.md §7.2).

    A side shorter than ``size`` is padded by ``size - side`` on BOTH ends (image 0,
    label ``label_fill``, 0 = road in the reference), but the crop offset
    ``round((side - size) / 2)`` is computed from the unpadded side, so such images end up
    shifted right and partly replaced by padding. Pixels the crop takes from outside the
    padded image are 0 in both image and label (PIL's crop fill).
    """
    width, height = image.size
    pad_x = size - width if width < size else 0
    pad_y = size - height if height < size else 0
    if pad_x or pad_y:
        border = (pad_x, pad_y, pad_x, pad_y)
        image = ImageOps.expand(image, border=border, fill=0)
        label = ImageOps.expand(label, border=border, fill=label_fill)
    # Python's round (half to even) on the unpadded side: the reference's offset.
    x1 = int(round((width - size) / 2.0))
    y1 = int(round((height - size) / 2.0))
    box = (x1, y1, x1 + size, y1 + size)
    return image.crop(box), label.crop(box)


def clean_center_crop_pad(image, label, size, label_fill=IGNORE_LABEL):
    """Centre crop to ``size`` x ``size``; short sides padded symmetrically (label 255)."""
    width, height = image.size
    pad_x, pad_y = max(size - width, 0), max(size - height, 0)
    if pad_x or pad_y:
        border = (pad_x // 2, pad_y // 2, pad_x - pad_x // 2, pad_y - pad_y // 2)
        image = ImageOps.expand(image, border=border, fill=0)
        label = ImageOps.expand(label, border=border, fill=label_fill)
        width, height = image.size
    x1, y1 = (width - size) // 2, (height - size) // 2
    box = (x1, y1, x1 + size, y1 + size)
    return image.crop(box), label.crop(box)


class EvalTransform:
    """(PIL RGB image, (H, W) uint8 train ids) -> (FloatTensor [3, H', W'], LongTensor [H', W']).

    Mapillary is resized and centre-cropped per protocol; every other dataset keeps its
    full resolution. Images are normalised with :func:`eval_normalization`.
    ``dataset_name`` is canonical (``datasets.parse_dataset_name`` strips ``_jitter``).
    """

    def __init__(self, dataset_name, protocol="robustnet"):
        check_protocol(protocol)
        self.dataset_name = dataset_name.lower()
        self.protocol = protocol
        self.mean, self.std = eval_normalization(self.dataset_name, protocol)
        self.to_tensor = to_normalized_tensor(self.mean, self.std)

    def __call__(self, image, label):
        if self.protocol == "rein":
            label = np.asarray(label, dtype=np.uint8)
            if self.dataset_name == "mapillary":
                image, label = halve_like_rein(image, label)
            image = Image.fromarray(rein_test_image(image, self.dataset_name))
            return self.to_tensor(image), torch.from_numpy(np.array(label, dtype=np.int64))
        if self.dataset_name == "mapillary":
            size = mapillary_eval_size(self.protocol)
            label_image = Image.fromarray(np.asarray(label, dtype=np.uint8))
            image, label_image = resize_height(image, label_image, size)
            if self.protocol == "clean":
                image, label_image = clean_center_crop_pad(image, label_image, size)
            else:
                image, label_image = reference_center_crop_pad(image, label_image, size)
            label = np.asarray(label_image)
        label = torch.from_numpy(np.array(label, dtype=np.int64))
        return self.to_tensor(image), label

    def __repr__(self):
        return f"{type(self).__name__}({self.dataset_name!r}, protocol={self.protocol!r})"
