"""Mask2Former's set-prediction losses for semantic segmentation (docs/VFM_METHODS.md §5.7-5.9).

For every prediction (the initial queries and each decoder layer: deep supervision) the
queries are matched to the image's per-class masks (:class:`loss.matcher.HungarianMatcher`)
and three terms are computed:

* class: cross-entropy over all queries, unmatched ones labelled "no object" (index C),
  class weights 1 and ``no_object_weight`` (0.1) for it, a weighted mean; weight 2;
* mask: binary cross-entropy of the matched masks on uncertainty-sampled points, averaged
  over ``num_masks * num_points``; weight 5;
* dice: ``1 - (2 sum(p t) + 1) / (sum p + sum t + 1)`` per matched mask on the same points,
  averaged over ``num_masks``; weight 5.

``num_masks`` is the batch's matched count, averaged over ranks, at least 1. Plain tensors
in (lists of per-prediction logits and the ``(B, H, W)`` label map), a dict of scalars out.

Loss terms ``m2f_cls``, ``m2f_mask``, ``m2f_dice`` (weights ``--m2f_cls_weight`` 2,
``--m2f_mask_weight`` 5, ``--m2f_dice_weight`` 5, Rein's ``loss_weight``s) supervise models
that predict masks (``prediction`` :data:`loss.terms.MASK_PREDICTIONS`: the ``network.vfm``
segmenters); they read the per-layer ``class_logits`` / ``mask_logits`` of the training
output. The matching runs once per step for the three; its costs stay 2 / 5 / 5 whatever the
loss weights (mmdet configures the assigner's costs apart from the losses, §5.8).
"""

import torch
import torch.nn.functional as F
from torch import nn

from loss.matcher import HungarianMatcher
from loss.point_sampling import point_sample, uncertain_point_coords
from loss.terms import FRAMEWORK, MASK_PREDICTIONS, LossFlag, LossTerm, register_term
from utils.dist import all_reduce_mean
from utils.labels import IGNORE_LABEL, NUM_CLASSES

FLOAT_EPS = torch.finfo(torch.float32).eps  # mmdet's avg_factor epsilon


def semantic_targets(labels, num_classes=NUM_CLASSES, ignore_index=IGNORE_LABEL):
    """Per image, the present classes and one binary mask per class (§5.7).

    ``labels``: ``(B, H, W)`` train ids. Returns a list of ``(gt_labels (G,) long,
    gt_masks (G, H, W) float)``. Ignored pixels are 0 in every mask (negatives of the
    matched masks, as in mmseg). A label outside ``0..num_classes-1`` and ``ignore_index``
    is a ValueError.
    """
    labels = labels.long()
    valid = labels != ignore_index
    if valid.any() and (labels[valid].min() < 0 or labels[valid].max() >= num_classes):
        bad = labels[valid & ((labels < 0) | (labels >= num_classes))].unique().tolist()
        raise ValueError(f"label values {bad[:10]} are neither train ids 0..{num_classes - 1} "
                         f"nor the ignore label {ignore_index}")
    targets = []
    for image in labels:
        present = image[image != ignore_index].unique()
        targets.append((present, (image[None] == present[:, None, None]).float()))
    return targets


