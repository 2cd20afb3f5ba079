"""Start-up checks of training flags whose bad values PyTorch reports without naming the flag.

Each check raises ValueError whose message starts with the flag and gives the allowed range;
``train.py`` turns it into an exit. The crop size is checked against the model by
:func:`network.input_size.check_train_crop` (it needs the network).
"""

import math


def _number(flag, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"--{flag} must be a number, got {value!r}")


def check_optimizer_flags(lr, weight_decay, momentum, max_iter, poly_exp):
    """``--lr`` > 0, ``--weight_decay`` >= 0, 0 <= ``--momentum`` < 1, ``--max_iter`` >= 1,
    ``--poly_exp`` >= 0 (all finite)."""
    for flag, value in (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum),
                        ("poly_exp", poly_exp)):
        _number(flag, value)
        if math.isinf(value):
            raise ValueError(f"--{flag} must be finite, got {value}")
    if lr <= 0:
        raise ValueError(f"--lr must be > 0, got {lr}")
    if weight_decay < 0:
        raise ValueError(f"--weight_decay must be >= 0, got {weight_decay}")
    if not 0 <= momentum < 1:
        raise ValueError(f"--momentum must be in [0, 1), got {momentum}")
    if poly_exp < 0:
        raise ValueError(f"--poly_exp must be >= 0, got {poly_exp}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"--max_iter must be an integer >= 1, got {max_iter!r}")


def check_loss_weights(weights):
    """Every loss weight (``{"w1": 0.2, ...}``; the weight flags: ``loss.weight_flags()``)
    finite and >= 0."""
    for flag, value in weights.items():
        _number(flag, value)
        if not 0 <= value < math.inf:
            raise ValueError(f"--{flag} (a loss weight) must be finite and >= 0, got {value}")


def check_batch_size(bs_mult, world_size, sync_batchnorm):
    """``--bs_mult`` >= 1, and >= 2 unless SyncBatchNorm pools the batch of several processes.

    The ASPP image-pooling branch averages each feature map to 1x1 and normalises it with
    BatchNorm; in training BatchNorm needs more than one value per channel, i.e. a batch of
    at least two images over the ranks that share its statistics.
    """
    if isinstance(bs_mult, bool) or not isinstance(bs_mult, int) or bs_mult < 1:
        raise ValueError(f"--bs_mult must be an integer >= 1, got {bs_mult!r}")
    if bs_mult == 1 and not (sync_batchnorm and world_size > 1):
        where = ("in a single process" if world_size == 1 else
                 f"in each of {world_size} processes without SyncBatchNorm (CPU / gloo)")
        raise ValueError(
            f"--bs_mult 1 {where} cannot train: the ASPP image-pooling BatchNorm sees one "
            f"1x1 value per channel (PyTorch: 'Expected more than 1 value per channel when "
            f"training'). Use --bs_mult >= 2, or several GPU processes (torchrun "
            f"--nproc_per_node N), where SyncBatchNorm pools the batch over the processes")
