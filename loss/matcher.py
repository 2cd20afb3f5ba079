"""Hungarian matching of Mask2Former's queries to ground-truth masks (docs/VFM_METHODS.md §5.8).

Per image and per prediction layer: the masks are compared on ``num_points`` uniform
points shared by prediction and ground truth, the cost is
``2 * class + 5 * mask BCE + 5 * dice`` (weights configurable) and
``scipy.optimize.linear_sum_assignment`` picks the one-to-one assignment of least total
cost. Plain tensors in, index tensors out.
"""

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from loss.point_sampling import point_sample
from loss.sampling import rand as uniform


def classification_cost(class_logits, gt_labels):
    """``-softmax(class_logits)[:, gt_labels]``: ``(Q, C+1)``, ``(G,)`` -> ``(Q, G)``."""
    return -class_logits.softmax(dim=-1)[:, gt_labels]


def mask_bce_cost(mask_logits, gt_masks):
    """Mean over points of the binary cross-entropy of each prediction against each target:
    ``(Q, P)`` logits, ``(G, P)`` targets in ``[0, 1]`` -> ``(Q, G)``."""
    positive = F.binary_cross_entropy_with_logits(mask_logits, torch.ones_like(mask_logits),
                                                  reduction="none")
    negative = F.binary_cross_entropy_with_logits(mask_logits, torch.zeros_like(mask_logits),
                                                  reduction="none")
    cost = positive @ gt_masks.T + negative @ (1 - gt_masks).T
    return cost / mask_logits.shape[1]


def mask_dice_cost(mask_logits, gt_masks, eps=1.0):
    """``1 - (2 sum(p t) + eps) / (sum(p) + sum(t) + eps)`` with ``p = sigmoid(logits)``:
    ``(Q, P)``, ``(G, P)`` -> ``(Q, G)``."""
    probs = mask_logits.sigmoid()
    numerator = 2 * probs @ gt_masks.T
    denominator = probs.sum(dim=-1)[:, None] + gt_masks.sum(dim=-1)[None, :]
    return 1 - (numerator + eps) / (denominator + eps)


class HungarianMatcher:
    """One-to-one query <-> ground-truth assignment of least cost.

    Args:
        class_weight, mask_weight, dice_weight: cost weights (Rein: 2, 5, 5).
        num_points: points per mask for the mask costs (12544).
        dice_eps: the dice smoothing (1.0).

    ``match(class_logits (Q, C+1), mask_logits (Q, h, w), gt_labels (G,), gt_masks
    (G, H, W), generator=None)`` -> ``(query_indices, gt_indices)``, two ``(min(Q, G),)``
    long tensors sorted by query index.
    """

    def __init__(self, class_weight=2.0, mask_weight=5.0, dice_weight=5.0, num_points=12544,
                 dice_eps=1.0):
        self.class_weight, self.mask_weight = class_weight, mask_weight
        self.dice_weight, self.num_points, self.dice_eps = dice_weight, num_points, dice_eps

    def cost_matrix(self, class_logits, mask_logits, gt_labels, gt_masks, points):
        """The ``(Q, G)`` total cost, masks compared at ``points (P, 2)`` in ``[0, 1]``."""
        pred = point_sample(mask_logits[:, None].float(), points.expand(
            mask_logits.shape[0], -1, -1))[:, 0]
        target = point_sample(gt_masks[:, None].float(), points.expand(
            gt_masks.shape[0], -1, -1))[:, 0]
        return (self.class_weight * classification_cost(class_logits.float(), gt_labels)
                + self.mask_weight * mask_bce_cost(pred, target)
                + self.dice_weight * mask_dice_cost(pred, target, self.dice_eps))

    @torch.no_grad()
    def match(self, class_logits, mask_logits, gt_labels, gt_masks, generator=None):
        device = class_logits.device
        if gt_labels.numel() == 0:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return empty, empty
        points = uniform((1, self.num_points, 2), generator, device)
        cost = self.cost_matrix(class_logits, mask_logits, gt_labels, gt_masks, points)
        # NaN logits must reach the loss (the engine's finiteness check names them), not
        # stop scipy, which refuses non-finite costs.
        cost = torch.nan_to_num(cost, nan=1e8, posinf=1e8, neginf=-1e8)
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        order = rows.argsort()
        return (torch.as_tensor(rows[order], dtype=torch.long, device=device),
                torch.as_tensor(cols[order], dtype=torch.long, device=device))
