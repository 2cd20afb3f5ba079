"""IW / IRW / ISW losses against a direct computation of ROBUSTNET_METHODS.md §3.2-3.4."""

import itertools

import numpy as np
import pytest
import torch

from loss.isw_mask import (CovarianceStatistics, accumulate_statistics, compute_isw_masks,
                           style_sensitive_mask)
from loss.whitening import WhiteningLoss, irw_margin, masked_whitening_loss
from transforms.normalization import normalize_images
from utils.kmeans1d import kmeans_1d


def direct_layer_loss(feat, relax_denom=0.0, mask=None):
    """The doc's formula with explicit loops, in float64."""
    batch, channels = feat.shape[:2]
    pixels = feat.shape[2] * feat.shape[3]
    total = 0.0
    for b in range(batch):
        f = feat[b].reshape(channels, pixels).double()
        cov = f @ f.T / (pixels - 1) + 1e-5 * torch.eye(channels, dtype=torch.float64)
        if mask is None:
            pairs = [(i, j) for i in range(channels) for j in range(i + 1, channels)]
            n = channels * (channels - 1) / 2
            margin = np.floor(n / relax_denom) if relax_denom > 0 else 0.0
        else:
            pairs = [tuple(p) for p in mask.nonzero().tolist()]
            n, margin = len(pairs), 0.0
        masked = sum(abs(cov[i, j].item()) for i, j in pairs)
        total += max(0.0, (masked - margin) / n)
    return total / batch


def standardised(*shape, generator):
    x = torch.randn(*shape, generator=generator)
    return torch.nn.functional.instance_norm(x)


