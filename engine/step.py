"""One training iteration: forward, criterion, backward, the step's one read of the
device, finiteness check, optimizer and LR steps (``engine.trainer`` re-exports
:func:`train_step`, :func:`run_step` and :class:`NonFiniteLossError`; ``fit`` calls
:func:`run_step`).

The host reads the device once per step (:func:`read_step`): the loss terms, under fp16
GradScaler's outcome, and the stop flags travel in one all-reduce and one small copy
(DECISIONS.md D68, docs/DATA_PIPELINE.md).
"""

import math
import warnings

import torch

from engine.inputs import training_inputs
from utils import dist as dist_utils
from utils.precision import autocast


# GradScaler halves its scale at every skipped fp16 step: from 2**16, 150 halvings in a row go
# below float32's smallest normal number, so a streak this long never recovers.
MAX_SKIPPED_IN_A_ROW = 200


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or Inf (fp16: too many skipped steps in a row); training stops
    without overwriting checkpoints."""


def forward_backward(net, criterion, scaler, batch, *, device, two_view, with_embeddings,
                     amp="off", channels_last=False, generator=None):
    """Forward both views (or one), the criterion, backward. Returns the loss terms, total last.

    The optimizer step is left to the caller so that it can refuse a non-finite loss first.
    ``batch``: a loader batch of uint8 items (:func:`engine.inputs.training_inputs`).
    """
    images, images_aug, labels = training_inputs(batch, device, two_view=two_view,
                                                 channels_last=channels_last)
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
    values, _ = run_step(state, batch, criterion, device=device, two_view=two_view,
                         with_embeddings=with_embeddings, amp=amp, channels_last=channels_last)
    return values


def run_step(state, batch, criterion, *, device, two_view, with_embeddings, amp="off",
             channels_last=False, stop=None):
    """:func:`train_step` that also reads ``stop`` (a :class:`~utils.preemption.StopSignal`
    or None) in the same transfer; returns ``(values, signal number or 0)``.

    The host reads the device once per step (:func:`read_step`): the loss terms (mean over
    ranks), under fp16 GradScaler's outcome, and the stop flags (summed over ranks) go
    through one all-reduce and one small copy, which is also where the host waits for the
    step's kernels. Finiteness is checked on those numbers before the optimizer step, so a
    NaN never reaches the weights (nor, after it, a checkpoint).
    """
    terms = forward_backward(state.net, criterion, state.scaler, batch, device=device,
                             two_view=two_view, with_embeddings=with_embeddings, amp=amp,
                             channels_last=channels_last, generator=state.loss_generator)
    if state.scaler.is_enabled():
        values, signum = scaled_step(state, terms, stop)
    else:
        values, _, signum = read_step(terms, stop)
        check_finite(values, state.iteration + 1)
        state.optimizer.step()
    with warnings.catch_warnings():
        # A step GradScaler skipped still moves the poly schedule on (it counts iterations);
        # PyTorch's "lr_scheduler.step() before optimizer.step()" warning says nothing here.
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                category=UserWarning)
        state.scheduler.step()
    state.iteration, state.epoch_iter = state.iteration + 1, state.epoch_iter + 1
    return values, signum


def read_step(terms, stop, extra=()):
    """The step's one device-to-host read: ``(values, extra numbers, signal number or 0)``.

    ``terms`` (name -> scalar tensor) and ``extra`` (scalar tensors, e.g. GradScaler's
    outcome) are averaged over ranks (for logging, and so that every rank stops on a NaN
    together), ``stop``'s flags (None: none) summed, all in one all-reduce.
    """
    count = len(terms) + len(extra)
    packed = torch.stack([*terms.values(), *extra]).detach().float()
    if stop is not None:
        packed = torch.cat([packed, stop.flags(packed.device)])
    packed = dist_utils.all_reduce_sum(packed)
    packed[:count] /= dist_utils.get_world_size()
    numbers = packed.tolist()
    signum = stop.decode(numbers[count:]) if stop is not None else 0
    return dict(zip(terms, numbers[:len(terms)])), numbers[len(terms):count], signum


def scaled_step(state, terms, stop=None):
    """fp16: GradScaler's Inf check and scale update, the step's one read of the loss terms
    with its outcome (and ``stop``'s flags), then the optimizer step unless it is skipped;
    returns ``(values, signal number or 0)``.

    GradScaler skips the optimizer step when the scaled gradients hold an Inf/NaN and halves
    its scale. A non-finite *loss* under fp16 gives non-finite gradients, so it is skipped the
    same way: counted (``state.skipped_steps``), the weights untouched, the run goes on. More
    than :data:`MAX_SKIPPED_IN_A_ROW` skips in a row raise :class:`NonFiniteLossError`; a
    non-finite loss whose step was *not* skipped raises it too. The "skipped" fact is a device
    tensor (the scale went down) read in the same transfer as the terms: GradScaler's
    ``unscale_`` and ``update`` run on the device, and the optimizer step is taken here rather
    than by ``GradScaler.step``, whose own Inf check would be a second read.
    """
    scaler, optimizer = state.scaler, state.optimizer
    scaler.unscale_(optimizer)  # the Inf/NaN check of the gradients, kept on the device
    scale = scaler._scale  # a device tensor; get_scale() would read it to the host
    before = scale.clone()
    scaler.update()  # backs the scale off exactly when the gradients were not finite
    skipped = (scale < before).reshape(())
    values, (was_skipped, state.loss_scale), signum = read_step(
        terms, stop, (skipped.to(scale.dtype), scale.reshape(())))
    iteration = state.iteration + 1
    if not was_skipped:
        check_finite(values, iteration)  # before the step: a NaN loss never reaches the weights
        # GradScaler.step would read its Inf flag to the host on its own: the step's one read
        # above carried it, and the unscaled gradients are stepped here.
        optimizer.step()
        state.skipped_in_a_row = 0
        return values, signum
    state.skipped_steps += 1
    state.skipped_in_a_row += 1
    if state.skipped_in_a_row > MAX_SKIPPED_IN_A_ROW:
        raise NonFiniteLossError(
            f"--amp fp16: GradScaler skipped {state.skipped_in_a_row} steps in a row up to "
            f"iteration {iteration} (gradients or the loss non-finite each time; loss scale "
            f"now {state.loss_scale:.3g}). Training stopped; the last good checkpoint was kept "
            f"(try --amp bf16 or --amp off, or a lower --lr).")
    return values, signum
