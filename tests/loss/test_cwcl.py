"""CWCL sampling and loss (METHOD.md §3.4, DECISIONS.md D2, D3, D21)."""

import math

import pytest
import torch

from loss import ClassWiseContrastiveLoss, class_wise_contrastive_loss, sample_cwcl_anchors

V, K = 10, 3


def _image(generator, counts, size=16):
    """Labels and predictions of one image from (class, #hard, #easy) triples; rest ignored."""
    labels, preds = [], []
    for cls, hard, easy in counts:
        labels += [cls] * (hard + easy)
        preds += [(cls + 1) % 19] * hard + [cls] * easy
    rest = size * size - len(labels)
    labels += [255] * rest
    preds += [0] * rest
    perm = torch.randperm(size * size, generator=generator)
    return (torch.tensor(labels)[perm].view(size, size),
            torch.tensor(preds)[perm].view(size, size))


# Both sets >= V/2, only hard >= V/2, only easy >= V/2; class 3 has exactly V pixels (not a
# candidate); class 4 is a candidate beyond K = 3 in ascending order.
TABLE_IMAGE = [(0, 20, 20), (1, 28, 2), (2, 1, 29), (3, 5, 5), (4, 25, 25)]
EXPECTED_HARD = {0: 5, 1: 8, 2: 1}


def test_slots_follow_the_quota_table_and_never_hold_ignore_pixels():
    generator = torch.Generator().manual_seed(0)
    labels, preds = _image(generator, TABLE_IMAGE)
    anchors = sample_cwcl_anchors(labels[None], preds[None], K, V, generator=generator)
    assert anchors.indices.shape == (1, K * V)
    assert anchors.slot_classes.tolist() == [[0, 1, 2]]
    assert bool(anchors.has_classes)
    flat_labels, flat_preds = labels.flatten(), preds.flatten()
    for slot, cls in enumerate([0, 1, 2]):
        pixels = anchors.indices[0, slot * V:(slot + 1) * V]
        assert len(set(pixels.tolist())) == V
        assert (flat_labels[pixels] == cls).all()
        hard = (flat_preds[pixels] != cls).tolist()
        # Hard pixels first, then easy ones.
        assert hard == [True] * EXPECTED_HARD[cls] + [False] * (V - EXPECTED_HARD[cls])


def test_random_class_order_picks_k_of_the_candidates():
    labels, preds = _image(torch.Generator().manual_seed(0), TABLE_IMAGE)
    seen = set()
    for seed in range(8):
        anchors = sample_cwcl_anchors(labels[None], preds[None], K, V, random_class_order=True,
                                      generator=torch.Generator().manual_seed(seed))
        chosen = anchors.slot_classes[0].tolist()
        assert len(chosen) == K and set(chosen) <= {0, 1, 2, 4}
        seen.update(chosen)
    assert seen == {0, 1, 2, 4}


@pytest.mark.parametrize("size", [16, 4])  # 4x4 = 16 pixels < the 20 fill pixels (D3)
def test_random_fill_slots(size):
    generator = torch.Generator().manual_seed(1)
    counts = [(7, 0, 12)] if size == 16 else [(7, 0, 11)]
    labels, preds = _image(generator, counts, size)
    for distinct in (False, True):
        anchors = sample_cwcl_anchors(labels[None], preds[None], K, V, distinct=distinct,
                                      generator=generator)
        assert anchors.slot_classes.tolist() == [[7, -1, -1]]
        class_pixels = set(anchors.indices[0, :V].tolist())
        fill = anchors.indices[0, V:].tolist()
        assert all(0 <= p < size * size for p in fill)
        if distinct:
            pool = size * size - V
            assert not class_pixels & set(fill[:pool])     # used pixels are excluded
            assert len(set(fill[:min(pool, len(fill))])) == min(pool, len(fill))


def test_no_class_anywhere_gives_zero_loss():
    labels = torch.full((2, 8, 8), 255)
    query = torch.randn(2, 16, 8, 8, requires_grad=True)
    loss = ClassWiseContrastiveLoss(max_classes=K, max_views=V)(
        [query], [torch.randn(2, 16, 8, 8)], labels, torch.zeros(2, 8, 8, dtype=torch.long))
    assert loss.item() == 0.0
    loss.backward()  # the graph is intact


