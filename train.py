"""Train a DeepLabV3+ segmenter with BlindNet (two views) or as the single-view baseline.

    python train.py --dataset gtav_jitter --val_dataset cityscapes ...           # one process
    torchrun --nproc_per_node 2 train.py --dataset gtav_jitter ...             # DDP

Read top to bottom: parse -> set up -> build data, model, optimizer -> resume -> loop
(forward both views, BlindNet criterion, backward, SGD, poly LR) -> validate each epoch ->
checkpoint. See README.md for the flags and docs/METHOD.md §4 for the schedule.
"""

import json
import os
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

import datasets
import network
from loss import BlindNetCriterion
from network.input_size import check_train_crop
from network.norm_semantics import describe as describe_norm_semantics
from transforms import eval_normalization
from utils import dist as dist_utils
from utils.args import parse_args
from utils.checkpoint import CheckpointError, atomic_save, checkpoint_norm_semantics, \
    extract_state_dict, load_checkpoint, load_state_dict_forgiving, looks_like_imagenet_weights, \
    remove_stale_temp_files, snapshot_mismatch
from utils.evaluation import build_eval_loader, evaluate, nan_to_none
from utils.labels import CLASS_NAMES, NUM_CLASSES
from utils.flag_checks import LOSS_WEIGHT_FLAGS, check_batch_size, check_loss_weights, \
    check_optimizer_flags
from utils.logging import setup_logging
from utils.precision import autocast, grad_scaler
from utils.preemption import EXIT_PREEMPTED, StopSignal, signal_name, worker_init
from utils.seed import set_seed
from utils.tensorboard import TrainWriter
from utils.training import (NonFiniteLossError, ResumableSampler, check_finite,
                            check_replicas_identical, gather_rng_states, require_training_state,
                            restore_training_state, sync_buffers, training_checkpoint)

EXIT_BAD_FLAG = 2          # as argparse: a flag value is out of range
EXIT_NON_FINITE = 3        # a loss became NaN/Inf; the last good checkpoint was kept
EXIT_DIST_FAILURE = 4      # a collective timed out (--dist_timeout) or lost a rank


@dataclass
class TrainResult:
    """What :func:`main` returns (handy for scripts and tests driving training in-process)."""

    best: dict        # dataset -> best mIoU
    iteration: int    # iterations done
    model: torch.nn.Module


def dataset_split(base, args):
    """Training split of a canonical dataset name (Cityscapes honours --city_mode)."""
    return args.city_mode if base == "cityscapes" else "train"


def cache_dir(args):
    """``--cache_dir``, else ``<--ckpt>/cache`` (DECISIONS.md D5). (Moves to cli.py.)"""
    if getattr(args, "cache_dir", None) is None and getattr(args, "ckpt", None):
        return Path(args.ckpt) / "cache"
    return getattr(args, "cache_dir", None)


def root_overrides(args):
    """Canonical dataset name -> ``--<name>_dir`` value (None when not given)."""
    return {name: getattr(args, datasets.root_flag_dest(cls.root_flag), None)
            for name, cls in datasets.DATASET_CLASSES.items()}


def dataset_options(args):
    """Training-set options (``datasets.DEFAULT_OPTIONS`` names) from the namespace.

    ``max_images`` and ``centroid_workers`` are left out: quick runs set them explicitly.
    (Moves to cli.py.)
    """
    options = {key: getattr(args, key) for key in datasets.DEFAULT_OPTIONS
               if key not in ("max_images", "centroid_workers") and hasattr(args, key)}
    options["cache_dir"] = cache_dir(args)
    return options


def eval_dataset_args(args, name):
    """Keyword arguments of ``datasets.build_eval_dataset(name, ...)``. (Moves to cli.py.)"""
    base, _ = datasets.parse_dataset_name(name)
    return {"root": root_overrides(args)[base], "eval_protocol": args.eval_protocol,
            "gtav_mismatch": args.gtav_mismatch, "cache_dir": cache_dir(args),
            "foggy_beta": getattr(args, "foggy_beta", datasets.DEFAULT_BETA)}


