"""An evaluation dataset whose images are corrupted (Cityscapes-C style) before evaluation.

The corruption is applied to the image as read from disk (8-bit RGB at its stored
resolution), before the evaluation transform (protocol resize / crop, normalisation),
as Cityscapes-C corrupts the stored images. It is deterministic per image: the seed is a
hash of (corruption, severity, image name) (:func:`transforms.corruptions.corrupt_image`).
"""

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from transforms.corruptions import check_severities, corrupt_image, resolve_corruptions


class CorruptedDataset(Dataset):
    """``dataset`` (an evaluation :class:`~datasets.base.SegmentationDataset`) with every
    image corrupted by ``corruption`` at ``severity`` (0 = the clean image).

    Items are those of ``dataset`` (dicts with ``image``, ``label``, ``name``); ``name``,
    ``split``, ``root`` and ``expected_labels`` are passed through for evaluation reports,
    ``normalization`` for the engine.
    """

    def __init__(self, dataset, corruption, severity):
        if getattr(dataset, "training", False):
            raise ValueError("CorruptedDataset wraps evaluation datasets (training=False) only")
        self.dataset = dataset
        self.corruption = resolve_corruptions([corruption])[0]
        self.severity = check_severities([severity])[0]
        self.name = dataset.name
        self.split = dataset.split
        self.root = dataset.root
        self.normalization = dataset.normalization

    @property
    def expected_labels(self):
        return self.dataset.expected_labels

    def __len__(self):
        return len(self.dataset.samples)

    def corrupted_pair(self, index):
        """(corrupted PIL RGB image, (H, W) uint8 train ids, sample) of image ``index``."""
        sample = self.dataset.samples[index]
        image, train_ids = self.dataset.load_pair(sample)
        corrupted = corrupt_image(np.asarray(image), self.corruption, self.severity, sample.name)
        return Image.fromarray(corrupted), train_ids, sample

    def __getitem__(self, index):
        """The evaluation item dict (``image``, ``label``, ``name``) of image ``index``."""
        image, train_ids, sample = self.corrupted_pair(index)
        item = self.dataset.eval_transform(image, train_ids)
        item["name"] = sample.name
        return item

    def __repr__(self):
        return f"CorruptedDataset({self.dataset!r}, {self.corruption!r}, severity={self.severity})"
