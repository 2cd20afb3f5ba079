"""``--norm_semantics``: normalisation layers as current PyTorch or as PyTorch 1.2.0 ran them.

``modern`` (default) leaves the model as built. ``torch1.2`` reproduces what the official
BlindNet run computed under the PyTorch 1.2.0 its README pins (docs of the project:
TORCH12_SEMANTICS.md, DECISIONS.md D28): the official ``train.py`` built the optimizer
*before* ``convert_sync_batchnorm``, and in 1.2.0 instance norm derived from ``_BatchNorm``, so

* C1: every instance-norm layer was a batch norm in training: per channel, mean and biased
  variance over the whole per-view batch (all processes together when distributed, with
  gradient through the statistics) and H x W, eps 1e-5, no running statistics; an affine
  IN (``--wt_layer`` code 4) applied its affine after that. In evaluation (the official
  single-process, batch-1 valid script) this is per-image statistics, i.e. instance norm.
* C2: every BatchNorm weight and bias, and those of an affine IN, were new Parameters the
  optimizer never held: never updated, never weight-decayed. Running statistics updated.

:func:`apply_norm_semantics` works on what each norm layer declares in ``network/norms.py``,
not on trunk code, so every trunk, every ``--wt_layer`` value and every ``--norm_layer`` is
covered, layers and trunks added later included: each module declaring
``torch12_batch_statistics`` (every InstanceNorm entry) is re-classed in place to a subclass
of its own class (same parameters, state-dict keys and registry entry, so IN features are
still collected) whose training forward is :func:`batch_statistics_norm`; C2 is
``requires_grad=False`` on the affine parameters of every layer declaring
``torch12_frozen_affine`` (BatchNorm, SyncBatchNorm, affine IN), so an optimizer built over
the parameters that require grad, as ``train.py``'s is, reproduces C2 without knowing the mode.
"""

import torch
import torch.nn.functional as F

from config import DEFAULT_NORM_SEMANTICS, NORM_SEMANTICS
from network.norms import declared
from utils import dist as dist_utils

__all__ = ["NORM_SEMANTICS", "DEFAULT_NORM_SEMANTICS", "apply_norm_semantics",
           "batch_statistics_norm", "norm_semantics_of", "validate_norm_semantics"]


def validate_norm_semantics(mode):
    """Return ``mode`` if it is one of :data:`NORM_SEMANTICS`, else raise ValueError."""
    if mode not in NORM_SEMANTICS:
        raise ValueError(f"--norm_semantics must be one of {', '.join(NORM_SEMANTICS)}, "
                         f"got {mode!r}")
    return mode


def batch_statistics_norm(x, weight=None, bias=None, eps=1e-5):
    """Standardise every channel with the statistics of the whole (global) batch.

    Args:
        x: ``(B, C, *spatial)``.
        weight, bias: optional ``(C,)`` affine applied after the standardisation.
        eps: added to the biased variance.

    Returns:
        ``(B, C, *spatial)``. In one process this is exactly ``F.batch_norm(x, None, None,
        weight, bias, training=True, eps=eps)``; with a process group the mean and variance
        are over every rank's batch (ranks may hold different batch sizes), and the backward
        pass goes through them on every rank.
    """
    if not dist_utils.is_distributed():
        return F.batch_norm(x, None, None, weight, bias, training=True, momentum=0.0, eps=eps)
    dims = [0] + list(range(2, x.dim()))
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    # Statistics in at least fp32 (also under autocast); float64 stays float64.
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    count = xf.new_tensor([x.numel() / x.shape[1]])
    sums = dist_utils.all_reduce_sum_with_grad(torch.cat([xf.sum(dims), count]))
    n = sums[-1].detach()
    centred = xf - (sums[:-1] / n).view(shape)
    var = dist_utils.all_reduce_sum_with_grad((centred * centred).sum(dims)) / n
    out = centred * torch.rsqrt(var + eps).view(shape)
    if weight is not None:
        out = out * weight.view(shape) + bias.view(shape)
    return out.to(x.dtype)