class Mask2FormerLoss(nn.Module):
    """Matched class / mask / dice losses summed over all predictions.

    Args:
        num_classes: C (the "no object" class is index C).
        class_weight, mask_weight, dice_weight: loss weights (2, 5, 5); the matcher uses
            the same weights as its costs.
        no_object_weight: CE weight of "no object" (0.1).
        num_points, oversample_ratio, importance_sample_ratio: point sampling (12544, 3,
            0.75).
        ignore_index: label of ignored pixels (255).

    ``forward(class_logits, mask_logits, labels, generator=None)``: lists of
    ``(B, Q, C+1)`` / ``(B, Q, h, w)`` (last = final prediction) and ``(B, H, W)`` labels ->
    ``{"cls", "mask", "dice"}``, each summed over the predictions. :meth:`layer_losses`
    gives mmdet's per-prediction names (``loss_cls``... for the last, ``d{i}.loss_cls``...).
    """

    name = "mask2former"
    needs = ("class_logits", "mask_logits")

    def __init__(self, num_classes=NUM_CLASSES, class_weight=2.0, mask_weight=5.0,
                 dice_weight=5.0, no_object_weight=0.1, num_points=12544, oversample_ratio=3.0,
                 importance_sample_ratio=0.75, ignore_index=IGNORE_LABEL):
        super().__init__()
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.weights = {"cls": class_weight, "mask": mask_weight, "dice": dice_weight}
        self.num_points, self.oversample_ratio = num_points, oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.matcher = HungarianMatcher(class_weight, mask_weight, dice_weight, num_points)
        ce_weights = torch.ones(num_classes + 1)
        ce_weights[num_classes] = no_object_weight
        self.register_buffer("ce_weights", ce_weights, persistent=False)

    def forward(self, class_logits, mask_logits, labels, generator=None):
        per_layer = self.layer_losses(class_logits, mask_logits, labels, generator)
        return {part: sum(value for key, value in per_layer.items()
                          if key.endswith(f"loss_{part}")) for part in self.weights}

    def parts(self, class_logits, mask_logits, labels, generator=None):
        """``{"cls", "mask", "dice"}`` summed over the predictions, *unweighted* (the loss
        terms apply their weight flags)."""
        per_layer = self.layer_losses(class_logits, mask_logits, labels, generator,
                                      weighted=False)
        return {part: sum(value for key, value in per_layer.items()
                          if key.endswith(f"loss_{part}")) for part in self.weights}

    def layer_losses(self, class_logits, mask_logits, labels, generator=None, weighted=True):
        if len(class_logits) != len(mask_logits) or not class_logits:
            raise ValueError(f"{len(class_logits)} class and {len(mask_logits)} mask "
                             f"predictions: expected the same non-zero number")
        targets = semantic_targets(labels, self.num_classes, self.ignore_index)
        losses, last = {}, len(class_logits) - 1
        for index, (classes, masks) in enumerate(zip(class_logits, mask_logits)):
            prefix = "" if index == last else f"d{index}."
            single = self.single(classes, masks, targets, generator)
            for part, value in single.items():
                losses[f"{prefix}loss_{part}"] = self.weights[part] * value if weighted \
                    else value
        return losses

    def single(self, class_logits, mask_logits, targets, generator=None):
        """The three unweighted terms of one prediction: ``(B, Q, C+1)``, ``(B, Q, h, w)``."""
        batch, queries, _ = class_logits.shape
        class_target = torch.full((batch, queries), self.num_classes, dtype=torch.long,
                                  device=class_logits.device)
        matched_preds, matched_masks = [], []
        for b, (gt_labels, gt_masks) in enumerate(targets):
            query_idx, gt_idx = self.matcher.match(class_logits[b].detach(),
                                                   mask_logits[b].detach(), gt_labels,
                                                   gt_masks, generator)
            class_target[b, query_idx] = gt_labels[gt_idx]
            matched_preds.append(mask_logits[b, query_idx])
            matched_masks.append(gt_masks[gt_idx])
        weights = self.ce_weights.to(class_logits.device)[class_target]
        ce = F.cross_entropy(class_logits.float().flatten(0, 1), class_target.flatten(),
                             reduction="none")
        loss_cls = (ce * weights.flatten()).sum() / (weights.sum() + FLOAT_EPS)
        preds, gts = torch.cat(matched_preds), torch.cat(matched_masks)
        count = torch.tensor(float(preds.shape[0]), device=class_logits.device)
        num_masks = all_reduce_mean(count).clamp(min=1.0)
        if preds.shape[0] == 0:  # nothing to match in the batch: 0, graph attached
            zero = preds.sum()
            return {"cls": loss_cls, "mask": zero, "dice": zero}
        loss_mask, loss_dice = self.mask_terms(preds, gts, num_masks, generator)
        return {"cls": loss_cls, "mask": loss_mask, "dice": loss_dice}

    def mask_terms(self, preds, gts, num_masks, generator=None):
        """Unweighted BCE and dice of matched ``preds (n, h, w)`` logits against ``gts
        (n, H, W)`` on uncertainty-sampled points."""
        preds = preds[:, None].float()
        points = uncertain_point_coords(preds, self.num_points, self.oversample_ratio,
                                        self.importance_sample_ratio, generator)
        pred_points = point_sample(preds, points)[:, 0]  # (n, P), with gradient
        gt_points = point_sample(gts[:, None].to(preds.dtype), points)[:, 0]
        bce = F.binary_cross_entropy_with_logits(pred_points, gt_points, reduction="sum")
        loss_mask = bce / (num_masks * self.num_points + FLOAT_EPS)
        probs = pred_points.sigmoid()
        dice = 1 - (2 * (probs * gt_points).sum(-1) + 1) / (probs.sum(-1) + gt_points.sum(-1) + 1)
        return loss_mask, dice.sum() / (num_masks + FLOAT_EPS)


