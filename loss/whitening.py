"""RobustNet's whitening losses IW, IRW and ISW (ROBUSTNET_METHODS.md §3.1-3.4).

For a collected IN output ``F_b`` of image b, reshaped to ``(C, HW)``:

* covariance ``S_b = F_b F_b^T / (HW - 1) + eps I`` with ``eps = 1e-5`` (not centred: the
  IN output is already zero-mean per channel);
* per-image loss ``l_b = max(0, (sum_ij |S_b * M|_ij - m) / N)`` for a 0/1 mask ``M``,
  a margin ``m`` and a normaliser ``N``; the layer loss is the mean over the batch, and the
  whitening loss is the mean over the collected layers.

The three methods differ only in ``M``, ``m`` and ``N``:

* IW (``--wt_layer`` code 1, ``--relax_denom 0``): ``M`` = strict upper triangle,
  ``N = C(C-1)/2``, ``m = 0``;
* IRW (code 1, ``--relax_denom r > 0``): the same ``M`` and ``N``, ``m = floor(N / r)``;
* ISW (code 2): ``M`` = the style-sensitive mask of the statistics pass
  (:mod:`loss.isw_mask`), ``N = sum(M)``, ``m = 0``. Until the mask exists (the first
  ``--cov_stat_epoch + 1`` epochs) the loss is zero.

Loss term ``wt`` (weight ``--wt_reg_weight``, on when it is > 0): it needs the collected IN
features, and in ISW mode a schedule that computes the mask (``engine/isw.py``); the mask is
its state, kept in checkpoints as ``isw_mask``.
"""

import math

import torch
from torch import nn

from loss.covariance import COVARIANCE_EPS
from loss.terms import IN_FEATURES, ROBUSTNET, LossFlag, LossTerm, register_term
from utils.precision import float32_region
from utils.wt_layer import whitening_modes

WHITENING_MODES = ("iw", "isw")
ISW_MASK_STATE = "isw_mask"  # checkpoint key of the ISW mask (DECISIONS.md D33)

WT_REG_WEIGHT = LossFlag("wt_reg_weight", 0.0, "whitening loss weight, codes 1/2 (IW 0.8, "
                         "IRW/ISW 0.6); 0 = off", group=ROBUSTNET)
RELAX_DENOM = LossFlag("relax_denom", 2.0, "code 1: 0 = IW, > 0 = IRW with margin "
                       "floor(C(C-1)/2 / relax_denom)", group=ROBUSTNET)
CLUSTERS = LossFlag("clusters", 50, "ISW: k of the 1-D k-means", type=int, group=ROBUSTNET)
TRIALS = LossFlag("trials", 10, "ISW: statistics passes, ANDed", type=int, group=ROBUSTNET)
COV_STAT_EPOCH = LossFlag("cov_stat_epoch", 5, "ISW: the mask is computed at the end of this "
                          "epoch; loss on after it", type=int, group=ROBUSTNET)
COVSTAT_VAL_DATASET = LossFlag("covstat_val_dataset", ("cityscapes",), "ISW: dataset whose "
                               "training images feed the statistics passes", type=str,
                               nargs="*", group=ROBUSTNET)
COVSTAT_IMAGES = LossFlag("covstat_images", 500, "ISW: images per statistics pass (RobustNet "
                          "500)", type=int, group=ROBUSTNET)
USE_WTLOSS = LossFlag("use_wtloss", False, "derived from --wt_layer (1 or 2)", type=bool,
                      group=ROBUSTNET)
USE_ISW = LossFlag("use_isw", False, "derived from --wt_layer (2)", type=bool, group=ROBUSTNET)


def whitening_mode(wt_layer):
    """The RobustNet whitening loss that ``wt_layer`` asks for: ``iw`` (a code 1), ``isw``
    (a code 2) or ``None``; ValueError when both codes are present (RobustNet crashes)."""
    modes = whitening_modes(wt_layer)
    if len(modes) > 1:
        raise ValueError(f"--wt_layer {' '.join(map(str, wt_layer))} mixes 1 (IW/IRW) and 2 "
                         f"(ISW) while the whitening loss is on (--wt_reg_weight > 0); use one")
    return next(iter(modes), None)


