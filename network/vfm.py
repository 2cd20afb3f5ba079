"""Vision-foundation-model segmenters: a frozen DINOv2 trunk (with or without Rein) and a
Mask2Former head.

    model = ReinDinov2LMask2Former(pretrained="dinov2_vitl14_pretrain.pth")
    model.train(); out = model(images)            # ModelOutput: 10 mask predictions per view
    model.eval(); scores = model(images)          # (B, 19, H, W) semantic scores

``ReinDinov2{S,B,L,G}Mask2Former``: Rein's recipe (docs/VFM_METHODS.md §2, §3.2): LoRA Reins
after every block of a frozen DINOv2 trunk with patch 16 and a 32x32 position grid, the
Rein queries feeding :class:`network.mask2former.ReinMask2FormerHead`.
``Dinov2{S,B,L,G}Mask2Former``: the frozen trunk alone (Rein's "frozen VFM" baseline), the
features computed without gradient, a head with learned queries. The state dict is laid
out as mmseg's (``backbone.*``, ``backbone.reins.*``, ``decode_head.*``); see
:mod:`network.vfm_weights` for loading released files.
"""

import hashlib
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from network.dinov2 import VARIANTS, DinoVisionTransformer, default_out_indices
from network.dinov2_weights import fit_dinov2_state, read_dinov2_file
from network.heads import ProjectionHead, init_head_weights
from network.mask2former import Mask2FormerHead, ReinMask2FormerHead, semantic_inference
from network.output import ModelOutput, ViewOutput
from network.rein import LoRAReins, ReinDinoVisionTransformer, feature_pyramid
from utils.labels import NUM_CLASSES

# §3.5: parameters whose name contains one of these get no weight decay (lr multiplier 1);
# so does every GroupNorm / LayerNorm parameter (mmengine's norm_decay_mult=0).
REIN_NO_DECAY_KEYS = ("learnable_tokens", "reins.scale", "query_embed", "level_embed", "norm")
FROZEN_NO_DECAY_KEYS = ("query_embed", "query_feat", "level_embed", "norm")
NORM_TYPES = (nn.GroupNorm, nn.LayerNorm)
# BlindNet's covariance losses on a ViT (docs/VFM.md): instance-norm eps of the token maps.
TOKEN_IN_EPS = 1e-5


class MissingDinov2Weights(FileNotFoundError):
    """``pretrained=None``: no DINOv2 file given (nothing is ever downloaded)."""


