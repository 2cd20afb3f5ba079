"""The training step's host-device sync budget: at most one read per steady-state step.

Counted on the CPU with ``utils.host_sync.HostSyncCounter`` (value reads, ops with
data-dependent output shapes, tensors made from host data): what would make the host wait
for a GPU. The budget is the step's one read of its loss terms and stop flags.
"""

import signal

import pytest
import torch

import network
from engine.config import OptimConfig
from engine.trainer import new_train_state, run_step, train_step
from loss import BlindNetCriterion
from transforms.photometric_params import ItemParams
from utils.host_sync import HostSyncCounter
from utils.preemption import StopSignal

SYNC_BUDGET = 1


@pytest.fixture(scope="module")
def blindnet():
    """A tiny R18 BlindNet (every loss term on) after two warm-up steps, and its batch maker."""
    torch.manual_seed(0)
    model = network.get_net("network.deepv3.DeepR18V3PlusD", 19, [0, 0, 1, 1, 1, 0, 0],
                            pretrained=False)
    criterion = BlindNetCriterion(use_ca=True, use_cwcl=True, use_sdcl=True, w1=0.2, w2=0.2,
                                  w3=0.3, w4=0.3, contrast_max_views=6, num_patch=3)
    state = new_train_state(model, OptimConfig(lr=0.01, max_iter=100), device=torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)

    def batch(photometric):
        labels = torch.randint(0, 4, (2, 8, 8), generator=generator)
        labels = labels.repeat_interleave(8, 1).repeat_interleave(8, 2).to(torch.uint8)
        images = torch.randint(0, 256, (2, 3, 64, 64), generator=generator, dtype=torch.uint8)
        if photometric == "device":
            params = torch.stack([ItemParams(0.5, True, two_view=True)() for _ in range(2)])
            return {"image": images, "photometric": params, "label": labels}
        return {"image": images, "image_aug": images.flip(-1), "label": labels}

    for _ in range(2):
        step(state, criterion, batch("loader"))
    return state, criterion, batch


def step(state, criterion, batch, **kwargs):
    return run_step(state, batch, criterion, device="cpu", two_view=True, with_embeddings=True,
                    **kwargs)


@pytest.mark.parametrize("photometric", ["loader", "device"])
def test_a_blindnet_step_reads_the_device_once(blindnet, photometric):
    state, criterion, batch = blindnet
    data = batch(photometric)
    with HostSyncCounter() as counter:
        values = train_step(state, data, criterion, device="cpu", two_view=True,
                            with_embeddings=True)
    assert set(values) == {"main", "aux", "cml", "ccl", "cwcl", "sdcl", "total"}
    assert counter.total <= SYNC_BUDGET, counter.counts
    assert counter.counts == {"tolist": 1}  # the terms' one read
    assert counter.host_to_device == 0  # nothing copied from host memory each step


def test_fp16_skip_flag_and_scale_travel_in_the_same_read(blindnet, monkeypatch):
    """GradScaler's Inf check, scale update and skip decision add no read of their own (a CPU
    GradScaler in fp32 runs the same logic as fp16's)."""
    state, criterion, batch = blindnet
    monkeypatch.setattr(state, "scaler", torch.amp.GradScaler("cpu", init_scale=2.0 ** 8))
    weights = [p.detach().clone() for p in state.model.parameters()]
    poison = state.model.final1[0].weight.register_hook(lambda g: g * float("inf"))
    data = batch("device")  # the photometric parameters come from the workers
    with HostSyncCounter() as counter:
        values, signum = step(state, criterion, data, stop=StopSignal())
    poison.remove()
    assert counter.counts == {"tolist": 1} and counter.host_to_device == 0, counter.counts
    assert (state.skipped_steps, state.loss_scale, signum) == (1, 2.0 ** 7, 0)
    assert set(values) == {"main", "aux", "cml", "ccl", "cwcl", "sdcl", "total"}
    assert all(torch.equal(a, b) for a, b in zip(weights, state.model.parameters()))
    data = batch("loader")
    with HostSyncCounter() as counter:
        step(state, criterion, data)
    assert counter.counts == {"tolist": 1} and state.skipped_in_a_row == 0
    assert not all(torch.equal(a, b) for a, b in zip(weights, state.model.parameters()))


def test_the_stop_flag_travels_in_the_same_read(blindnet):
    state, criterion, batch = blindnet
    stop = StopSignal()
    with HostSyncCounter() as counter:
        _, signum = step(state, criterion, batch("loader"), stop=stop)
    assert signum == 0 and counter.total <= SYNC_BUDGET and counter.host_to_device == 0
    stop.received = signal.SIGTERM
    values, signum = step(state, criterion, batch("loader"), stop=stop)
    assert signum == signal.SIGTERM and "total" in values


def test_the_counter_sees_each_kind_of_sync():
    x = torch.arange(6.0)
    with HostSyncCounter() as counter:
        (x > 2).nonzero()
        x[x > 2]
        torch.masked_select(x, x > 2)
        torch.unique(x)
        x.sum().item()
        x.tolist()
        bool(x.any())
        torch.tensor([1.0, 2.0])
    assert counter.counts == {"nonzero": 1, "boolean indexing": 1, "masked_select": 1,
                              "unique": 1, "item": 1, "tolist": 1, "__bool__": 1}
    assert counter.host_to_device == 1
