"""Semantic-consistency contrastive losses CWCL and SDCL (METHOD.md §3.4, §3.5).

Both act on the three projected embedding levels (``layer4``, ``dec0``, ``dec1``) and are
averaged over them. Queries are the augmented view's embeddings (with gradient), keys the
original view's (detached). Both are InfoNCE losses with the positive in column 0:
``-log(exp(q.k+ / t) / (exp(q.k+ / t) + sum_j exp(q.n_j / t)))``, computed in float32.
Loss terms ``cwcl`` (``--use_cwcl``, weight ``--w3``) and ``sdcl`` (``--use_sdcl``, ``--w4``).
The flags below are the defaults' one home: the official scripts pass their own values
(``--contrast_max_classes 15 --contrast_max_view 50``), the argparse defaults are those of
the official ``train.py`` (10 and 10; METHOD.md §7, DECISIONS.md D75).
"""

import torch
from torch import nn

from loss.sampling import sample_cwcl_anchors, sample_sdcl_pairs
from loss.segmentation import resize_labels
from loss.terms import EMBEDDINGS, FRAMEWORK, TWO_VIEWS, LossFlag, LossTerm, register_term
from utils.labels import IGNORE_LABEL
from utils.precision import float32_region

CWCL_NEGATIVES = ("reference", "distinct")
CWCL_CLASS_ORDERS = ("ascending", "random")

USE_CWCL = LossFlag("use_cwcl", False, "class-wise contrastive loss", type=bool)
USE_SDCL = LossFlag("use_sdcl", False, "semantic disentanglement contrastive loss", type=bool)
W3 = LossFlag("w3", 0.3, "CWCL weight")
W4 = LossFlag("w4", 0.0, "SDCL weight")
NCE_T = LossFlag("nce_T", 0.07,
                 "temperature of CWCL and SDCL (the reference's default 0.0 gives NaN)")
MAX_CLASSES = LossFlag("contrast_max_classes", 10, "K_max of CWCL", type=int)
MAX_VIEWS = LossFlag("contrast_max_views", 10, "V, anchors per class of CWCL", type=int,
                     aliases=("--contrast_max_view",))
NUM_PATCH = LossFlag("num_patch", 20, "SDCL negatives per anchor", type=int)
NEGATIVES = LossFlag("cwcl_negatives", "reference",
                     "reference = official (own key among negatives); distinct = intent",
                     type=str, choices=CWCL_NEGATIVES, group=FRAMEWORK)
CLASS_ORDER = LossFlag("cwcl_class_order", "ascending",
                       "which K_max classes become CWCL anchors in crowded images", type=str,
                       choices=CWCL_CLASS_ORDERS, group=FRAMEWORK)


def _info_nce(positive, negative, temperature):
    """Mean of ``-log softmax([positive, negative] / t)[0]``; ``(..., 1)`` and ``(..., n)``."""
    logits = torch.cat((positive, negative), dim=-1) / temperature
    return (logits.logsumexp(dim=-1) - logits[..., 0]).mean()


def _check_levels(name, queries, keys):
    if not queries or keys is None or len(queries) != len(keys):
        raise ValueError(f"{name} needs the projected embeddings of both views (the model must "
                         f"run with with_embeddings=True and images_aug), got "
                         f"{len(queries or [])} and {len(keys or [])} levels")


def class_wise_contrastive_loss(query, key, anchors, max_views, temperature, distinct=False):
    """CWCL of one level given its anchors.

    Args:
        query: ``(B, D, h, w)`` augmented-view embeddings.
        key: ``(B, D, h, w)`` original-view embeddings (detached here).
        anchors: :class:`loss.sampling.CWCLAnchors` with ``indices (B, M)``, M = K * V.
        max_views: V, the slot length (to find same-slot keys).
        temperature: tau.
        distinct: exclude same-slot keys from the negatives (the official code keeps all M
            keys of the image, the anchor's own positive included).

    Returns:
        scalar: mean over the ``B * M`` anchors, 0 when no image has a class slot.
    """
    dim = query.shape[1]
    index = anchors.indices[:, None, :].expand(-1, dim, -1)
    q = query.flatten(2).float().gather(2, index).transpose(1, 2)           # (B, M, D)
    k = key.detach().flatten(2).float().gather(2, index).transpose(1, 2)    # (B, M, D)
    positive = (q * k).sum(dim=-1, keepdim=True)
    # Negatives are the keys of the anchors of the same image only (float32 under --amp too).
    with float32_region(q.device):
        negative = q @ k.transpose(1, 2)                                    # (B, M, M)
    if distinct:
        slot = torch.arange(q.shape[1], device=q.device) // max_views
        negative = negative.masked_fill(slot[:, None] == slot[None, :], float("-inf"))
    # Without any class slot the loss is 0; multiplying keeps the graph and avoids a sync.
    return _info_nce(positive, negative, temperature) * anchors.has_classes


