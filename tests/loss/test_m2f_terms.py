"""The Mask2Former losses as terms of the criterion: chosen by what the model predicts,
weighted by their flags (Rein's 2 / 5 / 5), matched once per step and view, fed by the
criterion's generator."""

import pytest
import torch

import loss
from loss.mask2former import Mask2FormerLoss
from network.output import ModelOutput, ViewOutput

MASKS = {"prediction": loss.MASK_PREDICTIONS, "m2f_num_points": 16}


def mask_view(seed, layers=2, batch=2, queries=5, size=8):
    generator = torch.Generator().manual_seed(seed)
    classes = [torch.randn(batch, queries, 20, generator=generator, requires_grad=True)
               for _ in range(layers)]
    masks = [torch.randn(batch, queries, size, size, generator=generator, requires_grad=True)
             for _ in range(layers)]
    return ViewOutput(None, torch.zeros(batch, 19, size, size), [], class_logits=classes,
                      mask_logits=masks)


def labels(batch=2, size=32):
    return torch.randint(0, 19, (batch, size, size), generator=torch.Generator().manual_seed(1))


def test_terms_follow_the_prediction_kind_and_reins_weights():
    pixel = loss.BlindNetCriterion()
    assert [t.name for t in pixel.terms] == ["main", "aux"]
    criterion = loss.BlindNetCriterion(**MASKS)
    assert [t.name for t in criterion.terms] == ["m2f_cls", "m2f_mask", "m2f_dice"]
    assert criterion.weights == {"m2f_cls": 2.0, "m2f_mask": 5.0, "m2f_dice": 5.0}
    view = mask_view(0)
    got = criterion(ModelOutput(view, None), labels(), torch.Generator().manual_seed(7))
    reference = Mask2FormerLoss(num_points=16)(view.class_logits, view.mask_logits, labels(),
                                              torch.Generator().manual_seed(7))
    for part in ("cls", "mask", "dice"):
        torch.testing.assert_close(criterion.weights[f"m2f_{part}"] * got[f"m2f_{part}"],
                                   reference[part])
    torch.testing.assert_close(got["total"], sum(reference.values()))
    got["total"].backward()
    assert view.class_logits[0].grad is not None and view.mask_logits[-1].grad is not None
    with pytest.raises(ValueError, match="no loss term is enabled"):
        loss.BlindNetCriterion(**MASKS, m2f_cls_weight=0.0, m2f_mask_weight=0.0,
                               m2f_dice_weight=0.0)


def test_matching_runs_once_per_view_and_two_views_are_averaged(monkeypatch):
    calls = []
    parts = Mask2FormerLoss.parts
    monkeypatch.setattr(Mask2FormerLoss, "parts",
                        lambda self, *a, **k: calls.append(1) or parts(self, *a, **k))
    criterion = loss.BlindNetCriterion(**MASKS)
    original, augmented = mask_view(0), mask_view(3)
    both = criterion(ModelOutput(original, None, augmented), labels(),
                     torch.Generator().manual_seed(7))
    assert len(calls) == 2  # one matching per view, read by the three terms
    generator, reference = torch.Generator().manual_seed(7), Mask2FormerLoss(num_points=16)
    views = [reference.parts(v.class_logits, v.mask_logits, labels(), generator)
             for v in (original, augmented)]
    for part in ("cls", "mask", "dice"):
        torch.testing.assert_close(both[f"m2f_{part}"], 0.5 * (views[0][part] + views[1][part]))


def test_mask_flags_are_unread_for_pixel_models_and_checked():
    assert "m2f_num_points" in loss.unread_flags({"prediction": loss.PIXEL_LOGITS})
    assert not any(name.startswith("m2f_") for name in loss.unread_flags(MASKS))
    with pytest.raises(ValueError, match="--m2f_num_points must be >= 1"):
        loss.check_options({**MASKS, "m2f_num_points": 0})
