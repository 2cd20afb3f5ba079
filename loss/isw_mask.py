"""ISW's style-sensitive covariance mask (ROBUSTNET_METHODS.md §3.4).

One statistics pass runs the trunk (eval mode, no grad) on pairs (photometric view,
original view) of source images. For every collected layer and pair, the covariances
``S_photo`` and ``S_orig`` (:func:`loss.whitening.instance_covariance`) give the unbiased
variance over the pair, ``(S_photo - S_orig)^2 / 2``, kept on the strict upper triangle
(zero on and below the diagonal). ``V`` is its mean over the pairs. The mask of one pass:
exact 1-D k-means of all ``C^2`` entries of ``V`` (the structural zeros included) into
``--clusters`` clusters; every entry outside the lowest-centroid cluster is style-sensitive.
``--trials`` passes (new images, new jitter) are intersected with a logical AND.

Unlike RobustNet (whose ranks each compute their own mask, §8 item 7), the sums of ``V``
and the pair counts are all-reduced before the k-means, so every rank computes the same
mask from the same numbers; callers shard the images of a pass over the ranks.
"""

import torch

from loss.whitening import instance_covariance, strict_upper_mask
from transforms.normalization import normalize_images
from utils import dist as dist_utils
from utils.kmeans1d import kmeans_1d


def pair_variance(feat_photo, feat_orig):
    """``(P, C, H, W)`` pair of views -> ``(P, C, C)`` float32 variances over each pair,
    zero on and below the diagonal."""
    if feat_photo.shape != feat_orig.shape:
        raise ValueError(f"the two views' features differ in shape: {tuple(feat_photo.shape)} "
                         f"and {tuple(feat_orig.shape)}")
    difference = instance_covariance(feat_photo) - instance_covariance(feat_orig)
    upper = strict_upper_mask(feat_photo.shape[1], feat_photo.device)
    return difference.square().mul(0.5) * upper


def style_sensitive_mask(variance, clusters):
    """Mask of one pass: every entry of ``variance`` outside its lowest k-means cluster.

    Args:
        variance: ``(C, C)`` mean variance matrix ``V`` (zero on and below the diagonal).
        clusters: ``--clusters`` (k >= 2).

    Returns:
        ``(C, C)`` bool tensor on the CPU.
    """
    if clusters < 2:
        raise ValueError(f"--clusters must be >= 2 for ISW, got {clusters}")
    values = variance.detach().double().cpu().numpy().reshape(-1)
    labels, _ = kmeans_1d(values, clusters)
    return torch.from_numpy(labels != 0).reshape(variance.shape)


class CovarianceStatistics:
    """Running sum of :func:`pair_variance` per collected layer (one statistics pass).

    ``add(feats_photo, feats_orig)`` takes the two views' collected feature lists (same
    length, layer order); ``all_reduce()`` sums over ranks; ``masks(clusters)`` gives one
    :func:`style_sensitive_mask` per layer.
    """

    def __init__(self):
        self.sums = None
        self.count = 0

    def add(self, feats_photo, feats_orig):
        if not feats_photo or len(feats_photo) != len(feats_orig):
            raise ValueError(f"ISW statistics need the same, non-zero number of features per "
                             f"view, got {len(feats_photo)} and {len(feats_orig)}")
        variances = [pair_variance(p, o).sum(0) for p, o in zip(feats_photo, feats_orig)]
        if self.sums is None:
            self.sums = variances
        else:
            self.sums = [total + v for total, v in zip(self.sums, variances)]
        self.count += feats_photo[0].shape[0]

    def all_reduce(self):
        """Sum the statistics of every rank into every rank (no-op in one process).

        Every rank must have seen at least one pair (the layers' shapes come from them).
        """
        if self.sums is None:
            raise ValueError("ISW statistics are empty: the statistics pass saw no image")
        count = torch.tensor([float(self.count)], device=self.sums[0].device)
        for total in self.sums:
            dist_utils.all_reduce_sum(total)
        self.count = int(dist_utils.all_reduce_sum(count).item())
        return self

    def variances(self):
        """The mean variance matrix ``V`` of every layer."""
        if self.sums is None:
            raise ValueError("ISW statistics are empty: the statistics pass saw no image")
        return [total / self.count for total in self.sums]

    def masks(self, clusters):
        return [style_sensitive_mask(v, clusters) for v in self.variances()]


@torch.no_grad()
def accumulate_statistics(encode, pairs, device):
    """One statistics pass: ``CovarianceStatistics`` of the pairs (not yet all-reduced).

    Args:
        encode: ``encode(images, collected)`` runs the trunk on ``(B, 3, H, W)`` images and
            appends the collected IN outputs to the list ``collected`` (``DeepV3Plus.encode``);
            the caller puts the model in eval mode.
        pairs: iterable of ``(photometric, original)`` uint8 image batches, each
            ``(P, 3, H, W)`` (ImageNet-normalised here, on the device).
        device: where the images are run.
    """
    stats = CovarianceStatistics()
    for photometric, original in pairs:
        batch = normalize_images(torch.cat([photometric, original]).to(device,
                                                                        non_blocking=True))
        collected = []
        encode(batch, collected)
        size = photometric.shape[0]
        stats.add([f[:size] for f in collected], [f[size:] for f in collected])
    return stats


def intersect_masks(masks, new):
    """Logical AND of two per-layer mask lists (``masks`` may be ``None``: the first trial)."""
    if masks is None:
        return [m.clone() for m in new]
    if len(masks) != len(new):
        raise ValueError(f"mask trials disagree on the number of layers: {len(masks)} and "
                         f"{len(new)}")
    return [a & b for a, b in zip(masks, new)]


def compute_isw_masks(encode, pairs_of_trial, trials, clusters, device):
    """The ISW masks: ``trials`` statistics passes, each all-reduced and clustered, ANDed.

    Args:
        encode: see :func:`accumulate_statistics`.
        pairs_of_trial: ``trial -> iterable of (photometric, original)`` batches of this
            rank's share of that trial's images.
        trials: ``--trials`` (>= 1).
        clusters: ``--clusters`` (>= 2).
        device: where the images are run.

    Returns:
        list of ``(C_l, C_l)`` bool CPU tensors, identical on every rank.
    """
    if trials < 1:
        raise ValueError(f"--trials must be >= 1 for ISW, got {trials}")
    masks = None
    for trial in range(trials):
        stats = accumulate_statistics(encode, pairs_of_trial(trial), device).all_reduce()
        masks = intersect_masks(masks, stats.masks(clusters))
    return masks


def mask_summary(masks):
    """One line: selected entries per layer (``N`` of the ISW loss)."""
    parts = [f"{int(m.sum())}/{m.shape[0] * (m.shape[0] - 1) // 2} (C={m.shape[0]})"
             for m in masks]
    return "ISW mask: style-sensitive covariance entries per layer " + ", ".join(parts)

