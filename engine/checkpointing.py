"""Training checkpoints: save, resume exactly, start from a ``--snapshot`` (DECISIONS.md D15,
D16).

A checkpoint holds the official keys (METHOD.md §4.2: ``state_dict`` with ``module.``
prefixes, ``optimizer``, ``scheduler``, ``epoch``, ``mean_iu``, ``command``) plus what an exact
resume needs (iteration, position in the epoch, scaler, every rank's RNG states, best mIoUs),
and the state the loss terms keep (``TrainState.loss_state``, under the keys the terms declare:
``loss.state_keys()``, e.g. ``isw_mask``). File I/O (atomic writes, safe reads, forgiving
loads) is :mod:`utils.checkpoint`'s job.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch.distributed as dist

from engine.evaluation import nan_to_none
from engine.external_weights import CHECKPOINT_KEY as EXTERNAL_KEY
from engine.external_weights import cover_external, split_external
from engine.model_spec import describe_likely
from loss import state_keys as loss_state_keys
from utils import dist as dist_utils
from utils.checkpoint import (MODULE_PREFIX, atomic_save, checkpoint_norm_semantics,
                              extract_state_dict, load_checkpoint, load_state_dict_forgiving,
                              looks_like_imagenet_weights, snapshot_mismatch, unwrap_model)
from utils.labels import NUM_CLASSES
from utils.logging import FILE_ONLY
from utils.output import writing
from utils.seed import rng_state, set_rng_state

CHECKPOINT_VERSION = 1
# Entries --resume needs; the others (scaler, rng, best, iteration, epoch_iter) are optional so
# that official checkpoints and ones written by older versions resume too.
TRAINING_STATE_KEYS = ("state_dict", "optimizer", "scheduler")


def training_checkpoint(state, *, mean_iu, rng_states, record):
    """The checkpoint dict of a :class:`engine.trainer.TrainState`; ``record``: an
    :class:`engine.config.RunRecord`.

    Weights are stored with the ``module.`` prefix, as the official (DDP-wrapped) code does, so
    official tools can read our checkpoints too. A frozen trunk loaded from a file is left
    out and recorded instead (:mod:`engine.external_weights`).
    """
    model = unwrap_model(state.model)
    weights, external = split_external(model, model.state_dict())
    weights = {MODULE_PREFIX + k: v for k, v in weights.items()}
    return {
        "state_dict": weights,
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "epoch": state.epoch,
        "mean_iu": float(mean_iu),
        "command": record.command,
        "config_files": list(record.config_files),  # the recipe files the command named
        "version": CHECKPOINT_VERSION,
        "iteration": state.iteration,
        "epoch_iter": state.epoch_iter,
        "scaler": state.scaler.state_dict(),
        "best": dict(state.best),
        "amp_skipped_steps": state.skipped_steps,  # --amp fp16 (GradScaler), in all
        "rng": rng_states,
        "args": dict(record.flags),
        # Which normalisation semantics trained these weights (network/norm_semantics.py).
        "norm_semantics": record.norm_semantics,
        # The settings that shape the model: valid.py / infer.py / --snapshot build it from
        # them (engine/model_spec.py).
        "model": dict(record.model),
        # State of the loss terms, e.g. RobustNet ISW's "isw_mask": one (C, C) bool mask per
        # collected layer (DECISIONS.md D33).
        **{key: value for key, value in state.loss_state.items() if value is not None},
        **({} if external is None else {EXTERNAL_KEY: external}),
    }


def saved_loss_state(checkpoint):
    """The loss terms' state a checkpoint holds (key -> value; keys ``loss.state_keys()``)."""
    return {key: checkpoint[key] for key in loss_state_keys() if key in checkpoint}


def save(state, path, record, mean_iu=0.0):
    """Every rank calls this (RNG states are gathered); rank 0 writes ``path`` atomically."""
    rng_states = gather_rng_states(state.loss_generator)
    if dist_utils.is_main_process():
        atomic_save(training_checkpoint(state, mean_iu=mean_iu, rng_states=rng_states,
                                        record=record), path)


