"""The training loop as a small engine: a state object, one step, validation, ``fit``.

``fit`` runs epochs of ``train_step`` (forward both views or one, the BlindNet criterion,
backward, a finiteness check on the rank-mean loss, SGD / AdamW step, poly LR step; under
``--amp fp16`` GradScaler's skipped steps are counted instead, docs/GPU.md), validates after
every epoch (or every ``val_every`` iterations), saves ``last.pth`` / ``best_<dataset>.pth``,
and stops cleanly on SIGTERM/SIGINT (:class:`Preempted`) or at ``stop_at``. Errors are
exceptions; ``train.py`` turns them into exit codes.
"""

import math
import time
import warnings
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from engine import checkpointing
from engine.evaluation import evaluate
from utils import dist as dist_utils
from utils.checkpoint import unwrap_model
from utils.labels import CLASS_NAMES, NUM_CLASSES
from utils.precision import autocast, grad_scaler
from utils.preemption import StopSignal, signal_name
from utils.progress import progress
from utils.tensorboard import TrainWriter
from utils.workers import stop_workers


# GradScaler halves its scale at every skipped fp16 step: from 2**16, 150 halvings in a row go
# below float32's smallest normal number, so a streak this long never recovers.
MAX_SKIPPED_IN_A_ROW = 200


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or Inf (fp16: too many skipped steps in a row); training stops
    without overwriting checkpoints."""


class Preempted(Exception):
    """SIGTERM/SIGINT: ``last.pth`` holds ``iteration``; the entry point exits 75."""

    def __init__(self, signum, iteration):
        super().__init__(f"stopped by {signal_name(signum)} after iteration {iteration}")
        self.signum, self.iteration = signum, iteration


@dataclass
class TrainState:
    """Everything a training run changes, and so everything a checkpoint restores."""

    model: torch.nn.Module           # the bare model (checkpoints, evaluation)
    optimizer: torch.optim.Optimizer
    scheduler: object                # LambdaLR, stepped every iteration
    scaler: torch.amp.GradScaler     # active only for --amp fp16
    loss_generator: torch.Generator  # the criterion's anchor / negative sampling
    net: torch.nn.Module = None      # what the step calls: model, or its DDP / compiled wrapper
    iteration: int = 0
    epoch: int = 0
    epoch_iter: int = 0              # batches of ``epoch`` already done
    best: dict = field(default_factory=dict)  # dataset -> best mIoU
    # State the loss terms keep, by checkpoint key (loss.state_keys(); RobustNet ISW's
    # "isw_mask" once engine/isw.py computed it); checkpoints save and restore it.
    loss_state: dict = field(default_factory=dict)
    skipped_steps: int = 0           # --amp fp16: steps GradScaler skipped, in all
    skipped_in_a_row: int = 0        # ... and since the last step it took
    loss_scale: float | None = None  # --amp fp16: GradScaler's scale after the last step

    def __post_init__(self):
        self.net = self.model if self.net is None else self.net


def poly_lambda(max_iter, power):
    """LR factor ``(1 - it / max_iter) ** power`` stepped every iteration (METHOD.md §4).

    ``LambdaLR`` multiplies each group's initial lr by it, so groups with an lr multiplier
    (AdamW over ``param_groups``) keep their ratio throughout (Rein's PolyLR, no warm-up).
    """
    return lambda it: max(0.0, 1.0 - it / max_iter) ** power


def build_optimizer(model, lr, momentum, weight_decay, optimizer="sgd"):
    """The optimizer over the parameters that require grad.

    ``sgd`` (METHOD.md §4): one group. With ``--norm_semantics torch1.2`` the BatchNorm (and
    affine IN) weights and biases do not require grad, so they are never updated nor
    weight-decayed (TORCH12 fact C2); in ``modern`` mode every parameter requires grad and
    this is ``SGD(model.parameters())``. ``adamw`` (Rein, docs/VFM_METHODS.md §3.5): the
    model's ``param_groups(lr, weight_decay)`` (per-group lr / decay multipliers; frozen
    parameters left out) when it has them, else one group.
    """
    if optimizer == "adamw":
        if hasattr(model, "param_groups"):
            groups = model.param_groups(lr, weight_decay)
        else:
            groups = [{"params": [p for p in model.parameters() if p.requires_grad],
                       "lr_mult": 1.0, "decay_mult": 1.0}]
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.999),
                                 eps=1e-8)
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def new_train_state(model, optim, *, device, amp="off", seed=304, rank=0):
    """A fresh :class:`TrainState` for ``model`` (already on ``device``); ``optim``: an
    :class:`engine.config.OptimConfig`."""
    optimizer = build_optimizer(model, optim.lr, optim.momentum, optim.weight_decay,
                                optim.optimizer)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  poly_lambda(optim.max_iter, optim.poly_exp))
    return TrainState(model, optimizer, scheduler, grad_scaler(device, amp),
                      torch.Generator(device="cpu").manual_seed(seed + rank))


def forward_backward(net, criterion, scaler, batch, *, device, two_view, with_embeddings,
                     amp="off", channels_last=False, generator=None):
    """Forward both views (or one), the criterion, backward. Returns the loss terms, total last.

    The optimizer step is left to the caller so that it can refuse a non-finite loss first.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=fmt)
    labels = batch["label"].to(device, non_blocking=True)
    images_aug = None
    if two_view:
        images_aug = batch["image_aug"].to(device, non_blocking=True).contiguous(
            memory_format=fmt)
    net.zero_grad(set_to_none=True)
    with autocast(device, amp):
        output = net(images, images_aug, with_embeddings=with_embeddings)
        terms = criterion(output, labels, generator=generator)
    scaler.scale(terms["total"]).backward()
    total = terms.pop("total")
    return {**terms, "total": total}


