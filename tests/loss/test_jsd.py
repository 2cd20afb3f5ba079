"""The Jensen-Shannon consistency term (loss/jsd.py): its value against the definition,
ignored pixels, gradients, and the term's switch and two-view requirement."""

import math

import pytest
import torch

from loss import BlindNetCriterion
from loss.jsd import JensenShannonConsistency
from network import ModelOutput, ViewOutput


def _views(seed=0, shape=(2, 5, 4, 6)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 2, torch.randn(shape, generator=g) * 2


def _labels(shape=(2, 4, 6), seed=1):
    labels = torch.randint(0, 5, shape, generator=torch.Generator().manual_seed(seed))
    labels[:, 0] = 255  # the first row of every image is unlabelled
    return labels


def _reference(views, labels):
    """The definition in float64, pixel by pixel: mean_v sum_c p_v (log p_v - log M)."""
    probs = [v.double().softmax(dim=1) for v in views]
    m = sum(probs) / len(probs)
    total, count = 0.0, 0
    for b, i, j in (labels != 255).nonzero().tolist():
        total += sum(float((p[b, :, i, j] * (p[b, :, i, j].log() - m[b, :, i, j].log())).sum())
                     for p in probs) / len(probs)
        count += 1
    return total / count


def test_zero_for_identical_views_and_the_definition_otherwise():
    loss = JensenShannonConsistency()
    a, b = _views()
    labels = _labels()
    assert loss([a, a.clone()], labels).item() == pytest.approx(0.0, abs=1e-7)
    value = loss([a, b], labels)
    assert value.item() > 0 and value.item() <= math.log(2)
    assert value.item() == pytest.approx(_reference([a, b], labels), rel=1e-5)
    three = [a, b, _views(3)[0]]
    assert loss(three, labels).item() == pytest.approx(_reference(three, labels), rel=1e-5)


def test_ignored_pixels_do_not_count():
    loss = JensenShannonConsistency()
    a, b = _views()
    labels = _labels()
    changed = b.clone()
    changed[:, :, 0] = torch.randn_like(changed[:, :, 0]) * 10  # only the unlabelled row
    assert loss([a, changed], labels).item() == pytest.approx(loss([a, b], labels).item(),
                                                              rel=1e-6)
    assert loss([a, b], torch.full_like(labels, 255)).item() == 0.0
    # Smaller logits than labels: the labels are nearest-resized, as for the aux loss.
    small = loss([a[..., :2, :3], b[..., :2, :3]], labels)
    assert small.item() == pytest.approx(_reference([a[..., :2, :3], b[..., :2, :3]],
                                                    labels[:, ::2, ::2]), rel=1e-5)


def test_gradients_reach_both_views():
    a, b = (v.requires_grad_() for v in _views())
    JensenShannonConsistency()([a, b], _labels()).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0
    assert a.grad[:, :, 0].abs().sum() == 0  # nothing from the ignored row


def _output(a, b=None):
    def view(logits):
        return ViewOutput(logits=logits, dec_logits=logits, in_feats=[])
    return ModelOutput(original=view(a), aux_logits=None,
                       augmented=None if b is None else view(b))


def test_the_term_is_on_with_its_weight_and_asks_for_two_views():
    assert "jsd" not in BlindNetCriterion().losses  # --w_jsd 0: off
    criterion = BlindNetCriterion(w_jsd=2.0)
    assert criterion.needs_two_views and "jsd" in criterion.losses
    a, b = _views()
    labels = _labels()
    expected = JensenShannonConsistency()([a, b], labels)
    output = _output(a, b)
    output.aux_logits = a[..., :2, :3]
    result = criterion(output, labels)
    torch.testing.assert_close(result["jsd"], expected)
    torch.testing.assert_close(result["total"], result["main"] + 0.4 * result["aux"]
                               + 2.0 * result["jsd"])
    with pytest.raises(ValueError, match="--w_jsd needs two views"):
        criterion(_output(a), labels)
