"""CML and CCL (METHOD.md §3.3)."""

import pytest
import torch

from loss import (CovarianceMatchingLoss, CrossCovarianceLoss, covariance_matching_loss,
                  cross_covariance_loss)

EPS = 1e-5


def _in_features(generator, shapes=((2, 4, 6, 6), (2, 8, 3, 5))):
    feats = []
    for shape in shapes:
        x = torch.randn(shape, generator=generator)
        feats.append(torch.nn.functional.instance_norm(x))
    return feats


def _covariance(f, g):
    """Direct formula: F G^T / (N - 1) + eps I, per image."""
    f, g = f.flatten(2), g.flatten(2)
    eye = torch.eye(f.shape[1]).expand(f.shape[0], -1, -1)
    return f @ g.transpose(1, 2) / (f.shape[-1] - 1) + EPS * eye


def test_cml_is_zero_for_identical_views_and_positive_otherwise():
    generator = torch.Generator().manual_seed(0)
    feats = _in_features(generator)
    assert covariance_matching_loss(feats, [f.clone() for f in feats]).item() == pytest.approx(
        0.0, abs=1e-12)
    other = _in_features(generator)
    assert covariance_matching_loss(feats, other).item() > 1e-3


def test_cml_matches_the_formula():
    generator = torch.Generator().manual_seed(1)
    feats, feats_aug = _in_features(generator), _in_features(generator)
    expected = sum(torch.mean((_covariance(f, f) - _covariance(a, a)) ** 2)
                   for f, a in zip(feats, feats_aug)) / 2
    torch.testing.assert_close(CovarianceMatchingLoss()(feats, feats_aug), expected)


def test_ccl_matches_the_formula():
    generator = torch.Generator().manual_seed(2)
    feats, feats_aug = _in_features(generator), _in_features(generator)
    expected = sum(torch.mean((torch.diagonal(_covariance(f, a), dim1=1, dim2=2) - 1) ** 2)
                   for f, a in zip(feats, feats_aug)) / 2
    torch.testing.assert_close(CrossCovarianceLoss()(feats, feats_aug), expected)
    # Identical standardised views: the diagonal is ~ N/(N-1) * 1 + eps, close to 1.
    assert cross_covariance_loss(feats, feats).item() < 0.01


@pytest.mark.parametrize("loss_fn", [covariance_matching_loss, cross_covariance_loss])
def test_gradients_reach_only_the_augmented_view(loss_fn):
    generator = torch.Generator().manual_seed(3)
    feats = [f.requires_grad_() for f in _in_features(generator)]
    feats_aug = [f.requires_grad_() for f in _in_features(generator)]
    loss_fn(feats, feats_aug).backward()
    assert all(f.grad is None for f in feats)
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats_aug)


def test_missing_features_raise():
    with pytest.raises(ValueError, match="--wt_layer"):
        covariance_matching_loss([], [])
    with pytest.raises(ValueError, match="equal shape"):
        cross_covariance_loss([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 4, 4)])


@pytest.mark.parametrize("loss_fn", [covariance_matching_loss, cross_covariance_loss])
def test_losses_stay_float32_under_autocast(loss_fn):
    # bf16 products made CML's small covariance difference about 1.5% off (and bf16).
    generator = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 16, 20, 20, generator=generator)
    feat_aug = feat + 0.1 * torch.randn(feat.shape, generator=generator)
    exact = loss_fn([feat], [feat_aug])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_amp = loss_fn([feat], [feat_aug])
    assert under_amp.dtype == torch.float32
    assert torch.allclose(under_amp, exact, rtol=1e-5)
