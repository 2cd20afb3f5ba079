"""BlindNet losses: cross-entropy, covariance alignment (CML, CCL), contrastive (CWCL, SDCL)."""

from loss.contrastive import (ClassWiseContrastiveLoss, SemanticDisentanglementContrastiveLoss,
                              class_wise_contrastive_loss, semantic_disentanglement_loss)
from loss.covariance import (CovarianceMatchingLoss, CrossCovarianceLoss,
                             covariance_matching_loss, cross_covariance_loss)
from loss.criterion import BlindNetCriterion
from loss.sampling import sample_cwcl_anchors, sample_sdcl_pairs
from loss.segmentation import AuxCrossEntropy, SegmentationCrossEntropy, resize_labels

__all__ = [
    "AuxCrossEntropy", "BlindNetCriterion", "ClassWiseContrastiveLoss",
    "CovarianceMatchingLoss", "CrossCovarianceLoss", "SegmentationCrossEntropy",
    "SemanticDisentanglementContrastiveLoss", "class_wise_contrastive_loss",
    "covariance_matching_loss", "cross_covariance_loss", "resize_labels",
    "sample_cwcl_anchors", "sample_sdcl_pairs", "semantic_disentanglement_loss",
]
