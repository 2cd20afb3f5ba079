"""The BlindNet objective (METHOD.md §3.6).

``total = main + 0.4 * aux + w1 * CML + w2 * CCL + w3 * CWCL + w4 * SDCL``, where ``main`` is
the cross-entropy of both views (averaged) and ``aux`` that of the original view's aux head.
Terms whose switch is off are neither computed nor returned. RobustNet's whitening loss
(IW / IRW / ISW, :mod:`loss.whitening`) is the optional term ``wt`` (weight
``wt_reg_weight``) on the original view's collected IN features.
"""

import torch
from torch import nn

from loss.contrastive import ClassWiseContrastiveLoss, SemanticDisentanglementContrastiveLoss
from loss.covariance import CovarianceMatchingLoss, CrossCovarianceLoss
from loss.segmentation import AuxCrossEntropy, SegmentationCrossEntropy
from loss.whitening import WhiteningLoss
from utils.labels import IGNORE_LABEL


class BlindNetCriterion(nn.Module):
    """All BlindNet loss terms and their weighted sum.

    Args:
        use_ca: add CML (weight ``w1``) and CCL (``w2``) (``--use_ca``).
        use_cwcl: add CWCL (weight ``w3``) (``--use_cwcl``).
        use_sdcl: add SDCL (weight ``w4``) (``--use_sdcl``).
        w1, w2, w3, w4: term weights (``--w1..--w4``; official 0.2, 0.2, 0.3, 0.3).
        aux_weight: weight of the aux cross-entropy (0.4, hard-coded in the official code).
        nce_T: contrastive temperature (``--nce_T``).
        contrast_max_classes, contrast_max_views: K and V of CWCL.
        num_patch: SDCL negatives per anchor.
        cwcl_negatives: ``reference`` or ``distinct`` (DECISIONS.md D2).
        cwcl_class_order: ``ascending`` or ``random`` (D21).
        ignore_index: ignored label value (255).
        class_weights: optional ``(C,)`` cross-entropy class weights.
        whitening: RobustNet's whitening loss: ``None`` (off), ``iw`` (IW / IRW, ``--wt_layer``
            code 1) or ``isw`` (code 2; zero until :attr:`whitening_loss` gets its masks).
        wt_reg_weight: its weight (``--wt_reg_weight``).
        relax_denom: the IRW margin denominator (``--relax_denom``; 0 = IW).

    ``forward(output, labels, generator=None)`` takes a :class:`network.ModelOutput` and
    ``labels (B, H, W)`` long; returns a dict of scalar tensors with ``main``, ``aux``, the
    enabled ones of ``cml``, ``ccl``, ``cwcl``, ``sdcl``, ``wt`` and ``total``. A two-view term on a
    single-view output raises ValueError.
    """

    def __init__(self, use_ca=False, use_cwcl=False, use_sdcl=False, w1=0.0, w2=0.0, w3=0.3,
                 w4=0.0, aux_weight=0.4, nce_T=0.07, contrast_max_classes=15,
                 contrast_max_views=50, num_patch=20, cwcl_negatives="reference",
                 cwcl_class_order="ascending", ignore_index=IGNORE_LABEL, class_weights=None,
                 whitening=None, wt_reg_weight=0.0, relax_denom=0.0):
        super().__init__()
        self.use_ca, self.use_cwcl, self.use_sdcl = use_ca, use_cwcl, use_sdcl
        self.weights = {"aux": aux_weight, "cml": w1, "ccl": w2, "cwcl": w3, "sdcl": w4}
        self.whitening_loss = None
        if whitening is not None:
            self.whitening_loss = WhiteningLoss(whitening, relax_denom)
            self.weights["wt"] = wt_reg_weight
        self.segmentation = SegmentationCrossEntropy(ignore_index, class_weights)
        self.aux = AuxCrossEntropy(ignore_index, class_weights)
        self.cml = CovarianceMatchingLoss() if use_ca else None
        self.ccl = CrossCovarianceLoss() if use_ca else None
        self.cwcl = ClassWiseContrastiveLoss(
            nce_T, contrast_max_classes, contrast_max_views, cwcl_negatives, cwcl_class_order,
            ignore_index) if use_cwcl else None
        self.sdcl = SemanticDisentanglementContrastiveLoss(
            nce_T, num_patch, ignore_index=ignore_index) if use_sdcl else None

    @property
    def needs_embeddings(self):
        """Whether the model must run its projection heads (``with_embeddings``)."""
        return self.use_cwcl or self.use_sdcl

    @property
    def needs_two_views(self):
        return self.use_ca or self.use_cwcl or self.use_sdcl

    def forward(self, output, labels, generator=None):
        """``output``: :class:`network.ModelOutput`; ``labels``: ``(B, H, W)`` train ids."""
        labels = labels.long()
        if self.needs_two_views and not output.two_view:
            raise ValueError("--use_ca/--use_cwcl/--use_sdcl need two views: call the model "
                             "with images_aug (a *_jitter training dataset)")
        original, augmented = output.original, output.augmented
        losses = {}
        if output.two_view:
            losses["main"] = 0.5 * (self.segmentation(original.logits, labels)
                                    + self.segmentation(augmented.logits, labels))
        else:
            losses["main"] = self.segmentation(original.logits, labels)
        if output.aux_logits is None:
            raise ValueError("the aux loss needs output.aux_logits (the model's training forward)")
        losses["aux"] = self.aux(output.aux_logits, labels)

        if self.use_ca:
            losses["cml"] = self.cml(original.in_feats, augmented.in_feats)
            losses["ccl"] = self.ccl(original.in_feats, augmented.in_feats)
        if self.needs_embeddings:
            with torch.no_grad():
                preds = original.dec_logits.argmax(dim=1)
            if self.use_cwcl:
                losses["cwcl"] = self.cwcl(augmented.embeddings, original.embeddings, labels,
                                           preds, generator)
            if self.use_sdcl:
                with torch.no_grad():
                    preds_aug = augmented.dec_logits.argmax(dim=1)
                losses["sdcl"] = self.sdcl(augmented.embeddings, original.embeddings, labels,
                                           preds, preds_aug, generator)
        if self.whitening_loss is not None:
            losses["wt"] = self.whitening_loss(original.in_feats)

        losses["total"] = losses["main"] + sum(self.weights[name] * value
                                               for name, value in losses.items()
                                               if name != "main")
        return losses
