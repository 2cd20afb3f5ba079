"""DINOv2 vision transformers with the released checkpoints' parameter names.

    model = build_dinov2("vitl14")                           # dinov2_vitl14_pretrain.pth
    model = build_dinov2("vitl14", num_register_tokens=4)    # dinov2_vitl14_reg4_pretrain.pth
    model = build_dinov2("vitl14", patch_size=16, img_size=512)  # Rein's converted weights

Facts: docs/VFM_METHODS.md §1. ``state_dict()`` names and shapes equal the released files
(§1.5), so they load with ``strict=True``; ``get_intermediate_layers`` has the official
semantics; the position embedding is interpolated for any input size as the official code
does (§1.3): bicubic with the ``+0.1`` scale-factor offset for models without registers,
bicubic to the exact size with antialiasing for the ``reg4`` models.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from network.layers import FeatureInfo
from network.vit_layers import Block, PatchEmbed

# §1.1: width, depth, heads and FFN of the four released trunks (mlp_ratio 4 for all).
VARIANTS = {
    "vits14": {"embed_dim": 384, "depth": 12, "num_heads": 6, "ffn": "mlp"},
    "vitb14": {"embed_dim": 768, "depth": 12, "num_heads": 12, "ffn": "mlp"},
    "vitl14": {"embed_dim": 1024, "depth": 24, "num_heads": 16, "ffn": "mlp"},
    "vitg14": {"embed_dim": 1536, "depth": 40, "num_heads": 24, "ffn": "swiglu"},
}

# The blocks (0-based) whose outputs feed a segmentation head. ViT-L: Rein's [7, 11, 15, 23]
# (§1.6). The other depths are not published by Rein: a quarter-spaced choice (D91).
DEFAULT_OUT_INDICES = {12: (2, 5, 8, 11), 24: (7, 11, 15, 23), 40: (9, 19, 29, 39)}


def default_out_indices(depth):
    """Rein's out indices for ``depth`` 24, a quarter-spaced choice otherwise."""
    if depth in DEFAULT_OUT_INDICES:
        return DEFAULT_OUT_INDICES[depth]
    return tuple(max(round(depth * k / 4) - 1, 0) for k in (1, 2, 3, 4))


