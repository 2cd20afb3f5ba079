"""engine.checkpointing with plain values: what ``--snapshot`` / ``--restore_optimizer`` load."""

import logging

import pytest
import torch

import network
from engine.checkpointing import start_from_snapshot
from engine.config import OptimConfig
from engine.trainer import new_train_state

ARCH = "network.deepv3.DeepR18V3PlusD"


def _state():
    torch.manual_seed(0)
    model = network.get_net(ARCH, 19, [0] * 7, pretrained=False)
    return new_train_state(model, OptimConfig(lr=0.01, max_iter=10), device=torch.device("cpu"))


def _snapshot(state, path, **entries):
    torch.save({"state_dict": state.model.state_dict(), "epoch": 2, **entries}, path)
    return path


def _start(state, path, caplog):
    with caplog.at_level(logging.INFO, logger="test_checkpointing"):
        start_from_snapshot(state, path, arch=ARCH, wt_layer=[0] * 7, partial=False,
                            restore_optimizer=True, norm_semantics="modern", iters_per_epoch=4,
                            logger=logging.getLogger("test_checkpointing"))


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "test_checkpointing" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("entries,missing", [({}, "'optimizer' / 'scheduler'"),
                                             ({"optimizer": None}, "'scheduler'")])
def test_restore_optimizer_on_a_weights_only_file_warns_instead_of_skipping_silently(
        tmp_path, caplog, entries, missing):
    state = _state()
    if "optimizer" in entries:
        entries = {"optimizer": state.optimizer.state_dict()}
    _start(state, _snapshot(state, tmp_path / "weights.pth", **entries), caplog)
    warnings = _warnings(caplog)
    assert any("--restore_optimizer" in w and str(tmp_path / "weights.pth") in w
               and missing in w for w in warnings), warnings
    assert state.iteration == 0 and state.epoch == 0


def test_restore_optimizer_restores_the_schedule_and_position(tmp_path, caplog):
    source = _state()
    for _ in range(3):
        source.optimizer.step()
        source.scheduler.step()
    path = _snapshot(source, tmp_path / "full.pth", optimizer=source.optimizer.state_dict(),
                     scheduler=source.scheduler.state_dict(), iteration=3)
    state = _state()
    _start(state, path, caplog)
    assert not _warnings(caplog)
    assert (state.iteration, state.epoch) == (3, 2)
    assert state.scheduler.last_epoch == 3


def test_a_checkpoint_of_a_device_run_holds_cpu_tensors(device, tmp_path):
    from engine.checkpointing import save
    from engine.config import RunRecord
    from engine.trainer import train_step
    from tests import methods

    model, criterion = methods.build("baseline", device)
    state = new_train_state(model, OptimConfig(lr=0.01, max_iter=10), device=device)
    train_step(state, methods.batch(criterion, device, crop=32), criterion, device=device,
               two_view=False, with_embeddings=False)  # momentum buffers on the device
    save(state, tmp_path / "last.pth", RunRecord())
    loaded = torch.load(tmp_path / "last.pth", weights_only=True)  # no map_location
    tensors = [loaded["state_dict"][k] for k in loaded["state_dict"]] + [
        v for entry in loaded["optimizer"]["state"].values() for v in entry.values()
        if torch.is_tensor(v)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