def append_history(path, iteration, epoch, final, mious, norm_semantics):
    """One line of ``val_history.jsonl``, mIoU in percent as in the logs (``unit`` says so);
    NaN (no valid pixel) is not JSON: written as null. A failed write raises
    ``utils.output.OutputError`` naming the file."""
    entry = {"iteration": iteration, "epoch": epoch, "final": final,
             "miou": {name: 100 * value for name, value in mious.items()}, "unit": "percent",
             "norm_semantics": norm_semantics}
    with writing(path, "--ckpt"), Path(path).open("a") as history:
        history.write(json.dumps(nan_to_none(entry), allow_nan=False) + "\n")


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


def resolve_resume(resume, run_dir, logger):
    """The checkpoint ``--resume`` names (``auto``: ``<run_dir>/last.pth`` if it exists)."""
    if resume is None:
        return None
    if resume == "auto":
        path = Path(run_dir) / "last.pth"
        if not path.is_file():
            logger.info(f"--resume auto: no {path} yet, starting a new run")
            return None
        return path
    return Path(resume)


def check_resume_norm_semantics(ckpt, mode, path):
    """Refuse to continue a run's optimizer state under the other --norm_semantics: the
    optimizer holds a different set of parameters in each mode."""
    trained = checkpoint_norm_semantics(ckpt)
    if trained is not None and trained != mode:
        raise ValueError(f"{path} was trained with --norm_semantics {trained}, this run uses "
                         f"--norm_semantics {mode}: its optimizer state cannot be continued; "
                         f"pass --norm_semantics {trained} (or use --snapshot without "
                         f"--restore_optimizer to start a new run from its weights)")


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


def official_optimizer_state_for(saved, model):
    """``saved`` (an SGD state dict) cut down to the parameters :func:`engine.trainer.
    build_optimizer` gives the optimizer of ``model``.

    The official ``get_optimizer`` puts every ``named_parameters()`` tensor in one group;
    under ``--norm_semantics torch1.2`` ours holds only those that require grad. The frozen
    BatchNorm affines never had a gradient in the official run (TORCH12_SEMANTICS.md C2), so
    their entries hold no state and dropping them loses nothing. Any other layout is returned
    unchanged (``load_state_dict`` then checks it).
    """
    groups = saved.get("param_groups", []) if isinstance(saved, dict) else []
    params = list(model.parameters())
    trainable = [i for i, p in enumerate(params) if p.requires_grad]
    if len(groups) != 1 or len(groups[0]["params"]) != len(params) or \
            len(trainable) == len(params):
        return saved
    kept = [groups[0]["params"][i] for i in trainable]
    state = {new: saved["state"][old] for new, old in enumerate(kept) if old in saved["state"]}
    return {"state": state, "param_groups": [{**groups[0], "params": list(range(len(kept)))}]}


def load_optimizer_state(optimizer, saved, path, model=None):
    """``optimizer.load_state_dict(saved)`` (adapted to ``model`` by
    :func:`official_optimizer_state_for`); a mismatch raises ValueError naming ``path``."""
    if model is not None:
        saved = official_optimizer_state_for(saved, model)
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, TypeError) as exc:
        held = [len(g["params"]) for g in optimizer.param_groups]
        raise ValueError(f"{path}: its optimizer state does not fit this run's optimizer "
                         f"({exc}; this run optimizes {held} parameters per group). Check "
                         f"--arch, --wt_layer and --norm_semantics, or start from its "
                         f"weights only (--snapshot without --restore_optimizer)") from exc


def restore_training_state(checkpoint, path, optimizer, scheduler, scaler, generator, rank,
                           world_size, iters_per_epoch, model=None):
    """Load optimizer, scheduler, scaler and RNG states of a training checkpoint.

    The model weights are loaded (and checked) by the caller. Raises ValueError when
    ``checkpoint`` has no training state (a weights-only file: use ``--snapshot``).
    Official checkpoints (no ``iteration``) continue at the start of the epoch after
    ``epoch``'s last batch: ``iteration = iters_per_epoch * epoch``.
    """
    require_training_state(checkpoint, path)
    load_optimizer_state(optimizer, checkpoint["optimizer"], path, model)
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