def build_train_set(args, logger):
    """The prepared training dataset(s); several names are concatenated (multi-source)."""
    options = dataset_options(args)
    roots = root_overrides(args)
    parsed = [datasets.parse_dataset_name(name) for name in args.dataset]
    two_view = {two for _, two in parsed}
    if len(two_view) != 1:
        raise SystemExit(f"--dataset {' '.join(args.dataset)}: mix of two-view (*_jitter) and "
                         f"single-view datasets; use one kind")
    parts = []
    for name, (base, _) in zip(args.dataset, parsed):
        parts.append(datasets.build_dataset(name, dataset_split(base, args), root=roots[base],
                                            training=True, **options).prepare())
        logger.info(f"training set {name}: {len(parts[-1])} samples per epoch")
    return (parts[0] if len(parts) == 1 else datasets.EpochConcatDataset(parts)), two_view.pop()


# DataLoader workers ignore SIGTERM/SIGINT: the main process stops them after saving.
WORKER_INIT = partial(worker_init, datasets.worker_init_fn)


def build_val_loaders(args, names):
    loaders = {}
    for name in names:
        base, dataset = datasets.build_eval_dataset(name, **eval_dataset_args(args, name))
        loaders[base] = build_eval_loader(dataset, args.bs_mult_val, min(2, args.num_workers),
                                          args.max_val_images, WORKER_INIT)
    return loaders