def semantic_disentanglement_loss(query, key, pairs, temperature):
    """SDCL of one level given its anchors.

    Args:
        query: ``(B, D, h, w)`` augmented-view embeddings (anchors and negatives, with grad).
        key: ``(B, D, h, w)`` original-view embeddings (positives, detached here).
        pairs: :class:`loss.sampling.SDCLPairs` with A anchors and P negatives each.
        temperature: tau.

    Returns:
        scalar: mean over the A anchors, 0 when there is none.
    """
    if pairs.batch_index.numel() == 0:
        return query.float().sum() * 0.0  # keeps every rank's graph identical under DDP
    dim, num_pixels = query.shape[1], query.shape[2] * query.shape[3]
    q_pixels = query.float().flatten(2).transpose(1, 2).reshape(-1, dim)     # (B * N, D)
    k_pixels = key.detach().float().flatten(2).transpose(1, 2).reshape(-1, dim)
    # index_select, not tensor indexing: on CPU the backward of ``x[idx_a, idx_b]`` adds the
    # gradients of repeated rows with atomics in parallel (run-to-run different float sums),
    # and the negatives repeat a lot. index_select's backward (index_add) is deterministic.
    anchor = pairs.batch_index * num_pixels + pairs.pixel_index             # (A,)
    negative = pairs.batch_index[:, None] * num_pixels + pairs.negative_index
    q = q_pixels.index_select(0, anchor)                                     # (A, D)
    k = k_pixels.index_select(0, anchor)
    negatives = q_pixels.index_select(0, negative.flatten()).view(*negative.shape, dim)
    positive = (q * k).sum(dim=-1, keepdim=True)
    with float32_region(q.device):  # autocast would run the product in bf16/fp16
        negative = torch.einsum("ad,apd->ap", q, negatives)
    return _info_nce(positive, negative, temperature)


class ClassWiseContrastiveLoss(nn.Module):
    """CWCL averaged over the embedding levels.

    Args:
        temperature: tau (``--nce_T``; official scripts 0.07).
        max_classes: K (``--contrast_max_classes``; official scripts 15).
        max_views: V (``--contrast_max_views``; official scripts 50).
        negatives: ``reference`` (official: all K*V keys of the image are negatives) or
            ``distinct`` (same-slot keys and reused pixels excluded), DECISIONS.md D2.
        class_order: ``ascending`` (official) or ``random`` choice of the K classes (D21).
        ignore_index: label value never used as a class.

    ``forward(queries, keys, labels, preds, generator=None)``: lists of ``(B, D, h_n, w_n)``
    augmented / original embeddings, ``labels (B, H, W)``, ``preds (B, h, w)`` = argmax of
    the original view's decoder logits; labels and predictions are nearest-resized to each
    level. Returns a scalar.
    """

    def __init__(self, temperature=NCE_T.default, max_classes=MAX_CLASSES.default,
                 max_views=MAX_VIEWS.default, negatives=NEGATIVES.default,
                 class_order=CLASS_ORDER.default, ignore_index=IGNORE_LABEL):
        super().__init__()
        if negatives not in CWCL_NEGATIVES:
            raise ValueError(f"--cwcl_negatives must be one of {CWCL_NEGATIVES}, got "
                             f"{negatives!r}")
        if class_order not in CWCL_CLASS_ORDERS:
            raise ValueError(f"--cwcl_class_order must be one of {CWCL_CLASS_ORDERS}, got "
                             f"{class_order!r}")
        if temperature <= 0 or not 1 <= max_classes <= 255 or max_views < 2:
            raise ValueError(f"CWCL needs --nce_T > 0, 1 <= --contrast_max_classes <= 255 and "
                             f"--contrast_max_views >= 2, got {temperature}, {max_classes}, "
                             f"{max_views}")
        self.temperature, self.max_classes, self.max_views = temperature, max_classes, max_views
        self.distinct = negatives == "distinct"
        self.random_class_order = class_order == "random"
        self.ignore_index = ignore_index

    def forward(self, queries, keys, labels, preds, generator=None):
        _check_levels("CWCL", queries, keys)
        losses = []
        for query, key in zip(queries, keys):
            size = query.shape[-2:]
            anchors = sample_cwcl_anchors(
                resize_labels(labels, size), resize_labels(preds, size), self.max_classes,
                self.max_views, distinct=self.distinct,
                random_class_order=self.random_class_order, ignore_index=self.ignore_index,
                generator=generator)
            losses.append(class_wise_contrastive_loss(query, key, anchors, self.max_views,
                                                      self.temperature, self.distinct))
        return sum(losses) / len(losses)


