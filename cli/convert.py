"""Namespace -> the plain values and dataclasses the library and ``engine`` take.

Nothing below the entry points ever sees the argparse namespace: these converters are the
only code that reads it besides :mod:`cli.parser`.
"""

import ast
from pathlib import Path

import datasets
import loss
import network
from engine.config import FitConfig, OptimConfig, RunRecord, StepConfig
from engine.evaluation import SnapshotMismatchError
from engine.evaluation import load_eval_model as _load_eval_model
from engine.model_spec import model_entry
from loss import criterion_options
from loss.whitening import whitening_mode
from network.vfm_weights import read_release
from utils.checkpoint import CheckpointError, load_checkpoint

# build_dataset options a training set takes from flags of the same name (``max_images`` and
# ``centroid_workers`` are not flags; ``cache_dir`` is resolved by :func:`cache_dir`).
TRAIN_DATASET_OPTIONS = ("crop_size", "scale_min", "scale_max", "pre_size", "crop_nopad",
                         "rrotate", "color_aug", "gblur", "bblur", "class_uniform_pct",
                         "class_uniform_tile", "max_cu_epoch", "eval_protocol",
                         "gtav_mismatch", "seed", "train_preset")


def root_overrides(args):
    """Canonical dataset name -> the root given with its ``--<name>_dir`` flag (or None);
    datasets sharing a root (``acdc_fog`` ...) share its flag."""
    return {name: getattr(args, datasets.root_flag_dest(cls.root_flag))
            for name, cls in datasets.DATASET_CLASSES.items()}


def cache_dir(args):
    """``--cache_dir``, else ``<--ckpt>/cache`` (DECISIONS.md D5)."""
    if args.cache_dir is None and args.ckpt:
        return Path(args.ckpt) / "cache"
    return args.cache_dir


def photometric_mode(args, device_type="cpu"):
    """``--photometric``, else ``device`` when training on CUDA and ``loader`` on the CPU (or
    with ``--bblur`` or ``--train_preset rein``, which only the loader path has)."""
    if args.photometric is not None:
        return args.photometric
    loader_only = args.bblur or args.train_preset == "rein"
    return "device" if device_type == "cuda" and not loader_only else "loader"


def dataset_options(args, device_type="cpu"):
    """``build_dataset`` options of the training set(s), as a plain dict (``device_type``:
    where training runs, for the ``--photometric`` default)."""
    return {**{key: getattr(args, key) for key in TRAIN_DATASET_OPTIONS},
            "cache_dir": cache_dir(args), "photometric": photometric_mode(args, device_type)}


def eval_dataset_options(args):
    """Keyword options of ``datasets.build_eval_dataset`` (protocol, GTAV policy, cache)."""
    return {"eval_protocol": args.eval_protocol, "gtav_mismatch": args.gtav_mismatch,
            "cache_dir": cache_dir(args), "foggy_beta": args.foggy_beta}


def criterion_kwargs(args):
    """Keyword arguments of ``loss.BlindNetCriterion``: every loss flag and every flag of
    another home a loss term reads (``--use_ca``, ``--w1`` ..., ``--wt_reg_weight`` with
    ``--wt_layer``), as the terms declare them (``loss.criterion_options()``), and what
    ``--arch`` predicts (pixel logits or Mask2Former's mask predictions)."""
    prediction = {network.PIXEL_LOGITS: loss.PIXEL_LOGITS,
                  network.MASK_PREDICTIONS: loss.MASK_PREDICTIONS}[
        network.prediction_kind(args.arch)]
    return {**{name: getattr(args, name) for name in criterion_options()},
            "prediction": prediction}


def option_text(value):
    """The ``--arch_options`` spelling of a value :func:`option_value` parsed."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return ",".join(option_text(part) for part in value) + ("," if len(value) == 1 else "")
    return str(value)


def option_value(text):
    """``4`` -> 4, ``0.5`` -> 0.5, ``true`` -> True, ``0,1,2`` -> (0, 1, 2), else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in text:
        return tuple(option_value(part) for part in text.split(",") if part.strip())
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text


def parse_arch_options(items):
    """``--arch_options KEY=VALUE ...`` items as a dict; ValueError naming the flag for an
    item without ``=`` or a key given twice."""
    options = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--arch_options: expected KEY=VALUE items, got {item!r}")
        if key.strip() in options:
            raise ValueError(f"--arch_options: {key.strip()} is given twice")
        options[key.strip()] = option_value(value)
    return options


def arch_options(args):
    """:func:`parse_arch_options` of ``--arch_options``; also a ValueError for a key
    ``--arch`` does not take."""
    options = parse_arch_options(args.arch_options)
    known = network.arch_option_names(args.arch)
    unknown = sorted(set(options) - set(known))
    if unknown:
        takes = f"takes {', '.join(known)}" if known else "takes none"
        raise ValueError(f"--arch_options {', '.join(unknown)}: --arch {args.arch} {takes}")
    return options


