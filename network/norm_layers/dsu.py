"""DSU: feature statistics as uncertain distributions (Li et al., ICLR 2022).

"Uncertainty Modeling for Out-of-Distribution Generalization": a domain shows in the
per-channel mean and standard deviation of the features, and a shift of domain moves them.
In training the layer replaces each image's statistics by a sample around them whose spread is
how much the statistics vary over the batch; at evaluation it is the identity. It has no
parameters, so it is added where ``--wt_layer`` names it (``dsu``) at a block position (the end
of a stage's last block); it does not normalise (``normalises=False``), so it is never a
``--norm_layer``. docs/COMPARISON_METHODS.md ("DSU + JSD") gives the recipe, DECISIONS.md D87
what differs from the paper's code.
"""

import torch
from torch import nn

from network.norm_layers import NormLayer

DSU_P = 0.5     # probability of perturbing a training batch (the paper's p)
DSU_EPS = 1e-6  # added to every variance before the square root (the official code's)


def perturb_statistics(x, eps=DSU_EPS, generator=None):
    """Re-style ``x`` with statistics sampled around its own.

    Per image and channel ``mu = mean_HW x``, ``sigma = sqrt(var_HW x + eps)``; over the batch
    ``S_mu = sqrt(var_B mu + eps)``, ``S_sigma = sqrt(var_B sigma + eps)`` (variances unbiased,
    as ``torch.var``); ``beta = mu + e1 * S_mu``, ``gamma = sigma + e2 * S_sigma`` with
    ``e1, e2 ~ N(0, 1)`` per image and channel; returns ``(x - mu) / sigma * gamma + beta``.

    Shapes: ``x (B, C, H, W)`` with ``B >= 2`` and ``H * W >= 2`` -> ``(B, C, H, W)`` (same
    dtype; statistics in float32). Gradients flow through every statistic.
    """
    if x.shape[0] < 2 or x.shape[2] * x.shape[3] < 2:
        raise ValueError(f"dsu needs at least 2 images per process (--bs_mult; the variance "
                         f"of the statistics over the batch) of at least 2 pixels; got a batch "
                         f"of shape {tuple(x.shape)}")
    x32 = x.float()
    mu = x32.mean(dim=(2, 3))                                  # (B, C)
    sigma = (x32.var(dim=(2, 3)) + eps).sqrt()                 # (B, C)
    spread_mu = (mu.var(dim=0, keepdim=True) + eps).sqrt()     # (1, C)
    spread_sigma = (sigma.var(dim=0, keepdim=True) + eps).sqrt()
    noise = torch.randn((2, *mu.shape), generator=generator, device=x.device)
    beta = mu + noise[0] * spread_mu
    gamma = sigma + noise[1] * spread_sigma
    scale = (gamma / sigma)[:, :, None, None]
    out = (x32 - mu[:, :, None, None]) * scale + beta[:, :, None, None]
    return out.to(x.dtype)


class DistributionUncertainty(nn.Module):
    """DSU as a layer: :func:`perturb_statistics` on a training batch with probability ``p``
    (one draw per call, as the official code), the identity otherwise and in eval mode.

    Randomness comes from PyTorch's global generators (seeded and checkpointed by train.py),
    the coin from the CPU one so no device sync is needed. Shape ``(B, C, H, W)`` unchanged;
    no parameters or buffers. ``num_features`` is accepted for the ``norm_layer(channels)``
    interface and not needed.
    """

    def __init__(self, num_features, p=DSU_P, eps=DSU_EPS):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dsu: p must be in [0, 1], got {p}")
        self.num_features, self.p, self.eps = num_features, p, eps

    def extra_repr(self):
        return f"{self.num_features}, p={self.p}, eps={self.eps}"

    def forward(self, x):
        if not self.training or float(torch.rand(())) >= self.p:
            return x
        return perturb_statistics(x, self.eps)


NORM_LAYER = NormLayer("dsu", DistributionUncertainty, normalises=False, per_image=True,
                       summary="DSU (ICLR 2022): per-image feature statistics resampled "
                               "with their batch variance in training; identity at eval")
