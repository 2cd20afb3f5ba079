"""Train a DeepLabV3+ segmenter with BlindNet (two views) or as the single-view baseline.

    python train.py --dataset gtav_jitter --val_dataset cityscapes ...           # one process
    torchrun --nproc_per_node 2 train.py --dataset gtav_jitter ...             # DDP

Read :func:`main` top to bottom: parse -> set up -> data -> model, criterion, optimizer ->
resume -> ``engine.trainer.fit`` (forward both views, BlindNet criterion, backward, SGD, poly
LR, validation each epoch, checkpoints). This file only wires the parts and turns their
exceptions into exit codes. See README.md for the flags and docs/METHOD.md §4 for the schedule.
"""

import json
import math
import sys
from dataclasses import dataclass

import torch

import cli
import network
from datasets import DatasetLayoutError
from engine import checkpointing
from engine.data import (VALIDATION_SHARE_WARNING, build_train_data, build_val_sets,
                         validation_share)
from engine.ddp import wrap_ddp
from engine.isw import ISWMaskSchedule
from engine.run_folder import open_run_dir
from engine.trainer import NonFiniteLossError, Preempted, fit, new_train_state
from loss import IN_FEATURES, TWO_VIEWS, BlindNetCriterion, weight_flags
from network.input_size import check_train_crop
from network.instance_norm import collected_layer_count
from network.norm_semantics import describe as describe_norm_semantics
from utils import dist as dist_utils
from utils.checkpoint import CheckpointError
from utils.flag_checks import check_batch_size, check_loss_weights, check_optimizer_flags
from utils.labels import NUM_CLASSES
from utils.logging import setup_logging
from utils.precision import check_amp_support
from utils.output import write_text, writing
from utils.preemption import EXIT_PREEMPTED, exit_on_second_signal
from utils.seed import set_seed
from utils.tensorboard import TrainWriter

EXIT_BAD_FLAG = 2          # as argparse: a flag value is out of range
EXIT_NON_FINITE = 3        # a loss became NaN/Inf; the last good checkpoint was kept
EXIT_DIST_FAILURE = 4      # a collective timed out (--dist_timeout) or lost a rank


@dataclass
class TrainResult:
    """What :func:`main` returns (handy for scripts and tests driving training in-process)."""

    best: dict        # dataset -> best mIoU
    iteration: int    # iterations done
    model: torch.nn.Module


def main(argv=None, *, before_step=None):
    """``python train.py ARGV`` in-process (``argv`` None: ``sys.argv[1:]``).

    ``before_step``: optional ``callable(state)`` that ``fit`` runs before every training step
    (an :class:`engine.trainer.TrainState`; for progress hooks and fault-injection tests).
    Returns a :class:`TrainResult`; exits with :data:`EXIT_BAD_FLAG`, :data:`EXIT_NON_FINITE`,
    :data:`EXIT_DIST_FAILURE`, ``EXIT_PREEMPTED`` or a one-line ``train.py: error: ...``
    (docs/FAILURES.md).
    """
    argv = list(sys.argv[1:] if argv is None else argv)  # the command that really runs
    args = cli.parse_args("train", argv)
    with exit_on_second_signal(), cli.one_line_errors("train"):
        dist = dist_utils.init_distributed(args.device, args.local_rank, args.dist_timeout)
        check_flags(args, dist)
        run = open_run(args, argv, dist)
        try:
            return train(args, dist, run, before_step)
        finally:
            run.close()


