"""What the segmenter returns in training: :class:`ModelOutput`."""

from dataclasses import dataclass

import torch


@dataclass
class ModelOutput:
    """Outputs of one training forward (original view ``x``, optional augmented view ``x^a``).

    Shapes for a batch of B images of size H x W, C classes, output stride OS and a decoder
    at stride s (4 for ResNets, 8 for MobileNetV2/ShuffleNetV2):

    * ``logits``: ``(B, C, H, W)`` of ``x``, bilinearly upsampled from ``dec_logits``.
    * ``dec_logits``: ``(B, C, H/s, W/s)``, the ``final2`` output (``dec2``) of ``x``; its
      argmax is the prediction P used by CWCL and SDCL.
    * ``aux_logits``: ``(B, C, H/OS', W/OS')``, the ``dsn`` output on ``layer3`` of ``x``
      (not upsampled; OS' = the stride of layer3).
    * ``in_feats``: the collected instance-whitening outputs of ``x`` in forward order, each
      ``(B, C_l, H_l, W_l)`` (empty when ``wt_layer`` has no 1 or 2).
    * ``embeddings``: the three projected, L2-normalised maps of ``x``, each ``(B, 256, h, w)``
      (``layer4``, ``dec0``, ``dec1``), or ``None`` when the heads were not run.
    * ``*_aug``: the same for ``x^a``; ``None`` in single-view (baseline) training.
    """

    logits: torch.Tensor
    dec_logits: torch.Tensor
    aux_logits: torch.Tensor | None = None
    in_feats: list | None = None
    embeddings: list | None = None
    logits_aug: torch.Tensor | None = None
    dec_logits_aug: torch.Tensor | None = None
    in_feats_aug: list | None = None
    embeddings_aug: list | None = None

    @property
    def two_view(self):
        """True when the augmented view was forwarded too."""
        return self.logits_aug is not None