def check_finite(values, iteration):
    """Raise :class:`NonFiniteLossError` naming each non-finite entry of ``values``."""
    bad = [f"{name}={value}" for name, value in values.items() if not math.isfinite(value)]
    if bad:
        raise NonFiniteLossError(
            f"non-finite loss at iteration {iteration}: {', '.join(bad)}. Training stopped; the "
            f"last good checkpoint was kept (lower --lr, or try --amp off / --detect_anomaly).")


def train_step(state, batch, criterion, *, device, two_view, with_embeddings, amp="off",
               channels_last=False):
    """One iteration: forward/backward, rank-mean loss terms, finiteness check, optimizer
    and LR steps. Returns the terms as floats (``total`` last).

    fp32 / bf16: raises :class:`NonFiniteLossError` before the step, so the weights stay those
    of the last good iteration. fp16 (GradScaler on): see :func:`scaled_step`.
    """
    terms = forward_backward(state.net, criterion, state.scaler, batch, device=device,
                             two_view=two_view, with_embeddings=with_embeddings, amp=amp,
                             channels_last=channels_last, generator=state.loss_generator)
    if state.scaler.is_enabled():
        values = scaled_step(state, terms)
    else:
        # Mean over ranks, for logging and so that every rank stops on a NaN together.
        reduced = dist_utils.all_reduce_mean(torch.stack(list(terms.values())).detach())
        values = dict(zip(terms, reduced.tolist()))
        check_finite(values, state.iteration + 1)
        state.optimizer.step()
    with warnings.catch_warnings():
        # A step GradScaler skipped still moves the poly schedule on (it counts iterations);
        # PyTorch's "lr_scheduler.step() before optimizer.step()" warning says nothing here.
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                category=UserWarning)
        state.scheduler.step()
    state.iteration, state.epoch_iter = state.iteration + 1, state.epoch_iter + 1
    return values


def scaled_step(state, terms):
    """fp16: GradScaler's step, then one host read of the loss terms with its outcome.

    GradScaler skips the optimizer step when the scaled gradients hold an Inf/NaN and halves
    its scale. A non-finite *loss* under fp16 gives non-finite gradients, so it is skipped the
    same way: counted (``state.skipped_steps``), the weights untouched, the run goes on. More
    than :data:`MAX_SKIPPED_IN_A_ROW` skips in a row raise :class:`NonFiniteLossError`; a
    non-finite loss whose step was *not* skipped raises it too. The "skipped" fact is a device
    tensor (the scale went down) read in the same transfer as the terms: no extra sync.
    """
    scale = state.scaler._scale  # a device tensor; get_scale() would read it to the host
    before = scale.clone()
    state.scaler.step(state.optimizer)
    state.scaler.update()  # backs the scale off exactly when the step was skipped
    skipped = (scale < before).reshape(())
    stacked = torch.stack([*terms.values(), skipped.to(scale.dtype), scale.reshape(())])
    *reduced, was_skipped, state.loss_scale = dist_utils.all_reduce_mean(
        stacked.detach().float()).tolist()
    values = dict(zip(terms, reduced))
    iteration = state.iteration + 1
    if not was_skipped:
        check_finite(values, iteration)
        state.skipped_in_a_row = 0
        return values
    state.skipped_steps += 1
    state.skipped_in_a_row += 1
    if state.skipped_in_a_row > MAX_SKIPPED_IN_A_ROW:
        raise NonFiniteLossError(
            f"--amp fp16: GradScaler skipped {state.skipped_in_a_row} steps in a row up to "
            f"iteration {iteration} (gradients or the loss non-finite each time; loss scale "
            f"now {state.loss_scale:.3g}). Training stopped; the last good checkpoint was kept "
            f"(try --amp bf16 or --amp off, or a lower --lr).")
    return values


