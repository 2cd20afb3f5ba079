"""SDCL sampling and loss (METHOD.md §3.5)."""

import pytest
import torch

from loss import (SemanticDisentanglementContrastiveLoss, sample_sdcl_pairs,
                  semantic_disentanglement_loss)
from loss.sampling import SDCLPairs

P = 4


@pytest.fixture
def maps():
    """Two 12x12 images: labels with 4 classes and ignore, right original predictions except
    a few pixels, and an augmented prediction that confuses some of them."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (2, 12, 12), generator=generator)
    labels[:, :2] = 255
    labels[1][labels[1] == 3] = 0  # image 1 has no class 3: a confusion with 3 has no negatives
    labels[1, 5, :2] = 3           # ... except 2 pixels (< P)
    preds = torch.where(labels == 255, 0, labels)
    preds[:, 11, :3] = (labels[:, 11, :3] + 1) % 4    # original view wrong there
    preds_aug = preds.clone()
    flip = torch.rand(2, 12, 12, generator=generator) < 0.3
    preds_aug[flip] = (preds[flip] + torch.randint(1, 4, (int(flip.sum()),),
                                                   generator=generator)) % 4
    return labels, preds, preds_aug


def test_anchors_are_exactly_the_corrected_pixels_with_enough_negatives(maps):
    labels, preds, preds_aug = maps
    pairs = sample_sdcl_pairs(labels, preds, preds_aug, P,
                              generator=torch.Generator().manual_seed(1))
    y, p, pa = (t.flatten(1) for t in maps)
    expected = set()
    for b in range(2):
        for i in range(y.shape[1]):
            c = int(pa[b, i])
            if y[b, i] != 255 and p[b, i] == y[b, i] and pa[b, i] != p[b, i] \
                    and int((y[b] == c).sum()) >= P:
                expected.add((b, i))
    # Every pixel fits under the cap: one slot per pixel, row-major (the official order),
    # and ``valid`` marks exactly the anchors.
    assert pairs.batch_index.numel() == y.numel()
    assert (pairs.batch_index * y.shape[1] + pairs.pixel_index).tolist() == list(range(y.numel()))
    got = set(zip(pairs.batch_index[pairs.valid].tolist(), pairs.pixel_index[pairs.valid].tolist()))
    assert got == expected and len(expected) > 10
    pairs = SDCLPairs(*(t[pairs.valid] for t in (pairs.batch_index, pairs.pixel_index,
                                                 pairs.negative_index)))
    assert (y[pairs.batch_index, pairs.pixel_index] != 255).all()
    # Image 1 confused into class 3 (2 labelled pixels < P) is skipped.
    assert not ((pairs.batch_index == 1) & (pa[1][pairs.pixel_index] == 3)).any()

    confused = pa[pairs.batch_index, pairs.pixel_index]
    negatives_labels = y[pairs.batch_index[:, None], pairs.negative_index]
    assert (negatives_labels == confused[:, None]).all()
    assert all(len(set(row)) == P for row in pairs.negative_index.tolist())
    # One draw per (image, class): every anchor of the pair shares it.
    for b, c in {(int(b), int(c)) for b, c in zip(pairs.batch_index, confused)}:
        rows = pairs.negative_index[(pairs.batch_index == b) & (confused == c)]
        assert (rows == rows[0]).all()


def test_cap_keeps_a_random_subset(maps):
    labels, preds, preds_aug = maps
    full = sample_sdcl_pairs(labels, preds, preds_aug, P)
    capped = sample_sdcl_pairs(labels, preds, preds_aug, P, max_samples=3,
                               generator=torch.Generator().manual_seed(2))
    assert capped.batch_index.numel() == 2 * 3 and capped.valid.all()  # > 6 anchors exist
    full_set = set(zip(full.batch_index[full.valid].tolist(),
                       full.pixel_index[full.valid].tolist()))
    assert set(zip(capped.batch_index.tolist(), capped.pixel_index.tolist())) <= full_set
    # Fewer anchors than the cap: all of them, the rest of the slots masked.
    roomy = sample_sdcl_pairs(labels, preds, preds_aug, P, max_samples=60,
                              generator=torch.Generator().manual_seed(2))
    assert roomy.batch_index.numel() == 120 and int(roomy.valid.sum()) == len(full_set)
    assert set(zip(roomy.batch_index[roomy.valid].tolist(),
                   roomy.pixel_index[roomy.valid].tolist())) == full_set


def test_zero_when_no_pixel_is_corrected(maps):
    labels, preds, _ = maps
    query = torch.randn(2, 8, 12, 12, requires_grad=True)
    loss = SemanticDisentanglementContrastiveLoss(num_patch=P)(
        [query], [torch.randn(2, 8, 12, 12)], labels, preds, preds.clone())
    assert loss.item() == 0.0
    loss.backward()


def test_loss_matches_a_direct_computation_and_is_seeded(maps):
    labels, preds, preds_aug = maps
    generator = torch.Generator().manual_seed(3)
    query = torch.nn.functional.normalize(torch.randn(2, 8, 12, 12, generator=generator), dim=1)
    key = torch.nn.functional.normalize(torch.randn(2, 8, 12, 12, generator=generator), dim=1)
    query.requires_grad_()
    key.requires_grad_()
    pairs = sample_sdcl_pairs(labels, preds, preds_aug, P, generator=generator)
    value = semantic_disentanglement_loss(query, key, pairs, 0.07)
    terms = []
    valid = pairs.valid
    for b, i, negatives in zip(pairs.batch_index[valid], pairs.pixel_index[valid],
                               pairs.negative_index[valid]):
        q, k = query[b].flatten(1)[:, i], key[b].flatten(1)[:, i]
        logits = torch.cat([(q @ k)[None], query[b].flatten(1)[:, negatives].T @ q]) / 0.07
        terms.append(torch.logsumexp(logits, 0) - logits[0])
    torch.testing.assert_close(value, torch.stack(terms).mean())
    value.backward()
    assert key.grad is None and query.grad.abs().sum() > 0

    module = SemanticDisentanglementContrastiveLoss(num_patch=P)
    runs = [module([query], [key], labels, preds, preds_aug, torch.Generator().manual_seed(s))
            for s in (5, 5, 6)]
    assert runs[0].item() == runs[1].item() != runs[2].item()


def test_gradient_is_bitwise_reproducible_with_several_threads():
    # Every anchor of an (image, class) shares the same negatives, so many gradient rows land
    # on few pixels; tensor indexing summed them in a thread-dependent order on CPU, which
    # made BlindNet training irreproducible run to run.
    generator = torch.Generator().manual_seed(0)
    batch, dim, side, anchors, negatives = 8, 256, 32, 3000, 20
    query = torch.randn(batch, dim, side, side, generator=generator)
    key = torch.randn(batch, dim, side, side, generator=generator)
    pairs = SDCLPairs(torch.randint(0, batch, (anchors,), generator=generator),
                      torch.randint(0, side * side, (anchors,), generator=generator),
                      torch.randint(0, 40, (anchors, negatives), generator=generator))

    def gradient():
        leaf = query.clone().requires_grad_()
        semantic_disentanglement_loss(leaf, key, pairs, 0.07).backward()
        return leaf.grad

    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        first = gradient()
        assert all(torch.equal(first, gradient()) for _ in range(4))
    finally:
        torch.set_num_threads(threads)


def _official_cut(anchor_mask, cap, generator):
    """The official subsample: all anchors (row-major, ``nonzero``), a ``randperm`` cut to
    ``cap`` when there are more."""
    flat = anchor_mask.flatten().nonzero().flatten()
    if flat.numel() > cap:
        flat = flat[torch.randperm(flat.numel(), generator=generator)[:cap]]
    return flat


def test_capped_anchors_are_a_uniform_subset_like_the_official_cut(maps):
    """The fixed-size top-k draw has the official distribution: every anchor is kept with
    probability cap / #anchors, and so is every pair of anchors (cap (cap - 1) / (n (n - 1)))
    - checked against those probabilities and against the official cut, by chi-square."""
    labels, preds, preds_aug = maps
    anchors = sample_sdcl_pairs(labels, preds, preds_aug, P)
    anchor_mask = torch.zeros(labels.numel(), dtype=torch.bool)
    anchor_mask[(anchors.batch_index * 144 + anchors.pixel_index)[anchors.valid]] = True
    n, cap, draws = int(anchor_mask.sum()), 2 * 4, 2000
    assert n > 3 * cap
    generator = torch.Generator().manual_seed(11)
    ours, official = torch.zeros(labels.numel()), torch.zeros(labels.numel())
    pair_ours, pair_official = 0, 0
    first, second = anchor_mask.nonzero().flatten()[:2].tolist()
    for _ in range(draws):
        pairs = sample_sdcl_pairs(labels, preds, preds_aug, P, max_samples=4,
                                  generator=generator)
        kept = (pairs.batch_index * 144 + pairs.pixel_index)[pairs.valid]
        assert kept.numel() == cap and kept.unique().numel() == cap
        ours[kept] += 1
        pair_ours += int(first in kept.tolist() and second in kept.tolist())
        cut = _official_cut(anchor_mask, cap, generator)
        official[cut] += 1
        pair_official += int(first in cut.tolist() and second in cut.tolist())
    assert ours[~anchor_mask].sum() == 0
    expected = draws * cap / n
    for counts in (ours, official):
        chi2 = float(((counts[anchor_mask] - expected) ** 2 / expected).sum())
        assert chi2 < 1.6 * n, chi2  # n - 1 degrees of freedom: p < 1e-4 beyond ~1.6 n
    pair_expected = draws * cap * (cap - 1) / (n * (n - 1))
    for count in (pair_ours, pair_official):
        assert abs(count - pair_expected) < 4.5 * pair_expected ** 0.5, (count, pair_expected)
    # Two samples (ours, official) of the same multinomial-like counts agree.
    both = ours[anchor_mask] + official[anchor_mask]
    two_sample = float(((ours[anchor_mask] - official[anchor_mask]) ** 2 / both).sum())
    assert two_sample < 1.6 * n, two_sample
