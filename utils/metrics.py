"""Dataset-level confusion matrix and the metrics of DATASETS.md §7.3-7.4."""

import numpy as np
import torch

from utils import dist as dist_utils
from utils.labels import NUM_CLASSES


class ConfusionMatrix:
    """Accumulates ``H[gt, pred]`` over a whole split (rows = ground truth).

    Pixels whose label is outside ``[0, num_classes)`` (255 and anything else) are dropped
    together with their predictions, exactly as the reference does.
    """

    def __init__(self, num_classes=NUM_CLASSES, device="cpu"):
        self.num_classes = num_classes
        self.hist = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, pred, label):
        """Add a batch. ``pred``, ``label``: integer tensors of the same shape (B, H, W)."""
        if pred.shape != label.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape "
                             f"{tuple(label.shape)}")
        pred = pred.reshape(-1).to(self.hist.device, torch.int64)
        label = label.reshape(-1).to(self.hist.device, torch.int64)
        keep = (label >= 0) & (label < self.num_classes)
        n = self.num_classes
        pred, label = pred[keep], label[keep]
        if pred.numel() and (pred.min() < 0 or pred.max() >= n):
            raise ValueError(f"predictions must lie in [0, {n}), got [{pred.min().item()}, "
                             f"{pred.max().item()}]")
        # One bincount over flattened (gt, pred) pairs: fast and exact in int64.
        counts = torch.bincount(label * n + pred, minlength=n * n)
        self.hist += counts.reshape(n, n)
        return self

    def all_reduce(self):
        """Sum the matrices of every rank (int64, so counts stay exact)."""
        dist_utils.all_reduce_sum(self.hist)
        return self

    def compute(self):
        """Metrics of the accumulated matrix; see :func:`metrics_from_confusion`."""
        return metrics_from_confusion(self.hist.cpu().numpy())


def metrics_from_confusion(hist):
    """IoU per class, mIoU (nan-mean), pixel acc, mean class acc and fwavacc.

    Args:
        hist: (C, C) array, rows = ground truth, columns = prediction.

    Returns:
        dict with ``iou`` (list of C floats, NaN for classes absent from GT and never
        predicted), ``miou``, ``pixel_acc``, ``mean_class_acc``, ``fwavacc``, ``pixels``.
    """
    hist = np.asarray(hist, dtype=np.float64)
    diag = np.diag(hist)
    gt_total = hist.sum(axis=1)
    pred_total = hist.sum(axis=0)
    total = hist.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = diag / (gt_total + pred_total - diag)
        class_acc = diag / gt_total
        freq = gt_total / total if total > 0 else np.zeros_like(gt_total)
    valid = freq > 0
    return {
        "iou": iou.tolist(),
        "miou": float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan"),
        "pixel_acc": float(diag.sum() / total) if total > 0 else float("nan"),
        "mean_class_acc": (float(np.nanmean(class_acc)) if np.any(~np.isnan(class_acc))
                           else float("nan")),
        "fwavacc": float((freq[valid] * iou[valid]).sum()),
        "pixels": int(total),
    }