def _normalised(generator, shape):
    x = torch.randn(shape, generator=generator)
    return x / x.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("negatives, expected", [("reference", math.log(2)), ("distinct", 0.0)])
def test_identical_embeddings(negatives, expected):
    generator = torch.Generator().manual_seed(2)
    images = [_image(generator, TABLE_IMAGE) for _ in range(2)]
    labels = torch.stack([image[0] for image in images])
    preds = torch.stack([image[1] for image in images])
    embeddings = _normalised(generator, (2, 256, 16, 16))
    loss = ClassWiseContrastiveLoss(0.07, K, V, negatives)(
        [embeddings], [embeddings.clone()], labels, preds, generator=generator)
    assert loss.item() == pytest.approx(expected, abs=2e-3)


def test_loss_matches_a_direct_computation():
    generator = torch.Generator().manual_seed(3)
    labels, preds = _image(generator, TABLE_IMAGE)
    labels, preds = labels[None].repeat(2, 1, 1), preds[None].repeat(2, 1, 1)
    query = _normalised(generator, (2, 8, 16, 16)).requires_grad_()
    key = _normalised(generator, (2, 8, 16, 16)).requires_grad_()
    for distinct in (False, True):
        anchors = sample_cwcl_anchors(labels, preds, K, V, generator=generator)
        value = class_wise_contrastive_loss(query, key, anchors, V, 0.1, distinct)
        terms = []
        for b in range(2):
            q = query[b].flatten(1)[:, anchors.indices[b]].T
            k = key[b].flatten(1)[:, anchors.indices[b]].T
            for i in range(K * V):
                negatives = [j for j in range(K * V) if not (distinct and j // V == i // V)]
                logits = torch.cat([(q[i] @ k[i])[None], k[negatives] @ q[i]]) / 0.1
                terms.append(torch.logsumexp(logits, 0) - logits[0])
        torch.testing.assert_close(value, torch.stack(terms).mean())
    value.backward()
    assert key.grad is None and query.grad.abs().sum() > 0


def test_same_seed_same_loss_and_levels_are_resized():
    generator = torch.Generator().manual_seed(4)
    labels = torch.randint(0, 4, (2, 64, 64), generator=generator)
    preds = torch.randint(0, 4, (2, 16, 16), generator=generator)
    queries = [_normalised(generator, (2, 32, 4, 4)), _normalised(generator, (2, 32, 16, 16))]
    keys = [_normalised(generator, (2, 32, 4, 4)), _normalised(generator, (2, 32, 16, 16))]
    criterion = ClassWiseContrastiveLoss(max_classes=K, max_views=V)
    values = [criterion(queries, keys, labels, preds, torch.Generator().manual_seed(seed))
              for seed in (7, 7, 8)]
    assert values[0].item() == values[1].item()
    assert values[0].item() != values[2].item()


def test_contrastive_losses_stay_float32_under_autocast():
    # The docstring promises float32; autocast used to run the q.k products in bf16.
    from loss import SemanticDisentanglementContrastiveLoss

    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2, 32, 24, 24, generator=g), dim=1)
    k = torch.nn.functional.normalize(q + 0.3 * torch.randn(q.shape, generator=g), dim=1)
    labels = torch.randint(0, 4, (2, 24, 24), generator=g)
    preds = torch.where(torch.rand(2, 24, 24, generator=g) < 0.3, 0, labels)
    preds_aug = torch.where(torch.rand(2, 24, 24, generator=g) < 0.3, 1, preds)
    losses = [
        lambda: ClassWiseContrastiveLoss(max_views=8)(
            [q], [k], labels, preds, torch.Generator().manual_seed(1)),
        lambda: SemanticDisentanglementContrastiveLoss(num_patch=4)(
            [q], [k], labels, preds, preds_aug, torch.Generator().manual_seed(1))]
    for loss in losses:
        exact = loss()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under_amp = loss()
        assert torch.allclose(under_amp, exact, rtol=1e-6), (under_amp, exact)