def check_whitening_flags(options):
    """Raise ValueError naming the flag when the RobustNet whitening flags do not fit together.

    ``options``: the loss options (``loss.terms.resolve_options``: flag name -> value, with
    ``wt_layer``); the flag names are those of ``train.py``.
    """
    wt_layer, weight, relax_denom = options["wt_layer"] or (), options["wt_reg_weight"], \
        options["relax_denom"]
    modes = whitening_modes(wt_layer)
    if weight < 0 or relax_denom < 0:
        raise ValueError(f"--wt_reg_weight and --relax_denom must be >= 0, got "
                         f"{weight} and {relax_denom}")
    if options["use_wtloss"] and not modes:
        raise ValueError("--use_wtloss needs a --wt_layer code 1 (IW/IRW) or 2 (ISW)")
    if options["use_isw"] and "isw" not in modes:
        raise ValueError("--use_isw needs a --wt_layer code 2 (ISW)")
    if weight == 0:
        return
    mode = whitening_mode(wt_layer)
    if mode is None:
        raise ValueError(f"--wt_reg_weight {weight} needs a --wt_layer code 1 (IW/IRW) "
                         f"or 2 (ISW), got {' '.join(map(str, wt_layer))}")
    isw = [options[f.name] for f in (CLUSTERS, TRIALS, COV_STAT_EPOCH, COVSTAT_IMAGES)]
    datasets = list(options["covstat_val_dataset"])
    if mode == "isw" and (isw[0] < 2 or isw[1] < 1 or isw[2] < 0 or isw[3] < 1
                          or len(datasets) != 1):
        raise ValueError(f"ISW needs --clusters >= 2, --trials >= 1, --cov_stat_epoch >= 0, "
                         f"--covstat_images >= 1 and one --covstat_val_dataset, got "
                         f"{', '.join(map(str, isw))}, {datasets}")


def unread_whitening_flags(wt_layer, wt_reg_weight):
    """Names of the RobustNet flags (argparse dests) the whitening loss of this run ignores."""
    mode = whitening_mode(wt_layer) if wt_reg_weight > 0 else None
    unread = () if mode == "iw" else ("relax_denom",)
    if mode != "isw":
        unread += ("clusters", "trials", "cov_stat_epoch", "covstat_val_dataset",
                   "covstat_images")
    return list(unread)


def instance_covariance(feat):
    """``(B, C, H, W)`` -> ``(B, C, C)`` float32 covariances ``F F^T / (HW - 1) + eps I``."""
    if feat.dim() != 4:
        raise ValueError(f"whitening features must be (B, C, H, W), got {tuple(feat.shape)}")
    pixels = feat.shape[-2] * feat.shape[-1]
    if pixels < 2:
        raise ValueError(f"covariance needs at least 2 pixels, got a {tuple(feat.shape)} map")
    with float32_region(feat.device):  # float32 also under --amp
        flat = feat.flatten(2).float()
        cov = flat @ flat.transpose(1, 2) / (pixels - 1)
    return cov + COVARIANCE_EPS * torch.eye(feat.shape[1], device=feat.device)


def strict_upper_mask(channels, device=None):
    """``(C, C)`` bool: True above the diagonal (each off-diagonal pair once)."""
    return torch.ones(channels, channels, dtype=torch.bool, device=device).triu(1)


def irw_margin(channels, relax_denom):
    """IRW margin ``floor(C(C-1)/2 / relax_denom)``; 0 (IW) when ``relax_denom`` is 0."""
    if relax_denom < 0:
        raise ValueError(f"--relax_denom must be >= 0, got {relax_denom}")
    if relax_denom == 0:
        return 0.0
    return float(math.floor(channels * (channels - 1) / 2 / relax_denom))


def masked_whitening_loss(feat, mask, margin=0.0, normaliser=None):
    """One layer's loss ``mean_b max(0, (sum |S_b * M| - m) / N)``.

    Args:
        feat: ``(B, C, H, W)`` IN output (gradients flow through it).
        mask: ``(C, C)`` bool or 0/1 mask ``M``.
        margin: ``m``.
        normaliser: ``N``; ``None`` means ``sum(M)``.

    Returns:
        scalar float32 tensor. A mask without a single entry gives 0 (RobustNet divides by
        zero there, DECISIONS.md).
    """
    cov = instance_covariance(feat)
    weights = mask.to(device=cov.device, dtype=cov.dtype)
    if weights.shape != cov.shape[1:]:
        raise ValueError(f"mask must be {tuple(cov.shape[1:])} for a {feat.shape[1]}-channel "
                         f"feature, got {tuple(weights.shape)}")
    count = float(weights.sum()) if normaliser is None else float(normaliser)
    if count == 0:
        return cov.new_zeros(())
    per_image = (cov.abs() * weights).sum(dim=(1, 2))
    return ((per_image - margin) / count).clamp(min=0).mean()