def check_flags(args, state):
    """Start-up validation of flags PyTorch would reject late and without naming them.

    Exits with :data:`EXIT_BAD_FLAG` and ``train.py: error: --flag ...`` (like argparse).
    """
    try:
        check_optimizer_flags(args.lr, args.weight_decay, args.momentum, args.max_iter,
                              args.poly_exp)
        check_loss_weights({flag: getattr(args, flag) for flag in LOSS_WEIGHT_FLAGS})
        check_batch_size(args.bs_mult, state.world_size, state.device.type == "cuda")
        check_train_crop(args.arch, NUM_CLASSES, args.wt_layer, args.crop_size)
    except ValueError as exc:
        if state.is_main:
            print(f"train.py: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_FLAG) from None


def poly_lambda(max_iter, power):
    """LR factor ``(1 - it / max_iter) ** power`` stepped every iteration (METHOD.md §4)."""
    return lambda it: max(0.0, 1.0 - it / max_iter) ** power


def build_optimizer(model, lr, momentum, weight_decay):
    """SGD over the parameters that require grad, in one group (METHOD.md §4).

    With ``--norm_semantics torch1.2`` the BatchNorm (and affine IN) weights and biases do
    not require grad, so they are never updated nor weight-decayed (TORCH12 fact C2); in
    ``modern`` mode every parameter requires grad and this is ``SGD(model.parameters())``.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def check_resume_norm_semantics(ckpt, mode, path):
    """Refuse to continue a run's optimizer state under the other --norm_semantics: the
    optimizer holds a different set of parameters in each mode."""
    trained = checkpoint_norm_semantics(ckpt)
    if trained is not None and trained != mode:
        raise ValueError(f"{path} was trained with --norm_semantics {trained}, this run uses "
                         f"--norm_semantics {mode}: its optimizer state cannot be continued; "
                         f"pass --norm_semantics {trained} (or use --snapshot without "
                         f"--restore_optimizer to start a new run from its weights)")


def prepare_run_dir(args, state):
    """Create the run folder; rank 0 deletes temp files an interrupted save left there."""
    run_dir = Path(args.ckpt) / args.date / args.exp
    removed = []
    if state.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        removed = remove_stale_temp_files(run_dir)
    dist_utils.barrier()
    return run_dir, removed


def resolve_resume(args, run_dir, logger):
    if args.resume is None:
        return None
    if args.resume == "auto":
        path = run_dir / "last.pth"
        if not path.is_file():
            logger.info(f"--resume auto: no {path} yet, starting a new run")
            return None
        return path
    return Path(args.resume)


def load_snapshot(args, model, logger):
    """``--snapshot``: weights that must fit the model (unless ``--snapshot_partial``).

    Returns the checkpoint. Raises ValueError with the mismatch list of ``valid.py``, or
    pointing to ``--pretrained`` for a torchvision ImageNet state dict.
    """
    ckpt = load_checkpoint(args.snapshot)
    if args.restore_optimizer:
        check_resume_norm_semantics(ckpt, args.norm_semantics, args.snapshot)
    weights = extract_state_dict(ckpt)
    imagenet = looks_like_imagenet_weights(weights)
    report = load_state_dict_forgiving(model, weights, log=False)
    mismatch = snapshot_mismatch(report, "--snapshot", args.snapshot, args.arch,
                                 NUM_CLASSES, args.wt_layer, allow_unused=False)
    hint = (f"{args.snapshot} looks like a torchvision ImageNet classifier, not a segmentation "
            f"checkpoint: load it into the trunk with --pretrained {args.snapshot}")
    if mismatch and not args.snapshot_partial:
        raise ValueError(hint if imagenet else
                         mismatch + "\n(pass --snapshot_partial to load the matching tensors "
                                    "and train the rest from scratch)")
    if mismatch:
        logger.warning(f"--snapshot_partial: {mismatch}" + (f"\n{hint}" if imagenet else ""))
    else:
        logger.info(report.summary())
    return ckpt


def resume_from(path, args, model, optimizer, scheduler, scaler, generator, state,
                iters_per_epoch, logger):
    """``--resume``: weights (must match exactly) and training state; a ResumePosition."""
    ckpt = load_checkpoint(path)
    require_training_state(ckpt, path)
    check_resume_norm_semantics(ckpt, args.norm_semantics, path)
    report = load_state_dict_forgiving(model, extract_state_dict(ckpt))
    if not report.complete:
        raise ValueError(f"--resume {path} does not match --arch {args.arch} / "
                         f"--wt_layer:\n{report.summary()}")
    position = restore_training_state(ckpt, path, optimizer, scheduler, scaler, generator,
                                      state.rank, state.world_size, iters_per_epoch)
    for note in position.notes:
        logger.warning(f"--resume {path}: {note}")
    logger.info(f"resumed {path} at iteration {position.iteration} (epoch {position.epoch}, "
                f"batch {position.epoch_iter})")
    return position


def main(argv=None):
    args = parse_args("train", argv)
    state = dist_utils.init_distributed(args.device, args.local_rank, args.dist_timeout)
    if args.num_workers is None:
        args.num_workers = min(8, os.cpu_count() or 1)
    if args.test_mode:
        args.max_iter, args.max_val_images, args.num_workers = min(args.max_iter, 4), 2, 1
    check_flags(args, state)
    run_dir, stale = prepare_run_dir(args, state)
    logger = setup_logging(state.rank, run_dir / "train.log")
    for path in stale:
        logger.info(f"removed {path}, left by a save that was interrupted")
    set_seed(args.seed, state.rank, args.deterministic)
    torch.autograd.set_detect_anomaly(args.detect_anomaly)
    device = state.device
    logger.info(f"run folder {run_dir}; {state.world_size} process(es), device {device}, "
                f"backend {state.backend}")
    if state.is_main:
        (run_dir / "args.json").write_text(json.dumps(vars(args), indent=2, default=str))

    # Rank 0 builds the class-uniform cache first; the others then read it.
    if state.is_main:
        train_set, two_view = build_train_set(args, logger)
    dist_utils.barrier()
    if not state.is_main:
        train_set, two_view = build_train_set(args, logger)
    uses_two_views = args.use_ca or args.use_cwcl or args.use_sdcl
    if uses_two_views and not two_view:
        raise SystemExit("--use_ca/--use_cwcl/--use_sdcl need two views: train on a *_jitter "
                         f"dataset (got --dataset {' '.join(args.dataset)})")
    sampler = ResumableSampler(train_set, state.world_size, state.rank, args.seed)
    loader = DataLoader(train_set, batch_size=args.bs_mult, sampler=sampler, drop_last=True,
                        num_workers=args.num_workers, pin_memory=device.type == "cuda",
                        worker_init_fn=WORKER_INIT,
                        # Own generator: loader start-up must not consume the global RNG,
                        # or a resumed run would draw different dropout masks.
                        generator=torch.Generator().manual_seed(args.seed + state.rank))
    if len(loader) == 0:
        raise SystemExit(f"the training set has {len(train_set)} samples, fewer than one batch "
                         f"of --bs_mult {args.bs_mult} per process")
    val_loaders = build_val_loaders(args, args.val_dataset)

    try:
        model = network.get_net(args.arch, NUM_CLASSES, args.wt_layer, args.pretrained,
                                norm_semantics=args.norm_semantics)
    except (CheckpointError, FileNotFoundError) as exc:  # --pretrained unreadable or missing
        raise SystemExit(f"train.py: error: --pretrained: {exc}") from None
    logger.info(describe_norm_semantics(model))
    model.to(device)
    if state.distributed and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    criterion = BlindNetCriterion.from_args(args).to(device)
    optimizer = build_optimizer(model, args.lr, args.momentum, args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_lambda(args.max_iter,
                                                                         args.poly_exp))
    scaler = grad_scaler(device, args.amp)
    loss_generator = torch.Generator(device="cpu").manual_seed(args.seed + state.rank)

    iteration, epoch, epoch_iter, best = 0, 0, 0, {}
    try:
        resume_path = resolve_resume(args, run_dir, logger)
        if resume_path is not None:
            position = resume_from(resume_path, args, model, optimizer, scheduler, scaler,
                                   loss_generator, state, len(loader), logger)
            iteration, epoch, epoch_iter = (position.iteration, position.epoch,
                                            position.epoch_iter)
            best = position.best
        elif args.snapshot:
            ckpt = load_snapshot(args, model, logger)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"train.py: error: {exc}") from None
    if resume_path is None and args.snapshot:
        if args.restore_optimizer and "optimizer" in ckpt and "scheduler" in ckpt:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            epoch = int(ckpt.get("epoch", 0))
            iteration = int(ckpt.get("iteration", len(loader) * epoch))
        logger.info(f"initialised from --snapshot {args.snapshot} (iteration {iteration})")

    net = model
    if state.distributed:
        # Unused parameters: projection heads in the baseline, or when a batch has no anchors.
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None, find_unused_parameters=True)
    if args.compile:
        net = torch.compile(net)
    writer = TrainWriter(args, state.is_main)
    with_embeddings = args.use_cwcl or args.use_sdcl

    def save(path, mean_iu):
        """All ranks call this (RNG states are gathered); rank 0 writes ``path`` atomically."""
        rng_states = gather_rng_states(loss_generator)
        if state.is_main:
            atomic_save(training_checkpoint(
                model, optimizer, scheduler, scaler, iteration=iteration, epoch=epoch,
                epoch_iter=epoch_iter, mean_iu=mean_iu, best=best, rng_states=rng_states,
                args=args), path)

    def validate_and_save(final=False):
        sync_buffers(model)
        mious = {}
        for name, val_loader in val_loaders.items():
            res = evaluate(model, val_loader, device, NUM_CLASSES, amp=args.amp,
                           desc=f"val {name}", on_batch=writer.image_logger(
                               name, iteration, *eval_normalization(name, args.eval_protocol)))
            mious[name] = res["miou"]
            logger.info(f"iter {iteration} {name}: mIoU {100 * res['miou']:.2f} "
                        f"pixel acc {100 * res['pixel_acc']:.2f} ({res['images']} images)")
            writer.log_validation(name, res, CLASS_NAMES, iteration)
            if res["miou"] > best.get(name, -1.0):
                best[name] = res["miou"]
                save(run_dir / f"best_{name}.pth", res["miou"])
        save(run_dir / "last.pth", 0.0)
        if state.is_main:
            with (run_dir / "val_history.jsonl").open("a") as history:
                # NaN (no valid pixel) is not JSON: written as null.
                history.write(json.dumps(nan_to_none({"iteration": iteration, "epoch": epoch,
                                                      "final": final, "miou": mious,
                                                      "norm_semantics": args.norm_semantics}),
                                         allow_nan=False) + "\n")
        dist_utils.barrier()

    def stop_here(reason):
        save(run_dir / "last.pth", 0.0)
        logger.info(f"{reason}: saved {run_dir / 'last.pth'} at iteration {iteration}; "
                    f"continue with --resume auto")

    net.train()
    bar = tqdm(total=args.max_iter, initial=iteration, disable=not state.is_main,
               dynamic_ncols=True, desc="train")
    stop = StopSignal().install()
    try:
        while iteration < args.max_iter:
            train_set.set_epoch(epoch)
            sampler.set_epoch(epoch, skip=epoch_iter * args.bs_mult)
            tic = time.perf_counter()
            for batch in loader:
                terms = forward_backward(net, criterion, scaler, batch, args, device, two_view,
                                         with_embeddings, loss_generator)
                # Mean over ranks, for logging and so that every rank stops on a NaN together.
                reduced = dist_utils.all_reduce_mean(torch.stack(list(terms.values())).detach())
                values = dict(zip(terms, reduced.tolist()))
                check_finite(values, iteration + 1)  # before the step: weights stay good
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                iteration, epoch_iter = iteration + 1, epoch_iter + 1
                toc = time.perf_counter()
                speed, tic = args.bs_mult * state.world_size / (toc - tic), toc
                lr = optimizer.param_groups[0]["lr"]
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}
                                | {"lr": f"{lr:.1e}", "img/s": f"{speed:.1f}"}, refresh=False)
                writer.log_train(values, lr, speed, iteration)
                if iteration % args.log_every == 0:
                    logger.info(f"iter {iteration}/{args.max_iter} " + " ".join(
                        f"{k} {v:.4f}" for k, v in values.items())
                        + f" lr {lr:.2e} {speed:.1f} img/s")
                if iteration % args.save_every == 0:
                    save(run_dir / "last.pth", 0.0)
                if iteration >= args.max_iter:
                    break
                signum = stop.should_stop(device)  # every rank agrees on where to stop
                if signum:
                    stop_here(f"stopped by {signal_name(signum)}")
                    preempted(state, signum, iteration, run_dir, bar)
                if iteration == args.stop_at:
                    stop_here(f"--stop_at {args.stop_at}")
                    return finish(best, iteration, model)
                if args.val_every and iteration % args.val_every == 0:
                    validate_and_save()
            else:  # the epoch ran to its end: next epoch, then validate (METHOD.md §4.1)
                epoch, epoch_iter = epoch + 1, 0
                if not args.val_every:
                    validate_and_save()
        validate_and_save(final=True)
        check_replicas_identical(model, logger)
    except NonFiniteLossError as exc:
        logger.error(str(exc))
        raise SystemExit(EXIT_NON_FINITE) from exc
    except CheckpointError as exc:  # e.g. disk full: one line naming the path and the reason
        logger.error(str(exc))
        raise SystemExit(f"train.py: error: {exc}") from None
    except RuntimeError as exc:
        failure = state.distributed and dist_utils.describe_collective_failure(
            exc, args.dist_timeout)
        if not failure:
            raise
        logger.error(failure)
        print(f"train.py: rank {state.rank}: {failure}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_DIST_FAILURE) from None
    finally:
        stop.restore()
        bar.close()
        writer.close()
    logger.info(f"done after {iteration} iterations; best mIoU: " + ", ".join(
        f"{k} {100 * v:.2f}" for k, v in best.items()))
    return finish(best, iteration, model)


def finish(best, iteration, model):
    dist_utils.cleanup()
    return TrainResult(best=best, iteration=iteration, model=model)


def preempted(state, signum, iteration, run_dir, bar):
    """Every rank: one line on stderr, leave the process group, exit :data:`EXIT_PREEMPTED`."""
    bar.close()
    print(f"train.py: rank {state.rank}: stopped by {signal_name(signum)} after iteration "
          f"{iteration}; {run_dir / 'last.pth'} holds it, continue with --resume auto "
          f"(exit code {EXIT_PREEMPTED})", file=sys.stderr, flush=True)
    dist_utils.cleanup()
    raise SystemExit(EXIT_PREEMPTED)


def forward_backward(net, criterion, scaler, batch, args, device, two_view, with_embeddings,
                     generator):
    """Forward both views (or one), the criterion, backward. Returns the loss terms, total last.

    The optimizer step is left to the caller so that it can refuse a non-finite loss first.
    """
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    images = batch["image"].to(device, non_blocking=True).contiguous(memory_format=fmt)
    labels = batch["label"].to(device, non_blocking=True)
    images_aug = None
    if two_view:
        images_aug = batch["image_aug"].to(device, non_blocking=True).contiguous(
            memory_format=fmt)
    net.zero_grad(set_to_none=True)
    with autocast(device, args.amp):
        output = net(images, images_aug, with_embeddings=with_embeddings)
        terms = criterion(output, labels, generator=generator)
    scaler.scale(terms["total"]).backward()
    total = terms.pop("total")
    return {**terms, "total": total}


if __name__ == "__main__":
    main()
