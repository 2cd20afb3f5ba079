"""Pieces of the training loop that are not the loop itself: sampling with exact resume,
training-state checkpoints (DECISIONS.md D15, D16), finiteness checks, buffer syncing."""

import math
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from config import DEFAULT_NORM_SEMANTICS
from utils import dist as dist_utils
from utils.checkpoint import MODULE_PREFIX, unwrap_model
from utils.seed import rng_state, set_rng_state

CHECKPOINT_VERSION = 1


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (padded, permuted per epoch from ``seed``) that can start mid-epoch.

    The permutation of an epoch depends only on (seed, epoch), so a resumed run that calls
    ``set_epoch(epoch, skip=k)`` sees exactly the samples the interrupted run had not seen yet.
    Works without a process group (``num_replicas=1``).
    """

    def __init__(self, dataset, num_replicas=1, rank=0, seed=0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=False)
        self.skip = 0

    def set_epoch(self, epoch, skip=0):
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self):
        return self.num_samples - self.skip


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or Inf; training stops without overwriting checkpoints."""


def check_finite(values, iteration):
    """Raise :class:`NonFiniteLossError` naming each non-finite entry of ``values``."""
    bad = [f"{name}={value}" for name, value in values.items() if not math.isfinite(value)]
    if bad:
        raise NonFiniteLossError(
            f"non-finite loss at iteration {iteration}: {', '.join(bad)}. Training stopped; the "
            f"last good checkpoint was kept (lower --lr, or try --amp off / --detect_anomaly).")


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


def gather_rng_states(generator):
    """Every rank's RNG states (python, numpy, torch, the loss-sampling generator)."""
    state = rng_state()
    state["loss_sampler"] = generator.get_state()
    if not dist_utils.is_distributed():
        return [state]
    states = [None] * dist_utils.get_world_size()
    dist.all_gather_object(states, state)
    return states


def restore_rng_states(states, generator, rank, world_size):
    """Restore this rank's RNG states; returns False (and changes nothing) if the world differs."""
    if not states or len(states) != world_size:
        return False
    set_rng_state(states[rank])
    generator.set_state(states[rank]["loss_sampler"])
    return True


def training_checkpoint(model, optimizer, scheduler, scaler, *, iteration, epoch, epoch_iter,
                        mean_iu, best, rng_states, args):
    """The checkpoint dict: the official keys (METHOD.md §4.2) plus exact-resume state.

    Weights are stored with the ``module.`` prefix, as the official (DDP-wrapped) code does, so
    official tools can read our checkpoints too.
    """
    weights = {MODULE_PREFIX + k: v for k, v in unwrap_model(model).state_dict().items()}
    return {
        "state_dict": weights,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "mean_iu": float(mean_iu),
        "command": " ".join(sys.argv[1:]),
        "version": CHECKPOINT_VERSION,
        "iteration": iteration,
        "epoch_iter": epoch_iter,
        "scaler": scaler.state_dict(),
        "best": dict(best),
        "rng": rng_states,
        "args": {k: v for k, v in vars(args).items() if _plain(v)},
        # Which normalisation semantics trained these weights (network/norm_semantics.py).
        "norm_semantics": getattr(args, "norm_semantics", None) or DEFAULT_NORM_SEMANTICS,
    }


def _plain(value):
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


# Entries --resume needs; the others (scaler, rng, best, iteration, epoch_iter) are optional so
# that official checkpoints and ones written by older versions resume too.
TRAINING_STATE_KEYS = ("state_dict", "optimizer", "scheduler")


@dataclass
class ResumePosition:
    """Where a resumed run continues, and what had to be re-initialised."""

    iteration: int
    epoch: int
    epoch_iter: int
    best: dict
    notes: list  # one line per optional entry that was missing or unusable


def require_training_state(checkpoint, path):
    """Raise ValueError (pointing to ``--snapshot``) unless ``checkpoint`` can be resumed."""
    missing = [k for k in TRAINING_STATE_KEYS
               if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise ValueError(
            f"--resume {path} holds no training state (no {', '.join(map(repr, missing))} "
            f"entries): it is a weights-only file. To start a new run from these weights use "
            f"--snapshot {path}")


def restore_training_state(checkpoint, path, optimizer, scheduler, scaler, generator, rank,
                           world_size, iters_per_epoch):
    """Load optimizer, scheduler, scaler and RNG states of a training checkpoint.

    The model weights are loaded (and checked) by the caller. Raises ValueError when
    ``checkpoint`` has no training state (a weights-only file: use ``--snapshot``).
    Official checkpoints (no ``iteration``) continue at the start of the epoch after
    ``epoch``'s last batch: ``iteration = iters_per_epoch * epoch``.
    """
    require_training_state(checkpoint, path)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    notes = []
    if checkpoint.get("scaler") is not None:
        scaler.load_state_dict(checkpoint["scaler"])
    elif scaler.is_enabled():
        notes.append("no 'scaler' entry: the fp16 loss scale starts afresh")
    epoch = int(checkpoint.get("epoch", 0))
    if "iteration" in checkpoint:
        iteration, epoch_iter = int(checkpoint["iteration"]), int(checkpoint.get("epoch_iter", 0))
    else:
        iteration, epoch_iter = iters_per_epoch * epoch, 0
        notes.append(f"no 'iteration' entry (official checkpoint): continuing at iteration "
                     f"{iteration}, the start of epoch {epoch}")
    if "rng" not in checkpoint:
        notes.append("no 'rng' entry: random states stay as seeded, so the run will not "
                     "repeat an uninterrupted one exactly")
    elif not restore_rng_states(checkpoint["rng"], generator, rank, world_size):
        notes.append("world size changed since the checkpoint: RNG states re-seeded")
    return ResumePosition(iteration, epoch, epoch_iter, dict(checkpoint.get("best") or {}),
                          notes)
