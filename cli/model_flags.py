"""``--arch`` / ``--wt_layer`` / ``--norm_semantics`` / ``--arch_options`` /
``--norm_layer`` / ``--head_norm_layer`` from the ``--snapshot`` checkpoint.

valid.py, infer.py and train.py ``--snapshot`` (not ``--resume``) build the model the
checkpoint records (``engine.model_spec``); a flag left out takes its value, a contradicting
flag is refused naming both values unless ``--snapshot_partial``. The checkpoint is mapped,
not read (``mmap``), so this costs little even for ResNet-101 files; a file that cannot be
loaded is reported where it is really loaded, with the flags' defaults in the meantime.
"""

from cli.convert import option_text, parse_arch_options
from cli.flags import MODEL_DEFAULTS
from engine.model_spec import resolve_from_checkpoint
from utils.checkpoint import CheckpointError, load_checkpoint


def loads_model_from_snapshot(args, script):
    """Whether this run builds its model from ``--snapshot`` (train.py: not when resuming)."""
    return bool(args.snapshot) and (script != "train" or not args.resume)


def resolve_model_flags(args, script):
    """Fill ``args.arch``, ``args.wt_layer``, ``args.norm_semantics``, ``args.arch_options``
    (``KEY=VALUE`` strings), ``args.norm_layer`` and ``args.head_norm_layer`` in place.

    ``args.model_from_checkpoint`` lists the flags taken from the checkpoint. train.py may
    set another ``--norm_semantics`` than the checkpoint's (a new run may train its weights
    in the other mode). Raises ``engine.model_spec.ModelFlagError``, or ValueError for a
    malformed ``--arch_options`` item.
    """
    args.model_from_checkpoint = []
    checkpoint = None
    if loads_model_from_snapshot(args, script):
        try:
            checkpoint = load_checkpoint(args.snapshot, mmap=True)
        except (CheckpointError, FileNotFoundError):
            checkpoint = None  # named when the run loads it
    if checkpoint is not None:
        given = {"arch": args.arch, "wt_layer": args.wt_layer, "num_classes": None,
                 "norm_semantics": args.norm_semantics,
                 "arch_options": parse_arch_options(args.arch_options) or None,
                 "norm_layer": args.norm_layer, "head_norm_layer": args.head_norm_layer}
        settings, taken = resolve_from_checkpoint(
            given, checkpoint, args.snapshot, partial=args.snapshot_partial,
            free=("norm_semantics",) if script == "train" else ())
        args.arch, args.wt_layer = settings["arch"], settings["wt_layer"]
        args.norm_semantics = settings["norm_semantics"]
        args.arch_options = [f"{key}={option_text(value)}"
                             for key, value in (settings["arch_options"] or {}).items()]
        args.norm_layer = settings["norm_layer"]
        args.head_norm_layer = settings["head_norm_layer"]
        args.model_from_checkpoint = [f"--{field}" for field in taken if field != "num_classes"
                                      and (field != "arch_options" or args.arch_options)]
    for key, default in MODEL_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, list(default) if isinstance(default, list) else default)
    return args