def tensor_fingerprint(state):
    """SHA-256 of the names, dtypes, shapes and bytes of ``state`` (a dict of tensors): what
    a checkpoint that leaves the frozen trunk out records, so that a resume or an evaluation
    can tell whether the trunk it loaded is the one the run trained on."""
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key].detach().cpu().reshape(-1)
        digest.update(f"{key}:{value.dtype}:{tuple(state[key].shape)};".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class VFMSegmenter(nn.Module):
    """``backbone`` (a DINOv2 trunk, optionally with Reins) + ``decode_head`` (Mask2Former).

    Training forward: :class:`network.output.ModelOutput` whose views carry the per-layer
    class / mask logits (:meth:`forward_view`). Eval forward: semantic
    scores ``(B, num_classes, H, W)`` (§5.10); inputs whose sides are not multiples of the
    patch size are zero-padded right/bottom and the scores cropped back (docs/DECISIONS.md
    D93). The trunk is frozen: no gradient, eval mode, whatever ``train()`` is called with.
    """

    def __init__(self, backbone, decode_head, no_decay_keys, *, in_blocks=(), embeddings=False):
        super().__init__()
        self.backbone, self.decode_head = backbone, decode_head
        self.no_decay_keys = tuple(no_decay_keys)
        self.uses_rein = isinstance(backbone, ReinDinoVisionTransformer)
        self.in_blocks = check_in_blocks(in_blocks, len(backbone.blocks), self.uses_rein)
        if embeddings:  # BlindNet's projection heads on the pixel decoder's three maps
            channels = decode_head.pixel_decoder.mask_feature.out_channels
            self.projection_heads = nn.ModuleList(ProjectionHead(channels) for _ in range(3))
            init_head_weights(self.projection_heads)
        self.trunk_source = None  # {"source", "sha256"} of the DINOv2 file (load_trunk)
        self.train()

    @property
    def num_classes(self):
        return self.decode_head.num_classes

    @property
    def feature_info(self):
        """The pyramid the head reads (:class:`network.layers.FeatureInfo` per level):
        ``channels``, ``stride`` (p/4, p/2, p, 2p) and the trunk ``module`` of each level."""
        scales = (4.0, 2.0, 1.0, 0.5)
        pyramid = []
        for info, scale in zip(self.backbone.feature_info, scales):
            stride = info.stride / scale
            pyramid.append(replace(info, stride=int(stride) if stride.is_integer() else stride,
                                   module=f"backbone.{info.module}"))
        return pyramid

    def train(self, mode=True):
        super().train(mode)
        if not self.uses_rein:  # Rein's trunk freezes itself in its own train()
            self.backbone.eval()
            self.backbone.requires_grad_(False)
        return self

    def extract_features(self, images, collect=()):
        """The four pyramid maps (strides p/4 .. 2p), Rein's queries (or None) and the
        refined patch maps ``(B, C, H/p, W/p)`` of the blocks in ``collect`` (Rein only)."""
        if self.uses_rein:
            out = self.backbone.forward_features(images, collect=collect)
            (maps, queries), collected = out if collect else (out, [])
        else:
            with torch.no_grad():
                maps = self.backbone.out_index_maps(images)
            maps, queries, collected = [feat.detach() for feat in maps], None, []
        return feature_pyramid(maps), queries, collected

    def forward(self, images, images_aug=None, with_embeddings=False):
        """``images (B, 3, H, W)``, normalised.

        Training: a :class:`network.output.ModelOutput` whose views carry the per-layer
        ``class_logits`` / ``mask_logits`` (and, for BlindNet's losses, ``in_feats`` of
        :attr:`in_blocks`, ``embeddings`` with ``with_embeddings``; ``images_aug`` the
        second view). Eval: semantic scores ``(B, C, H, W)``.
        """
        if self.training:
            original = self.forward_view(images, with_embeddings)
            augmented = None
            if images_aug is not None:
                if images_aug.shape != images.shape:
                    raise ValueError(f"images_aug must have the shape of images "
                                     f"{tuple(images.shape)}, got {tuple(images_aug.shape)}")
                augmented = self.forward_view(images_aug, with_embeddings)
            return ModelOutput(original, aux_logits=None, augmented=augmented)
        if images_aug is not None:
            raise ValueError(f"{type(self).__name__} takes one view in eval mode")
        return self.scores(images)

    def forward_view(self, images, with_embeddings=False):
        """One training view: :class:`network.output.ViewOutput` (no per-pixel logits)."""
        if with_embeddings and not hasattr(self, "projection_heads"):
            raise ValueError(f"{type(self).__name__} was built without projection heads: "
                             f"build it with embeddings=True for CWCL/SDCL")
        patch = self.backbone.patch_size
        if images.shape[-2] % patch or images.shape[-1] % patch:
            raise ValueError(f"training inputs must have sides that are multiples of the patch "
                             f"size {patch}, got {tuple(images.shape[-2:])} (--crop_size)")
        feats, queries, collected = self.extract_features(images, self.in_blocks)
        out = self.decode_head(feats, queries)
        # BlindNet's IN features: the token maps instance-normalised (CML/CCL, docs/VFM.md).
        in_feats = [F.instance_norm(feat, eps=TOKEN_IN_EPS) for feat in collected]
        embeddings = None
        if with_embeddings:
            embeddings = [head(feat) for head, feat in zip(self.projection_heads,
                                                           out.pixel_features)]
        with torch.no_grad():  # the "decoder logits" whose argmax CWCL/SDCL read
            dec_scores = semantic_inference(*out.final, size=out.mask_logits[-1].shape[-2:])
        return ViewOutput(None, dec_scores, in_feats, embeddings, class_logits=out.class_logits,
                          mask_logits=out.mask_logits)

    def scores(self, images):
        """Eval: semantic scores ``(B, C, H, W)``, inputs padded to the patch (D93)."""
        height, width = images.shape[-2:]
        patch = self.backbone.patch_size
        padded = F.pad(images, (0, -width % patch, 0, -height % patch))
        feats, queries, _ = self.extract_features(padded)
        out = self.decode_head(feats, queries)
        scores = semantic_inference(*out.final, size=padded.shape[-2:])
        return scores[:, :, :height, :width]

    def param_rules(self):
        """``{name: (lr_mult, decay_mult)}`` for every trainable parameter (§3.5)."""
        norm_params = {f"{module_name}.{name}" if module_name else name
                       for module_name, module in self.named_modules()
                       if isinstance(module, NORM_TYPES)
                       for name, _ in module.named_parameters(recurse=False)}
        return {name: (1.0, 0.0 if name in norm_params
                       or any(key in name for key in self.no_decay_keys) else 1.0)
                for name, param in self.named_parameters() if param.requires_grad}

    def param_groups(self, lr, weight_decay):
        """Optimizer groups for ``torch.optim.AdamW``: one per ``(lr_mult, decay_mult)``,
        each with ``params``, ``names``, ``lr``, ``weight_decay``, ``lr_mult``,
        ``decay_mult``. Frozen parameters are left out (as Rein's constructor does)."""
        params = dict(self.named_parameters())
        groups = {}
        for name, mults in self.param_rules().items():
            groups.setdefault(mults, []).append(name)
        return [{"params": [params[n] for n in names], "names": names, "lr": lr * lr_mult,
                 "weight_decay": weight_decay * decay_mult, "lr_mult": lr_mult,
                 "decay_mult": decay_mult}
                for (lr_mult, decay_mult), names in sorted(groups.items())]

    def load_trunk(self, state, source=None):
        """Load a DINOv2 state dict (released, converted, or chunked) strictly into the
        trunk, converting its patch size / position grid on load when they differ.
        ``source`` (the file) is recorded with the trunk's fingerprint
        (:meth:`external_weights`)."""
        missing, unexpected = self.backbone.load_state_dict(
            fit_dinov2_state(state, self.backbone), strict=False)
        missing = [k for k in missing if not k.startswith("reins.")]
        if missing or unexpected:
            raise ValueError(f"DINOv2 weights{f' {source}' if source else ''} do not fit the "
                             f"trunk: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.trunk_source = {"source": None if source is None else str(source),
                             "sha256": tensor_fingerprint(self.trunk_state())}

    def trunk_state(self):
        """The frozen DINOv2 trunk's entries of :meth:`state_dict` (``backbone.*`` without
        ``backbone.reins.*``)."""
        return {key: value for key, value in self.state_dict().items()
                if key.startswith("backbone.") and not key.startswith("backbone.reins.")}

    def external_weights(self):
        """What a checkpoint may leave out because it comes unchanged from a file: the
        frozen trunk's keys with the DINOv2 file and its fingerprint, ``{"keys", "source",
        "sha256"}``; None when the trunk is random (it must then be saved)."""
        if self.trunk_source is None:
            return None
        return {"keys": sorted(self.trunk_state()), **self.trunk_source}


def check_in_blocks(in_blocks, depth, uses_rein):
    """``in_blocks`` as a tuple of block indices in ``0..depth-1``; ValueError naming
    ``--vit_in_blocks`` otherwise (and for a trunk without Rein, which has nothing to
    train under the covariance losses)."""
    blocks = tuple(int(b) for b in in_blocks or ())
    if blocks and not uses_rein:
        raise ValueError("--vit_in_blocks: the frozen trunk without Rein has no trainable "
                         "parameter before its blocks; CML/CCL need a Rein model")
    bad = [b for b in blocks if not 0 <= b < depth]
    if bad or len(set(blocks)) != len(blocks):
        raise ValueError(f"--vit_in_blocks {' '.join(map(str, blocks))}: expected distinct "
                         f"block indices in 0..{depth - 1}")
    return blocks


def trunk_kwargs(variant, img_size, patch_size, depth, num_register_tokens, out_indices=None):
    spec = dict(VARIANTS[variant])
    if depth is not None:
        spec["depth"] = depth
    registers = num_register_tokens > 0
    return dict(spec, img_size=img_size, patch_size=patch_size,
                num_register_tokens=num_register_tokens, out_indices=out_indices,
                interpolate_offset=0.0 if registers else 0.1, interpolate_antialias=registers)


def build_parts(variant, rein, num_classes=NUM_CLASSES, *, img_size=512, patch_size=16,
                depth=None, num_register_tokens=0, num_queries=100, lora_dim=16,
                num_decoder_layers=9, pixel_decoder_layers=6, out_indices=None):
    """``(backbone, decode_head, no_decay_keys)`` of a DINOv2 ``variant`` segmenter, with
    LoRA Reins (rank ``lora_dim``, ``num_queries`` tokens per layer) if ``rein``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown DINOv2 variant {variant!r}; expected {', '.join(VARIANTS)}")
    vit = trunk_kwargs(variant, img_size, patch_size, depth, num_register_tokens,
                       None if out_indices is None else tuple(out_indices))
    if rein:
        reins = LoRAReins(num_layers=vit["depth"], embed_dims=vit["embed_dim"],
                          patch_size=patch_size, token_length=num_queries, lora_dim=lora_dim)
        backbone = ReinDinoVisionTransformer(reins, **vit)
        head_class, keys = ReinMask2FormerHead, REIN_NO_DECAY_KEYS
    else:
        backbone = DinoVisionTransformer(**vit)
        head_class, keys = Mask2FormerHead, FROZEN_NO_DECAY_KEYS
    head = head_class(in_channels=(vit["embed_dim"],) * 4, num_classes=num_classes,
                      num_queries=num_queries, num_decoder_layers=num_decoder_layers,
                      pixel_decoder_layers=pixel_decoder_layers)
    return backbone, head, keys


class _VFMModel(VFMSegmenter):
    """A named recipe: ``variant`` and ``rein`` fixed by the subclass.

    Args:
        num_classes: classes (19).
        pretrained: a DINOv2 weight file (released 14-patch, or converted by
            ``tools/convert_dinov2.py``; converted on load when needed), or ``False`` for a
            random trunk on purpose; ``None`` raises :class:`MissingDinov2Weights` (nothing
            is downloaded, and a random trunk is never a silent default).
        wt_layer: must be absent or all zero (a ViT has no instance-norm positions).
        in_blocks: blocks whose refined patch maps, instance-normalised, are the training
            output's ``in_feats`` (BlindNet's CML/CCL on a ViT; Rein models only).
        embeddings: build BlindNet's projection heads on the pixel decoder (CWCL/SDCL).
        **kwargs: :func:`build_parts` sizes (``depth``, ``num_queries``, layer counts,
            ``img_size``, ``patch_size``, ``num_register_tokens``, ``lora_dim``,
            ``out_indices``).
    """

    variant, rein = None, None

    def __init__(self, num_classes=NUM_CLASSES, pretrained=None, wt_layer=None, in_blocks=(),
                 embeddings=False, **kwargs):
        if wt_layer is not None and any(wt_layer):
            raise ValueError(f"--wt_layer {' '.join(map(str, wt_layer))}: the DINOv2 models "
                             f"have no instance-normalisation positions (use all zeros)")
        if pretrained is None:
            raise MissingDinov2Weights(
                f"no DINOv2 weights for the {self.variant} trunk: pass --pretrained PATH (a "
                f"dinov2_{self.variant}*_pretrain.pth file, released or converted; nothing is "
                f"downloaded, docs/VFM.md) or --pretrained none for a random trunk")
        super().__init__(*build_parts(self.variant, self.rein, num_classes, **kwargs),
                         in_blocks=in_blocks, embeddings=embeddings)
        if pretrained:
            self.load_trunk(read_dinov2_file(pretrained), source=pretrained)

    @classmethod
    def default_in_blocks(cls, depth=None, out_indices=None, **_):
        """The blocks CML/CCL read unless ``--vit_in_blocks`` says otherwise: the first three
        the head reads (ViT-L: 7, 11, 15; BlindNet's IN layers sit after the first three
        of its four stages)."""
        depth = VARIANTS[cls.variant]["depth"] if depth is None else depth
        return tuple(dict.fromkeys(out_indices or default_out_indices(depth)))[:3]


def _recipe(name, variant, rein, description):
    """A named :class:`_VFMModel` subclass for ``variant`` (with Reins if ``rein``)."""
    return type(name, (_VFMModel,), {"variant": variant, "rein": rein, "__doc__": description,
                                      "__module__": __name__, "__qualname__": name})


_REIN = "Rein on a frozen DINOv2 {} (patch 16) + Mask2Former with the Rein queries{}."
_FROZEN = "Frozen DINOv2 {} (patch 16) + Mask2Former with learned queries{}."
ReinDinov2SMask2Former = _recipe("ReinDinov2SMask2Former", "vits14", True,
                                 _REIN.format("ViT-S/14", ""))
ReinDinov2BMask2Former = _recipe("ReinDinov2BMask2Former", "vitb14", True,
                                 _REIN.format("ViT-B/14", ""))
ReinDinov2LMask2Former = _recipe("ReinDinov2LMask2Former", "vitl14", True,
                                 _REIN.format("ViT-L/14", ": the published recipe"))
ReinDinov2GMask2Former = _recipe("ReinDinov2GMask2Former", "vitg14", True,
                                 _REIN.format("ViT-g/14 (SwiGLU)", ""))
Dinov2SMask2Former = _recipe("Dinov2SMask2Former", "vits14", False, _FROZEN.format("ViT-S/14", ""))
Dinov2BMask2Former = _recipe("Dinov2BMask2Former", "vitb14", False, _FROZEN.format("ViT-B/14", ""))
Dinov2LMask2Former = _recipe("Dinov2LMask2Former", "vitl14", False,
                             _FROZEN.format("ViT-L/14", ": Rein's frozen-VFM baseline"))
Dinov2GMask2Former = _recipe("Dinov2GMask2Former", "vitg14", False,
                             _FROZEN.format("ViT-g/14 (SwiGLU)", ""))

FACTORIES = {cls.__name__: cls for cls in (
    ReinDinov2SMask2Former, ReinDinov2BMask2Former, ReinDinov2LMask2Former,
    ReinDinov2GMask2Former, Dinov2SMask2Former, Dinov2BMask2Former, Dinov2LMask2Former,
    Dinov2GMask2Former)}