class Torch12InstanceNorm:
    """Mixin placed before an ``_InstanceNorm`` class: batch statistics in training (C1).

    In eval mode the class's own forward runs (per-image statistics, as 1.2.0's
    ``F.batch_norm`` over one image computed them).
    """

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        if x.dim() < 3 or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__} in torch1.2 mode expects a (B, "
                             f"{self.num_features}, ...) input, got {tuple(x.shape)}")
        weight, bias = (self.weight, self.bias) if self.affine else (None, None)
        return batch_statistics_norm(x, weight, bias, self.eps)


_TORCH12_CLASSES = {}


def torch12_class(cls):
    """The torch1.2 subclass of the instance-norm class ``cls`` (created once per class)."""
    if issubclass(cls, Torch12InstanceNorm):
        return cls
    if cls not in _TORCH12_CLASSES:
        name = f"Torch12{cls.__name__}"
        if cls.__module__ != "torch.nn.modules.instancenorm":
            name = f"Torch12_{cls.__module__.replace('.', '_')}_{cls.__name__}"
        new = type(name, (Torch12InstanceNorm, cls),
                   {"__module__": __name__, "__qualname__": name,
                    "__doc__": f"{cls.__name__} with torch1.2 semantics."})
        globals()[name] = new  # a module-level name, so whole models still pickle
        _TORCH12_CLASSES[cls] = new
    return _TORCH12_CLASSES[cls]


def _batch_statistics(module):
    entry = declared(module)
    return entry is not None and entry.torch12_batch_statistics


def _frozen_affine(module):
    """A layer declaring ``torch12_frozen_affine`` that has an affine."""
    entry = declared(module)
    return (entry is not None and entry.torch12_frozen_affine
            and getattr(module, "weight", None) is not None)


def apply_norm_semantics(model, mode=DEFAULT_NORM_SEMANTICS):
    """Give ``model`` the normalisation semantics ``mode`` (in place) and return it.

    ``modern``: nothing changes. ``torch1.2``: every instance-norm module gets its torch1.2
    class (C1) and every BatchNorm / affine-IN weight and bias ``requires_grad=False`` (C2).
    The mode is recorded as ``model.norm_semantics`` (see :func:`norm_semantics_of`).
    Applying ``torch1.2`` twice is harmless; a torch1.2 model cannot be turned back.
    """
    validate_norm_semantics(mode)
    if norm_semantics_of(model) == "torch1.2" and mode != "torch1.2":
        raise ValueError("this model already has torch1.2 norm semantics; build a new one")
    if mode == "torch1.2":
        for module in model.modules():
            if _batch_statistics(module):
                module.__class__ = torch12_class(type(module))
            if _frozen_affine(module):
                module.weight.requires_grad_(False)
                module.bias.requires_grad_(False)
    model.norm_semantics = mode
    return model


def norm_semantics_of(model):
    """The mode a model was given by :func:`apply_norm_semantics` (``modern`` if never)."""
    return getattr(model, "norm_semantics", DEFAULT_NORM_SEMANTICS)


def count_norm_layers(model):
    """(instance-norm modules, BatchNorm/affine-IN modules with frozen affine) of ``model``."""
    modules = list(model.modules())
    torch12 = sum(isinstance(m, Torch12InstanceNorm) for m in modules)
    frozen = sum(_frozen_affine(m) and not m.weight.requires_grad for m in modules)
    return torch12, frozen


def describe(model):
    """One log line naming the mode of ``model`` and what it changed."""
    mode = norm_semantics_of(model)
    if mode != "torch1.2":
        return f"norm semantics {mode}"
    torch12, frozen = count_norm_layers(model)
    return (f"norm semantics torch1.2: {torch12} instance-norm layer(s) use batch statistics "
            f"in training; {frozen} BatchNorm/affine-IN layer(s) keep weight and bias frozen")
