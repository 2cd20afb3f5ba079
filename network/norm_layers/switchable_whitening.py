"""Switchable Whitening, ``--wt_layer`` code 5 (ROBUSTNET_METHODS.md §3.6; ResNet trunks only).

The channels are split into ``G = C / 16`` groups of ``c = 16``. Per group:

* batch ("BW") statistics in training: mean ``mu_bn`` over (B, H, W) and covariance
  ``S_bn = (X - mu_bn)(X - mu_bn)^T / (B H W)``, over the batch of *every* process (sums
  all-reduced with gradient, as SyncBatchNorm does); running averages
  ``running = 0.99 running + 0.01 batch``, initialised to zero as in RobustNet; in eval
  mode the running statistics replace the batch ones;
* instance ("IW") statistics, per image: ``mu_in`` over (H, W), ``S_in`` likewise / (H W);
* mixing: ``mu = w0 mu_bn + w1 mu_in`` and ``S = v0 S_bn + v1 S_in + eps I`` with
  ``w = softmax(mean_weight)``, ``v = softmax(var_weight)`` (separate logits, init 1, 1);
* whitening by Newton-Schulz: ``S_N = S / tr(S)``, ``P_0 = I``,
  ``P <- 1.5 P - 0.5 P^3 S_N`` (T = 5 times), ``W = P / sqrt(tr(S))``,
  ``x_hat = W (x - mu)``; then the per-channel affine ``gamma x_hat + beta``.

All statistics are computed in float32 (float64 stays float64), also under autocast.

Registered as ``switchable_whitening``: not collected, its own init (weight 1, bias 0, mixing
logits 1), ImageNet ``matching`` (a stem BatchNorm's weight and bias load into its affine, the
running statistics do not fit its grouped buffers), no torch1.2 change (RobustNet's layer is
no ``_BatchNorm``/``_InstanceNorm``).
"""

import contextlib

import torch
from torch import nn

from network.norm_layers import IMAGENET_MATCHING, NormLayer
from utils import dist as dist_utils

SW_GROUP_SIZE = 16
SW_ITERATIONS = 5
SW_EPS = 1e-5
SW_MOMENTUM = 0.99


def newton_schulz_whitening(cov, iterations=SW_ITERATIONS):
    """Approximate ``cov^(-1/2)`` of ``(..., c, c)`` SPD matrices by ``iterations`` steps."""
    trace = cov.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None]
    normalised = cov / trace
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    proj = eye.expand_as(cov)
    for _ in range(iterations):
        proj = 1.5 * proj - 0.5 * torch.linalg.matrix_power(proj, 3) @ normalised
    return proj / trace.sqrt()


class SwitchWhiten2d(nn.Module):
    """Switchable Whitening of ``(B, C, H, W)`` maps, output of the same shape.

    Args:
        num_features: C, a multiple of ``group_size``.
        group_size: channels per whitening group (16).
        iterations: Newton-Schulz steps T (5).
        eps: added to the mixed covariance's diagonal (1e-5).
        momentum: weight of the old running statistics (0.99, RobustNet's convention).

    Parameters ``weight``/``bias`` (C,) (the affine; a stem's ImageNet BatchNorm loads into
    them), ``mean_weight``/``var_weight`` (2,); buffers ``running_mean`` (G, c, 1) and
    ``running_cov`` (G, c, c).
    """

    def __init__(self, num_features, group_size=SW_GROUP_SIZE, iterations=SW_ITERATIONS,
                 eps=SW_EPS, momentum=SW_MOMENTUM):
        super().__init__()
        if num_features % group_size:
            raise ValueError(f"Switchable Whitening needs channels divisible by {group_size}, "
                             f"got {num_features}")
        self.num_features, self.group_size = num_features, group_size
        self.groups = num_features // group_size
        self.iterations, self.eps, self.momentum = iterations, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.mean_weight = nn.Parameter(torch.ones(2))
        self.var_weight = nn.Parameter(torch.ones(2))
        self.register_buffer("running_mean", torch.zeros(self.groups, group_size, 1))
        self.register_buffer("running_cov", torch.zeros(self.groups, group_size, group_size))

    def extra_repr(self):
        return (f"{self.num_features}, group_size={self.group_size}, "
                f"iterations={self.iterations}, eps={self.eps}, momentum={self.momentum}")

    def _batch_statistics(self, grouped):
        """``(B, G, c, HW)`` -> mean ``(G, c, 1)`` and covariance ``(G, c, c)`` over every
        rank's pixels (differentiable all-reduce of the sums)."""
        per_group = grouped.permute(1, 2, 0, 3).flatten(2)        # (G, c, B*HW)
        count = per_group.new_full((1,), float(per_group.shape[-1]))
        sums = dist_utils.all_reduce_sum_with_grad(
            torch.cat([per_group.sum(-1).flatten(), count]))
        total = sums[-1].detach()
        mean = (sums[:-1] / total).view(self.groups, self.group_size, 1)
        centred = per_group - mean
        cov = dist_utils.all_reduce_sum_with_grad(centred @ centred.transpose(1, 2)) / total
        return mean, cov

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"SwitchWhiten2d expects (B, {self.num_features}, H, W), got "
                             f"{tuple(x.shape)}")
        batch, channels, height, width = x.shape
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        # Whitening in full precision even under --amp (the meta device has no autocast).
        no_autocast = (contextlib.nullcontext() if x.device.type == "meta"
                       else torch.autocast(x.device.type, enabled=False))
        with no_autocast:
            grouped = x.to(dtype).reshape(batch, self.groups, self.group_size, height * width)
            mean_in = grouped.mean(-1, keepdim=True)                      # (B, G, c, 1)
            centred_in = grouped - mean_in
            cov_in = centred_in @ centred_in.transpose(-1, -2) / (height * width)
            if self.training:
                mean_bn, cov_bn = self._batch_statistics(grouped)
                with torch.no_grad():
                    self.running_mean.mul_(self.momentum).add_(
                        (1 - self.momentum) * mean_bn.detach().to(self.running_mean.dtype))
                    self.running_cov.mul_(self.momentum).add_(
                        (1 - self.momentum) * cov_bn.detach().to(self.running_cov.dtype))
            else:
                mean_bn, cov_bn = self.running_mean.to(dtype), self.running_cov.to(dtype)
            w = self.mean_weight.to(dtype).softmax(0)
            v = self.var_weight.to(dtype).softmax(0)
            mean = w[0] * mean_bn + w[1] * mean_in
            eye = torch.eye(self.group_size, dtype=dtype, device=x.device)
            cov = v[0] * cov_bn + v[1] * cov_in + self.eps * eye
            whitened = newton_schulz_whitening(cov, self.iterations) @ (grouped - mean)
            out = whitened.reshape(batch, channels, height, width)
            out = out * self.weight.to(dtype).view(1, -1, 1, 1) + self.bias.to(dtype).view(
                1, -1, 1, 1)
        return out.to(x.dtype)


NORM_LAYER = NormLayer("switchable_whitening", SwitchWhiten2d, unit_affine_init=False,
                       imagenet=IMAGENET_MATCHING, synced_statistics=True,
                       summary="Switchable Whitening (RobustNet's SW, --wt_layer code 5)")
