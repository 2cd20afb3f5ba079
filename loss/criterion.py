"""The BlindNet objective (METHOD.md §3.6): the weighted sum of the enabled loss terms.

``total = main + 0.4 * aux + w1 * CML + w2 * CCL + w3 * CWCL + w4 * SDCL [+ wt_reg_weight *
wt]``, where ``main`` is the cross-entropy of both views (averaged) and ``aux`` that of the
original view's aux head; ``wt`` is RobustNet's whitening loss (IW / IRW / ISW,
:mod:`loss.whitening`). Each term declares itself (:mod:`loss.terms`); this module only sums
the enabled ones. Terms that are off are neither computed nor returned.
"""

from torch import nn

from loss.terms import (EMBEDDINGS, IN_FEATURES, TWO_VIEWS, TermInputs, loss_terms,
                        requirement, resolve_options)


class BlindNetCriterion(nn.Module):
    """All enabled loss terms and their weighted sum.

    Keywords (each at the default of its flag when not given, :mod:`loss.terms`): every loss
    flag (``use_ca``, ``use_cwcl``, ``use_sdcl``, ``w1``..``w4``, ``nce_T``,
    ``contrast_max_classes``, ``contrast_max_views``, ``num_patch``, ``cwcl_negatives``,
    ``cwcl_class_order``, ``wt_reg_weight``, ``relax_denom``, ...), the flags of other homes
    a term reads (``wt_layer``: the whitening loss is IW/IRW for a code 1, ISW for a code 2),
    ``ignore_index`` (255), ``class_weights`` (optional ``(C,)`` cross-entropy weights) and
    ``prediction`` (what the model predicts, ``loss.terms.PREDICTIONS``: the CE terms
    supervise pixel logits, the Mask2Former terms ``m2f_*`` mask predictions).
    An unknown keyword raises TypeError; a bad value ValueError naming its flag.

    ``forward(output, labels, generator=None)`` takes a :class:`network.ModelOutput` and
    ``labels (B, H, W)`` long; returns a dict of scalar tensors: the enabled terms in order
    (``main``, ``aux``, ``cml``, ``ccl``, ``cwcl``, ``sdcl``, ``wt``, ...), then ``total``. A
    two-view term on a single-view output raises ValueError.
    """

    def __init__(self, **options):
        super().__init__()
        self.options = resolve_options(options)
        self.terms = tuple(t for t in loss_terms() if t.enabled(self.options))
        if not self.terms:
            raise ValueError(f"no loss term is enabled for a model predicting "
                             f"{self.options['prediction']} (every weight flag is 0?)")
        self.weights = {t.name: t.weight_in(self.options) for t in self.terms}
        self.losses = nn.ModuleDict({t.name: t.build(self.options) for t in self.terms})

    def term(self, name):
        """The module of the enabled term ``name``, or None when it is off."""
        return self.losses[name] if name in self.losses else None

    @property
    def whitening_loss(self):
        """RobustNet's whitening loss (term ``wt``; the ISW schedule sets its masks) or None."""
        return self.term("wt")

    def requirement(self, need):
        """``"--use_cwcl needs"``: the enabled terms with ``need``, for messages ('' if none)."""
        return requirement(self.terms, need)

    @property
    def needs_embeddings(self):
        """Whether the model must run its projection heads (``with_embeddings``)."""
        return any(EMBEDDINGS in t.needs for t in self.terms)

    @property
    def needs_two_views(self):
        return any(TWO_VIEWS in t.needs for t in self.terms)

    @property
    def needs_in_features(self):
        """Whether the model must collect instance-norm outputs (a --wt_layer code 1 or 2)."""
        return any(IN_FEATURES in t.needs for t in self.terms)

    def forward(self, output, labels, generator=None):
        """``output``: :class:`network.ModelOutput`; ``labels``: ``(B, H, W)`` train ids."""
        if self.needs_two_views and not output.two_view:
            raise ValueError(f"{self.requirement(TWO_VIEWS)} two views: call the model with "
                             f"images_aug (a *_jitter training dataset)")
        inputs = TermInputs(output, labels.long(), generator)
        losses = {t.name: t.compute(self.losses[t.name], inputs) for t in self.terms}
        base, *rest = losses
        # The base is added as it is when its weight is 1 (the CE term ``main``), so sums
        # stay bit-identical to the official expression.
        first = losses[base] if self.weights[base] == 1.0 else self.weights[base] * losses[base]
        losses["total"] = first + sum(self.weights[name] * losses[name] for name in rest)
        return losses
