"""The layers of a DINOv2 vision transformer (docs/VFM_METHODS.md §1.1-1.2).

Attribute names are those of the released checkpoints (``patch_embed.proj``, ``attn.qkv``,
``ls1.gamma``, ``mlp.fc1`` / ``mlp.w12``...), so a released state dict loads strictly.
Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention` (no
xformers); its default scale ``head_dim ** -0.5`` is DINOv2's.
"""

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` convolution: ``(B, 3, H, W) -> (B, H/p * W/p, C)``.

    Tokens are row-major over the patch grid (H first, then W), as in DINOv2. H and W must
    be multiples of the patch size (DINOv2 asserts it; here a ValueError says so).
    """

    def __init__(self, patch_size, in_chans, embed_dim):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x):
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"DINOv2 input {height}x{width} is not a multiple of the patch "
                             f"size {self.patch_size} (pad or resize the image)")
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection.

    ``qkv.weight`` ``(3C, C)`` holds q, k and v as its three contiguous thirds, each split
    into ``num_heads`` contiguous head slices (the released layout). ``(B, N, C) -> (B, N, C)``.
    """

    def __init__(self, dim, num_heads, qkv_bias=True, proj_bias=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x):
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    """``fc1 -> GELU (exact) -> fc2``, the FFN of ViT-S/B/L."""

    def __init__(self, dim, hidden, bias=True):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def swiglu_hidden(hidden):
    """The SwiGLU width DINOv2 uses for an MLP width ``hidden``: 2/3 of it, rounded up to 8
    (4096 for ViT-g's 6144)."""
    return (int(hidden * 2 / 3) + 7) // 8 * 8


class SwiGLUFFN(nn.Module):
    """``w3(silu(x1) * x2)`` with ``x1, x2`` the two halves of ``w12(x)``: ViT-g's FFN."""

    def __init__(self, dim, hidden, bias=True):
        super().__init__()
        width = swiglu_hidden(hidden)
        self.w12 = nn.Linear(dim, 2 * width, bias=bias)
        self.w3 = nn.Linear(width, dim, bias=bias)

    def forward(self, x):
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


class LayerScale(nn.Module):
    """Per-channel scale ``x * gamma`` (``gamma`` of shape ``(C,)``)."""

    def __init__(self, dim, init_value):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x):
        return x * self.gamma


def drop_path(x, rate, training):
    """Stochastic depth per sample: zero a residual branch for a fraction ``rate`` of the
    batch and rescale the rest by ``1 / (1 - rate)``; the identity in eval or at rate 0."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class Block(nn.Module):
    """Pre-norm transformer block: ``x + ls1(attn(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))``.

    ``ffn`` is ``"mlp"`` or ``"swiglu"``. LayerNorm eps is 1e-6. ``drop_path_rate`` drops
    each residual branch per sample in training (DINOv2's batch-subset variant for rates
    above 0.1 is not implemented: docs/DECISIONS.md D92).
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, ffn="mlp", init_values=1e-5,
                 drop_path_rate=0.0, qkv_bias=True, proj_bias=True, ffn_bias=True):
        super().__init__()
        if ffn not in FFN_LAYERS:
            raise ValueError(f"ffn {ffn!r} is not one of {sorted(FFN_LAYERS)}")
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, proj_bias)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = FFN_LAYERS[ffn](dim, int(dim * mlp_ratio), bias=ffn_bias)
        self.ls2 = LayerScale(dim, init_values)
        self.drop_path_rate = drop_path_rate

    def forward(self, x):
        x = x + drop_path(self.ls1(self.attn(self.norm1(x))), self.drop_path_rate, self.training)
        return x + drop_path(self.ls2(self.mlp(self.norm2(x))), self.drop_path_rate,
                             self.training)


FFN_LAYERS = {"mlp": Mlp, "swiglu": SwiGLUFFN}