def sync_buffers(model):
    """Copy rank 0's BatchNorm running statistics to every rank.

    DDP broadcasts buffers at the start of each forward, but every rank then updates its own
    running statistics, so after the last step they differ slightly; evaluation and the saved
    checkpoint must see the same model everywhere.
    """
    if dist_utils.is_distributed():
        for buffer in unwrap_model(model).buffers():
            dist.broadcast(buffer, src=0)


def check_replicas_identical(model, logger):
    """Verify that every rank holds the same weights (DDP keeps them in sync; a mismatch means
    a bug or non-determinism worth knowing about). Logs the outcome; raises on mismatch."""
    if not dist_utils.is_distributed():
        return True
    params = torch.cat([p.detach().double().reshape(-1) for p in unwrap_model(model).parameters()])
    fingerprint = torch.stack([params.sum(), (params * params).sum(), params.abs().max()])
    fingerprints = [torch.zeros_like(fingerprint) for _ in range(dist_utils.get_world_size())]
    dist.all_gather(fingerprints, fingerprint)
    if not all(torch.equal(f, fingerprints[0]) for f in fingerprints):
        raise RuntimeError(f"model replicas diverged across ranks: {fingerprints}")
    logger.info(f"weights identical on all {len(fingerprints)} ranks")
    return True


def validate(state, val_sets, *, config, device, amp, writer, logger, final=False):
    """Evaluate on every validation set, save ``best_<name>.pth`` on a new best and
    ``last.pth``, append to ``val_history.jsonl``. Returns name -> mIoU. All ranks call it."""
    sync_buffers(state.model)
    run_dir, record, mious = config.run_dir, config.record, {}
    for name, val in val_sets.items():
        res = evaluate(state.model, val.loader, device, NUM_CLASSES, amp=amp, desc=f"val {name}",
                       on_batch=writer.image_logger(name, state.iteration, val.mean, val.std),
                       **val.inference)
        mious[name] = res["miou"]
        logger.info(f"iter {state.iteration} {name}: mIoU {100 * res['miou']:.2f} "
                    f"pixel acc {100 * res['pixel_acc']:.2f} ({res['images']} images)")
        writer.log_validation(name, res, CLASS_NAMES, state.iteration)
        if res["miou"] > state.best.get(name, -1.0):
            state.best[name] = res["miou"]
            checkpointing.save(state, run_dir / f"best_{name}.pth", record, res["miou"])
    checkpointing.save(state, run_dir / "last.pth", record)
    if dist_utils.is_main_process():
        checkpointing.append_history(run_dir / "val_history.jsonl", state.iteration,
                                     state.epoch, final, mious, record.norm_semantics)
    dist_utils.barrier()
    return mious


@dataclass
class _Run:
    """What one ``fit`` call iterates with (bundled so the helpers below stay short)."""

    state: TrainState
    data: object          # engine.data.TrainData
    criterion: object
    val_sets: dict
    config: object        # engine.config.FitConfig
    step: object          # engine.config.StepConfig
    device: torch.device
    writer: TrainWriter
    logger: object
    bar: object           # utils.progress bar
    stop: StopSignal
    before_step: object
    epoch_end: object
    batches: object = None  # the training loader's current iterator (its workers)

    def validate(self, final=False):
        return validate(self.state, self.val_sets, config=self.config, device=self.device,
                        amp=self.step.amp, writer=self.writer, logger=self.logger, final=final)

    def save_last(self, reason):
        path = self.config.run_dir / "last.pth"
        checkpointing.save(self.state, path, self.config.record)
        self.logger.info(f"{reason}: saved {path} at iteration {self.state.iteration}; "
                         f"continue with --resume auto")


def fit(state, data, criterion, val_sets, *, config, step, device, logger, writer=None,
        before_step=None, epoch_end=None):
    """Train ``state`` until ``config.max_iter`` (then validate a last time) or ``stop_at``.

    Args:
        data: an :class:`engine.data.TrainData`; val_sets: name -> :class:`engine.data.ValSet`.
        config: :class:`engine.config.FitConfig`; step: :class:`engine.config.StepConfig`.
        writer: a :class:`utils.tensorboard.TrainWriter` (None: no TensorBoard events).
        before_step: optional ``callable(state)`` run before every step (progress, tests).
        epoch_end: optional ``callable(state)`` run when an epoch's last batch is done, before
            the epoch counter moves on and the epoch's validation and checkpoint (the ISW
            mask, :class:`engine.isw.ISWMaskSchedule`).

    Returns True when training ran to ``max_iter``, False when it stopped at ``stop_at``.
    Raises :class:`NonFiniteLossError`, :class:`Preempted`, ``utils.checkpoint.
    CheckpointError`` (a failed save) and ``RuntimeError`` (e.g. a collective timed out).
    """
    writer = writer or TrainWriter(None, enabled=False)
    state.net.train()
    bar = progress(total=config.max_iter, initial=state.iteration, desc="train",
                   disable=not dist_utils.is_main_process())
    run = _Run(state, data, criterion, val_sets, config, step, device, writer, logger, bar,
               StopSignal().install(), before_step, epoch_end)
    try:
        while state.iteration < config.max_iter:
            if not _epoch(run):
                return False
        run.validate(final=True)
        check_replicas_identical(state.model, logger)
    except BaseException:
        stop_workers(run.batches)  # they ignore SIGTERM: a failure must stop them here
        raise
    finally:
        run.stop.restore()
        bar.close()
    return True


