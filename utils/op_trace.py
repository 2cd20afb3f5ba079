"""Which aten operators a piece of code runs, and from where: facts about CUDA read on the CPU.

Two properties of a GPU run depend only on *which* operators run, so a CPU run can predict
them (``bench/gpu_check.py`` then measures them on the GPU):

* :data:`CUDA_NONDETERMINISTIC` operators have no deterministic CUDA kernel
  (``torch.use_deterministic_algorithms`` raises, or warns with ``warn_only=True``);
* :data:`HOST_SYNC` operators make the host wait for the GPU (a value or an output size is
  read back), each one a stall in a training step.

:class:`OpTrace` is a ``TorchDispatchMode``: it sees every operator, autograd's backward ones
included (on the CPU the backward runs in the calling thread), and notes the first frame of
our code that called each watched one.
"""

import traceback
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

REPO_ROOT = Path(__file__).resolve().parents[1]

# aten operators (overload packet names) whose CUDA kernel calls alertNotDeterministic, as
# PyTorch 2.x documents for torch.use_deterministic_algorithms; a value is a predicate on the
# call's (positional arguments, keyword arguments) when only some calls are affected.
CUDA_NONDETERMINISTIC = {
    "avg_pool3d_backward": None,
    "_adaptive_avg_pool2d_backward": None,  # AdaptiveAvgPool2d(1) runs mean(), not this
    "_adaptive_avg_pool3d_backward": None,
    "adaptive_max_pool2d_backward": None,
    "fractional_max_pool2d_backward": None,
    "fractional_max_pool3d_backward": None,
    "max_pool3d_with_indices_backward": None,
    "max_unpool2d": None,
    "max_unpool3d": None,
    "upsample_linear1d_backward": None,
    "upsample_bilinear2d_backward": None,
    "_upsample_bilinear2d_aa_backward": None,
    "upsample_bicubic2d_backward": None,
    "_upsample_bicubic2d_aa_backward": None,
    "upsample_trilinear3d_backward": None,
    "reflection_pad1d_backward": None,
    "reflection_pad2d_backward": None,
    "reflection_pad3d_backward": None,
    # 'sum' / 'mean' reductions add with atomics (reduction index 0 is 'none').
    "nll_loss2d_forward": lambda a, k: _arg(a, k, 3, "reduction", 1) != 0,
    "_ctc_loss_backward": None,
    "put_": None,
    "histc": None,
    "bincount": lambda a, k: _arg(a, k, 1, "weights", None) is not None,
    "median": lambda a, k: len(a) > 1 or "dim" in k,
    "nanmedian": lambda a, k: len(a) > 1 or "dim" in k,
    "grid_sampler_2d_backward": None,
    "grid_sampler_3d_backward": None,
    "scatter_reduce": lambda a, k: _arg(a, k, 3, "reduce", "") == "prod",
    "scatter_reduce_": lambda a, k: _arg(a, k, 3, "reduce", "") == "prod",
}

# aten operators that read a device value or an output size back to the host on CUDA.
HOST_SYNC = {
    "_local_scalar_dense": None,  # .item(), float(t), int(t), bool(t), `if t:`
    "is_nonzero": None,
    "equal": None,
    "nonzero": None,
    "masked_select": None,
    "_unique2": None,
    "unique_dim": None,
    "unique_consecutive": None,
    "bincount": None,
    # Tensor repeats without output_size: the output length is a device sum.
    "repeat_interleave": lambda a, k: torch.is_tensor(a[0]) and (
        len(a) == 1 or torch.is_tensor(a[1])) and k.get("output_size") is None,
    # Boolean-mask indexing (``t[mask]``, ``t[mask] = v``) runs nonzero() on the mask.
    "index": lambda a, k: _has_bool_index(a[1]),
    "index_put": lambda a, k: _has_bool_index(a[1]),
    "index_put_": lambda a, k: _has_bool_index(a[1]),
}


def _arg(op_args, op_kwargs, position, name, default):
    if name in op_kwargs:
        return op_kwargs[name]
    return op_args[position] if len(op_args) > position else default


def _has_bool_index(indices):
    return any(torch.is_tensor(i) and i.dtype == torch.bool for i in indices if i is not None)


def caller_site(skip_prefixes=()):
    """``path:line (function)`` of the innermost frame of this repository outside ``utils/
    op_trace.py`` and ``skip_prefixes`` (relative paths), or ``<torch>`` when there is none."""
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename)
        if REPO_ROOT not in path.parents:
            continue
        relative = path.relative_to(REPO_ROOT).as_posix()
        if relative == "utils/op_trace.py" or relative.startswith(tuple(skip_prefixes)):
            continue
        return f"{relative}:{frame.lineno} ({frame.name})"
    return "<torch>"


class OpTrace(TorchDispatchMode):
    """Count the aten operators run inside ``with OpTrace(watch) as trace:``.

    ``watch``: name -> table (:data:`CUDA_NONDETERMINISTIC`, :data:`HOST_SYNC`).
    ``trace.counts``: operator -> calls; ``trace.sites[name]``: for each operator of that
    table that matched, a Counter of call sites (:func:`caller_site`).
    """

    def __init__(self, watch=None, skip_prefixes=()):
        super().__init__()
        self.watch = dict(watch or {})
        self.skip_prefixes = tuple(skip_prefixes)
        self.counts = Counter()
        self.sites = {name: {} for name in self.watch}

    def __torch_dispatch__(self, func, types, op_args=(), op_kwargs=None):
        op_kwargs = op_kwargs or {}
        op = func.overloadpacket.__name__
        self.counts[op] += 1
        for name, table in self.watch.items():
            if op in table and (table[op] is None or table[op](op_args, op_kwargs)):
                site = caller_site(self.skip_prefixes)
                self.sites[name].setdefault(op, Counter())[site] += 1
        return func(*op_args, **op_kwargs)
