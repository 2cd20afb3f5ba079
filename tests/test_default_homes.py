"""Every default has one home: a library default of a setting that is also a flag equals the
flag's default (docs/CONFIGS.md, "Defaults").

The flag's default is the official argparse's (docs/METHOD.md §7): that is what train.py does
without the flag, and the rule is that a library caller who leaves the argument out gets the
same. Recipe values (the official scripts' 768 crop, 15 classes, IN placement ...) live in
configs/, never as library defaults.

To cover a new library default, add its callable to :data:`FLAG_HOMES`: every parameter named
like a flag is compared (:data:`RENAMED` maps parameters whose name differs from the flag).
"""

import dataclasses
import inspect

import pytest

import cli
import datasets
import engine.config
import engine.evaluation
import engine.isw
import engine.trainer
import loss
import loss.contrastive
import loss.whitening
import network
import network.deepv3
from utils import dist as dist_utils

# Callables (functions, classes, dataclasses) whose parameter defaults are flag defaults.
FLAG_HOMES = [
    network.get_net, network.deepv3.build_deepv3, *network.deepv3.FACTORIES.values(),
    engine.config.OptimConfig, engine.config.FitConfig, engine.config.StepConfig,
    engine.evaluation.evaluate, engine.evaluation.predict_logits,
    engine.evaluation.load_eval_model, engine.trainer.new_train_state,
    engine.isw.ISWMaskSchedule, datasets.build_eval_dataset, dist_utils.init_distributed,
    loss.whitening.WhiteningLoss, loss.contrastive.ClassWiseContrastiveLoss,
    loss.contrastive.SemanticDisentanglementContrastiveLoss,
]
# Homes of valid.py / infer.py settings, compared with valid.py's defaults (train.py derives
# some of its own, e.g. --norm_semantics modern; valid.py's None means "the checkpoint's").
EVAL_HOMES = {engine.evaluation.load_eval_model}
# (callable, parameter) -> the flag (dest) it is the library side of, where the names differ;
# None: a parameter named like a flag that is another setting.
RENAMED = {
    (engine.isw.ISWMaskSchedule, "num_images"): "covstat_images",
    (dist_utils.init_distributed, "timeout_minutes"): "dist_timeout",
    # the statistics loader's own workers (train.py passes min(2, --num_workers))
    (engine.isw.ISWMaskSchedule, "num_workers"): None,
    (loss.contrastive.ClassWiseContrastiveLoss, "temperature"): "nce_T",
    (loss.contrastive.ClassWiseContrastiveLoss, "max_classes"): "contrast_max_classes",
    (loss.contrastive.ClassWiseContrastiveLoss, "max_views"): "contrast_max_views",
    (loss.contrastive.ClassWiseContrastiveLoss, "negatives"): "cwcl_negatives",
    (loss.contrastive.ClassWiseContrastiveLoss, "class_order"): "cwcl_class_order",
    (loss.contrastive.SemanticDisentanglementContrastiveLoss, "temperature"): "nce_T",
}
# BlindNetCriterion takes **options: its defaults are the loss terms' flag declarations
# (tests/loss/test_terms.py compares those with the parser).


def script_defaults(script="train"):
    """What ``<script>.py`` runs with when no flag is given (derived defaults resolved)."""
    return vars(cli.parse_args(script, ["--val_dataset", "cityscapes"]))


def flag_defaults(home):
    return script_defaults("valid" if home in EVAL_HOMES else "train")


def library_defaults(home):
    """``{parameter: default}`` of a callable, class or dataclass (parameters without one
    are left out)."""
    if dataclasses.is_dataclass(home):
        return {f.name: f.default for f in dataclasses.fields(home)
                if f.default is not dataclasses.MISSING}
    target = home.__init__ if inspect.isclass(home) else home
    return {name: p.default for name, p in inspect.signature(target).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def pairs():
    """Every (callable, parameter, flag) compared."""
    for home in FLAG_HOMES:
        flags = flag_defaults(home)
        for name in library_defaults(home):
            flag = RENAMED.get((home, name), name)
            if flag is not None and flag in flags:
                yield home, name, flag


def _id(home, name):
    return f"{home.__module__}.{home.__qualname__}:{name}"


PAIRS = list(pairs())


@pytest.mark.parametrize("home, name, flag", [pytest.param(h, n, f, id=_id(h, n))
                                              for h, n, f in PAIRS])
def test_a_library_default_equals_its_flag_default(home, name, flag):
    library, cli_default = library_defaults(home)[name], flag_defaults(home)[flag]
    assert _plain(library) == _plain(cli_default), (
        f"{_id(home, name)} defaults to {library!r}, --{flag} to {cli_default!r}: one of "
        f"them is wrong (the flag keeps the official argparse default; a recipe value "
        f"belongs in configs/)")


def test_every_listed_home_has_a_flag_default_to_compare():
    compared = {home for home, _, _ in PAIRS}
    assert [_id(h, "") for h in FLAG_HOMES if h not in compared] == []
    renamed = {key for key, flag in RENAMED.items() if flag is not None}
    assert {(h, n) for h, n, _ in PAIRS} >= renamed


@pytest.mark.parametrize("name", sorted(set(datasets.DEFAULT_OPTIONS) & set(script_defaults())))
def test_a_dataset_option_default_equals_its_flag_default(name):
    assert datasets.DEFAULT_OPTIONS[name] == script_defaults()[name], name


def test_the_dataset_options_the_cli_passes_are_all_compared():
    assert set(cli.TRAIN_DATASET_OPTIONS) <= set(datasets.DEFAULT_OPTIONS) & set(script_defaults())


@pytest.mark.parametrize("script", ["valid", "infer"])
def test_the_three_entry_points_share_each_flag_default(script):
    """A flag of valid.py / infer.py defaults as train.py's does (before train.py derives
    its own --norm_semantics and --num_workers)."""
    train, other = cli.build_parser("train"), cli.build_parser(script)
    for action in other._actions:
        if action.dest != "help" and action.dest in {a.dest for a in train._actions}:
            assert other.get_default(action.dest) == train.get_default(action.dest), action.dest