def train(args, dist, run, before_step):
    """Data, model, criterion, optimizer, resume, ``fit``; returns a :class:`TrainResult`."""
    config, logger, device = run.config, run.logger, dist.device
    criterion = BlindNetCriterion(**cli.criterion_kwargs(args)).to(device)
    roots = cli.root_overrides(args)
    data, val_sets = build_data(args, roots, dist, criterion, logger)

    model = build_model(args, dist, logger, criterion)
    state = new_train_state(model, cli.optim_config(args), device=device, amp=args.amp,
                            seed=args.seed, rank=dist.rank)
    try:
        restore(state, args, config.run_dir, dist, len(data.loader), logger)
        isw = start_isw(args, roots, state, criterion, device, logger)  # None unless ISW
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"train.py: error: {exc}") from None
    state.net = wrap_model(model, args, dist, criterion.needs_embeddings, logger)

    try:
        step = cli.step_config(args, data.two_view, criterion.needs_embeddings)
        finished = fit(state, data, criterion, val_sets, config=config, step=step, device=device,
                       logger=logger, writer=run.writer, before_step=before_step,
                       epoch_end=isw)
    except NonFiniteLossError as exc:
        logger.error(str(exc))
        raise SystemExit(EXIT_NON_FINITE) from exc
    except Preempted as exc:
        stopped(exc, dist, config.run_dir)
    except RuntimeError as exc:
        collective_failure(exc, dist, args.dist_timeout, logger)
        raise
    if finished:
        best = ", ".join(f"{k} {100 * v:.2f}" for k, v in state.best.items())
        logger.info(f"done after {state.iteration} iterations; best mIoU (%): "
                    f"{best or 'none (no --val_dataset)'}")
    dist_utils.cleanup()
    return TrainResult(best=state.best, iteration=state.iteration, model=model)


@dataclass
class OpenRun:
    """A claimed run folder: settings, logger, TensorBoard writer and rank 0's lock."""

    config: object   # engine.config.FitConfig
    logger: object
    writer: TrainWriter
    lock: object     # utils.run_lock.RunLock on rank 0, else None

    def close(self):
        self.writer.close()
        if self.lock is not None:
            self.lock.release()


def open_run(args, argv, dist):
    """Claim the run folder (one run per folder: engine/run_folder.py), then logging,
    ``args.json``, TensorBoard and seeds; returns an :class:`OpenRun`.

    Every output destination is created here, so a read-only or missing one fails in seconds.
    """
    config = cli.fit_config(args, argv)  # the checkpoints record this argv as their command
    takeovers = []
    lock, stale = open_run_dir(config.run_dir, is_main=dist.is_main, resume=args.resume,
                               on_takeover=takeovers.append)
    try:
        with writing(config.run_dir / "train.log", "--ckpt"):
            logger = setup_logging(dist.rank, config.run_dir / "train.log")
        for message in takeovers:
            logger.warning(message)
        for path in stale:
            logger.info(f"removed {path}, left by a save that was interrupted")
        if dist.is_main:
            write_text(config.run_dir / "args.json",
                       json.dumps(vars(args), indent=2, default=str), "--ckpt")
        writer = TrainWriter(cli.tb_logdir(args), dist.is_main)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    set_seed(args.seed, dist.rank, args.deterministic)
    torch.autograd.set_detect_anomaly(args.detect_anomaly)
    logger.info(f"run folder {config.run_dir}; {dist.world_size} process(es), device "
                f"{dist.device}, backend {dist.backend}")
    if args.model_from_checkpoint:
        logger.info(f"model from --snapshot {args.snapshot}: {' '.join(args.model_from_checkpoint)}"
                    f" ({args.arch}, --wt_layer {' '.join(map(str, args.wt_layer))})")
    return OpenRun(config, logger, writer, lock)


