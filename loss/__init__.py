"""BlindNet losses: cross-entropy, covariance alignment (CML, CCL), contrastive (CWCL, SDCL),
RobustNet's whitening loss, Mask2Former's set losses; each a self-describing term of
:mod:`loss.terms`."""

from loss.contrastive import (ClassWiseContrastiveLoss, SemanticDisentanglementContrastiveLoss,
                              class_wise_contrastive_loss, semantic_disentanglement_loss)
from loss.covariance import (CovarianceMatchingLoss, CrossCovarianceLoss,
                             covariance_matching_loss, cross_covariance_loss)
from loss.criterion import BlindNetCriterion
from loss.sampling import sample_cwcl_anchors, sample_sdcl_pairs
from loss.segmentation import AuxCrossEntropy, SegmentationCrossEntropy, resize_labels
from loss.mask2former import Mask2FormerLoss
from loss.terms import (EMBEDDINGS, IN_FEATURES, MASK_PREDICTIONS, PIXEL_LOGITS, PREDICTIONS,
                        TWO_VIEWS, LossFlag, LossTerm, TermInputs,
                        check_options, criterion_options, loss_flags, loss_terms,
                        register_term, state_keys, unread_flags, weight_flags)

__all__ = [
    "EMBEDDINGS", "IN_FEATURES", "MASK_PREDICTIONS", "PIXEL_LOGITS", "PREDICTIONS",
    "TWO_VIEWS", "AuxCrossEntropy", "BlindNetCriterion", "Mask2FormerLoss",
    "ClassWiseContrastiveLoss", "CovarianceMatchingLoss", "CrossCovarianceLoss", "LossFlag",
    "LossTerm", "SegmentationCrossEntropy", "SemanticDisentanglementContrastiveLoss",
    "TermInputs", "check_options", "class_wise_contrastive_loss", "covariance_matching_loss",
    "criterion_options", "cross_covariance_loss", "loss_flags", "loss_terms", "register_term",
    "resize_labels", "sample_cwcl_anchors", "sample_sdcl_pairs",
    "semantic_disentanglement_loss", "state_keys", "unread_flags", "weight_flags",
]