class SemanticDisentanglementContrastiveLoss(nn.Module):
    """SDCL averaged over the embedding levels.

    Args:
        temperature: tau (``--nce_T``; official scripts 0.07).
        num_patch: negatives per anchor (``--num_patch``; official scripts 20; at least 2).
        max_samples: anchors kept per image (1000 in the official code).
        ignore_index: label value that is never an anchor.

    ``forward(queries, keys, labels, preds, preds_aug, generator=None)``: lists of
    ``(B, D, h_n, w_n)`` augmented / original embeddings, ``labels (B, H, W)``, and the
    argmax predictions ``(B, h, w)`` of the original and augmented views' decoder logits.
    Returns a scalar.
    """

    def __init__(self, temperature=NCE_T.default, num_patch=NUM_PATCH.default, max_samples=1000,
                 ignore_index=IGNORE_LABEL):
        super().__init__()
        if temperature <= 0 or num_patch < 2 or max_samples < 1:
            raise ValueError(f"SDCL needs --nce_T > 0 and --num_patch >= 2, got {temperature}, "
                             f"{num_patch}")
        self.temperature, self.num_patch, self.max_samples = temperature, num_patch, max_samples
        self.ignore_index = ignore_index

    def forward(self, queries, keys, labels, preds, preds_aug, generator=None):
        _check_levels("SDCL", queries, keys)
        losses = []
        for query, key in zip(queries, keys):
            size = query.shape[-2:]
            pairs = sample_sdcl_pairs(
                resize_labels(labels, size), resize_labels(preds, size),
                resize_labels(preds_aug, size), self.num_patch, max_samples=self.max_samples,
                ignore_index=self.ignore_index, generator=generator)
            losses.append(semantic_disentanglement_loss(query, key, pairs, self.temperature))
        return sum(losses) / len(losses)


def _cwcl(module, inputs):
    output = inputs.output
    return module(output.augmented.embeddings, output.original.embeddings, inputs.labels,
                  inputs.preds, inputs.generator)


def _sdcl(module, inputs):
    output = inputs.output
    return module(output.augmented.embeddings, output.original.embeddings, inputs.labels,
                  inputs.preds, inputs.preds_aug, inputs.generator)


CWCL = register_term(LossTerm(
    "cwcl", order=40, weight=W3, switch=USE_CWCL, needs=frozenset({TWO_VIEWS, EMBEDDINGS}),
    flags=(NCE_T, MAX_CLASSES, MAX_VIEWS, NEGATIVES, CLASS_ORDER), compute=_cwcl,
    build=lambda o: ClassWiseContrastiveLoss(
        o["nce_T"], o["contrast_max_classes"], o["contrast_max_views"], o["cwcl_negatives"],
        o["cwcl_class_order"], o["ignore_index"])))
SDCL = register_term(LossTerm(
    "sdcl", order=50, weight=W4, switch=USE_SDCL, needs=frozenset({TWO_VIEWS, EMBEDDINGS}),
    flags=(NCE_T, NUM_PATCH), compute=_sdcl,
    build=lambda o: SemanticDisentanglementContrastiveLoss(
        o["nce_T"], o["num_patch"], ignore_index=o["ignore_index"])))