def build_data(args, roots, dist, criterion, logger):
    """The training data (``engine.data.TrainData``) and the validation sets (two-view data
    when a term of ``criterion`` needs it).

    The validation sets come first, so that a missing root of either kind stops the run
    (one ``train.py: error:`` line with the expected folder tree) before the training set's
    preparation (the class-uniform centroid pass) takes its time.
    """
    try:
        # Validation and training take turns: the (persistent) validation workers get as many.
        val_sets = build_val_sets(args.val_dataset, roots, cli.eval_dataset_options(args),
                                  batch_size=args.bs_mult_val, num_workers=args.num_workers,
                                  max_images=args.max_val_images)
        options = cli.dataset_options(args, dist.device.type)
        logger.info(f"photometric augmentation: {options['photometric']} "
                    f"(--photometric, docs/DATA_PIPELINE.md)")
        data = build_train_data(
            args.dataset, roots, options, cityscapes_split=args.city_mode,
            batch_size=args.bs_mult, num_workers=args.num_workers, seed=args.seed,
            rank=dist.rank, world_size=dist.world_size, pin_memory=dist.device.type == "cuda",
            logger=logger)
    except DatasetLayoutError as exc:  # names the dataset, its root flag and the layout
        raise SystemExit(f"train.py: error: {exc}") from None
    except ValueError as exc:  # a mix of one- and two-view sets, fewer images than a batch
        raise SystemExit(f"train.py: error: {exc}") from None
    if criterion.needs_two_views and not data.two_view:
        raise SystemExit(f"{criterion.requirement(TWO_VIEWS)} two views: train on a *_jitter "
                         f"dataset (got --dataset {' '.join(args.dataset)})")
    if args.val_every is None:
        warn_long_validation(val_sets, data, args, logger)
    return data, val_sets


def warn_long_validation(val_sets, data, args, logger):
    """Warn when validating after every epoch would take more than
    ``VALIDATION_SHARE_WARNING`` of the training time (estimate), naming ``--val_every``."""
    batches = len(data.loader)
    share = validation_share(val_sets, batches, args.bs_mult, args.crop_size, data.two_view)
    if share > VALIDATION_SHARE_WARNING:
        every = math.ceil(batches * share / VALIDATION_SHARE_WARNING)
        step = 10 ** (len(str(every)) - 1)  # one significant digit, rounded up
        logger.warning(
            f"validating after every epoch ({batches} iterations) would take about "
            f"{100 * share:.0f}% of the training time (estimate from the images and pixels "
            f"of the validation sets against one epoch's training); --val_every "
            f"{-(-every // step) * step} keeps it under "
            f"{100 * VALIDATION_SHARE_WARNING:.0f}%")


