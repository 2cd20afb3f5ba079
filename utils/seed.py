"""Seeding of every random number generator the framework touches, and ``--deterministic``.

``--deterministic`` (DECISIONS.md D20, docs/GPU.md): cuDNN deterministic and not benchmarked,
cuBLAS's fixed workspace, ``torch.use_deterministic_algorithms(True, warn_only=True)``. On the
CPU every operator of a training step is deterministic, so a run repeats bit for bit. On CUDA
the operators of :data:`CUDA_NONDETERMINISTIC_OPS` have no deterministic kernel: PyTorch
warns once for each (naming it) and the run goes on, so its results vary in the last bits
from run to run. ``tests/utils/test_seed.py`` checks this list against the operators every
method's training step really runs.
"""

import os
import random

import numpy as np
import torch


# Operators of a training step (any method) without a deterministic CUDA kernel: aten name ->
# where the framework meets it. AdaptiveAvgPool2d(1) is not here: PyTorch runs it as mean().
CUDA_NONDETERMINISTIC_OPS = {
    "upsample_bilinear2d_backward": "backward of the bilinear resizes: decoder, ASPP image "
                                    "pooling and logits to the crop (network/deepv3.py, "
                                    "network/heads.py)",
    "nll_loss2d_forward": "cross-entropy summed over the pixels (loss/segmentation.py; also "
                          "the validation loss)",
}


def set_seed(seed, rank=0, deterministic=False):
    """Seed python, numpy and torch (CPU and CUDA) with ``seed + rank``.

    Each rank gets its own stream (different crops and jitter per process) while a run stays
    reproducible for a given world size.

    Args:
        seed: base seed (``--seed``, default 304 as in the reference).
        rank: global rank, added to the seed.
        deterministic: deterministic kernels wherever PyTorch has them (``--deterministic``,
            DECISIONS.md D20; slower): bit-reproducible on the CPU; on CUDA all but
            :data:`CUDA_NONDETERMINISTIC_OPS`, which warn instead of failing.
    """
    seed = int(seed) + int(rank)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic matmuls on CUDA >= 10.2; it is
        # read when the first cuBLAS handle is made, i.e. at the first matmul, after this.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: without it the CUDA_NONDETERMINISTIC_OPS would stop every GPU run at
        # its first step; each is named once in a warning instead.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True
    return seed


def _numpy_state_to_torch(state):
    name, keys, pos, has_gauss, gauss = state
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))


def rng_state():
    """Snapshot of the python, numpy and torch RNG states (for exact resume)."""
    state = {
        "python": random.getstate(),
        # numpy's state holds an ndarray, which weights_only loading refuses: store a tensor.
        "numpy": _numpy_state_to_torch(np.random.get_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore a snapshot made by :func:`rng_state`."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
