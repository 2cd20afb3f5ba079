"""Photometric parameters of the ``photometric="device"`` path, drawn like the loader path.

With ``photometric="device"`` a training item carries the geometric crop as uint8 (before any
colour jitter or blur; both views start from it) and one row of numbers per view;
``transforms/device_photometric.py`` applies them to the batch on the training device. The
numbers are drawn here from torch's global RNG (seeded per item by the dataset) with exactly
the draws of the loader path's transforms (``transforms/photometric.py``), in the same order:
view 1's ``RandomApply`` coin, its jitter (torchvision's own ``ColorJitter.make_params``) and
blur sigma, then view 2's jitter and sigma. So an item's parameters are a function of
(seed, epoch, index), and the device path draws what the loader path would have drawn for
the same item.

Row layout (:data:`PARAMS_PER_VIEW` float64 numbers):

* ``APPLY``: 1 jitters this view, 0 leaves its colours (view 1's ``p = 0.5`` coin failed,
  or no ``color_aug``);
* ``BRIGHTNESS``, ``CONTRAST``, ``SATURATION``, ``HUE``: the jitter factors (1, 1, 1, 0
  when not applied);
* ``ORDER`` .. ``ORDER + 3``: the order of the four ops (0 brightness, 1 contrast,
  2 saturation, 3 hue);
* ``SIGMA``: the Gaussian blur's sigma, 0 for no blur.
"""

import torch

from transforms.photometric import (
    JITTERED_JITTER,
    ORIGINAL_JITTER,
    ORIGINAL_JITTER_P,
    blur_sigma,
    color_jitter,
)

PHOTOMETRIC_MODES = ("loader", "device")
APPLY, BRIGHTNESS, CONTRAST, SATURATION, HUE, ORDER, SIGMA = 0, 1, 2, 3, 4, 5, 9
PARAMS_PER_VIEW = 10
_IDENTITY = (1.0, 1.0, 1.0, 0.0)
_KEYS = ("brightness_factor", "contrast_factor", "saturation_factor", "hue_factor")


def check_photometric(mode, bblur=False, flag_prefix=""):
    """Raise ValueError unless ``mode`` is a photometric mode the options allow
    (``flag_prefix``: ``"--"`` names the options as flags)."""
    p = flag_prefix
    if mode not in PHOTOMETRIC_MODES:
        raise ValueError(f"{p}photometric must be one of {PHOTOMETRIC_MODES}, got {mode!r}")
    if mode == "device" and bblur:
        raise ValueError(f"{p}bblur (bilateral blur) exists only on the loader path: use "
                         f"{p}photometric loader")


class ViewParams:
    """Draws one view's row: optional jitter (probability ``p``) then optional blur."""

    def __init__(self, strengths, p=1.0, jitter=True, blur=True):
        self.jitter = color_jitter(strengths) if jitter else None
        self.p, self.blur = p, blur

    def draw(self):
        """``(PARAMS_PER_VIEW,)`` float64, consuming the RNG as the loader's view does."""
        row = torch.zeros(PARAMS_PER_VIEW, dtype=torch.float64)
        row[BRIGHTNESS:HUE + 1] = torch.tensor(_IDENTITY, dtype=torch.float64)
        row[ORDER:ORDER + 4] = torch.arange(4, dtype=torch.float64)
        # v2.RandomApply draws its coin first and skips the jitter's draws when it fails.
        if self.jitter is not None and (self.p >= 1.0 or float(torch.rand(1)) < self.p):
            params = self.jitter.make_params([])
            row[APPLY] = 1.0
            row[BRIGHTNESS:HUE + 1] = torch.tensor([params[key] for key in _KEYS],
                                                   dtype=torch.float64)
            row[ORDER:ORDER + 4] = params["fn_idx"].to(torch.float64)
        if self.blur:
            row[SIGMA] = blur_sigma()
        return row


class ItemParams:
    """The ``(V, PARAMS_PER_VIEW)`` parameters of one item: view 1, and view 2 if two-view.

    ``color_aug``, ``gblur``: view 1's options as in ``original_view_transform``; view 2 is
    the strong jitter and blur of ``jittered_view_transform``.
    """

    def __init__(self, color_aug=0.0, gblur=False, two_view=False):
        self.views = [ViewParams(ORIGINAL_JITTER, ORIGINAL_JITTER_P, jitter=color_aug > 0,
                                 blur=gblur)]
        if two_view:
            self.views.append(ViewParams(JITTERED_JITTER))

    def __call__(self):
        return torch.stack([view.draw() for view in self.views])
