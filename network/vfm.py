"""Vision-foundation-model segmenters: a frozen DINOv2 trunk (with or without Rein) and a
Mask2Former head.

    model = ReinDinov2LMask2Former(pretrained="dinov2_vitl14_pretrain.pth")
    model.train(); out = model(images)            # MaskFormerOutput: 10 predictions
    model.eval(); scores = model(images)          # (B, 19, H, W) semantic scores

``ReinDinov2{S,B,L,G}Mask2Former``: Rein's recipe (docs/VFM_METHODS.md §2, §3.2): LoRA Reins
after every block of a frozen DINOv2 trunk with patch 16 and a 32x32 position grid, the
Rein queries feeding :class:`network.mask2former.ReinMask2FormerHead`.
``Dinov2{S,B,L,G}Mask2Former``: the frozen trunk alone (Rein's "frozen VFM" baseline), the
features computed without gradient, a head with learned queries. The state dict is laid
out as mmseg's (``backbone.*``, ``backbone.reins.*``, ``decode_head.*``); see
:mod:`network.vfm_weights` for loading released files.
"""

import warnings
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from network.dinov2 import VARIANTS, DinoVisionTransformer
from network.dinov2_weights import fit_dinov2_state, read_dinov2_file
from network.mask2former import Mask2FormerHead, ReinMask2FormerHead, semantic_inference
from network.rein import LoRAReins, ReinDinoVisionTransformer, feature_pyramid
from utils.labels import NUM_CLASSES

# §3.5: parameters whose name contains one of these get no weight decay (lr multiplier 1);
# so does every GroupNorm / LayerNorm parameter (mmengine's norm_decay_mult=0).
REIN_NO_DECAY_KEYS = ("learnable_tokens", "reins.scale", "query_embed", "level_embed", "norm")
FROZEN_NO_DECAY_KEYS = ("query_embed", "query_feat", "level_embed", "norm")
NORM_TYPES = (nn.GroupNorm, nn.LayerNorm)


class VFMSegmenter(nn.Module):
    """``backbone`` (a DINOv2 trunk, optionally with Reins) + ``decode_head`` (Mask2Former).

    Training forward: :class:`network.mask2former.MaskFormerOutput`. Eval forward: semantic
    scores ``(B, num_classes, H, W)`` (§5.10); inputs whose sides are not multiples of the
    patch size are zero-padded right/bottom and the scores cropped back (docs/DECISIONS.md
    D93). The trunk is frozen: no gradient, eval mode, whatever ``train()`` is called with.
    """

    def __init__(self, backbone, decode_head, no_decay_keys):
        super().__init__()
        self.backbone, self.decode_head = backbone, decode_head
        self.no_decay_keys = tuple(no_decay_keys)
        self.uses_rein = isinstance(backbone, ReinDinoVisionTransformer)
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

    def extract_features(self, images):
        """The four pyramid maps (strides p/4 .. 2p) and Rein's queries (or None)."""
        if self.uses_rein:
            maps, queries = self.backbone.forward_features(images)
        else:
            with torch.no_grad():
                maps = self.backbone.out_index_maps(images)
            maps, queries = [feat.detach() for feat in maps], None
        return feature_pyramid(maps), queries

    def forward(self, images, images_aug=None, with_embeddings=False):
        """``images (B, 3, H, W)``, normalised. ``images_aug`` / ``with_embeddings`` (the
        CNN segmenters' two-view arguments) are not supported yet: ValueError if given."""
        if images_aug is not None or with_embeddings:
            raise ValueError(f"{type(self).__name__} has no two-view / embedding outputs "
                             f"(BlindNet's losses on a ViT are not implemented yet)")
        if self.training:
            feats, queries = self.extract_features(images)
            return self.decode_head(feats, queries)
        height, width = images.shape[-2:]
        patch = self.backbone.patch_size
        padded = F.pad(images, (0, -width % patch, 0, -height % patch))
        feats, queries = self.extract_features(padded)
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

    def load_trunk(self, state):
        """Load a DINOv2 state dict (released, converted, or chunked) strictly into the
        trunk, converting its patch size / position grid on load when they differ."""
        missing, unexpected = self.backbone.load_state_dict(
            fit_dinov2_state(state, self.backbone), strict=False)
        missing = [k for k in missing if not k.startswith("reins.")]
        if missing or unexpected:
            raise ValueError(f"DINOv2 weights do not fit the trunk: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")


def trunk_kwargs(variant, img_size, patch_size, depth, num_register_tokens):
    spec = dict(VARIANTS[variant])
    if depth is not None:
        spec["depth"] = depth
    registers = num_register_tokens > 0
    return dict(spec, img_size=img_size, patch_size=patch_size,
                num_register_tokens=num_register_tokens,
                interpolate_offset=0.0 if registers else 0.1, interpolate_antialias=registers)


def build_parts(variant, rein, num_classes=NUM_CLASSES, *, img_size=512, patch_size=16,
                depth=None, num_register_tokens=0, num_queries=100, lora_dim=16,
                num_decoder_layers=9, pixel_decoder_layers=6):
    """``(backbone, decode_head, no_decay_keys)`` of a DINOv2 ``variant`` segmenter, with
    LoRA Reins (rank ``lora_dim``, ``num_queries`` tokens per layer) if ``rein``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown DINOv2 variant {variant!r}; expected {', '.join(VARIANTS)}")
    vit = trunk_kwargs(variant, img_size, patch_size, depth, num_register_tokens)
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
            ``tools/convert_dinov2.py``; converted on load when needed); ``None`` (random
            trunk, with a warning) or ``False`` (random, deliberately).
        wt_layer: must be absent or all zero (a ViT has no instance-norm positions).
        **kwargs: :func:`build_parts` sizes (``depth``, ``num_queries``, layer counts,
            ``img_size``, ``patch_size``, ``num_register_tokens``, ``lora_dim``).
    """

    variant, rein = None, None

    def __init__(self, num_classes=NUM_CLASSES, pretrained=None, wt_layer=None, **kwargs):
        if wt_layer is not None and any(wt_layer):
            raise ValueError(f"--wt_layer {list(wt_layer)}: the DINOv2 models have no "
                             f"instance-normalisation positions (use all zeros)")
        super().__init__(*build_parts(self.variant, self.rein, num_classes, **kwargs))
        if pretrained:
            self.load_trunk(read_dinov2_file(pretrained))
        elif pretrained is None:
            warnings.warn(f"no DINOv2 weights given: the {self.variant} trunk is random (pass "
                          f"--pretrained PATH to a dinov2_{self.variant}*_pretrain.pth file)",
                          stacklevel=2)


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
