"""Rein (CVPR 2024): learnable tokens that refine a frozen ViT's patch tokens after every block.

docs/VFM_METHODS.md §2. :class:`Reins` and :class:`LoRAReins` take the official constructor
arguments and have the official parameter names (``learnable_tokens`` or
``learnable_tokens_a``/``_b``, ``scale``, ``mlp_token2feat``, ``mlp_delta_f``, ``transform``,
``merge``), so Rein's released adapter weights (``backbone.reins.*``) load strictly.
:class:`ReinDinoVisionTransformer` is a DINOv2 trunk whose blocks are each followed by the
Reins update, with the trunk frozen as Rein freezes it (§2.6).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from network.dinov2 import DinoVisionTransformer


class Reins(nn.Module):
    """Per-layer learnable tokens and the shared layers that turn them into a feature update.

    Args:
        num_layers: trunk blocks (one token set each).
        embed_dims: trunk width C.
        patch_size: used only in the token init bound ``sqrt(6 / (3 p^2 + C))``.
        query_dims: width of the decoder queries made by :meth:`return_auto` (256).
        token_length: tokens per layer m (100; token 0 is a softmax sink, §2.3).
        use_softmax: attention ``softmax(f T^T / sqrt(C))`` (True in every config).
        link_token_to_query: :meth:`return_auto` also returns the decoder queries.
        scale_init: init of the learned scalar ``scale`` on the update.
        zero_mlp_delta_f: ``scale`` becomes the constant 1.0 and ``mlp_delta_f`` starts at 0.
    """

    def __init__(self, num_layers, embed_dims, patch_size, query_dims=256, token_length=100,
                 use_softmax=True, link_token_to_query=True, scale_init=0.001,
                 zero_mlp_delta_f=False):
        super().__init__()
        self.num_layers, self.embed_dims, self.patch_size = num_layers, embed_dims, patch_size
        self.query_dims, self.token_length = query_dims, token_length
        self.use_softmax, self.link_token_to_query = use_softmax, link_token_to_query
        self.scale_init, self.zero_mlp_delta_f = scale_init, zero_mlp_delta_f
        self.create_model()

    def token_init_bound(self):
        """``v`` of the uniform token init ``U(-v, v)`` (§2.2)."""
        return math.sqrt(6.0 / (3 * self.patch_size ** 2 + self.embed_dims))

    def create_model(self):
        """The parameters (§2.2); :class:`LoRAReins` swaps the token tensor."""
        dims = self.embed_dims
        self.learnable_tokens = nn.Parameter(torch.empty(self.num_layers, self.token_length, dims))
        bound = self.token_init_bound()
        nn.init.uniform_(self.learnable_tokens, -bound, bound)
        self.scale = nn.Parameter(torch.tensor(float(self.scale_init)))
        # nn.Linear's own init is the kaiming_uniform(a=sqrt(5)) Rein asks for.
        self.mlp_token2feat = nn.Linear(dims, dims)
        self.mlp_delta_f = nn.Linear(dims, dims)
        self.transform = nn.Linear(dims, self.query_dims)
        self.merge = nn.Linear(3 * self.query_dims, self.query_dims)
        if self.zero_mlp_delta_f:
            del self.scale
            self.scale = 1.0
            nn.init.zeros_(self.mlp_delta_f.weight)
            nn.init.zeros_(self.mlp_delta_f.bias)

    def get_tokens(self, layer):
        """Tokens of ``layer``: ``(m, C)``; ``layer == -1``: all layers ``(L, m, C)``."""
        return self.learnable_tokens if layer == -1 else self.learnable_tokens[layer]

    def forward_delta_feat(self, feats, tokens, layer):
        """The update before ``scale`` (§2.3): ``feats (N, B, C)``, ``tokens (m, C)`` ->
        ``mlp_delta_f(S[..., 1:] @ mlp_token2feat(T[1:]) + feats)``, ``(N, B, C)``."""
        attn = torch.einsum("nbc,mc->nbm", feats, tokens)
        if self.use_softmax:
            attn = (attn * self.embed_dims ** -0.5).softmax(dim=-1)
        # Token 0 is in the softmax's denominator but contributes nothing (§2.3, §8 item 15).
        delta = torch.einsum("nbm,mc->nbc", attn[:, :, 1:], self.mlp_token2feat(tokens[1:]))
        return self.mlp_delta_f(delta + feats)

    def forward(self, feats, layer, batch_first=True, has_cls_token=True):
        """Refine the tokens after block ``layer``: ``f + scale * delta(f)``; the cls token
        (first token, when ``has_cls_token``) passes unchanged.

        ``feats``: ``(B, 1+N, C)`` with ``batch_first`` (the default, as the issue spells the
        signature; the official trunk always passes True), else ``(1+N, B, C)`` (the
        official code's keyword default is False). Returns the same layout.
        """
        if batch_first:
            feats = feats.transpose(0, 1)
        if has_cls_token:
            cls_token, feats = feats[:1], feats[1:]
        feats = feats + self.forward_delta_feat(feats, self.get_tokens(layer), layer) * self.scale
        if has_cls_token:
            feats = torch.cat([cls_token, feats], dim=0)
        return feats.transpose(0, 1) if batch_first else feats

    def queries(self):
        """The decoder queries ``(m, query_dims)`` from all layers' tokens (§2.4): per
        channel the max, mean and last layer, interleaved ``[max_c, mean_c, last_c, ...]``,
        through ``merge``. They depend on the parameters only, not on the image."""
        tokens = self.transform(self.get_tokens(-1)).permute(1, 2, 0)  # (m, d, L)
        pooled = torch.stack([tokens.amax(dim=-1), tokens.mean(dim=-1), tokens[..., -1]], -1)
        return self.merge(pooled.flatten(-2))

    def return_auto(self, feats):
        """``(feats, queries)`` when ``link_token_to_query``, else ``feats``."""
        if self.link_token_to_query:
            return feats, self.queries()
        return feats


class LoRAReins(Reins):
    """:class:`Reins` with low-rank tokens ``T_i = A_i @ B_i``: ``learnable_tokens_a``
    ``(L, m, r)`` and ``learnable_tokens_b`` ``(L, r, C)``, ``r = lora_dim`` (16 in Rein)."""

    def __init__(self, lora_dim=16, **kwargs):
        self.lora_dim = lora_dim  # create_model (called by Reins.__init__) needs it
        super().__init__(**kwargs)

    def token_init_bound(self):
        return math.sqrt(6.0 / (3 * self.patch_size ** 2
                                + math.sqrt(self.embed_dims * self.lora_dim)))

    def create_model(self):
        super().create_model()
        del self.learnable_tokens
        bound = self.token_init_bound()
        self.learnable_tokens_a = nn.Parameter(
            torch.empty(self.num_layers, self.token_length, self.lora_dim))
        self.learnable_tokens_b = nn.Parameter(
            torch.empty(self.num_layers, self.lora_dim, self.embed_dims))
        nn.init.uniform_(self.learnable_tokens_a, -bound, bound)
        nn.init.uniform_(self.learnable_tokens_b, -bound, bound)

    def get_tokens(self, layer):
        if layer == -1:
            return self.learnable_tokens_a @ self.learnable_tokens_b
        return self.learnable_tokens_a[layer] @ self.learnable_tokens_b[layer]


def freeze_except(module, trainable):
    """Rein's freezing (§2.6): ``requires_grad`` only for parameters whose name contains
    ``trainable``; eval mode for every direct child whose name does not start with it."""
    for name, param in module.named_parameters():
        param.requires_grad_(trainable in name)
    for name, child in module.named_children():
        if not name.startswith(trainable):
            child.eval()


class ReinDinoVisionTransformer(DinoVisionTransformer):
    """A frozen DINOv2 trunk with ``reins`` applied after every block (§2.1).

    ``reins`` is a :class:`Reins`/:class:`LoRAReins` with ``num_layers`` equal to the depth;
    the other arguments are :class:`network.dinov2.DinoVisionTransformer`'s. Only parameters
    named ``*reins*`` train; the trunk stays in eval mode whatever ``train()`` is called with.
    Register tokens, which Rein's code lacks, are treated like the cls token: never refined.
    """

    def __init__(self, reins, **vit_kwargs):
        super().__init__(**vit_kwargs)
        if reins.num_layers != len(self.blocks) or reins.embed_dims != self.embed_dim:
            raise ValueError(f"Reins for {reins.num_layers} layers of width {reins.embed_dims} "
                             f"do not fit a trunk of {len(self.blocks)} x {self.embed_dim}")
        self.reins = reins
        self.train()

    def train(self, mode=True):
        super().train(mode)
        freeze_except(self, "reins")
        return self

    def forward_features(self, x, masks=None, collect=()):
        """``(B, 3, H, W)`` -> ``(maps, queries)``: for each of :attr:`out_indices` the
        refined patch tokens ``(B, C, H/p, W/p)`` (no final norm, §1.6), and the decoder
        queries ``(m, query_dims)`` (or only ``maps`` without ``link_token_to_query``).

        ``collect``: further block indices whose refined patch maps are returned too, as
        ``(that output, [maps of collect])`` (BlindNet's feature losses on a ViT).
        """
        tokens, maps = self.prepare_tokens(x, masks), {}
        prefix, wanted = self.num_prefix_tokens, set(self.out_indices) | set(collect)
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            patches = self.reins(tokens[:, prefix:], index, batch_first=True,
                                 has_cls_token=False)
            tokens = torch.cat([tokens[:, :prefix], patches], dim=1)
            if index in wanted:
                maps[index] = self.tokens_to_map(patches, x.shape[-2:])
        out = self.reins.return_auto([maps[i] for i in self.out_indices])
        return (out, [maps[i] for i in collect]) if collect else out


PYRAMID_SCALES = (4.0, 2.0, 1.0, 0.5)


def feature_pyramid(maps, scales=PYRAMID_SCALES):
    """Rein's neck (§1.6): the four stride-p maps resized bilinearly
    (``align_corners=False``) by 4, 2, 1 and 0.5, giving strides p/4, p/2, p, 2p."""
    if len(maps) != len(scales):
        raise ValueError(f"feature_pyramid takes {len(scales)} maps, got {len(maps)}")
    return [feat if scale == 1.0 else
            F.interpolate(feat, scale_factor=scale, mode="bilinear", align_corners=False)
            for feat, scale in zip(maps, scales)]
