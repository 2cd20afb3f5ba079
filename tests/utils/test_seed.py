"""``--deterministic``: what it switches on, and which operators of a training step PyTorch has
no deterministic CUDA kernel for (docs/GPU.md)."""

import os

import pytest
import torch

from tests import methods
from utils.op_trace import CUDA_NONDETERMINISTIC, OpTrace
from utils.seed import CUDA_NONDETERMINISTIC_OPS, set_seed


def test_the_documented_cuda_nondeterministic_ops_are_those_the_steps_run():
    # Recorded on the CPU: the same operators run on CUDA. A new resize, pooling or loss
    # without a deterministic CUDA kernel fails here until docs and the list name it.
    found = set()
    for method in ("baseline", "blindnet", "isw", "sw"):
        model, criterion = methods.build(method)
        with OpTrace({"nondeterministic": CUDA_NONDETERMINISTIC}) as trace:
            methods.step(model, criterion, methods.batch(criterion, crop=32))
        found |= set(trace.sites["nondeterministic"])
    assert found == set(CUDA_NONDETERMINISTIC_OPS)


@pytest.fixture
def restore_determinism(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2:]


def test_deterministic_switches_every_knob_and_warns_instead_of_failing(restore_determinism):
    set_seed(1, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()  # the CUDA ops above warn
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    set_seed(1, deterministic=False)
    assert torch.backends.cudnn.benchmark


@pytest.mark.cpu_only("bit-for-bit repetition is the CPU's claim; bench/gpu_check.py's resume "
                      "section measures a GPU's")
def test_deterministic_cpu_steps_repeat_bit_for_bit(restore_determinism):
    results = []
    for _ in range(2):
        set_seed(5, deterministic=True)
        model, criterion = methods.build("blindnet", seed=5)
        terms = methods.step(model, criterion, methods.batch(criterion, crop=32))
        results.append((terms["total"].detach(), model.final2[0].weight.grad.clone()))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
