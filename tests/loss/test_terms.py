"""Loss terms that describe themselves: one home per default, and everything else derived."""

import inspect
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import cli
import loss
from config import REPO_ROOT
from loss import terms
from loss.contrastive import ClassWiseContrastiveLoss, SemanticDisentanglementContrastiveLoss
from loss.whitening import WhiteningLoss
from network import ModelOutput, ViewOutput

# Constructor parameters a loss flag sets: class -> {parameter: flag}.
CONSTRUCTOR_FLAGS = {
    ClassWiseContrastiveLoss: {"temperature": "nce_T", "max_classes": "contrast_max_classes",
                               "max_views": "contrast_max_views", "negatives": "cwcl_negatives",
                               "class_order": "cwcl_class_order"},
    SemanticDisentanglementContrastiveLoss: {"temperature": "nce_T", "num_patch": "num_patch"},
    WhiteningLoss: {"relax_denom": "relax_denom"},
}


@pytest.mark.parametrize("script", ["train", "valid", "infer"])
def test_flag_and_constructor_defaults_agree(script):
    parser = cli.build_parser(script)
    flags = {flag.name: flag for flag in loss.loss_flags()}
    for name, flag in flags.items():
        assert parser.get_default(name) == flag.initial, name
    criterion = loss.BlindNetCriterion()
    for name in flags:
        assert criterion.options[name] == parser.get_default(name), name
    for cls, params in CONSTRUCTOR_FLAGS.items():
        signature = inspect.signature(cls)
        for param, flag in params.items():
            assert signature.parameters[param].default == parser.get_default(flag), \
                f"{cls.__name__}({param}=...) vs --{flag}"


def test_contrast_max_classes_default_is_the_official_argparse_one():
    # Official train.py: 10 (K_max) and 10 (V); the official scripts pass 15 and 50 themselves.
    args = cli.parse_args("train", ["--use_cwcl"])
    assert (args.contrast_max_classes, args.contrast_max_views) == (10, 10)
    cwcl = loss.BlindNetCriterion(use_cwcl=True).term("cwcl")
    assert (cwcl.max_classes, cwcl.max_views) == (10, 10)


BUILTIN_TERMS = ("main", "m2f_cls", "m2f_mask", "m2f_dice", "aux", "cml", "ccl", "cwcl", "sdcl",
                 "wt")
BUILTIN_WEIGHT_FLAGS = ("m2f_cls_weight", "m2f_mask_weight", "m2f_dice_weight", "w1", "w2", "w3",
                        "w4", "wt_reg_weight")


def _among(found, known):
    """``found`` restricted to ``known``: a term file added later (one file, nothing else to
    edit) does not change what the built-ins are or their order."""
    return tuple(name for name in found if name in known)


def test_builtin_terms_flags_and_state_come_from_the_registry():
    assert _among([t.name for t in loss.loss_terms()], BUILTIN_TERMS) == BUILTIN_TERMS
    assert _among(loss.weight_flags(), BUILTIN_WEIGHT_FLAGS) == BUILTIN_WEIGHT_FLAGS
    assert "isw_mask" in loss.state_keys()
    assert "wt_layer" in loss.criterion_options()
    source = (REPO_ROOT / "cli" / "flags.py").read_text()
    written = [f.name for f in loss.loss_flags() if f'"--{f.name}"' in source]
    assert not written, f"loss flags written by hand in cli/flags.py: {written}"


NEW_TERM_FILE = """
from torch import nn
from loss.terms import LossFlag, LossTerm, register_term
W_NEW = LossFlag("w_new", 0.0, "weight of a term in a file nothing imports")
register_term(LossTerm("new", weight=W_NEW, build=lambda o: nn.Identity(),
                       compute=lambda module, inputs: inputs.labels.float().mean()))
"""


