"""Instance whitening (``--wt_layer`` codes 1 and 2): the IN whose output the losses read.

Registered as ``instance_whitening`` with ``collected=True``: wherever ``--wt_layer`` places
it, the trunk appends its output (pre-ReLU) to ``ViewOutput.in_feats`` for CML/CCL and the
RobustNet whitening losses. Like every IN it normalises per image (``per_image``) and, under
``--norm_semantics torch1.2``, with batch statistics in training.
"""

from torch import nn

from network.norm_layers import NormLayer


class InstanceWhitening(nn.InstanceNorm2d):
    """Per-sample, per-channel standardisation whose output the trunk collects (wt 1 or 2).

    Shape: ``(B, C, H, W) -> (B, C, H, W)``; biased variance over H*W, eps 1e-5, no state.
    """

    def __init__(self, num_features, eps=1e-5):
        super().__init__(num_features, eps=eps, affine=False, track_running_stats=False)


NORM_LAYER = NormLayer("instance_whitening", InstanceWhitening, collected=True, per_image=True,
                       torch12_batch_statistics=True, torch12_frozen_affine=True,
                       summary="IN without affine whose output the covariance / whitening "
                               "losses read (--wt_layer codes 1, 2)")