def check_flags(args, dist):
    """Start-up validation of flags PyTorch would reject late and without naming them.

    Exits with :data:`EXIT_BAD_FLAG` and ``train.py: error: --flag ...`` (like argparse).
    """
    try:
        check_optimizer_flags(args.lr, args.weight_decay, args.momentum, args.max_iter,
                              args.poly_exp)
        check_loss_weights({flag: getattr(args, flag) for flag in weight_flags()})
        check_batch_size(args.bs_mult, dist.world_size, dist.device.type == "cuda")
        check_train_crop(args.arch, NUM_CLASSES, args.wt_layer, args.crop_size,
                         cli.arch_options(args), cli.model_norm_layers(args))
        check_amp_support(dist.device, args.amp)  # e.g. bf16 on a pre-Ampere GPU
    except ValueError as exc:
        if dist.is_main:
            print(f"train.py: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_FLAG) from None


def build_model(args, dist, logger, criterion):
    """``--arch`` with ``--pretrained`` trunk weights, on the device (SyncBatchNorm under
    multi-GPU DDP, ``--channels_last``); it must collect IN features when a term of
    ``criterion`` needs them (a ``network.vfm`` arch: the ``--vit_in_blocks`` token maps)."""
    options = cli.model_kwargs(args, criterion.needs_in_features, criterion.needs_embeddings)
    try:
        model = network.get_net(args.arch, NUM_CLASSES, args.wt_layer, args.pretrained,
                                norm_semantics=args.norm_semantics,
                                **cli.model_norm_layers(args), **options)
    except (network.MissingImageNetWeights, network.MissingDinov2Weights) as exc:
        raise SystemExit(f"train.py: error: {exc}") from None  # no --pretrained and no file
    except (CheckpointError, FileNotFoundError) as exc:  # --pretrained unreadable or missing
        raise SystemExit(f"train.py: error: --pretrained: {exc}") from None
    except ValueError as exc:  # a DINOv2 file that does not fit, --vit_in_blocks
        raise SystemExit(f"train.py: error: {exc}") from None
    if criterion.needs_in_features and not network.is_vfm_arch(args.arch) and \
            collected_layer_count(model) == 0:
        # Otherwise the first step fails inside the loss with no word about the trunk.
        raise SystemExit(f"train.py: error: --wt_layer {' '.join(map(str, args.wt_layer))} "
                         f"gives the {args.arch} trunk no collected instance-norm layer (code "
                         f"1/2 at positions 0-1 takes effect on ResNet-101 only), but "
                         f"{criterion.requirement(IN_FEATURES)} one: put the codes at "
                         f"positions 2-4, e.g. --wt_layer 0 0 1 1 1 0 0")
    logger.info(describe_norm_semantics(model))
    model.to(dist.device)
    if dist.distributed and dist.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def restore(state, args, run_dir, dist, iters_per_epoch, logger):
    """``--resume`` (exact continuation) or else ``--snapshot`` (weights, maybe optimizer)."""
    path = checkpointing.resolve_resume(args.resume, run_dir, logger)
    if path is not None:
        checkpointing.resume(state, path, arch=args.arch, norm_semantics=args.norm_semantics,
                             rank=dist.rank, world_size=dist.world_size,
                             iters_per_epoch=iters_per_epoch, logger=logger)
    elif args.snapshot:
        checkpointing.start_from_snapshot(
            state, args.snapshot, arch=args.arch, wt_layer=args.wt_layer,
            partial=args.snapshot_partial, restore_optimizer=args.restore_optimizer,
            norm_semantics=args.norm_semantics, iters_per_epoch=iters_per_epoch, logger=logger)
    if args.stop_at is not None and state.iteration >= args.stop_at:  # fit would never meet it
        logger.warning(f"--stop_at {args.stop_at}: the run continues at iteration "
                       f"{state.iteration}, at or past it, so it will not stop there but "
                       f"train to --max_iter {args.max_iter} (pass a later --stop_at)")


def start_isw(args, roots, state, criterion, device, logger):
    """RobustNet ISW (a ``--wt_layer`` 2 and ``--wt_reg_weight`` > 0): the mask schedule,
    started on the restored state (``fit``'s epoch-end hook); None otherwise."""
    settings = cli.isw_settings(args)
    if settings is None:
        return None
    schedule = ISWMaskSchedule.for_dataset(
        settings.pop("dataset"), roots, seed=args.seed, device=device,
        num_workers=min(2, args.num_workers), **settings)
    return schedule.start(state, criterion.whitening_loss, logger)


def wrap_model(model, args, dist, with_embeddings, logger):
    """What the training step calls: DDP (several processes; its options decided from the
    model and criterion, engine/ddp.py) and/or ``torch.compile``."""
    net = model
    if dist.distributed:
        net, options = wrap_ddp(model, dist.device, with_embeddings)
        logger.info("DistributedDataParallel: " + ", ".join(f"{k}={v}"
                                                          for k, v in options.items()))
    return torch.compile(net) if args.compile else net


def stopped(exc, dist, run_dir):
    """Every rank: one line on stderr, leave the process group, exit ``EXIT_PREEMPTED``."""
    print(f"train.py: rank {dist.rank}: {exc}; {run_dir / 'last.pth'} holds it, continue with "
          f"--resume auto (exit code {EXIT_PREEMPTED})", file=sys.stderr, flush=True)
    dist_utils.cleanup()
    raise SystemExit(EXIT_PREEMPTED)


def collective_failure(exc, dist, timeout, logger):
    """A timed-out or broken collective: log it, one line on stderr, exit
    :data:`EXIT_DIST_FAILURE`. Other RuntimeErrors return (the caller re-raises them)."""
    failure = dist.distributed and dist_utils.describe_collective_failure(exc, timeout)
    if failure:
        logger.error(failure)
        print(f"train.py: rank {dist.rank}: {failure}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_DIST_FAILURE) from None


if __name__ == "__main__":
    main()