def test_a_new_term_is_one_new_file(tmp_path):
    # A copy of loss/ plus one file that no other module imports: the registry finds it, and
    # the command line has its flag (a fresh interpreter, so nothing is cached).
    shutil.copytree(REPO_ROOT / "loss", tmp_path / "loss",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "loss" / "new_term.py").write_text(NEW_TERM_FILE)
    code = ("import cli, loss; print(*[t.name for t in loss.loss_terms()]); "
            "print(cli.parse_args('train', ['--w_new', '0.5']).w_new)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    names = out[0].split()
    assert "new" in names and _among(names, BUILTIN_TERMS) == BUILTIN_TERMS
    assert out[1:] == ["0.5"]


class _MeanLogit(nn.Module):
    def __init__(self, scale):
        super().__init__()
        if scale <= 0:
            raise ValueError(f"--toy_scale must be > 0, got {scale}")
        self.scale = scale

    def forward(self, logits):
        return self.scale * logits.float().mean()


TOY_SWITCH = loss.LossFlag("use_toy", False, "the toy term", type=bool)
TOY_WEIGHT = loss.LossFlag("w_toy", 0.5, "toy weight")
TOY_SCALE = loss.LossFlag("toy_scale", 2.0, "toy scale", group=terms.FRAMEWORK)
TOY = loss.LossTerm("toy", order=70, weight=TOY_WEIGHT, switch=TOY_SWITCH, flags=(TOY_SCALE,),
                    needs=frozenset({loss.TWO_VIEWS}), state="toy_state",
                    build=lambda o: _MeanLogit(o["toy_scale"]),
                    compute=lambda module, x: module(x.output.augmented.logits))


@pytest.fixture
def toy_term(monkeypatch):
    """The registry with one more term (restored afterwards)."""
    terms.loss_terms()
    monkeypatch.setattr(terms, "_TERMS", dict(terms._TERMS))
    return loss.register_term(TOY)


def _output(generator, two_view=True):
    def view():
        return ViewOutput(torch.randn(2, 5, 8, 8, generator=generator),
                          torch.randn(2, 5, 4, 4, generator=generator), [])
    return ModelOutput(view(), torch.randn(2, 5, 2, 2, generator=generator),
                       view() if two_view else None)


def test_a_registered_term_gets_flags_checks_weight_and_state(toy_term, capsys):
    args = cli.parse_args("train", ["--use_toy", "--toy_scale", "3"])
    assert (args.use_toy, args.w_toy, args.toy_scale) == (True, 0.5, 3.0)
    assert "--toy_scale" in cli.build_parser("train").format_help()
    assert "w_toy" in loss.weight_flags() and "toy_state" in loss.state_keys()
    criterion = loss.BlindNetCriterion(**cli.criterion_kwargs(args))
    assert criterion.needs_two_views and criterion.requirement(loss.TWO_VIEWS) == \
        "--use_toy needs"
    generator = torch.Generator().manual_seed(0)
    output, labels = _output(generator), torch.randint(0, 5, (2, 8, 8), generator=generator)
    losses = criterion(output, labels)
    assert list(losses) == ["main", "aux", "toy", "total"]
    torch.testing.assert_close(losses["toy"], 3.0 * output.augmented.logits.mean())
    torch.testing.assert_close(losses["total"], losses["main"] + 0.4 * losses["aux"]
                               + 0.5 * losses["toy"])
    with pytest.raises(ValueError, match="--use_toy needs two views"):
        criterion(_output(generator, two_view=False), labels)
    with pytest.raises(SystemExit):  # the term's own check, reported by the parser
        cli.parse_args("train", ["--use_toy", "--toy_scale", "0"])
    assert "--toy_scale must be > 0, got 0.0" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cli.parse_args("train", ["--toy_scale", "0"])  # off: the term is not built


def test_registry_refuses_conflicts(toy_term):
    with pytest.raises(ValueError, match="registered twice"):
        loss.register_term(loss.LossTerm("toy", build=nn.Identity, compute=None))
    clash = loss.LossFlag("w_toy", 0.7, "another default")
    with pytest.raises(ValueError, match="--w_toy is declared twice"):
        loss.register_term(loss.LossTerm("toy2", weight=clash, build=nn.Identity, compute=None))
    names = [t.name for t in loss.loss_terms()]
    assert "toy" in names and "toy2" not in names
    with pytest.raises(ValueError, match="unknown needs"):
        loss.LossTerm("bad", needs=frozenset({"depth"}), build=nn.Identity, compute=None)
    with pytest.raises(TypeError, match="unknown loss option"):
        loss.BlindNetCriterion(use_cwc=True)
