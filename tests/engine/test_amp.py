"""Mixed precision in the training step: fp16's GradScaler skips (counted, logged, a streak
limit) and what a non-finite loss does under each --amp (docs/GPU.md).

Device-capable: on CUDA the steps run under fp16 autocast with a CUDA GradScaler; on the CPU
(no fp16 autocast there) the same GradScaler logic runs in fp32 with a CPU GradScaler.
"""

import logging
import math
from types import SimpleNamespace

import pytest
import torch

from engine import trainer
from engine.config import OptimConfig
from engine.trainer import NonFiniteLossError, new_train_state, train_step
from utils.precision import check_amp_support
from utils.tensorboard import TrainWriter


class _Net(torch.nn.Module):
    """A 1x1 convolution in the model's calling convention."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def forward(self, images, images_aug=None, with_embeddings=False):
        return self.conv(images)


class _Loss(torch.nn.Module):
    """Mean output; ``nan_at``: calls (1-based) whose loss is NaN."""

    def __init__(self, nan_at=()):
        super().__init__()
        self.nan_at, self.calls = set(nan_at), 0

    def forward(self, output, labels, generator=None):
        self.calls += 1
        loss = output.float().square().mean()
        if self.calls in self.nan_at:
            loss = loss * float("nan")
        return {"main": loss, "total": loss}


def _fp16_state(device):
    """(state, amp) with GradScaler on: fp16 autocast on CUDA, a CPU GradScaler in fp32."""
    torch.manual_seed(0)
    net = _Net().to(device)
    amp = "fp16" if device.type == "cuda" else "off"
    state = new_train_state(net, OptimConfig(lr=0.1, max_iter=100), device=device, amp=amp)
    if device.type == "cpu":
        state.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    return state, amp


def _overflow_when(state, poisoned):
    """Make the conv weight's gradient Inf in the steps for which ``poisoned()`` is true."""
    state.model.conv.weight.register_hook(lambda g: g * math.inf if poisoned() else g)


def _step(state, criterion, device, amp):
    item = {"image": torch.randn(2, 3, 4, 4, device=device),
            "label": torch.zeros(2, 4, 4, dtype=torch.long, device=device)}
    return train_step(state, item, criterion, device=device, two_view=False,
                      with_embeddings=False, amp=amp)


def _weights(state):
    return [p.detach().clone() for p in state.model.parameters()]


def test_fp16_overflow_is_skipped_counted_and_the_scale_recovers(device):
    state, amp = _fp16_state(device)
    poison = [False]
    _overflow_when(state, lambda: poison[0])
    _step(state, _Loss(), device, amp)
    scale, before = state.loss_scale, _weights(state)
    assert state.skipped_steps == 0
    poison[0] = True
    values = _step(state, _Loss(), device, amp)
    assert all(math.isfinite(v) for v in values.values())  # the loss was fine, the grads not
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(state)))  # step skipped
    assert (state.skipped_steps, state.skipped_in_a_row, state.iteration) == (1, 1, 2)
    assert state.loss_scale == scale / 2
    poison[0] = False
    _step(state, _Loss(), device, amp)
    assert (state.skipped_steps, state.skipped_in_a_row) == (1, 0)
    assert not all(torch.equal(a, b) for a, b in zip(before, _weights(state)))


def test_fp16_non_finite_loss_is_a_skipped_step_not_a_stop(device):
    state, amp = _fp16_state(device)
    criterion = _Loss(nan_at={2})
    _step(state, criterion, device, amp)
    before = _weights(state)
    values = _step(state, criterion, device, amp)  # NaN loss: NaN gradients, skipped
    assert math.isnan(values["main"]) and state.skipped_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(state)))
    _step(state, criterion, device, amp)
    assert state.skipped_in_a_row == 0 and state.iteration == 3


def test_fp16_stops_after_too_many_skips_in_a_row(device, monkeypatch):
    monkeypatch.setattr(trainer, "MAX_SKIPPED_IN_A_ROW", 3)
    state, amp = _fp16_state(device)
    _overflow_when(state, lambda: True)
    before = _weights(state)
    for _ in range(3):
        _step(state, _Loss(), device, amp)
    with pytest.raises(NonFiniteLossError, match="skipped 4 steps in a row up to iteration 4"):
        _step(state, _Loss(), device, amp)
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(state)))


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_fp32_and_bf16_stop_on_a_nan_before_the_step(device, amp):
    if amp == "bf16" and device.type == "cuda" and torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("no native bf16 on this GPU")
    torch.manual_seed(0)
    state = new_train_state(_Net().to(device), OptimConfig(lr=0.1, max_iter=10), device=device,
                            amp=amp)
    before = _weights(state)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at iteration 1: main=nan"):
        _step(state, _Loss(nan_at={1}), device, amp)
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(state)))


def test_fp16_scale_and_skips_reach_the_log_and_tensorboard(caplog):
    writer, logged = TrainWriter(None), {}
    writer.events = object()  # an open event file; _write records what it would append
    writer._write = lambda summaries, step: logged.update(
        {summary.value[0].tag: summary.value[0].simple_value for summary in summaries})
    state = SimpleNamespace(iteration=10, optimizer=SimpleNamespace(param_groups=[{"lr": 0.01}]),
                            scaler=SimpleNamespace(is_enabled=lambda: True), loss_scale=512.0,
                            skipped_steps=7, skipped_in_a_row=1)
    run = SimpleNamespace(state=state, writer=writer, logger=logging.getLogger("test_amp"),
                          config=SimpleNamespace(log_every=10, max_iter=20),
                          bar=SimpleNamespace(update=lambda n: None,
                                              set_postfix=lambda *a, **k: None))
    with caplog.at_level(logging.INFO, logger="test_amp"):
        trainer._report(run, {"main": float("nan"), "total": float("nan")}, speed=1.0)
    assert logged["train/fp16_skipped_steps"] == 7
    assert logged["train/fp16_loss_scale"] == 512.0
    assert "non-finite loss under --amp fp16" in caplog.text
    assert "fp16 scale 512, 7 steps skipped" in caplog.text


def test_amp_support_is_checked_at_start_up(monkeypatch):
    check_amp_support(torch.device("cpu"), "bf16")
    with pytest.raises(ValueError, match="--amp fp16 needs a GPU"):
        check_amp_support(torch.device("cpu"), "fp16")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    with pytest.raises(ValueError, match=r"Tesla V100 \(compute capability 7.0\) has no native"):
        check_amp_support(torch.device("cuda", 0), "bf16")
    check_amp_support(torch.device("cuda", 0), "fp16")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    check_amp_support(torch.device("cuda", 0), "bf16")
