"""Vectorized anchor samplers of CWCL and SDCL (METHOD.md §3.4, §3.5).

Both samplers work on one feature level: integer maps of size ``(B, h, w)`` already resized
to the embedding resolution. There is no Python loop over pixels, classes or images: random
subsets are drawn by giving every pixel a random key, sorting the pixels of each image by
``(group, key)`` and keeping the first ``quota`` pixels of every group. All randomness comes
from the ``generator`` argument (the default generator when ``None``), so a seed makes the
sampling reproducible. The generator may live on another device than the maps (the training
engine keeps a CPU one): numbers are drawn where the generator is and then moved, because
PyTorch refuses a CPU generator for CUDA tensors. Label values must lie in ``[0, 255]``
(train ids and 255 = ignore).
"""

from dataclasses import dataclass

import torch

from utils.labels import IGNORE_LABEL

NUM_LABEL_VALUES = 256


@dataclass
class CWCLAnchors:
    """Anchors of CWCL for one level.

    ``indices``: ``(B, K * V)`` flat pixel indices, slot-major (slot k holds positions
    ``k*V .. k*V+V-1``: the hard pixels of its class, then the easy ones; slots after the
    image's classes hold random pixels). ``slot_classes``: ``(B, K)`` class of each slot, -1
    for random slots. ``has_classes``: 0-dim bool, True when any image has a class slot.
    """

    indices: torch.Tensor
    slot_classes: torch.Tensor
    has_classes: torch.Tensor


@dataclass
class SDCLPairs:
    """Anchors of SDCL for one level: ``A`` anchors and their ``P`` shared negatives.

    ``batch_index``, ``pixel_index``: ``(A,)``; ``negative_index``: ``(A, P)`` flat pixel
    indices, in the anchor's image, of pixels labelled with the class the augmented view
    predicted at the anchor.
    """

    batch_index: torch.Tensor
    pixel_index: torch.Tensor
    negative_index: torch.Tensor


def rand(shape, generator, device, dtype=torch.float32):
    """``U[0, 1)`` of ``shape`` on ``device``, drawn on the generator's device."""
    source = device if generator is None else generator.device
    return torch.rand(shape, generator=generator, device=source, dtype=dtype).to(device)


_rand = rand  # the samplers' own short name (public since loss/point_sampling.py uses it)


def _randperm(n, generator, device):
    """A random permutation of ``0..n-1`` on ``device``, drawn on the generator's device."""
    source = device if generator is None else generator.device
    return torch.randperm(n, generator=generator, device=source).to(device)


def _count_values(values, weights=None):
    """Per-image histogram of label values: ``(B, N) -> (B, 256)`` long."""
    weights = torch.ones_like(values) if weights is None else weights.long()
    counts = torch.zeros(values.shape[0], NUM_LABEL_VALUES, dtype=torch.long,
                         device=values.device)
    return counts.scatter_add_(1, values, weights)


def _sort_by_group(groups, generator):
    """Pixel order grouping equal ``groups`` values, uniformly random inside each group.

    ``groups``: ``(B, N)`` small non-negative ints. float64 keys ``group + U[0, 1)`` keep the
    random part exact for groups up to 2**20.
    """
    noise = _rand(groups.shape, generator, groups.device, torch.float64)
    return (groups.double() + noise).argsort(dim=1)


def _choose_classes(candidate, max_classes, random_order, generator):
    """At most ``max_classes`` of the candidate classes per image: ``(B, 256)`` bool."""
    if not random_order:
        # The official order: ascending class id, cut at K_max.
        return candidate & (candidate.cumsum(dim=1) <= max_classes)
    priority = _rand(candidate.shape, generator, candidate.device)
    priority = priority.masked_fill(~candidate, 2.0)
    rank = priority.argsort(dim=1).argsort(dim=1)
    return candidate & (rank < max_classes)