def model_kwargs(args, in_features=False, embeddings=False):
    """Keywords of ``network.get_net`` beyond the official ones: ``--arch_options``, and for a
    ``network.vfm`` arch BlindNet's outputs when the criterion needs them (``in_features``:
    the ``--vit_in_blocks`` token maps for CML/CCL; ``embeddings``: projection heads)."""
    options = arch_options(args)
    if network.is_vfm_arch(args.arch):
        factory = network.resolve_arch(args.arch)
        if in_features:
            options["in_blocks"] = tuple(args.vit_in_blocks or
                                         factory.default_in_blocks(**options))
        options["embeddings"] = bool(embeddings)
    return options


def isw_settings(args):
    """``engine.isw.build_isw_schedule`` keywords when ISW trains, else None."""
    if args.wt_reg_weight == 0 or whitening_mode(args.wt_layer) != "isw":
        return None
    return {"dataset": args.covstat_val_dataset[0], "clusters": args.clusters,
            "trials": args.trials, "cov_stat_epoch": args.cov_stat_epoch,
            "num_images": args.covstat_images}


def run_dir(args):
    return Path(args.ckpt) / args.date / args.exp  # the run folder


def tb_logdir(args):
    """TensorBoard folder ``<--tb_path>/<--date>/<--exp>[_<--tb_tag>]``."""
    return Path(args.tb_path) / args.date / (args.exp + (f"_{args.tb_tag}" if args.tb_tag else ""))


def optim_config(args):  # SGD or AdamW and the poly LR
    return OptimConfig(lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                       max_iter=args.max_iter, poly_exp=args.poly_exp,
                       optimizer=args.optimizer)


def step_config(args, two_view, with_embeddings):
    """How one step runs (``two_view``: batches carry ``image_aug``; ``with_embeddings``:
    ``BlindNetCriterion.needs_embeddings``)."""
    return StepConfig(two_view=two_view, with_embeddings=with_embeddings, amp=args.amp,
                      channels_last=args.channels_last)


def fit_config(args, argv):
    """The loop's settings; ``argv``: the real command line, recorded in every checkpoint with
    the ``--config`` files it read (``args.config_files``) and the resolved flags."""
    flags = plain_flags(args)
    config_files = tuple(flags.pop("config_files", ()))
    record = RunRecord(command=" ".join(argv), flags=flags, norm_semantics=args.norm_semantics,
                       config_files=config_files,
                       model=model_entry(args.arch, args.wt_layer, args.norm_semantics,
                                         arch_options=arch_options(args),
                                         **model_norm_layers(args)))
    return FitConfig(
        run_dir=run_dir(args), max_iter=args.max_iter, batch_size=args.bs_mult,
        log_every=args.log_every, save_every=args.save_every, val_every=args.val_every,
        stop_at=args.stop_at, record=record)


def model_norm_layers(args):
    """``get_net``'s ``norm_layer`` / ``head_norm_layer`` keywords from the flags."""
    return {"norm_layer": args.norm_layer, "head_norm_layer": args.head_norm_layer}


def plain_flags(args):
    """Every flag whose value is a plain (JSON-like) value: the checkpoint's ``args`` entry."""
    return {key: value for key, value in vars(args).items() if _plain(value)}


def _plain(value):
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def load_eval_model(args, device, logger, checkpoint=None):
    """valid.py / infer.py: ``--snapshot`` into the model it records (or the flags describe);
    exits naming what does not fit.

    ``checkpoint``: the file's content when the caller has loaded it already.
    A missing, unreadable or foreign file exits with ``<script>.py: error: ...`` naming it; a
    file whose tensors do not fit exits with one line (the tensor list goes to the log file).
    Returns ``(model, norm_semantics, trained_norm_semantics)``.
    """
    if not args.snapshot:
        raise SystemExit(f"{args.script}.py needs --snapshot PATH (a checkpoint to evaluate)")
    if args.model_from_checkpoint:
        logger.info(f"model from the checkpoint: {' '.join(args.model_from_checkpoint)}")
    try:
        if checkpoint is None:
            checkpoint = read_snapshot(args)
        return _load_eval_model(args.snapshot, args.arch, args.wt_layer, device=device,
                                norm_semantics=args.norm_semantics,
                                norm_layers=model_norm_layers(args),
                                partial=args.snapshot_partial,
                                channels_last=args.channels_last, logger=logger,
                                checkpoint=checkpoint, pretrained=args.pretrained,
                                model_options=arch_options(args))
    except SnapshotMismatchError as exc:
        log = run_dir(args) / f"{args.script}.log"
        raise SystemExit(f"{args.script}.py: error: {exc} (the tensor list is in {log})") \
            from None
    except (CheckpointError, FileNotFoundError, ValueError) as exc:  # names the file
        raise SystemExit(f"{args.script}.py: error: {exc}") from None


def read_snapshot(args):
    """The ``--snapshot`` file's content. For a ``network.vfm`` arch a file the safe loader
    refuses is read again allowing the NumPy metadata of Rein's (mmengine) releases; any
    other object is still refused. Raises CheckpointError / FileNotFoundError naming it."""
    try:
        return load_checkpoint(args.snapshot)
    except CheckpointError:
        if not network.is_vfm_arch(args.arch):
            raise
        try:
            return read_release(args.snapshot)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
