"""The parser of the three entry points: build, parse, validate (exit code 2 naming the flag)."""

import argparse
import os
import sys
import warnings

import datasets
from cli.config_files import ConfigError, add_config_flag, expand_argv
import network
from cli.convert import arch_options, criterion_kwargs, dataset_options
from cli.flags import (IGNORED_FLAGS, SCRIPTS, add_evaluation_flags, add_framework_flags,
                       add_legacy_flags, add_official_flags, add_robustnet_flags,
                       hide_unread_flags, reads_flag)
from cli.model_flags import resolve_model_flags
from config import DEFAULT_NORM_SEMANTICS
from engine.model_spec import ModelFlagError
from engine.report import check_eval_settings
from loss import check_options as check_loss_options
from loss import unread_flags as unread_loss_flags
from network.instance_norm import WT_LAYER_VALUES as WT_LAYER_CHOICES  # noqa: F401 (cli API)
from network.instance_norm import validate_wt_layer
from utils.cpus import pool_size


# Set by scripts/_launch.sh: how many leading arguments are the shell script's own flags
# (the rest are the user's). Only flags the user sets warn that they have no effect.
SCRIPT_ARGC_ENV = "BLINDNET_SCRIPT_ARGC"


def build_parser(script="train"):
    """The parser of ``train.py`` / ``valid.py`` / ``infer.py``.

    All three accept every flag; ``valid.py`` / ``infer.py`` list only the flags they read
    in ``--help`` (``cli.flags.SCRIPT_FLAGS``).
    """
    if script not in SCRIPTS:
        raise ValueError(f"script must be one of {tuple(SCRIPTS)}, got {script!r}")
    parser = argparse.ArgumentParser(
        prog=f"{script}.py", description=SCRIPTS[script],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_flag(parser)
    add_official_flags(parser)
    add_robustnet_flags(parser)
    add_framework_flags(parser)
    add_evaluation_flags(parser)
    add_legacy_flags(parser)
    hide_unread_flags(parser, script)
    return parser


def validate_args(args, parser, script="train", user_flags=None):
    """Check values the parser cannot check alone; take the model flags from ``--snapshot``
    (:func:`cli.model_flags.resolve_model_flags`); warn about ignored flags among
    ``user_flags`` (dests; None: all).

    Raises ``parser.error`` (exit code 2 with a message naming the flag) on bad input, and
    exits 2 with one ``<script>.py: error:`` line when a model flag contradicts the checkpoint.
    """
    if args.wt_layer is not None:  # as given; the checkpoint's is checked where it is read
        try:
            validate_wt_layer(args.wt_layer)
        except ValueError as exc:
            parser.error(str(exc))
    try:
        resolve_model_flags(args, script)
    except ModelFlagError as exc:
        parser.exit(2, f"{script}.py: error: {exc}\n")
    except ValueError as exc:  # a malformed --arch_options item
        parser.error(str(exc))
    try:  # the dataset, evaluation and loss options are validated where they are defined
        _check_dataset_names(args)
        _check_arch_settings(args)
        datasets.check_options(dataset_options(args), flag_prefix="--")
        check_eval_settings(args.foggy_beta, args.eval_scales, args.eval_flip, args.corruptions,
                            args.severities, script)
        check_loss_options(criterion_kwargs(args))  # every loss term's own checks
    except ValueError as exc:
        parser.error(str(exc))
    _check_counts(args, parser)
    if not args.dist_timeout > 0:
        parser.error(f"--dist_timeout must be > 0 minutes, got {args.dist_timeout}")
    if args.lr_schedule == "scl-poly":
        parser.error("--lr_schedule scl-poly is not supported (the official scripts use poly)")
    if script == "infer" and args.images is None and not args.val_dataset:
        parser.error("infer.py needs --val_dataset names or --images DIR|GLOB")
    if script != "infer" and args.images is not None:
        parser.error(f"--images is only read by infer.py (predictions for unlabelled images); "
                     f"{script}.py would ignore it. Use: python infer.py --snapshot CKPT "
                     f"--images {args.images}")
    _warn_unread(args, parser, script, user_flags)
    return args


def _warn_unread(args, parser, script, user_flags):
    """Warn (on rank 0 only) about each flag set away from its default that this run does
    not read; ``user_flags``: the dests the user gave (a launcher script's own are quiet)."""
    if os.environ.get("RANK", "0") != "0":
        return

    def set_by_user(name):
        return getattr(args, name) != parser.get_default(name) and \
            (user_flags is None or name in user_flags)

    for name in [n for n in IGNORED_FLAGS if set_by_user(n)]:
        warnings.warn(f"--{name} is accepted for compatibility but has no effect: "
                      f"{IGNORED_FLAGS[name]}", UserWarning, stacklevel=3)
    if script != "train":
        for action in parser._actions:
            if action.dest not in IGNORED_FLAGS and not reads_flag(script, action.dest) \
                    and action.dest != "help" and set_by_user(action.dest):
                readers = [f"{s}.py" for s in SCRIPTS if reads_flag(s, action.dest)]
                warnings.warn(f"{action.option_strings[0]} has no effect in {script}.py: "
                              f"{' and '.join(readers)} read(s) it", UserWarning, stacklevel=3)
    # valid/infer already warned above about the flags they never read
    unread = {name: why for name, why in _unread_flags(args).items()
              if script == "train" or reads_flag(script, name)}
    if script == "train":
        unread.update(unread_loss_flags(criterion_kwargs(args)))
    for name, why in unread.items():
        if set_by_user(name):
            warnings.warn(f"--{name} has no effect in this run: {why}", UserWarning,
                          stacklevel=3)


def user_given_flags(parser, argv, environ=None):
    """The dests ``argv`` sets after the launcher script's own leading arguments
    (``$BLINDNET_SCRIPT_ARGC`` of them); None when no launcher said so."""
    environ = os.environ if environ is None else environ
    try:
        own = int(environ.get(SCRIPT_ARGC_ENV, ""))
    except ValueError:
        return None
    if own < 0 or own > len(argv):
        return None
    dests = set()
    for token in argv[own:]:
        action = parser._option_string_actions.get(token.split("=", 1)[0])
        if action is not None:
            dests.add(action.dest)
    return dests


def _check_arch_settings(args):
    """Flags that must fit ``--arch``: ``--arch_options`` keys, and for the ``network.vfm``
    segmenters (no instance norms, no BatchNorm) ``--wt_layer`` zeros, ``--norm_semantics
    modern`` and the default ``--norm_layer`` / ``--head_norm_layer``; ``--vit_in_blocks``
    only with them. Raises ValueError naming the flag."""
    arch_options(args)  # unknown keys, malformed items
    if not network.is_vfm_arch(args.arch):
        if args.vit_in_blocks is not None:
            raise ValueError(f"--vit_in_blocks: only network.vfm archs have ViT blocks (got "
                             f"--arch {args.arch})")
        return
    if any(args.wt_layer):
        raise ValueError(f"--wt_layer {' '.join(map(str, args.wt_layer))}: --arch {args.arch} "
                         f"has no instance-normalisation positions (use all zeros; --use_ca "
                         f"reads --vit_in_blocks instead)")
    if args.norm_semantics not in (None, DEFAULT_NORM_SEMANTICS):
        raise ValueError(f"--norm_semantics {args.norm_semantics}: --arch {args.arch} has no "
                         f"BatchNorm or instance norm (use {DEFAULT_NORM_SEMANTICS})")
    network.check_vfm_settings(args.arch, norm_layer=args.norm_layer,
                               head_norm_layer=args.head_norm_layer)


# Flags of the blindnet training preset that the rein preset does not read.
BLINDNET_PRESET_FLAGS = ("scale_min", "scale_max", "pre_size", "crop_nopad", "rrotate",
                         "color_aug", "gblur", "bblur")


def _unread_flags(args):
    """``{flag: why}`` of flags other settings of this run make ineffective."""
    unread = {}
    if args.train_preset == "rein":
        unread.update(dict.fromkeys(BLINDNET_PRESET_FLAGS, "--train_preset rein has its own "
                                    "resize range and photometric distortion"))
    if args.optimizer == "adamw":
        unread["momentum"] = "AdamW (--optimizer adamw) has no momentum"
    if args.eval_protocol == "rein":
        unread.update(dict.fromkeys(("sliding_window", "stride"), "--eval_protocol rein "
                                    "evaluates in Rein's 512/341 sliding windows"))
    return unread


def _check_counts(args, parser):
    """Iteration, batch, image and worker counts: ``parser.error`` naming the flag."""
    for flag in ("bs_mult", "bs_mult_val", "max_iter", "save_every", "log_every"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag} must be positive, got {getattr(args, flag)}")
    # Optional counts (None: their default); 0 or less would skip or loop silently:
    # --max_val_images 0 evaluates nothing (NaN mIoU), --val_every -1 validates every step,
    # --stop_at 0 never stops, --stride -8 crashes in the window loop.
    for flag in ("val_every", "stop_at", "max_val_images", "stride"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            parser.error(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
    if args.num_workers is not None and args.num_workers < 0:
        parser.error(f"--num_workers must be >= 0 (0: load in the main process), got "
                     f"{args.num_workers}")


# Flags that name datasets: a typo must fail at start-up, not after the training set's
# (possibly long) preparation or the model's loading.
DATASET_NAME_FLAGS = ("dataset", "val_dataset", "covstat_val_dataset")


def _check_dataset_names(args):
    """Raise ValueError naming the flag of the first unknown dataset name, or of a dataset
    that ``--val_dataset`` names twice (``bdd100k bdd-100k``: evaluated twice, and the
    second result would replace the first)."""
    for flag in DATASET_NAME_FLAGS:
        seen = {}  # canonical name -> the spelling given first
        for name in getattr(args, flag) or ():
            try:
                canonical = datasets.parse_dataset_name(name)[0]
            except ValueError as exc:
                raise ValueError(f"--{flag}: {exc}") from None
            if flag == "val_dataset" and canonical in seen:
                raise ValueError(f"--val_dataset names {canonical} twice ({seen[canonical]!r} "
                                 f"and {name!r}); give each dataset once")
            seen.setdefault(canonical, name)


def parse_args(script="train", argv=None):
    """Parse and validate ``argv`` (``sys.argv[1:]`` when None) for ``script``.

    ``--config FILE`` settings come first and the command line wins (cli/config_files.py);
    ``args.config_files`` lists every file read, bases included (recorded in args.json and
    the checkpoints). Bad values exit with code 2 and ``<script>.py: error: --flag ...``
    (argparse's way; a config file's bad key or value is named with its file). For
    ``train`` the derived defaults are filled in (:func:`_train_defaults`).
    """
    parser = build_parser(script)
    raw = sys.argv[1:] if argv is None else list(argv)
    try:
        argv, files = expand_argv(parser, raw)
    except ConfigError as exc:
        parser.error(str(exc))
    args = parser.parse_args(argv)
    args.script = script
    args.config_files = files
    # The launcher's count describes the command line of this process only.
    user_flags = user_given_flags(parser, raw) if raw == sys.argv[1:] else None
    validate_args(args, parser, script, user_flags)
    if script == "train":
        _train_defaults(args)
    return args


def _train_defaults(args):
    """Defaults train.py derives from other values (recorded in args.json as resolved)."""
    if args.norm_semantics is None:
        args.norm_semantics = DEFAULT_NORM_SEMANTICS
    if args.num_workers is None:
        # This process's share of the CPUs it may use (affinity / cgroup, not the node's).
        args.num_workers = pool_size(8, os.environ.get("LOCAL_WORLD_SIZE", 1))
    if args.test_mode:
        args.max_iter, args.max_val_images, args.num_workers = min(args.max_iter, 4), 2, 1