def sample_cwcl_anchors(labels, preds, max_classes, max_views, *, distinct=False,
                        random_class_order=False, ignore_index=IGNORE_LABEL, generator=None):
    """Draw the ``K * V`` CWCL anchors of every image.

    Per image: the classes (not ``ignore_index``) with more than V pixels are candidates;
    the first K (ascending id, or K random ones) get a slot each. A slot takes V pixels of its
    class, split into hard (prediction wrong) and easy (prediction right) ones as in the
    table of METHOD.md §3.4, drawn without replacement. The remaining slots are filled with
    random pixels of the whole map: with ``distinct`` only pixels not used by a class slot.
    When the pool is too small for the fill it is used up first and then drawn from with
    replacement (DECISIONS.md D3), so small maps never fail.

    Args:
        labels: ``(B, h, w)`` ground truth at the level's resolution.
        preds: ``(B, h, w)`` original-view prediction at the level's resolution.
        max_classes: K (``--contrast_max_classes``).
        max_views: V (``--contrast_max_views``).
        distinct: the random fill avoids pixels of class slots (``--cwcl_negatives distinct``).
        random_class_order: pick the K classes at random (``--cwcl_class_order random``).
        ignore_index: label value that never forms a class slot.
        generator: ``torch.Generator`` (on any device) or ``None``.

    Returns:
        :class:`CWCLAnchors`.
    """
    y, p = labels.flatten(1).long(), preds.flatten(1).long()
    class_counts = _count_values(y)
    hard_counts = _count_values(y, p != y)
    easy_counts = class_counts - hard_counts
    candidate = class_counts > max_views
    candidate[:, ignore_index] = False
    chosen = _choose_classes(candidate, max_classes, random_class_order, generator)

    num_hard, num_easy = _hard_easy_quota(hard_counts, easy_counts, chosen, max_views)

    # Group 2c holds the hard pixels of class c, 2c + 1 the easy ones; sorting by group puts
    # every selected pixel in slot order (ascending class, hard before easy).
    groups = y * 2 + (p == y).long()
    order = _sort_by_group(groups, generator)
    sorted_groups = groups.gather(1, order)
    group_sizes = torch.stack((hard_counts, easy_counts), dim=-1).flatten(1)
    group_quota = torch.stack((num_hard, num_easy), dim=-1).flatten(1)
    group_start = group_sizes.cumsum(dim=1) - group_sizes
    rank_in_group = (torch.arange(y.shape[1], device=y.device)
                     - group_start.gather(1, sorted_groups))
    selected = rank_in_group < group_quota.gather(1, sorted_groups)

    slots_total = max_classes * max_views
    # Write the selected pixels to consecutive slot positions; the rest lands in a spare column.
    position = torch.where(selected, selected.long().cumsum(dim=1) - 1, slots_total)
    anchors = torch.zeros(y.shape[0], slots_total + 1, dtype=torch.long, device=y.device)
    anchors = anchors.scatter_(1, position, order)[:, :slots_total]
    used = torch.zeros_like(selected).scatter_(1, order, selected) if distinct else None
    anchors = _fill_random_slots(anchors, y.shape[1], chosen.sum(dim=1) * max_views, used,
                                 generator)

    return CWCLAnchors(anchors, _slot_classes(chosen, max_classes), chosen.any())


