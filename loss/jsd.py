"""Jensen-Shannon consistency of the two views' predictions: loss term ``jsd``.

AugMix's consistency loss (Hendrycks et al., ICLR 2020) per pixel: with ``p_v`` the softmax
of view ``v``'s segmentation logits and ``M`` their mean, ``JS = mean_v KL(p_v || M)``,
averaged over the labelled pixels. It pulls the predictions of the original and the
photometrically jittered view together. On when ``--w_jsd`` > 0; needs two views (a
``*_jitter`` training set). docs/COMPARISON_METHODS.md ("DSU + JSD"); DECISIONS.md D88
(what differs from AugMix's code).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from loss.segmentation import resize_labels
from loss.terms import FRAMEWORK, PIXEL_LOGITS, TWO_VIEWS, LossFlag, LossTerm, register_term
from utils.labels import IGNORE_LABEL

W_JSD = LossFlag("w_jsd", 0.0, "weight of the Jensen-Shannon consistency of the two views' "
                 "predictions (AugMix; 0: off; needs two views)", group=FRAMEWORK)


class JensenShannonConsistency(nn.Module):
    """Mean over labelled pixels of the Jensen-Shannon divergence between the views' softmax.

    ``forward(views, labels)``: ``views`` a sequence of V >= 2 logits ``(B, C, H, W)``,
    ``labels (B, H', W')`` long (nearest-resized to H x W when they differ) -> scalar, 0 when
    no pixel is labelled. ``log M`` is taken as a log-sum-exp of the views' log-softmax (no
    clamping needed); float32 throughout; gradients reach every view.
    """

    def __init__(self, ignore_index=IGNORE_LABEL):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, views, labels):
        if len(views) < 2 or any(v.shape != views[0].shape for v in views):
            raise ValueError(f"the JS consistency needs at least 2 views of one shape; got "
                             f"{[tuple(v.shape) for v in views]}")
        log_p = torch.stack([F.log_softmax(v.float(), dim=1) for v in views])  # (V, B, C, H, W)
        log_m = torch.logsumexp(log_p, dim=0) - math.log(len(views))          # (B, C, H, W)
        js = (log_p.exp() * (log_p - log_m)).sum(dim=2).mean(dim=0)          # (B, H, W)
        valid = resize_labels(labels, js.shape[-2:]) != self.ignore_index
        return (js * valid).sum() / valid.sum().clamp_min(1)


def _jsd(module, inputs):
    output = inputs.output
    return module([output.original.logits, output.augmented.logits], inputs.labels)


def _unread(options):
    if options["w_jsd"] > 0 and options["prediction"] != PIXEL_LOGITS:
        return {"w_jsd": "the model predicts masks (network.vfm), not the pixel logits the JS "
                         "consistency compares"}
    return {}


JSD = register_term(LossTerm(
    "jsd", weight=W_JSD, needs=frozenset({TWO_VIEWS}), prediction=PIXEL_LOGITS, compute=_jsd,
    unread=_unread, build=lambda o: JensenShannonConsistency(o["ignore_index"])))