# The loss terms (Rein's recipe, docs/VFM_METHODS.md §5.9).
CLS_WEIGHT = LossFlag("m2f_cls_weight", 2.0, "Mask2Former class loss weight (Rein: 2.0)",
                      group=FRAMEWORK)
MASK_WEIGHT = LossFlag("m2f_mask_weight", 5.0, "Mask2Former mask BCE weight (Rein: 5.0)",
                       group=FRAMEWORK)
DICE_WEIGHT = LossFlag("m2f_dice_weight", 5.0, "Mask2Former mask dice weight (Rein: 5.0)",
                       group=FRAMEWORK)
NO_OBJECT_WEIGHT = LossFlag("m2f_no_object_weight", 0.1,
                            "class-loss weight of the 'no object' class (Rein: 0.1)",
                            group=FRAMEWORK)
NUM_POINTS = LossFlag("m2f_num_points", 12544,
                      "points per mask of the Mask2Former mask costs and losses (Rein: 12544)",
                      type=int, group=FRAMEWORK)
M2F_FLAGS = (NO_OBJECT_WEIGHT, NUM_POINTS)


def _build(options):
    if not options["m2f_no_object_weight"] >= 0:
        raise ValueError(f"--m2f_no_object_weight must be >= 0, got "
                         f"{options['m2f_no_object_weight']}")
    if options["m2f_num_points"] < 1:
        raise ValueError(f"--m2f_num_points must be >= 1, got {options['m2f_num_points']}")
    return Mask2FormerLoss(no_object_weight=options["m2f_no_object_weight"],
                           num_points=options["m2f_num_points"],
                           ignore_index=options["ignore_index"])


def _view_parts(module, inputs, view):
    """The unweighted parts of one view's predictions, computed once per step."""
    def compute():
        if view.class_logits is None or view.mask_logits is None:
            raise ValueError("the Mask2Former losses need the per-layer class_logits and "
                             "mask_logits of the training output (a network.vfm model)")
        return module.parts(view.class_logits, view.mask_logits, inputs.labels,
                            inputs.generator)
    return inputs.shared(("mask2former", id(view)), compute)


def _part(name):
    """``compute`` of term ``m2f_<name>``: the original view's part, averaged with the
    augmented view's in two-view training (as the cross-entropy term ``main`` does)."""
    def compute(module, inputs):
        output = inputs.output
        value = _view_parts(module, inputs, output.original)[name]
        if output.two_view:
            value = 0.5 * (value + _view_parts(module, inputs, output.augmented)[name])
        return value
    return compute


def _unread(options):
    if options["prediction"] == MASK_PREDICTIONS:
        return {}
    why = "only Mask2Former heads (network.vfm archs) read it"
    return {flag.name: why for flag in (CLS_WEIGHT, MASK_WEIGHT, DICE_WEIGHT, *M2F_FLAGS)}


M2F_CLS = register_term(LossTerm(
    "m2f_cls", order=1, weight=CLS_WEIGHT, flags=M2F_FLAGS, prediction=MASK_PREDICTIONS,
    build=_build, compute=_part("cls"), unread=_unread))
M2F_MASK = register_term(LossTerm(
    "m2f_mask", order=2, weight=MASK_WEIGHT, flags=M2F_FLAGS, prediction=MASK_PREDICTIONS,
    build=_build, compute=_part("mask")))
M2F_DICE = register_term(LossTerm(
    "m2f_dice", order=3, weight=DICE_WEIGHT, flags=M2F_FLAGS, prediction=MASK_PREDICTIONS,
    build=_build, compute=_part("dice")))
