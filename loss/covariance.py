"""Covariance alignment of the instance-whitened encoder features (METHOD.md §3.3).

For each collected IN output, ``F_b`` is the ``(C, N)`` feature of image b of the original
view (``N = H * W``) and ``F^a_b`` that of the augmented view. With ``eps = 1e-5``:

* covariance ``S(F) = F F^T / (N - 1) + eps I`` (not centred: IN outputs are already zero
  mean per channel);
* CML: ``mean over b, i, j of (S(sg F_b) - S(F^a_b))_ij ** 2``;
* CCL: ``mean over b, i of (S(sg F_b, F^a_b)_ii - 1) ** 2`` with the cross-covariance
  ``S(F, G) = F G^T / (N - 1) + eps I`` (diagonal only);

each averaged over the levels. The original view is detached: gradients reach only the
augmented view. Both run in float32 whatever the autocast dtype of the features. Loss terms
``cml`` (weight ``--w1``) and ``ccl`` (``--w2``), both switched on by ``--use_ca``.
"""

from torch import nn

from loss.terms import IN_FEATURES, TWO_VIEWS, LossFlag, LossTerm, register_term
from utils.precision import float32_region

COVARIANCE_EPS = 1e-5

USE_CA = LossFlag("use_ca", False, "covariance alignment (CML + CCL)", type=bool)
W1 = LossFlag("w1", 0.0, "CML weight")
W2 = LossFlag("w2", 0.0, "CCL weight")


def _flatten_pair(feat, feat_aug):
    """``(B, C, H, W)`` pair -> ``(B, C, N)`` float32 pair with the original view detached."""
    if feat.shape != feat_aug.shape or feat.dim() != 4:
        raise ValueError(f"IN features of the two views must be (B, C, H, W) of equal shape, "
                         f"got {tuple(feat.shape)} and {tuple(feat_aug.shape)}")
    if feat.shape[-2] * feat.shape[-1] < 2:
        raise ValueError(f"covariance needs at least 2 pixels, got a {tuple(feat.shape)} map")
    return feat.detach().flatten(2).float(), feat_aug.flatten(2).float()


def _check_levels(feats, feats_aug):
    if not feats or len(feats) != len(feats_aug):
        raise ValueError(
            f"covariance alignment needs the same, non-zero number of IN features per view, "
            f"got {len(feats or [])} and {len(feats_aug or [])}; set --wt_layer entries to 1 "
            f"or 2 (official: 0 0 1 1 1 0 0)")


def covariance_matching_loss(feats, feats_aug):
    """CML: mean squared difference of the two views' channel covariances.

    Args:
        feats: list of ``(B, C_l, H_l, W_l)`` IN outputs of the original view (detached here).
        feats_aug: the same list for the augmented view.

    Returns:
        scalar, the mean over levels of the per-level mean over ``B * C_l * C_l`` entries.
    """
    _check_levels(feats, feats_aug)
    per_level = []
    for feat, feat_aug in zip(feats, feats_aug):
        f, f_aug = _flatten_pair(feat, feat_aug)
        # The eps * I added to both covariances cancels in the difference. Autocast would
        # run the products in bf16/fp16 and the small difference would be rounding noise.
        with float32_region(f.device):
            difference = (f @ f.transpose(1, 2) - f_aug @ f_aug.transpose(1, 2)) / (
                f.shape[-1] - 1)
        per_level.append(difference.square().mean())
    return sum(per_level) / len(per_level)


def cross_covariance_loss(feats, feats_aug):
    """CCL: push the diagonal of the cross-covariance of the two views to 1.

    Args:
        feats: list of ``(B, C_l, H_l, W_l)`` IN outputs of the original view (detached here).
        feats_aug: the same list for the augmented view.

    Returns:
        scalar, the mean over levels of the per-level mean over ``B * C_l`` diagonal entries.
    """
    _check_levels(feats, feats_aug)
    per_level = []
    for feat, feat_aug in zip(feats, feats_aug):
        f, f_aug = _flatten_pair(feat, feat_aug)
        # Only the diagonal is used, so the full C x C product is never formed.
        diagonal = (f * f_aug).sum(-1) / (f.shape[-1] - 1) + COVARIANCE_EPS
        per_level.append((diagonal - 1.0).square().mean())
    return sum(per_level) / len(per_level)


class CovarianceMatchingLoss(nn.Module):
    """Module form of :func:`covariance_matching_loss`: ``forward(feats, feats_aug)``."""

    def forward(self, feats, feats_aug):
        return covariance_matching_loss(feats, feats_aug)


class CrossCovarianceLoss(nn.Module):
    """Module form of :func:`cross_covariance_loss`: ``forward(feats, feats_aug)``."""

    def forward(self, feats, feats_aug):
        return cross_covariance_loss(feats, feats_aug)


def _of_both_views(module, inputs):
    return module(inputs.output.original.in_feats, inputs.output.augmented.in_feats)


CML = register_term(LossTerm(
    "cml", order=20, weight=W1, switch=USE_CA, needs=frozenset({TWO_VIEWS, IN_FEATURES}),
    build=lambda o: CovarianceMatchingLoss(), compute=_of_both_views))
CCL = register_term(LossTerm(
    "ccl", order=30, weight=W2, switch=USE_CA, needs=frozenset({TWO_VIEWS, IN_FEATURES}),
    build=lambda o: CrossCovarianceLoss(), compute=_of_both_views))
