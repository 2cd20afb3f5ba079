"""Cross-entropy losses of the segmenter (METHOD.md §3.1, §3.2): loss terms ``main``, ``aux``."""

import torch
import torch.nn.functional as F
from torch import nn

from loss.terms import PIXEL_LOGITS, LossTerm, register_term
from utils.labels import IGNORE_LABEL

AUX_WEIGHT = 0.4  # weight of the aux cross-entropy, hard-coded in the official code (§3.6)


def resize_labels(labels, size):
    """Nearest-neighbour resize of integer maps ``(B, H, W) -> (B, *size)``.

    Uses PyTorch's ``nearest`` rule (source index ``floor(i * H / h)``), so 768 -> 48 takes
    pixel ``(16 i, 16 j)`` as the official code does. Returns the input when the size matches.
    """
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    # float32 holds every label id (0..255) exactly.
    resized = F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")
    return resized[:, 0].to(labels.dtype)


class SegmentationCrossEntropy(nn.Module):
    """Pixel-wise cross-entropy averaged over the non-ignored pixels of the whole batch.

    Same value as ``nn.CrossEntropyLoss(ignore_index=255, weight=class_weights)``, except that
    a batch without any labelled pixel gives 0 (with gradient structure) instead of NaN.

    Args:
        ignore_index: label value that does not count (255).
        class_weights: optional ``(C,)`` tensor of per-class weights.

    Shapes: ``logits (B, C, H, W)``, ``labels (B, H, W)`` long -> scalar.
    """

    def __init__(self, ignore_index=IGNORE_LABEL, class_weights=None):
        super().__init__()
        self.ignore_index = ignore_index
        weights = None if class_weights is None else torch.as_tensor(class_weights,
                                                                      dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits, labels):
        if logits.shape[-2:] != labels.shape[-2:] or logits.shape[0] != labels.shape[0]:
            raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} "
                             f"must agree in batch and spatial size")
        logits = logits.float()
        total = F.cross_entropy(logits, labels, weight=self.class_weights,
                                ignore_index=self.ignore_index, reduction="sum")
        valid = labels != self.ignore_index
        if self.class_weights is None:
            denominator = valid.sum()
        else:
            safe_labels = torch.where(valid, labels, 0)
            denominator = (self.class_weights[safe_labels] * valid).sum()
        # sum / count is exactly the "mean" reduction, without its NaN on all-ignore crops.
        return total / denominator.clamp_min(1e-12)


class AuxCrossEntropy(SegmentationCrossEntropy):
    """Cross-entropy of low-resolution logits against nearest-downsampled labels (§3.2).

    Shapes: ``logits (B, C, h, w)``, ``labels (B, H, W)`` -> scalar.
    """

    def forward(self, logits, labels):
        return super().forward(logits, resize_labels(labels, logits.shape[-2:]))


def _main_loss(module, inputs):
    """The cross-entropy of the original view, averaged with the augmented view's if any."""
    output, labels = inputs.output, inputs.labels
    if output.two_view:
        return 0.5 * (module(output.original.logits, labels)
                      + module(output.augmented.logits, labels))
    return module(output.original.logits, labels)


def _aux_loss(module, inputs):
    if inputs.output.aux_logits is None:
        raise ValueError("the aux loss needs output.aux_logits (the model's training forward)")
    return module(inputs.output.aux_logits, inputs.labels)


MAIN = register_term(LossTerm(
    "main", order=0, compute=_main_loss, prediction=PIXEL_LOGITS,
    build=lambda o: SegmentationCrossEntropy(o["ignore_index"], o["class_weights"])))
AUX = register_term(LossTerm(
    "aux", order=10, weight=AUX_WEIGHT, compute=_aux_loss, prediction=PIXEL_LOGITS,
    build=lambda o: AuxCrossEntropy(o["ignore_index"], o["class_weights"])))