def _epoch(run):
    """Run (the rest of) one epoch; False when the run stops at ``stop_at``."""
    state, config = run.state, run.config
    run.data.dataset.set_epoch(state.epoch)
    run.data.sampler.set_epoch(state.epoch, skip=state.epoch_iter * config.batch_size)
    tic = time.perf_counter()
    run.batches = iter(run.data.loader)
    for batch in run.batches:
        if run.before_step is not None:
            run.before_step(state)
        values = train_step(state, batch, run.criterion, device=run.device,
                            two_view=run.step.two_view, with_embeddings=run.step.with_embeddings,
                            amp=run.step.amp, channels_last=run.step.channels_last)
        toc = time.perf_counter()
        speed, tic = config.batch_size * dist_utils.get_world_size() / (toc - tic), toc
        _report(run, values, speed)
        if state.iteration % config.save_every == 0:
            checkpointing.save(state, config.run_dir / "last.pth", config.record)
        if state.iteration >= config.max_iter:
            return True
        _stop_if_signalled(run, saved=False)
        if state.iteration == config.stop_at:
            run.save_last(f"--stop_at {config.stop_at}")
            return False
        if config.val_every and state.iteration % config.val_every == 0:
            run.validate()
            _stop_if_signalled(run, saved=True)
    # The epoch ran to its end: next epoch, then validate (METHOD.md §4.1).
    if run.epoch_end is not None:
        run.epoch_end(state)
    state.epoch, state.epoch_iter = state.epoch + 1, 0
    if not config.val_every:
        run.validate()
    # A signal during the ISW pass or a long validation stops here, not after one more step.
    _stop_if_signalled(run, saved=not config.val_every)
    return True


def _stop_if_signalled(run, saved):
    """Raise :class:`Preempted` when any rank got a stop signal (every rank calls this at the
    same points and agrees); ``saved``: ``last.pth`` already holds this iteration."""
    signum = run.stop.should_stop(run.device)
    if not signum:
        return
    reason = f"stopped by {signal_name(signum)}"
    if saved:
        run.logger.info(f"{reason}: {run.config.run_dir / 'last.pth'} holds iteration "
                        f"{run.state.iteration}; continue with --resume auto")
    else:
        run.save_last(reason)
    raise Preempted(signum, run.state.iteration)


def _report(run, values, speed):
    """Progress bar, TensorBoard scalars and (every ``log_every``) a log line."""
    state = run.state
    iteration, lr = state.iteration, state.optimizer.param_groups[0]["lr"]
    run.bar.update(1)
    run.bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}
                        | {"lr": f"{lr:.1e}", "img/s": f"{speed:.1f}"}, refresh=False)
    fp16 = _fp16_report(run, values) if state.scaler.is_enabled() else {}
    run.writer.log_train(values, lr, speed, iteration, extra=fp16)
    if iteration % run.config.log_every == 0:
        run.logger.info(f"iter {iteration}/{run.config.max_iter} " + " ".join(
            f"{k} {v:.4f}" for k, v in values.items()) + f" lr {lr:.2e} {speed:.1f} img/s"
            + (f" fp16 scale {state.loss_scale:.3g}, {state.skipped_steps} steps skipped"
               if fp16 else ""))


def _fp16_report(run, values):
    """GradScaler's scale and skipped-step count (TensorBoard scalars); a warning when the
    step was skipped for a non-finite loss rather than overflowing gradients."""
    state = run.state
    if state.skipped_in_a_row and not all(math.isfinite(v) for v in values.values()):
        bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
        run.logger.warning(f"iteration {state.iteration}: non-finite loss under --amp fp16 "
                           f"({bad}); GradScaler skipped the step ({state.skipped_in_a_row} in "
                           f"a row, {state.skipped_steps} in all; the run stops after "
                           f"{MAX_SKIPPED_IN_A_ROW} in a row)")
    return {"fp16_loss_scale": state.loss_scale, "fp16_skipped_steps": state.skipped_steps}
