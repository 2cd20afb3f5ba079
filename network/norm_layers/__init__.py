"""Normalisation layers of our own, one file each, and :class:`NormLayer`, what a layer declares.

Every file of this package defines one layer class and declares it as::

    NORM_LAYER = NormLayer("my_norm", MyNorm2d, collected=False, ...)

:mod:`network.norms` finds the files here (no list to extend) and puts each ``NORM_LAYER``
beside PyTorch's BatchNorm / InstanceNorm entries; from then on ``--norm_layer my_norm``,
``--head_norm_layer my_norm`` and ``--wt_layer ... my_norm ...`` build it, and the rest of the
framework treats it by the properties declared here, never by its class.
"""

from dataclasses import dataclass, field

IMAGENET_ALL = "all"            # every tensor of the layer must come from the ImageNet file
IMAGENET_MATCHING = "matching"  # what the file has under its name and shape; the rest stays
IMAGENET_RULES = (IMAGENET_ALL, IMAGENET_MATCHING)


@dataclass(frozen=True)
class NormLayer:
    """A named normalisation layer and what the framework must know about it.

    Calling it builds the layer: ``entry(num_features, **kwargs)`` is
    ``entry.cls(num_features, **kwargs, **entry.options)`` (a trunk passes e.g. its ``eps``;
    the entry's own ``options`` win), so an entry is a timm-style ``norm_layer`` callable.

    Attributes:
        name: the name flags and configs use.
        cls: the ``nn.Module`` class built; constructor ``(num_features, ..., eps=...)``,
            forward ``(B, C, H, W) -> (B, C, H, W)``.
        options: constructor keywords fixed by this name (e.g. ``affine=True``).
        collected: the output is appended to ``ViewOutput.in_feats`` (the features CML/CCL
            and the RobustNet whitening losses read) wherever ``--wt_layer`` places it; the
            ReLU after it is then not in place. Such a layer cannot be a ``--norm_layer``.
        unit_affine_init: the trunk/head init sets ``weight`` 1 and ``bias`` 0 (else the
            layer's own init stands).
        imagenet: how ImageNet weights load into it under strict loading
            (:data:`IMAGENET_ALL`: the file has this layer, every tensor must come from it;
            :data:`IMAGENET_MATCHING`: a layer added to or replacing one of the ImageNet
            network: the file's tensors with its names and shapes load, its other tensors
            keep their init, and the file's other tensors under its name stay unused).
        per_image: statistics over one image's pixels only, so a 1x1 map (the ASPP
            image-pooling branch) cannot be normalised.
        torch12_batch_statistics: under ``--norm_semantics torch1.2`` it normalises with the
            statistics of the whole batch in training (TORCH12_SEMANTICS C1); the class must
            then be an ``nn.modules.instancenorm._InstanceNorm``.
        torch12_frozen_affine: under ``torch1.2`` its ``weight``/``bias`` are never trained
            (C2).
        normalises: it normalises its input, so it can stand where a norm stands. False for a
            layer that only transforms features (a statistics perturbation such as DSU, a
            style mixer): it is only *added* at a ``--wt_layer`` block position, and refused
            as ``--norm_layer`` / ``--head_norm_layer`` and at a stem position (where the
            layer *replaces* the trunk's norm).
        synced_statistics: its forward reduces the statistics its buffers are updated from
            over the process group, so the buffers stay equal on every rank and DDP need not
            broadcast them (``engine/ddp.py``).
        summary: one line for ``--help`` and docs.
    """

    name: str
    cls: type
    options: dict = field(default_factory=dict)
    collected: bool = False
    unit_affine_init: bool = True
    imagenet: str = IMAGENET_MATCHING
    per_image: bool = False
    torch12_batch_statistics: bool = False
    torch12_frozen_affine: bool = False
    normalises: bool = True
    synced_statistics: bool = False
    summary: str = ""

    def __post_init__(self):
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"norm layer name {self.name!r}: use lower_case_with_underscores")
        if self.imagenet not in IMAGENET_RULES:
            raise ValueError(f"norm layer {self.name}: imagenet must be one of "
                             f"{IMAGENET_RULES}, got {self.imagenet!r}")

    def __call__(self, num_features, **kwargs):
        return self.cls(num_features, **{**kwargs, **self.options})

    def properties(self):
        """The declared behaviour (what entries sharing a class must agree on)."""
        return (self.collected, self.unit_affine_init, self.imagenet, self.per_image,
                self.torch12_batch_statistics, self.torch12_frozen_affine, self.normalises,
                self.synced_statistics)