class DinoVisionTransformer(nn.Module):
    """A DINOv2 ViT: patch embedding, cls token, optional register tokens, blocks, final norm.

    Args:
        img_size, patch_size: the pre-training size; ``pos_embed`` has
            ``1 + (img_size // patch_size) ** 2`` rows.
        embed_dim, depth, num_heads, mlp_ratio, ffn: the architecture (``ffn`` ``"mlp"`` or
            ``"swiglu"``).
        num_register_tokens: 0 or 4 (``*_reg4`` models).
        interpolate_offset, interpolate_antialias: how ``pos_embed`` is resized for other
            inputs (§1.3): an offset > 0 resizes by ``scale_factor = (n + offset) / M``,
            0 by ``size = n``.
        init_values: LayerScale init (overwritten by a checkpoint).
        drop_path_rate, drop_path_uniform: stochastic depth (linear decay over blocks unless
            uniform); 0 in every released model and in Rein.
        out_indices: the blocks published in :attr:`feature_info`.
    """

    def __init__(self, img_size=518, patch_size=14, embed_dim=1024, depth=24, num_heads=16,
                 mlp_ratio=4.0, ffn="mlp", num_register_tokens=0, interpolate_offset=0.1,
                 interpolate_antialias=False, init_values=1e-5, drop_path_rate=0.0,
                 drop_path_uniform=False, out_indices=None):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.patch_size, self.embed_dim = patch_size, embed_dim
        self.num_register_tokens = num_register_tokens
        self.interpolate_offset = interpolate_offset
        self.interpolate_antialias = interpolate_antialias
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, embed_dim))
        if num_register_tokens:
            self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
        # Plain floats, not torch.linspace: the model may be built on the meta device.
        rates = ([drop_path_rate] * depth if drop_path_uniform or depth == 1
                 else [drop_path_rate * i / (depth - 1) for i in range(depth)])
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, ffn, init_values, rate) for rate in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))  # used only with masks
        self.out_indices = tuple(default_out_indices(depth) if out_indices is None
                                 else out_indices)
        if any(not 0 <= i < depth for i in self.out_indices):
            raise ValueError(f"out_indices {self.out_indices} outside 0..{depth - 1}")
        self.init_weights()

    def init_weights(self):
        """DINOv2's random init: truncated normal (std 0.02) for ``pos_embed`` and linear
        weights, N(0, 1e-6) for the cls/register tokens, zero biases and mask token."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.num_register_tokens:
            nn.init.normal_(self.register_tokens, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def num_prefix_tokens(self):
        """cls + registers: the tokens before the patch tokens."""
        return 1 + self.num_register_tokens

    @property
    def feature_info(self):
        """One :class:`network.layers.FeatureInfo` per published block (``module`` its name,
        ``channels`` the width, ``stride`` the patch size), as the CNN trunks publish."""
        return [FeatureInfo(f"blocks.{i}", self.embed_dim, self.patch_size)
                for i in self.out_indices]

    def interpolate_pos_encoding(self, x, height, width):
        """``pos_embed`` for the tokens ``x (B, 1 + N, C)`` of an ``height x width`` image:
        ``(1, 1 + N, C)`` (the official argument order ``(x, w, h)``, whose ``w`` is the
        height). A resized embedding is cast to ``x``'s dtype; an unchanged one is returned
        as is, as officially.

        Unchanged for a square input with the pre-training patch count; otherwise the cls
        row is kept and the ``M x M`` patch rows are resized bicubically in float32 (§1.3).
        """
        grid, dtype = self.pos_embed.shape[1] - 1, x.dtype
        if x.shape[1] - 1 == grid and height == width:
            return self.pos_embed
        side = math.isqrt(grid)
        if side * side != grid:
            raise ValueError(f"pos_embed has {grid} patch rows, not a square grid")
        rows, cols = height // self.patch_size, width // self.patch_size
        pos = self.pos_embed.float()
        patch_pos = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        if self.interpolate_offset:
            # The source coordinates follow the given scale factor, not side / rows: this
            # is not the same as size=(rows, cols) (§1.3).
            scale = ((rows + self.interpolate_offset) / side,
                     (cols + self.interpolate_offset) / side)
            patch_pos = F.interpolate(patch_pos, scale_factor=scale, mode="bicubic",
                                      antialias=self.interpolate_antialias)
        else:
            patch_pos = F.interpolate(patch_pos, size=(rows, cols), mode="bicubic",
                                      antialias=self.interpolate_antialias)
        if patch_pos.shape[-2:] != (rows, cols):
            raise RuntimeError(f"pos_embed resized to {tuple(patch_pos.shape[-2:])}, "
                               f"expected {(rows, cols)}")
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([pos[:, :1], patch_pos], dim=1).to(dtype)

    def prepare_tokens(self, x, masks=None):
        """``(B, 3, H, W)`` -> ``(B, 1 + R + N, C)``: ``[cls, registers, patches]``.

        ``masks`` (B, N) bool replaces those patch tokens with ``mask_token``. Registers get
        no position embedding (they are inserted after it is added, §1.4).
        """
        batch, _, height, width = x.shape
        tokens = self.patch_embed(x)
        if masks is not None:
            tokens = torch.where(masks.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens)
        tokens = torch.cat([self.cls_token.expand(batch, -1, -1), tokens], dim=1)
        tokens = tokens + self.interpolate_pos_encoding(tokens, height, width)
        if self.num_register_tokens:
            registers = self.register_tokens.expand(batch, -1, -1)
            tokens = torch.cat([tokens[:, :1], registers, tokens[:, 1:]], dim=1)
        return tokens

    def forward_features(self, x, masks=None):
        """The official output dict: ``x_norm_clstoken`` (B, C), ``x_norm_regtokens``
        (B, R, C), ``x_norm_patchtokens`` (B, N, C), ``x_prenorm`` (B, 1+R+N, C), ``masks``."""
        tokens = self.prepare_tokens(x, masks)
        for block in self.blocks:
            tokens = block(tokens)
        normed = self.norm(tokens)
        prefix = self.num_prefix_tokens
        return {"x_norm_clstoken": normed[:, 0], "x_norm_regtokens": normed[:, 1:prefix],
                "x_norm_patchtokens": normed[:, prefix:], "x_prenorm": tokens, "masks": masks}

    def forward(self, x):
        """The normalised cls token ``(B, C)`` (the hub models' head is the identity)."""
        return self.forward_features(x)["x_norm_clstoken"]

    def get_intermediate_layers(self, x, n=1, reshape=False, return_class_token=False,
                                norm=True):
        """Outputs of the last ``n`` blocks (``n`` an int) or of the blocks listed in ``n``.

        Each output is the block's tokens, passed through the final ``norm`` if ``norm``,
        with the cls and register tokens removed: ``(B, N, C)``, or ``(B, C, H/p, W/p)`` with
        ``reshape``. With ``return_class_token`` each entry is ``(patches, cls (B, C))``.
        Returns a tuple in block order.
        """
        depth = len(self.blocks)
        wanted = range(depth - n, depth) if isinstance(n, int) else n
        wanted = set(wanted)
        if not wanted or any(not 0 <= i < depth for i in wanted):
            raise ValueError(f"get_intermediate_layers: blocks {sorted(wanted)} not in "
                             f"0..{depth - 1}")
        tokens, outputs = self.prepare_tokens(x), []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in wanted:
                outputs.append(tokens)
        if norm:
            outputs = [self.norm(out) for out in outputs]
        class_tokens = [out[:, 0] for out in outputs]
        outputs = [out[:, self.num_prefix_tokens:] for out in outputs]
        if reshape:
            outputs = [self.tokens_to_map(out, x.shape[-2:]) for out in outputs]
        if return_class_token:
            return tuple(zip(outputs, class_tokens))
        return tuple(outputs)

    def out_index_maps(self, x):
        """The raw outputs (no final norm) of the blocks in :attr:`out_indices`, as maps
        ``(B, C, H/p, W/p)`` in that order (an index listed twice gives the map twice): the
        features Rein's DINOv2 copy gives its neck (§1.6)."""
        wanted = sorted(set(self.out_indices))
        maps = self.get_intermediate_layers(x, n=wanted, reshape=True, norm=False)
        by_index = dict(zip(wanted, maps))
        return [by_index[i] for i in self.out_indices]

    def tokens_to_map(self, patch_tokens, image_size):
        """``(B, N, C)`` patch tokens of an ``image_size = (H, W)`` input ->
        ``(B, C, H/p, W/p)``."""
        rows, cols = (side // self.patch_size for side in image_size)
        batch = patch_tokens.shape[0]
        return patch_tokens.reshape(batch, rows, cols, -1).permute(0, 3, 1, 2).contiguous()


def build_dinov2(variant, *, num_register_tokens=0, img_size=518, patch_size=14,
                 interpolate_offset=None, interpolate_antialias=None, init_values=1e-5,
                 drop_path_rate=0.0, depth=None, out_indices=None):
    """A DINOv2 trunk ``variant`` in ``vits14, vitb14, vitl14, vitg14`` (random weights).

    ``num_register_tokens=4`` builds the ``*_reg4`` models; their position embedding is
    resized as the hub's register models do (``interpolate_offset=0``, antialiased) unless
    given. ``patch_size=16, img_size=512`` is the grid of Rein's converted weights.
    ``depth`` overrides the block count (tiny test models); ``out_indices`` the published
    blocks (default :func:`default_out_indices`).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown DINOv2 variant {variant!r}; expected one of "
                         f"{', '.join(VARIANTS)}")
    if num_register_tokens < 0:
        raise ValueError(f"num_register_tokens must be >= 0, got {num_register_tokens}")
    spec = dict(VARIANTS[variant])
    if depth is not None:
        spec["depth"] = depth
    registers = num_register_tokens > 0
    if interpolate_offset is None:
        interpolate_offset = 0.0 if registers else 0.1
    if interpolate_antialias is None:
        interpolate_antialias = registers
    return DinoVisionTransformer(
        img_size=img_size, patch_size=patch_size, num_register_tokens=num_register_tokens,
        interpolate_offset=interpolate_offset, interpolate_antialias=interpolate_antialias,
        init_values=init_values, drop_path_rate=drop_path_rate, out_indices=out_indices,
        **spec)