def resume(state, path, *, arch, norm_semantics, rank, world_size, iters_per_epoch, logger):
    """``--resume``: weights (must match exactly) and training state, into ``state``."""
    ckpt = load_checkpoint(path)
    require_training_state(ckpt, path)
    check_resume_norm_semantics(ckpt, norm_semantics, path)
    weights = extract_state_dict(ckpt, path)
    report = load_state_dict_forgiving(state.model, weights, log=False)
    covered = cover_external(report, unwrap_model(state.model), ckpt, "--resume", path)
    logger.info(f"--resume {path}: {report.summary()}", extra=FILE_ONLY)
    if not report.complete:
        raise ValueError(f"--resume {path} does not match --arch {arch} / --wt_layer "
                         f"({report.brief()}; the tensor list is in the log); "
                         f"{describe_likely(weights)}")
    logger.info(report.brief() + (f"; {covered} frozen tensors from their own file (the "
                                  f"same as the run's)" if covered else ""))
    position = restore_training_state(ckpt, path, state.optimizer, state.scheduler,
                                      state.scaler, state.loss_generator, rank, world_size,
                                      iters_per_epoch, model=state.model)
    for note in position.notes:
        logger.warning(f"--resume {path}: {note}")
    logger.info(f"resumed {path} at iteration {position.iteration} (epoch {position.epoch}, "
                f"batch {position.epoch_iter})")
    state.iteration, state.epoch, state.epoch_iter = (position.iteration, position.epoch,
                                                      position.epoch_iter)
    state.best = position.best
    state.loss_state = saved_loss_state(ckpt)
    state.skipped_steps = int(ckpt.get("amp_skipped_steps", 0))


def load_snapshot_weights(ckpt, path, model, *, arch, wt_layer, partial, logger):
    """``--snapshot``: weights of the loaded checkpoint ``ckpt`` that must fit the model
    (unless ``partial``).

    Raises ValueError with the mismatch list of ``valid.py``, or pointing to ``--pretrained``
    for a torchvision ImageNet state dict.
    """
    weights = extract_state_dict(ckpt, path)
    imagenet = looks_like_imagenet_weights(weights)
    report = load_state_dict_forgiving(model, weights, log=False)
    cover_external(report, unwrap_model(model), ckpt, "--snapshot", path)
    logger.info(f"--snapshot {path}: {report.summary()}", extra=FILE_ONLY)  # the full list
    mismatch = snapshot_mismatch(report, "--snapshot", path, arch, NUM_CLASSES, wt_layer,
                                 allow_unused=False)
    hint = (f"{path} looks like a torchvision ImageNet classifier, not a segmentation "
            f"checkpoint: load it into the trunk with --pretrained {path}")
    if mismatch and not partial:
        raise ValueError(hint if imagenet else
                         f"{mismatch}; {describe_likely(weights)} (the tensor list is in the "
                         f"log; --snapshot_partial loads the matching tensors and trains the "
                         f"rest from scratch)")
    if mismatch:
        logger.warning(f"--snapshot_partial: {mismatch}" + (f"; {hint}" if imagenet else ""))
    else:
        logger.info(report.brief())


def start_from_snapshot(state, path, *, arch, wt_layer, partial, restore_optimizer,
                        norm_semantics, iters_per_epoch, logger):
    """``--snapshot`` (and ``--restore_optimizer``: its optimizer, scheduler and position)."""
    ckpt = load_checkpoint(path)
    if restore_optimizer:
        check_resume_norm_semantics(ckpt, norm_semantics, path)
    load_snapshot_weights(ckpt, path, state.model, arch=arch, wt_layer=wt_layer,
                          partial=partial, logger=logger)
    missing = [key for key in ("optimizer", "scheduler") if key not in ckpt]
    if restore_optimizer and missing:  # the official code skips it silently (METHOD.md §4.3)
        logger.warning(f"--restore_optimizer: {path} has no {' / '.join(map(repr, missing))} "
                       f"entry (a weights-only file): only its weights were loaded; the "
                       f"optimizer and the LR schedule start afresh at iteration 0")
    elif restore_optimizer:
        load_optimizer_state(state.optimizer, ckpt["optimizer"], path, state.model)
        state.scheduler.load_state_dict(ckpt["scheduler"])
        state.epoch = int(ckpt.get("epoch", 0))
        state.iteration = int(ckpt.get("iteration", iters_per_epoch * state.epoch))
        # Ours may be mid-epoch: continue after its last batch, as --resume does (official
        # files have no position and re-run their epoch, METHOD.md §4.3).
        state.epoch_iter = int(ckpt.get("epoch_iter", 0)) if "iteration" in ckpt else 0
        state.loss_state = saved_loss_state(ckpt)
    logger.info(f"initialised from --snapshot {path} (iteration {state.iteration})")
