"""Loss terms that describe themselves, and the registry that collects them by name.

A :class:`LossTerm` declares everything the framework needs to know about one term of the
objective: its name (its key in the criterion's loss dict), its weight (a fixed number or
the :class:`LossFlag` that sets it), the switch flag that turns it on, the other flags it
reads, what it needs from the model output (:data:`TWO_VIEWS`, :data:`EMBEDDINGS`,
:data:`IN_FEATURES`) and the checkpoint key of the state it keeps. Each flag is declared
once, with its default (the flag's only home), next to the loss that reads it.

A term registers itself with :func:`register_term` in the module that implements it, and
:func:`loss_terms` imports every module of the ``loss`` package once: a new term is one new
file (docs/ARCHITECTURE.md, "Adding a method"). Derived from the registry, not listed
elsewhere: the loss flags of the command line (``cli/flags.py``), the criterion's keywords
(``cli/convert.py``), the weight flags ``train.py`` validates, the option checks of
``cli/parser.py``, the two-view / embedding / IN-feature requirements and their messages,
and the checkpoint keys ``engine/checkpointing.py`` saves and restores.
"""

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from utils.labels import IGNORE_LABEL

# What a term may need from the model output.
TWO_VIEWS = "two views"          # the augmented view too (a *_jitter training set)
EMBEDDINGS = "embeddings"        # the projection heads' embeddings (with_embeddings=True)
IN_FEATURES = "IN features"      # collected instance-norm outputs (a --wt_layer code 1 or 2)
NEEDS = (TWO_VIEWS, EMBEDDINGS, IN_FEATURES)

# What the segmenter predicts, and so which supervised terms apply: per-pixel class logits
# (the DeepLabV3+ segmenters: ViewOutput.logits, aux logits) or per-query class and mask
# logits of every decoder layer (Mask2Former heads: ViewOutput.class_logits / mask_logits).
PIXEL_LOGITS = "pixel logits"
MASK_PREDICTIONS = "mask predictions"
PREDICTIONS = (PIXEL_LOGITS, MASK_PREDICTIONS)

# Where a flag comes from (its --help group): the official BlindNet scripts, RobustNet's
# method flags, or an addition of this framework.
OFFICIAL, ROBUSTNET, FRAMEWORK = "official", "robustnet", "framework"
FLAG_GROUPS = (OFFICIAL, ROBUSTNET, FRAMEWORK)

# Criterion settings that are not flags (BlindNetCriterion keywords); any term's build reads
# them from its options.
# ``prediction``: one of :data:`PREDICTIONS` (``network.prediction_kind(arch)``).
CRITERION_SETTINGS = {"ignore_index": IGNORE_LABEL, "class_weights": None,
                      "prediction": PIXEL_LOGITS}


@dataclass(frozen=True)
class LossFlag:
    """One command-line flag of the loss terms, declared once.

    ``type``: ``bool`` for a switch (``store_true``, default False), else the value type (of
    each value with ``nargs``); ``aliases``: further option strings (``--contrast_max_view``);
    ``group``: one of :data:`FLAG_GROUPS`. A list default is given as a tuple (immutable);
    :attr:`initial` is the value a run starts from.
    """

    name: str
    default: object
    help: str
    type: type = float
    aliases: tuple = ()
    choices: tuple | None = None
    nargs: str | None = None
    group: str = OFFICIAL

    def __post_init__(self):
        if self.group not in FLAG_GROUPS:
            raise ValueError(f"--{self.name}: group must be one of {FLAG_GROUPS}, got "
                             f"{self.group!r}")
        if self.type is bool and self.default is not False:
            raise ValueError(f"--{self.name}: a switch defaults to False")

    @property
    def initial(self):
        """The default as a run's value (a fresh list for ``nargs`` flags)."""
        return list(self.default) if self.nargs else self.default


