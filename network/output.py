"""What the segmenter returns in training: :class:`ModelOutput` of one :class:`ViewOutput` per view.

Evaluation (``model.eval()`` and no ``images_aug``) returns the logits tensor ``(B, C, H, W)``
instead; every training-mode forward returns a :class:`ModelOutput`.
"""

from dataclasses import dataclass

import torch


@dataclass
class ViewOutput:
    """The outputs of one view ``x`` (original or augmented) of a training forward.

    Shapes for a batch of B images of size H x W, C classes and a decoder at stride s (4 for
    ResNets, 8 for MobileNetV2/ShuffleNetV2/EfficientNet-Lite0):

    * ``logits``: ``(B, C, H, W)``, bilinearly upsampled from ``dec_logits``.
    * ``dec_logits``: ``(B, C, H/s, W/s)``, the ``final2`` output (``dec2``); its argmax is the
      prediction P used by CWCL and SDCL.
    * ``in_feats``: list of the collected instance-whitening outputs in forward order, each
      ``(B, C_l, H_l, W_l)`` (empty when ``wt_layer`` has no 1 or 2).
    * ``embeddings``: list of the three projected, L2-normalised maps, each ``(B, 256, h, w)``
      (of ``layer4``, ``dec0``, ``dec1``), or ``None`` when the projection heads were not run.
    * ``class_logits``, ``mask_logits``: mask-classification models (``network.vfm``) only:
      one ``(B, Q, C + 1)`` / ``(B, Q, H/4, W/4)`` tensor per decoder prediction (the last
      is the final one); None for the DeepLabV3+ segmenters. Such models have no per-pixel
      ``logits`` (None); their ``dec_logits`` are the semantic scores at stride 4
      (docs/VFM.md), without gradient, whose argmax CWCL/SDCL read.
    """

    logits: torch.Tensor | None
    dec_logits: torch.Tensor
    in_feats: list
    embeddings: list | None = None
    class_logits: list | None = None
    mask_logits: list | None = None


@dataclass
class ModelOutput:
    """Outputs of one training forward: original view ``x`` and optional augmented view ``x^a``.

    * ``original``: :class:`ViewOutput` of ``x``.
    * ``aux_logits``: ``(B, C, H/OS', W/OS')``, the ``dsn`` head on ``layer3`` of ``x`` only
      (not upsampled; OS' = the stride of layer3); None for models without one
      (``network.vfm``).
    * ``augmented``: :class:`ViewOutput` of ``x^a``; ``None`` in single-view (baseline)
      training.
    """

    original: ViewOutput
    aux_logits: torch.Tensor | None
    augmented: ViewOutput | None = None

    @property
    def two_view(self):
        """True when the augmented view was forwarded too."""
        return self.augmented is not None