def _hard_easy_quota(hard_counts, easy_counts, chosen, max_views):
    """``(num_hard, num_easy)``, each ``(B, NUM_LABEL_VALUES)``: pixels per chosen class.

    The table of METHOD.md §3.4 in one formula: V//2 hard when both sets reach V/2, otherwise
    all of the smaller set and the rest from the larger one (|H| + |E| > V makes that feasible).
    """
    num_hard = torch.minimum(hard_counts, (max_views - easy_counts).clamp(min=max_views // 2))
    num_hard = torch.where(chosen, num_hard, 0)
    return num_hard, torch.where(chosen, max_views - num_hard, 0)


def _slot_classes(chosen, max_classes):
    """``(B, K)`` class id of each class slot in ascending order; -1 for an unused slot."""
    class_ids = torch.arange(NUM_LABEL_VALUES, device=chosen.device).expand(chosen.shape[0], -1)
    slot_classes = torch.where(chosen, class_ids, NUM_LABEL_VALUES).sort(dim=1).values
    slot_classes = slot_classes[:, :max_classes]
    return torch.where(slot_classes < NUM_LABEL_VALUES, slot_classes, -1)


def _fill_random_slots(anchors, num_pixels, num_class_anchors, used, generator):
    """Fill the slots after the class slots with random pixels of the whole map.

    When the pool is too small it is used up first and then drawn from with replacement
    (DECISIONS.md D3).

    Args:
        anchors: ``(B, K * V)`` pixel indices; positions ``>= num_class_anchors`` are replaced.
        num_pixels: N, the pixels of each map.
        num_class_anchors: ``(B,)`` number of class-slot positions of each image.
        used: ``(B, N)`` bool, the pixels of class slots that the fill must avoid
            (``--cwcl_negatives distinct``), or ``None`` to draw from every pixel.
        generator: ``torch.Generator`` (on any device) or ``None``.

    Returns:
        ``(B, K * V)`` indices.
    """
    (batch, slots_total), device = anchors.shape, anchors.device
    fill_keys = _rand((batch, num_pixels), generator, device)
    pool_size = torch.full((batch,), num_pixels, dtype=torch.long, device=device)
    if used is not None:
        fill_keys = fill_keys.masked_fill(used, 2.0)  # used pixels sort after the pool
        unused = num_pixels - num_class_anchors
        pool_size = torch.where(unused > 0, unused, pool_size)
    fill_order = fill_keys.argsort(dim=1)
    # Slot position t of a random slot takes the pool's (t - #class anchors)-th pixel.
    fill_position = torch.arange(slots_total, device=device) - num_class_anchors[:, None]
    is_fill = fill_position >= 0
    # Past the end of the pool (small maps) draw pool positions with replacement.
    with_replacement = _rand((batch, slots_total), generator, device)
    with_replacement = torch.minimum((with_replacement * pool_size[:, None]).long(),
                                     pool_size[:, None] - 1)
    fill_position = torch.where(fill_position < pool_size[:, None], fill_position,
                                with_replacement).clamp(0, num_pixels - 1)
    return torch.where(is_fill, fill_order.gather(1, fill_position), anchors)


def sample_sdcl_pairs(labels, preds, preds_aug, num_patch, *, max_samples=1000,
                      ignore_index=IGNORE_LABEL, generator=None):
    """Draw the SDCL anchors (pixels the augmented view got wrong) and their negatives.

    An anchor is a labelled pixel where the original view is right and the augmented view
    predicts another class c. The negatives of all anchors of (image, c) are the same
    ``num_patch`` distinct pixels labelled c in that image; c is skipped when fewer exist.
    At most ``B * max_samples`` anchors are kept (a uniformly random subset).

    Args:
        labels: ``(B, h, w)`` ground truth at the level's resolution.
        preds: ``(B, h, w)`` original-view prediction.
        preds_aug: ``(B, h, w)`` augmented-view prediction.
        num_patch: negatives per anchor (``--num_patch``).
        max_samples: anchors per image in the cap (1000, fixed in the official code).
        ignore_index: label value that is never an anchor.
        generator: ``torch.Generator`` (on any device) or ``None``.

    Returns:
        :class:`SDCLPairs`.
    """
    batch = labels.shape[0]
    y, p, p_aug = (t.flatten(1).long() for t in (labels, preds, preds_aug))
    num_pixels, device = y.shape[1], y.device

    class_counts = _count_values(y)
    has_negatives = class_counts >= num_patch
    has_negatives[:, ignore_index] = False
    corrected = (p != p_aug) & (y != ignore_index) & (p == y)
    anchor_mask = corrected & has_negatives.gather(1, p_aug)

    # One draw of num_patch pixels per (image, class): the first ones of a random order
    # inside each class group.
    order = _sort_by_group(y, generator)
    class_start = class_counts.cumsum(dim=1) - class_counts
    offsets = class_start[:, :, None] + torch.arange(num_patch, device=device)
    offsets = offsets.clamp(max=num_pixels - 1).flatten(1)
    negative_table = order.gather(1, offsets).view(batch, NUM_LABEL_VALUES, num_patch)

    batch_index, pixel_index = anchor_mask.nonzero(as_tuple=True)
    cap = batch * max_samples
    if batch_index.numel() > cap:
        keep = _randperm(batch_index.numel(), generator, device)[:cap]
        batch_index, pixel_index = batch_index[keep], pixel_index[keep]
    confused = p_aug[batch_index, pixel_index]
    return SDCLPairs(batch_index, pixel_index, negative_table[batch_index, confused])