class WhiteningLoss(nn.Module):
    """The whitening loss of ``--wt_layer`` codes 1 (IW / IRW) and 2 (ISW).

    Args:
        mode: ``iw`` (code 1; IRW when ``relax_denom > 0``) or ``isw`` (code 2).
        relax_denom: ``--relax_denom`` (IW/IRW only; ISW always uses margin 0); its default
            is the flag's (2.0, RobustNet's argparse default): pass 0 for IW.

    ``forward(feats)`` takes the list of collected IN outputs ``(B, C_l, H_l, W_l)`` and
    returns the mean over layers of :func:`masked_whitening_loss`. In ``isw`` mode the masks
    come from :meth:`set_masks` (one ``(C_l, C_l)`` bool tensor per layer, in collection
    order); before that the loss is a zero tensor (the loss is not switched on yet).
    """

    def __init__(self, mode="iw", relax_denom=RELAX_DENOM.default):
        super().__init__()
        if mode not in WHITENING_MODES:
            raise ValueError(f"whitening mode must be one of {WHITENING_MODES}, got {mode!r}")
        self.mode = mode
        self.relax_denom = float(relax_denom)
        irw_margin(1, self.relax_denom)  # validates the value
        self.masks = None
        self.mask_counts = None

    @property
    def active(self):
        """Whether the loss contributes: always for IW/IRW, once the mask exists for ISW."""
        return self.mode == "iw" or self.masks is not None

    def set_masks(self, masks):
        """Install the ISW masks (a list of ``(C_l, C_l)`` bool tensors), or ``None``."""
        if self.mode != "isw":
            raise ValueError("only the ISW whitening loss (--wt_layer code 2) takes masks")
        self.masks = None if masks is None else [m.bool().cpu() for m in masks]
        # N per layer, known once (no device sync per step).
        self.mask_counts = None if masks is None else [int(m.sum()) for m in self.masks]

    def get_masks(self):
        """The ISW masks on the CPU (for a checkpoint), or ``None``."""
        return None if self.masks is None else [m.cpu() for m in self.masks]

    def forward(self, feats):
        if not feats:
            raise ValueError("the whitening loss needs collected IN features: set --wt_layer "
                             "entries to 1 (IW/IRW) or 2 (ISW)")
        if not self.active:
            return feats[0].new_zeros((), dtype=torch.float32)
        if self.mode == "isw" and self.masks[0].device != feats[0].device:
            self.masks = [m.to(feats[0].device) for m in self.masks]  # moved once
        if self.mode == "isw" and len(self.masks) != len(feats):
            raise ValueError(f"the ISW mask has {len(self.masks)} layer(s) but the model "
                             f"collected {len(feats)}")
        per_layer = []
        for index, feat in enumerate(feats):
            channels = feat.shape[1]
            if self.mode == "iw":
                mask = strict_upper_mask(channels, feat.device)
                per_layer.append(masked_whitening_loss(
                    feat, mask, irw_margin(channels, self.relax_denom),
                    channels * (channels - 1) / 2))
            else:
                per_layer.append(masked_whitening_loss(
                    feat, self.masks[index], 0.0, self.mask_counts[index]))
        return sum(per_layer) / len(per_layer)


def _build(options):
    mode = whitening_mode(options["wt_layer"] or ())
    if mode is None:
        raise ValueError(f"--wt_reg_weight {options['wt_reg_weight']} needs a --wt_layer code "
                         f"1 (IW/IRW) or 2 (ISW), got {options['wt_layer']}")
    return WhiteningLoss(mode, options["relax_denom"])


def _unread(options):
    why = ("only the RobustNet whitening loss reads it (--wt_reg_weight > 0 with a --wt_layer "
           "code 1 for relax_denom, 2 for the ISW flags)")
    return dict.fromkeys(unread_whitening_flags(options["wt_layer"] or (),
                                                options["wt_reg_weight"]), why)


WT = register_term(LossTerm(
    "wt", order=60, weight=WT_REG_WEIGHT, needs=frozenset({IN_FEATURES}),
    flags=(RELAX_DENOM, CLUSTERS, TRIALS, COV_STAT_EPOCH, COVSTAT_VAL_DATASET, COVSTAT_IMAGES,
           USE_WTLOSS, USE_ISW),
    reads=("wt_layer",), state=ISW_MASK_STATE, build=_build,
    compute=lambda module, inputs: module(inputs.output.original.in_feats),
    check=check_whitening_flags, unread=_unread))
