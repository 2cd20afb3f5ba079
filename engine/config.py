"""Plain settings the engine takes (``cli`` builds them from the command line)."""

from dataclasses import dataclass, field
from pathlib import Path


OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class OptimConfig:
    """The optimizer and the poly LR stepped every iteration (METHOD.md §4).

    ``optimizer``: ``sgd`` (the official one: momentum, weight decay, one group) or
    ``adamw`` (Rein's, docs/VFM_METHODS.md §3.5: betas 0.9/0.999, eps 1e-8, over the model's
    ``param_groups(lr, weight_decay)`` when it has them, each group's lr and weight decay
    scaled by its ``lr_mult`` / ``decay_mult``; ``momentum`` unused).
    """

    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_iter: int = 30000
    poly_exp: float = 0.9
    optimizer: str = "sgd"

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"--optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")


@dataclass(frozen=True)
class StepConfig:
    """How one training step runs."""

    two_view: bool                # batches carry ``image_aug`` (BlindNet's second view)
    with_embeddings: bool         # the criterion needs projection-head embeddings
    amp: str = "off"              # off | bf16 | fp16 (utils/precision.py)
    channels_last: bool = False


@dataclass(frozen=True)
class RunRecord:
    """What every checkpoint (and ``val_history.jsonl``) records about how the run started."""

    command: str = ""                          # the real command line (argv of train.main)
    flags: dict = field(default_factory=dict)  # plain flag values: checkpoint["args"]
    norm_semantics: str = "modern"             # which normalisation semantics trains
    config_files: tuple = ()                   # --config files read, bases first (configs/)
    model: dict = field(default_factory=dict)  # engine.model_spec.model_entry: what evaluates it


@dataclass(frozen=True)
class FitConfig:
    """The training loop: length, cadence of logs / saves / validations, and what checkpoints
    record about the run."""

    run_dir: Path
    max_iter: int
    batch_size: int                      # per process (--bs_mult)
    log_every: int = 50
    save_every: int = 1000
    val_every: int | None = None         # None: validate after every epoch
    stop_at: int | None = None           # save last.pth and stop here, no final validation
    record: RunRecord = field(default_factory=RunRecord)
