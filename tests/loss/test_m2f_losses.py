"""Mask2Former's losses (docs/VFM_METHODS.md §5.7-5.9) on hand-made cases."""

import pytest
import torch
import torch.nn.functional as F

import loss.mask2former as m2f_loss
import loss.matcher as matcher_module
from loss.mask2former import Mask2FormerLoss, semantic_targets

# The centres of a 2x2 grid: sampled exactly on 2x2 predictions and on 4x4 targets that are
# constant on 2x2 blocks, so every sampled value can be written down by hand.
CENTRES = torch.tensor([[[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]])


def fixed_points(monkeypatch):
    monkeypatch.setattr(matcher_module, "uniform", lambda shape, generator, device: CENTRES)
    monkeypatch.setattr(m2f_loss, "uncertain_point_coords",
                        lambda logits, *args, **kwargs: CENTRES.expand(logits.shape[0], -1, -1))


def toy_case():
    """Classes 0 (left half) and 1 (bottom-right block; the top-right block is ignored);
    query 0 predicts class 0's mask, query 1 class 1's, query 2 nothing."""
    labels = torch.tensor([[[0, 0, 255, 255], [0, 0, 255, 255], [0, 0, 1, 1], [0, 0, 1, 1]]])
    masks = torch.tensor([[[[2.0, -2.0], [2.0, -2.0]], [[-1.0, -1.0], [-1.0, 1.0]],
                           [[0.0, 0.0], [0.0, 0.0]]]], requires_grad=True)
    classes = torch.tensor([[[3.0, 0.0, 0.0], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]]],
                           requires_grad=True)
    return classes, masks, labels


def expected_terms(classes, masks):
    ce = F.cross_entropy(classes[0], torch.tensor([0, 1, 2]), reduction="none")
    cls = 2.0 * (ce[0] + ce[1] + 0.1 * ce[2]) / 2.1
    preds = torch.stack([masks[0, 0].reshape(-1), masks[0, 1].reshape(-1)])  # at CENTRES
    gts = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])  # ignored block: 0
    bce = F.binary_cross_entropy_with_logits(preds, gts, reduction="sum")
    p = preds.sigmoid()
    dice = 1 - (2 * (p * gts).sum(1) + 1) / (p.sum(1) + gts.sum(1) + 1)
    return {"cls": cls, "mask": 5.0 * bce / (2 * 4), "dice": 5.0 * dice.sum() / 2}


def test_semantic_targets_make_one_mask_per_present_class():
    (labels_0, masks_0), = semantic_targets(toy_case()[2], num_classes=2)
    assert labels_0.tolist() == [0, 1] and masks_0.shape == (2, 4, 4)
    assert masks_0[:, :2, 2:].sum() == 0  # ignored pixels are negatives of every mask
    assert masks_0[1].sum() == 4


def test_losses_on_a_hand_made_case(monkeypatch):
    fixed_points(monkeypatch)
    classes, masks, labels = toy_case()
    criterion = Mask2FormerLoss(num_classes=2, num_points=4)
    got = criterion([classes], [masks], labels)
    for name, value in expected_terms(classes, masks).items():
        torch.testing.assert_close(got[name], value, msg=name)


def test_deep_supervision_sums_every_prediction_with_mmdet_names(monkeypatch):
    fixed_points(monkeypatch)
    classes, masks, labels = toy_case()
    criterion = Mask2FormerLoss(num_classes=2, num_points=4)
    per_layer = criterion.layer_losses([classes, classes * 0.5, classes],
                                       [masks, masks, masks], labels)
    assert set(per_layer) == {f"{p}loss_{t}" for p in ("d0.", "d1.", "")
                              for t in ("cls", "mask", "dice")}
    expected = expected_terms(classes, masks)
    torch.testing.assert_close(per_layer["loss_dice"], expected["dice"])
    total = criterion([classes, classes], [masks, masks], labels)
    torch.testing.assert_close(total["cls"], 2 * expected["cls"])
    sum(total.values()).backward()
    assert classes.grad is not None and masks.grad[0, 2].abs().sum() == 0  # unmatched mask


def test_an_image_without_labels_gives_zero_mask_terms_with_a_graph():
    criterion = Mask2FormerLoss(num_classes=2, num_points=8)
    classes = torch.randn(1, 3, 3, requires_grad=True)
    masks = torch.randn(1, 3, 2, 2, requires_grad=True)
    got = criterion([classes], [masks], torch.full((1, 4, 4), 255))
    assert got["mask"].item() == 0 and got["dice"].item() == 0 and got["mask"].requires_grad
    no_object = F.cross_entropy(classes[0], torch.full((3,), 2))
    torch.testing.assert_close(got["cls"], 2.0 * no_object)


def test_random_point_sampling_is_reproducible_and_differentiable():
    generator = torch.Generator().manual_seed(0)
    classes = torch.randn(2, 4, 4, generator=generator, requires_grad=True)
    masks = torch.randn(2, 4, 8, 8, generator=generator, requires_grad=True)
    labels = torch.randint(0, 3, (2, 32, 32), generator=generator)
    criterion = Mask2FormerLoss(num_classes=3, num_points=64)
    first = criterion([classes], [masks], labels, torch.Generator().manual_seed(1))
    again = criterion([classes], [masks], labels, torch.Generator().manual_seed(1))
    assert all(torch.equal(first[k], again[k]) for k in first)
    sum(first.values()).backward()
    assert masks.grad.abs().sum() > 0


def test_bad_labels_are_named():
    criterion = Mask2FormerLoss(num_classes=2, num_points=4)
    classes, masks, _ = toy_case()
    with pytest.raises(ValueError, match=r"label values \[7\] are neither train ids 0..1"):
        criterion([classes], [masks], torch.full((1, 4, 4), 7))
