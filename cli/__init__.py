"""The one command-line package of ``train.py``, ``valid.py``, ``infer.py`` (``demo.py`` has
its own few flags and drives ``train.main``).

Every flag of the official BlindNet scripts (METHOD.md §7) is accepted with its official
meaning. Official flags we do not implement are still accepted; :func:`validate_args`
warns about each one set away from its default, so nothing is ignored silently. Our
additions (DECISIONS.md) are grouped under "BlindNet framework". The ``--<name>_dir`` root
flags come from the dataset registry (``datasets.root_flags()``).

Only the entry points import this package: ``cli/flags.py`` holds the flags,
``cli/parser.py`` parses and validates them, ``cli/convert.py`` turns the namespace into the
plain values and dataclasses the library and ``engine`` take; nothing below ever sees the
namespace.
"""

from cli.convert import (TRAIN_DATASET_OPTIONS, arch_options, cache_dir, criterion_kwargs,
                         dataset_options, eval_dataset_options, fit_config, isw_settings,
                         load_eval_model, model_kwargs, model_norm_layers, optim_config,
                         plain_flags, read_snapshot, root_overrides, run_dir, step_config,
                         tb_logdir)
from cli.errors import ONE_LINE_ERRORS, error_line, one_line_errors
from cli.flags import IGNORED_FLAGS, SCRIPTS
from cli.parser import WT_LAYER_CHOICES, build_parser, parse_args, validate_args

__all__ = [
    "IGNORED_FLAGS", "ONE_LINE_ERRORS", "SCRIPTS", "TRAIN_DATASET_OPTIONS", "WT_LAYER_CHOICES",
    "arch_options", "build_parser", "cache_dir", "criterion_kwargs", "dataset_options",
    "error_line", "eval_dataset_options", "fit_config", "isw_settings", "load_eval_model",
    "model_kwargs", "model_norm_layers", "one_line_errors", "optim_config", "parse_args",
    "plain_flags", "read_snapshot", "root_overrides", "run_dir", "step_config",
    "tb_logdir", "validate_args",
]
