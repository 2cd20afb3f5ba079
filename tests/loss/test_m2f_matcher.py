"""The Hungarian matcher (docs/VFM_METHODS.md §5.8): costs by hand, assignment against brute
force, point sampling conventions."""

import itertools
import math

import pytest
import torch

from loss.matcher import (HungarianMatcher, classification_cost, mask_bce_cost,
                          mask_dice_cost)
from loss.point_sampling import point_sample, uncertain_point_coords


def test_costs_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax (0.25, 0.75)
    torch.testing.assert_close(classification_cost(logits, torch.tensor([1, 0, 1])),
                               torch.tensor([[-0.75, -0.25, -0.75]]))
    x = torch.tensor([[2.0, -1.0]])
    t = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    softplus = torch.nn.functional.softplus
    bce = [(softplus(-x[0, 0]) + softplus(x[0, 1])) / 2,
           (0.5 * softplus(-x[0, 0]) + 0.5 * softplus(x[0, 0]) + softplus(-x[0, 1])) / 2]
    torch.testing.assert_close(mask_bce_cost(x, t), torch.stack(bce)[None])
    p = torch.sigmoid(x[0])
    dice = [1 - (2 * p[0] + 1) / (p.sum() + 1 + 1), 1 - (2 * (0.5 * p[0] + p[1]) + 1)
            / (p.sum() + 1.5 + 1)]
    torch.testing.assert_close(mask_dice_cost(x, t), torch.stack(dice)[None])


@pytest.mark.parametrize("seed", range(4))
def test_assignment_is_the_brute_force_minimum(seed):
    generator = torch.Generator().manual_seed(seed)
    queries, num_gt = 4, 1 + seed % 3
    class_logits = torch.randn(queries, 5, generator=generator)
    mask_logits = torch.randn(queries, 6, 6, generator=generator) * 3
    gt_labels = torch.randperm(4, generator=generator)[:num_gt]
    gt_masks = (torch.rand(num_gt, 12, 12, generator=generator) > 0.5).float()
    matcher = HungarianMatcher(num_points=64)
    rows, cols = matcher.match(class_logits, mask_logits, gt_labels, gt_masks,
                               torch.Generator().manual_seed(99))
    points = torch.rand(1, 64, 2, generator=torch.Generator().manual_seed(99))
    cost = matcher.cost_matrix(class_logits, mask_logits, gt_labels, gt_masks, points)
    best = min(sum(cost[q, g] for g, q in enumerate(perm))
               for perm in itertools.permutations(range(queries), num_gt))
    assert len(rows) == num_gt and sorted(cols.tolist()) == list(range(num_gt))
    assert rows.tolist() == sorted(rows.tolist())
    assert math.isclose(cost[rows, cols].sum().item(), best.item(), rel_tol=1e-6)


def test_no_ground_truth_matches_nothing_and_nan_still_matches():
    matcher = HungarianMatcher(num_points=16)
    rows, cols = matcher.match(torch.randn(3, 4), torch.randn(3, 4, 4),
                               torch.zeros(0, dtype=torch.long), torch.zeros(0, 8, 8))
    assert rows.numel() == cols.numel() == 0
    rows, _ = matcher.match(torch.full((3, 4), float("nan")), torch.randn(3, 4, 4),
                            torch.tensor([1]), torch.ones(1, 8, 8))
    assert rows.numel() == 1


def test_point_sample_reads_pixel_centres_with_zero_padding():
    image = torch.arange(12.0).reshape(1, 1, 3, 4)
    points = torch.tensor([[[0.125, 1 / 6], [0.875, 5 / 6], [0.25, 1 / 6], [1.0, 1 / 6]]])
    values = point_sample(image, points)[0, 0]
    torch.testing.assert_close(values, torch.tensor([0.0, 11.0, 0.5, 3.0 * 0.5]))


def test_uncertain_points_keep_the_most_uncertain_share():
    logits = torch.full((1, 1, 8, 8), 10.0)
    logits[..., :, :2] = 0.0  # the uncertain region: x < 0.25
    points = uncertain_point_coords(logits, 40, oversample_ratio=3.0,
                                    importance_sample_ratio=0.25,
                                    generator=torch.Generator().manual_seed(0))
    assert points.shape == (1, 40, 2)
    assert (points[0, :10, 0] < 0.25 + 1 / 16).all()  # the 10 important ones, near the region
    again = uncertain_point_coords(logits, 40, generator=torch.Generator().manual_seed(0),
                                   importance_sample_ratio=0.25)
    assert torch.equal(points, again)