@dataclass(frozen=True)
class LossTerm:
    """One term of the objective ``total = sum(weight * term)``.

    Args:
        name: key in the loss dict (``main``, ``cwcl``, ...).
        build: ``build(options) -> nn.Module``; ``options`` maps every loss flag, every
            setting named in ``reads`` and :data:`CRITERION_SETTINGS` to its value. Raises
            ValueError naming the flag on a bad value (``cli/parser.py`` reports it).
        compute: ``compute(module, inputs) -> scalar tensor``; ``inputs`` a
            :class:`TermInputs`.
        weight: a fixed weight, or the :class:`LossFlag` that sets it.
        switch: the ``bool`` flag that turns the term on; without one the term is on when
            its weight flag is > 0, or always (a fixed weight).
        flags: the other flags the term (or its schedule) reads.
        needs: a subset of :data:`NEEDS`.
        reads: flags of other homes that ``build`` reads (``wt_layer``).
        state: checkpoint key of the state the term keeps across steps (None: none).
        order: position in the loss dict and in the sum.
        prediction: the kind of model prediction the term supervises (one of
            :data:`PREDICTIONS`; the term is off for models predicting the other kind), or
            None for terms that read only features (any model).
        check: optional ``check(options)`` run even when the term is off (flags that must fit
            together); raises ValueError naming the flag.
        unread: optional ``unread(options) -> {flag name: why}``: its flags this run ignores.
    """

    name: str
    build: Callable
    compute: Callable
    weight: object = 1.0
    switch: LossFlag | None = None
    flags: tuple = ()
    needs: frozenset = frozenset()
    reads: tuple = ()
    state: str | None = None
    order: int = 100
    prediction: str | None = None
    check: Callable | None = None
    unread: Callable | None = None

    def __post_init__(self):
        if self.name == "total" or not self.name.isidentifier():
            raise ValueError(f"a loss term name must be an identifier other than 'total', got "
                             f"{self.name!r}")
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"loss term {self.name!r}: unknown needs {sorted(unknown)}; "
                             f"expected some of {NEEDS}")
        if self.prediction is not None and self.prediction not in PREDICTIONS:
            raise ValueError(f"loss term {self.name!r}: prediction must be one of "
                             f"{PREDICTIONS} or None, got {self.prediction!r}")
        if self.switch is not None and self.switch.type is not bool:
            raise ValueError(f"loss term {self.name!r}: its switch --{self.switch.name} must "
                             f"be a bool flag")

    @property
    def own_flags(self):
        """The term's flags: switch, weight flag, then the others."""
        weight = (self.weight,) if isinstance(self.weight, LossFlag) else ()
        switch = () if self.switch is None else (self.switch,)
        return switch + weight + tuple(self.flags)

    @property
    def trigger(self):
        """How a user turns the term on (``--use_ca``, ``--wt_reg_weight``), for messages."""
        if self.switch is not None:
            return f"--{self.switch.name}"
        if isinstance(self.weight, LossFlag):
            return f"--{self.weight.name}"
        return f"the {self.name} loss"

    def enabled(self, options):
        """Whether the term is on for these (resolved) options."""
        if self.prediction is not None and self.prediction != options["prediction"]:
            return False
        if self.switch is not None:
            return bool(options[self.switch.name])
        if isinstance(self.weight, LossFlag):
            return options[self.weight.name] > 0
        return True

    def weight_in(self, options):
        return options[self.weight.name] if isinstance(self.weight, LossFlag) else self.weight