def test_doc_normalisers_and_margins_per_layer():
    # ROBUSTNET_METHODS.md §3.3: N = 2016, 32640, 130816 and the IRW margins for C = 64/256/512.
    assert [c * (c - 1) // 2 for c in (64, 256, 512)] == [2016, 32640, 130816]
    assert [irw_margin(c, 64.0) for c in (64, 256, 512)] == [31, 510, 2044]
    assert [irw_margin(c, 32.0) for c in (64, 256, 512)] == [63, 1020, 4088]
    assert irw_margin(64, 0.0) == 0.0
    with pytest.raises(ValueError, match="relax_denom"):
        irw_margin(64, -1.0)


@pytest.mark.parametrize("relax_denom", [0.0, 4.0, 64.0])
def test_iw_and_irw_equal_the_direct_formula(relax_denom):
    g = torch.Generator().manual_seed(0)
    # Image 0 has strongly correlated channels, image 1 nearly uncorrelated ones, so with a
    # margin the clamp acts on one image and not on the other.
    base = torch.randn(1, 1, 6, 6, generator=g)
    correlated = standardised(1, 12, 6, 6, generator=g) * 0.3 + base
    layer1 = torch.cat([torch.nn.functional.instance_norm(correlated),
                        standardised(1, 12, 6, 6, generator=g)])
    layer2 = standardised(2, 20, 4, 5, generator=g)
    feats = [layer1.requires_grad_(), layer2.requires_grad_()]
    loss = WhiteningLoss("iw", relax_denom)(feats)
    expected = np.mean([direct_layer_loss(f.detach(), relax_denom) for f in feats])
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
    loss.backward()
    assert feats[0].grad is not None and feats[0].grad.abs().sum() > 0


def test_irw_clamp_makes_uncorrelated_features_free():
    g = torch.Generator().manual_seed(1)
    feats = [standardised(2, 8, 16, 16, generator=g)]
    assert WhiteningLoss("iw", 0.0)(feats).item() > 0
    # A margin of half the pairs exceeds the sum of |cov| of uncorrelated channels.
    assert WhiteningLoss("iw", 2.0)(feats).item() == 0.0


def test_masked_loss_normalises_by_the_mask_and_handles_an_empty_mask():
    g = torch.Generator().manual_seed(2)
    feat = standardised(3, 5, 4, 4, generator=g)
    mask = torch.zeros(5, 5, dtype=torch.bool)
    mask[0, 3] = mask[1, 2] = mask[2, 4] = True
    assert masked_whitening_loss(feat, mask).item() == pytest.approx(
        direct_layer_loss(feat, mask=mask), rel=1e-5)
    assert masked_whitening_loss(feat, torch.zeros(5, 5, dtype=torch.bool)).item() == 0.0
    with pytest.raises(ValueError, match="mask must be"):
        masked_whitening_loss(feat, torch.ones(4, 4))


def test_isw_loss_is_zero_until_the_mask_is_set_then_the_masked_formula():
    g = torch.Generator().manual_seed(3)
    feats = [standardised(2, 6, 5, 5, generator=g), standardised(2, 9, 4, 4, generator=g)]
    isw = WhiteningLoss("isw")
    assert not isw.active and isw(feats).item() == 0.0
    masks = [torch.rand(6, 6, generator=g).triu(1) > 0.5, torch.rand(9, 9, generator=g) > 0.7]
    isw.set_masks(masks)
    assert isw.active
    expected = np.mean([direct_layer_loss(f, mask=m) for f, m in zip(feats, masks)])
    assert isw(feats).item() == pytest.approx(expected, rel=1e-5)
    assert [torch.equal(a, b) for a, b in zip(isw.get_masks(), masks)] == [True, True]
    with pytest.raises(ValueError, match="2 layer"):
        isw(feats[:1])
    with pytest.raises(ValueError, match="only the ISW"):
        WhiteningLoss("iw").set_masks(masks)


def brute_force_lowest_cluster(values, k):
    """Independent exact 1-D k-means: every split of the sorted values into k runs."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    best_cost, best_cut = np.inf, None
    for cuts in itertools.combinations(range(1, len(values)), k - 1):
        bounds = (0, *cuts, len(values))
        cost = sum(((ordered[a:b] - ordered[a:b].mean()) ** 2).sum()
                   for a, b in zip(bounds, bounds[1:]))
        if cost < best_cost - 1e-15:
            best_cost, best_cut = cost, cuts[0]
    in_lowest = np.zeros(len(values), dtype=bool)
    in_lowest[order[:best_cut]] = True
    return in_lowest


def test_kmeans_1d_is_optimal():
    rng = np.random.default_rng(0)
    for _ in range(20):
        values = rng.random(rng.integers(6, 25)) ** 3
        values[:4] = 0.0
        k = int(rng.integers(2, 5))
        labels, centroids = kmeans_1d(values, k)
        assert np.all(np.diff(centroids) > 0)
        assert np.array_equal(labels == 0, brute_force_lowest_cluster(values, k))
    with pytest.raises(ValueError, match="finite"):
        kmeans_1d([0.0, np.nan], 2)


class TinyEncoder(torch.nn.Module):
    """Two 'collected layers': 1x1 conv + IN (6 channels), then 3x3/2 conv + IN (5)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = torch.nn.Conv2d(3, 6, 1)
        self.conv2 = torch.nn.Conv2d(6, 5, 3, stride=2, padding=1)

    def forward(self, images, collected):
        x = torch.nn.functional.instance_norm(self.conv1(images))
        collected.append(x)
        x = torch.nn.functional.instance_norm(self.conv2(x.relu()))
        collected.append(x)
        return x


def trial_pairs(trial, images=3):
    g = torch.Generator().manual_seed(100 + trial)
    pairs = []
    for _ in range(images):
        original = torch.randint(0, 256, (1, 3, 8, 8), generator=g, dtype=torch.uint8)
        photometric = original * (1 + torch.rand(1, 3, 1, 1, generator=g)) + 40 * torch.randn(
            1, 3, 1, 1, generator=g)
        # uint8 items, as the statistics pass loads them (normalised on the device)
        pairs.append((photometric.clamp(0, 255).to(torch.uint8), original))
    return pairs


def direct_variance(encoder, pairs):
    """V per layer, with loops over pairs, from the doc's definitions (float64)."""
    sums = None
    for photometric, original in pairs:
        layers = []
        for images in (photometric, original):
            collected = []
            with torch.no_grad():
                encoder(normalize_images(images), collected)
            layers.append(collected)
        per_layer = []
        for f_photo, f_orig in zip(*layers):
            covs = []
            for f in (f_photo[0], f_orig[0]):
                flat = f.reshape(f.shape[0], -1).double()
                covs.append(flat @ flat.T / (flat.shape[1] - 1))
            stacked = torch.stack(covs)
            per_layer.append(torch.var(stacked, dim=0, unbiased=True).triu(1))
        sums = per_layer if sums is None else [a + b for a, b in zip(sums, per_layer)]
    return [s / len(pairs) for s in sums]


def test_isw_mask_equals_an_independent_exact_kmeans_with_10_trial_intersection():
    encoder = TinyEncoder().eval()
    masks = compute_isw_masks(encoder, trial_pairs, trials=10, clusters=3, device="cpu")
    expected = None
    for trial in range(10):
        variances = direct_variance(encoder, trial_pairs(trial))
        trial_masks = [torch.from_numpy(~brute_force_lowest_cluster(
            v.numpy().reshape(-1), 3).reshape(v.shape)) for v in variances]
        expected = trial_masks if expected is None else [
            a & b for a, b in zip(expected, trial_masks)]
    assert [tuple(m.shape) for m in masks] == [(6, 6), (5, 5)]
    for got, want in zip(masks, expected):
        assert torch.equal(got, want)
        assert not got.tril().any()          # inside the strict upper triangle
    assert 0 < int(masks[0].sum()) < 15      # all-but-lowest, then intersected


def test_one_pass_statistics_count_and_mean():
    encoder = TinyEncoder().eval()
    pairs = trial_pairs(0, images=4)
    stats = accumulate_statistics(encoder, pairs, "cpu")
    assert stats.count == 4
    for got, want in zip(stats.variances(), direct_variance(encoder, pairs)):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-7)
    # Two pairs in one batch give the same statistics as two batches of one.
    batched = accumulate_statistics(encoder, [(torch.cat([p[0] for p in pairs]),
                                               torch.cat([p[1] for p in pairs]))], "cpu")
    for a, b in zip(stats.variances(), batched.variances()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="empty"):
        CovarianceStatistics().variances()
    with pytest.raises(ValueError, match="clusters"):
        style_sensitive_mask(torch.zeros(3, 3), 1)
