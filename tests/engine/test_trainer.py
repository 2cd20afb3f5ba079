"""engine.trainer driven directly with plain values (no command line): fit, its stops and its
exceptions."""

import logging

import pytest
import torch

import network
from engine.checkpointing import save
from engine.config import FitConfig, OptimConfig, RunRecord, StepConfig
from engine.data import build_train_data, build_val_sets
from engine.trainer import NonFiniteLossError, fit, new_train_state, poly_lambda
from loss import BlindNetCriterion
from utils.checkpoint import load_checkpoint

ARCH = "network.deepv3.DeepR18V3PlusD"
OPTIONS = {"crop_size": 64, "scale_min": 0.75, "scale_max": 1.25, "class_uniform_tile": 32}


def _setup(tmp_path, max_iter=3, stop_at=None):
    logger = logging.getLogger("test_trainer")
    torch.manual_seed(0)
    data = build_train_data(["gtav"], {}, {**OPTIONS, "cache_dir": tmp_path / "cache"},
                            cityscapes_split="train", batch_size=2, num_workers=0, seed=304,
                            rank=0, world_size=1, pin_memory=False, logger=logger)
    val_sets = build_val_sets(["cityscapes"], {}, {"eval_protocol": "robustnet",
                                                   "gtav_mismatch": "drop", "cache_dir": None},
                              batch_size=1, num_workers=0, max_images=1)
    model = network.get_net(ARCH, 19, [0] * 7, pretrained=False)
    state = new_train_state(model, OptimConfig(lr=0.01, max_iter=max_iter),
                            device=torch.device("cpu"))
    config = FitConfig(run_dir=tmp_path / "run", max_iter=max_iter, batch_size=2,
                       stop_at=stop_at, record=RunRecord(command="fit by a test"))
    config.run_dir.mkdir()
    step = StepConfig(two_view=data.two_view, with_embeddings=False)
    return state, data, val_sets, config, step, logger


def test_fit_with_plain_values_trains_validates_and_checkpoints(data_env, tmp_path):
    state, data, val_sets, config, step, logger = _setup(tmp_path, max_iter=3)
    seen = []
    finished = fit(state, data, BlindNetCriterion(), val_sets, config=config, step=step,
                   device=torch.device("cpu"), logger=logger,
                   before_step=lambda s: seen.append(s.iteration))
    assert finished and state.iteration == 3 and seen == [0, 1, 2]
    assert set(state.best) == {"cityscapes"}
    last = load_checkpoint(config.run_dir / "last.pth")
    assert last["iteration"] == 3 and last["command"] == "fit by a test"
    assert (config.run_dir / "best_cityscapes.pth").is_file()
    assert state.scheduler.get_last_lr()[0] == pytest.approx(0.01 * poly_lambda(3, 0.9)(3))


def test_fit_stops_at_stop_at_without_final_validation(data_env, tmp_path):
    state, data, val_sets, config, step, logger = _setup(tmp_path, max_iter=5, stop_at=2)
    finished = fit(state, data, BlindNetCriterion(), val_sets, config=config, step=step,
                   device=torch.device("cpu"), logger=logger)
    assert not finished and state.iteration == 2
    assert load_checkpoint(config.run_dir / "last.pth")["iteration"] == 2
    assert not (config.run_dir / "val_history.jsonl").exists()


class _NaNAtThirdCall(torch.nn.Module):
    """A criterion whose CE term is NaN from its third call on."""

    def __init__(self):
        super().__init__()
        self.inner, self.calls = BlindNetCriterion(), 0

    def forward(self, output, labels, generator=None):
        self.calls += 1
        terms = self.inner(output, labels, generator=generator)
        if self.calls >= 3:
            terms["main"] = terms["main"] * float("nan")
        return terms


def test_fit_raises_on_a_non_finite_loss_before_the_step(data_env, tmp_path):
    state, data, val_sets, config, step, logger = _setup(tmp_path, max_iter=6)
    save(state, config.run_dir / "last.pth", config.record)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at iteration 3: main=nan"):
        fit(state, data, _NaNAtThirdCall(), val_sets, config=config, step=step,
            device=torch.device("cpu"), logger=logger)
    assert state.iteration == 2  # the poisoned step was refused
    assert all(torch.isfinite(p).all() for p in state.model.parameters())


def test_a_signal_during_the_epoch_end_stops_after_its_validation_not_a_step_later(
        data_env, tmp_path):
    import os
    import signal

    from engine.trainer import Preempted

    state, data, val_sets, config, step, logger = _setup(tmp_path, max_iter=6)
    assert len(data.loader) == 2  # 5 images, batch 2: the epoch ends at iteration 2

    def sigterm_at_epoch_end(s):  # where the ISW statistics pass runs
        os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Preempted) as stopped:
        fit(state, data, BlindNetCriterion(), val_sets, config=config, step=step,
            device=torch.device("cpu"), logger=logger, epoch_end=sigterm_at_epoch_end)
    assert stopped.value.iteration == state.iteration == 2
    last = load_checkpoint(config.run_dir / "last.pth")
    assert (last["iteration"], last["epoch"], last["epoch_iter"]) == (2, 1, 0)
    history = (config.run_dir / "val_history.jsonl").read_text().splitlines()
    assert len(history) == 1  # the epoch's validation ran, then the run stopped