class TermInputs:
    """What a term's ``compute`` reads in one step.

    ``output``: a :class:`network.ModelOutput`; ``labels``: ``(B, H, W)`` long train ids;
    ``generator``: the sampling generator (or None). :attr:`preds` / :attr:`preds_aug` are
    the ``(B, h, w)`` argmax of the original / augmented view's decoder logits, computed
    (without gradient) once per step for every term that reads them.
    """

    def __init__(self, output, labels, generator=None):
        self.output, self.labels, self.generator = output, labels, generator
        self._shared = {}

    def shared(self, key, compute):
        """``compute()`` once per step for every term that asks with ``key`` (e.g. the
        Mask2Former matching, whose result three terms read)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    @cached_property
    def preds(self):
        with torch.no_grad():
            return self.output.original.dec_logits.argmax(dim=1)

    @cached_property
    def preds_aug(self):
        with torch.no_grad():
            return self.output.augmented.dec_logits.argmax(dim=1)


_TERMS = {}           # name -> LossTerm, in registration order
_DISCOVERED = False   # every module of the package imported (:func:`loss_terms`)


def register_term(term):
    """Add ``term`` to the registry; returns it. A second term of the same name, or a flag
    name declared twice with different settings, raises ValueError."""
    known = _TERMS.get(term.name)
    if known is not None and known is not term:
        raise ValueError(f"loss term {term.name!r} is registered twice")
    _TERMS[term.name] = term
    try:
        _unique_flags(_TERMS.values())
    except ValueError:
        del _TERMS[term.name]
        raise
    return term


def _discover():
    """Import every module of the ``loss`` package once: each registers its terms."""
    global _DISCOVERED
    if not _DISCOVERED:
        for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
            importlib.import_module(f"{__package__}.{module.name}")
        _DISCOVERED = True


def loss_terms():
    """Every registered :class:`LossTerm`, in ``order`` (ties by name)."""
    _discover()
    return tuple(sorted(_TERMS.values(), key=lambda t: (t.order, t.name)))


def term(name):
    """The registered term ``name``; ValueError listing the names otherwise."""
    terms = {t.name: t for t in loss_terms()}
    if name not in terms:
        raise ValueError(f"unknown loss term {name!r}; registered: {sorted(terms)}")
    return terms[name]


def _unique_flags(terms):
    flags = {}
    for t in terms:
        for flag in t.own_flags:
            if flags.setdefault(flag.name, flag) != flag:
                raise ValueError(f"--{flag.name} is declared twice with different settings "
                                 f"(loss term {t.name!r}); declare it once and share it")
    return flags


def loss_flags():
    """Every loss flag, once, in term order (the order of ``--help``)."""
    return tuple(_unique_flags(loss_terms()).values())


def weight_flags():
    """Names of the flags that set a term's weight (each must be finite and >= 0)."""
    return tuple(t.weight.name for t in loss_terms() if isinstance(t.weight, LossFlag))


def criterion_options():
    """The keyword names of ``BlindNetCriterion`` that come from flags: every loss flag and
    every flag of another home a term reads (``cli/convert.py`` passes them)."""
    names = [flag.name for flag in loss_flags()]
    return tuple(names + [n for t in loss_terms() for n in t.reads if n not in names])


def state_keys():
    """Checkpoint keys of the state the terms keep (``isw_mask``)."""
    return tuple(t.state for t in loss_terms() if t.state is not None)


def resolve_options(options):
    """``options`` with every missing loss flag at its default, the ``reads`` settings at
    None and :data:`CRITERION_SETTINGS` at theirs. An unknown name raises TypeError."""
    known = {**{flag.name: flag.initial for flag in loss_flags()},
             **{name: None for t in loss_terms() for name in t.reads}, **CRITERION_SETTINGS}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"unknown loss option(s) {unknown}; the options are {sorted(known)}")
    return {**known, **options}


def check_options(options):
    """Validate loss options the way the criterion would use them: every term's ``check``,
    then a build of each enabled term. Raises ValueError naming the flag."""
    options = resolve_options(options)
    for t in loss_terms():
        if t.check is not None:
            t.check(options)
    for t in loss_terms():
        if t.enabled(options):
            t.build(options)


def unread_flags(options):
    """``{flag name: why}`` for the loss flags this run ignores (as the terms declare)."""
    options = resolve_options(options)
    unread = {}
    for t in loss_terms():
        if t.unread is not None:
            unread.update(t.unread(options))
    return unread


def requirement(terms, need):
    """``"--use_ca and --use_cwcl need"`` / ``"--use_cwcl needs"``: how the enabled ``terms``
    that have ``need`` are named in messages (empty string when none)."""
    triggers = list(dict.fromkeys(t.trigger for t in terms if need in t.needs))
    if not triggers:
        return ""
    if len(triggers) == 1:
        return f"{triggers[0]} needs"
    return f"{', '.join(triggers[:-1])} and {triggers[-1]} need"
