"""Point sampling of mask logits and targets (Mask2Former's memory-saving mask losses).

docs/VFM_METHODS.md §5.8-5.9: mask costs and losses are computed on 12544 points per mask
instead of every pixel: uniform points for matching, and for the losses points chosen by
uncertainty (``-|logit|``) among 3x oversampled uniform ones plus a share of fresh uniform
points.
"""

import torch
import torch.nn.functional as F

# Draws on the generator's device and moves the numbers (a CPU generator for CUDA maps).
from loss.sampling import rand as uniform


def point_sample(maps, points):
    """Bilinear values of ``maps (N, C, H, W)`` at ``points (N, P, 2)`` (normalised
    ``(x, y)`` in ``[0, 1]``, pixel centres at ``(i + 0.5) / W``, zeros outside) ->
    ``(N, C, P)``."""
    grid = (2.0 * points - 1.0).unsqueeze(2)  # (N, P, 1, 2)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False).squeeze(3)


def uncertain_point_coords(mask_logits, num_points, oversample_ratio=3.0,
                           importance_sample_ratio=0.75, generator=None):
    """Points for the mask losses: ``(N, num_points, 2)`` in ``[0, 1]``.

    Per mask, ``int(num_points * oversample_ratio)`` uniform points are drawn and the
    ``int(importance_sample_ratio * num_points)`` with the smallest ``|logit|`` kept; the
    rest are fresh uniform points. ``mask_logits``: ``(N, 1, H, W)``; no gradient.
    ``generator``: a ``torch.Generator`` on any device, or None.
    """
    count, device = mask_logits.shape[0], mask_logits.device
    sampled = int(num_points * oversample_ratio)
    important = int(importance_sample_ratio * num_points)
    with torch.no_grad():
        candidates = uniform((count, sampled, 2), generator, device)
        uncertainty = -point_sample(mask_logits.float(), candidates)[:, 0].abs()  # (N, S)
        keep = uncertainty.topk(important, dim=1).indices
        chosen = candidates.gather(1, keep.unsqueeze(-1).expand(-1, -1, 2))
        fresh = uniform((count, num_points - important, 2), generator, device)
        return torch.cat([chosen, fresh], dim=1)
