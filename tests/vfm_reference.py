"""Independent references for the VFM tests: hand-written bicubic resizes and state dicts
built from the documented key names and shapes (docs/VFM_METHODS.md §1.5, §2.2, §5), never
from the modules under test."""

import math

import torch
import torch.nn.functional as F


def cubic(x, a):
    """The cubic convolution kernel with parameter ``a`` (-0.75 plain, -0.5 antialiased)."""
    x = abs(x)
    if x <= 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def bicubic_matrix(n_in, n_out, scale):
    """``(n_out, n_in)`` weights of PyTorch's bicubic (``align_corners=False``) when the
    source coordinate of output ``i`` is ``(i + 0.5) / scale - 0.5``; border taps clamped."""
    weights = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        src = (i + 0.5) / scale - 0.5
        base = math.floor(src)
        frac = src - base
        for k in range(-1, 3):
            weights[i, min(max(base + k, 0), n_in - 1)] += cubic(k - frac, -0.75)
    return weights


def antialiased_bicubic_matrix(n_in, n_out):
    """``(n_out, n_in)`` weights of the antialiased bicubic resize (PIL-style: kernel
    ``a = -0.5`` widened by the downscale factor, taps outside dropped, rows normalised)."""
    scale = n_in / n_out
    support, inv = (2.0 * scale, 1.0 / scale) if scale >= 1 else (2.0, 1.0)
    weights = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        taps = [cubic((j - center + 0.5) * inv, -0.5) for j in range(lo, hi)]
        for j, tap in zip(range(lo, hi), taps):
            weights[i, j] = tap / sum(taps)
    return weights


def resize_grid(grid, rows_matrix, cols_matrix):
    """``(C, H, W)`` -> ``(C, h, w)`` with separable weight matrices, in float64."""
    return torch.einsum("hi,cij,wj->chw", rows_matrix, grid.double(), cols_matrix)


def official_dinov2_shapes(variant, registers=0, patch=14, grid=37):
    """Key -> shape of a released DINOv2 state dict (§1.5 table, §1.1 architecture)."""
    dim, depth = {"vits14": (384, 12), "vitb14": (768, 12), "vitl14": (1024, 24),
                  "vitg14": (1536, 40)}[variant]
    shapes = {"cls_token": (1, 1, dim), "pos_embed": (1, 1 + grid * grid, dim),
              "mask_token": (1, dim), "patch_embed.proj.weight": (dim, 3, patch, patch),
              "patch_embed.proj.bias": (dim,), "norm.weight": (dim,), "norm.bias": (dim,)}
    if registers:
        shapes["register_tokens"] = (1, registers, dim)
    for i in range(depth):
        block = {"norm1.weight": (dim,), "norm1.bias": (dim,),
                 "attn.qkv.weight": (3 * dim, dim), "attn.qkv.bias": (3 * dim,),
                 "attn.proj.weight": (dim, dim), "attn.proj.bias": (dim,),
                 "ls1.gamma": (dim,), "ls2.gamma": (dim,),
                 "norm2.weight": (dim,), "norm2.bias": (dim,)}
        if variant == "vitg14":
            block.update({"mlp.w12.weight": (8192, dim), "mlp.w12.bias": (8192,),
                          "mlp.w3.weight": (dim, 4096), "mlp.w3.bias": (dim,)})
        else:
            block.update({"mlp.fc1.weight": (4 * dim, dim), "mlp.fc1.bias": (4 * dim,),
                          "mlp.fc2.weight": (dim, 4 * dim), "mlp.fc2.bias": (dim,)})
        shapes.update({f"blocks.{i}.{k}": v for k, v in block.items()})
    return shapes


def official_reins_shapes(num_layers=24, dims=1024, tokens=100, rank=16, query=256):
    """Key -> shape of Rein's ``backbone.reins.*`` tensors (§2.2; ``rank=None``: Reins)."""
    shapes = {"scale": (), "mlp_token2feat.weight": (dims, dims), "mlp_token2feat.bias": (dims,),
              "mlp_delta_f.weight": (dims, dims), "mlp_delta_f.bias": (dims,),
              "transform.weight": (query, dims), "transform.bias": (query,),
              "merge.weight": (query, 3 * query), "merge.bias": (query,)}
    if rank is None:
        shapes["learnable_tokens"] = (num_layers, tokens, dims)
    else:
        shapes["learnable_tokens_a"] = (num_layers, tokens, rank)
        shapes["learnable_tokens_b"] = (num_layers, rank, dims)
    return shapes


def official_head_shapes(in_dims=1024, classes=19, queries=100, enc_layers=6, dec_layers=9,
                         rein=True, c=256):
    """Key -> shape of mmseg's ``decode_head.*`` with Rein's config (§5, mmdet 3 names)."""
    shapes = {}
    for i in range(3):
        shapes.update({f"pixel_decoder.input_convs.{i}.conv.weight": (c, in_dims, 1, 1),
                       f"pixel_decoder.input_convs.{i}.conv.bias": (c,),
                       f"pixel_decoder.input_convs.{i}.gn.weight": (c,),
                       f"pixel_decoder.input_convs.{i}.gn.bias": (c,)})
    linears = {"sampling_offsets": 192, "attention_weights": 96, "value_proj": c,
               "output_proj": c}
    for i in range(enc_layers):
        pre = f"pixel_decoder.encoder.layers.{i}."
        for name, out in linears.items():
            shapes.update({f"{pre}self_attn.{name}.weight": (out, c),
                           f"{pre}self_attn.{name}.bias": (out,)})
        shapes.update(ffn_shapes(pre, c, 1024, norms=2))
    shapes.update({"pixel_decoder.level_encoding.weight": (3, c),
                   "pixel_decoder.lateral_convs.0.conv.weight": (c, in_dims, 1, 1),
                   "pixel_decoder.lateral_convs.0.gn.weight": (c,),
                   "pixel_decoder.lateral_convs.0.gn.bias": (c,),
                   "pixel_decoder.output_convs.0.conv.weight": (c, c, 3, 3),
                   "pixel_decoder.output_convs.0.gn.weight": (c,),
                   "pixel_decoder.output_convs.0.gn.bias": (c,),
                   "pixel_decoder.mask_feature.weight": (c, c, 1, 1),
                   "pixel_decoder.mask_feature.bias": (c,)})
    for i in range(dec_layers):
        pre = f"transformer_decoder.layers.{i}."
        for attn in ("self_attn", "cross_attn"):
            shapes.update({f"{pre}{attn}.attn.in_proj_weight": (3 * c, c),
                           f"{pre}{attn}.attn.in_proj_bias": (3 * c,),
                           f"{pre}{attn}.attn.out_proj.weight": (c, c),
                           f"{pre}{attn}.attn.out_proj.bias": (c,)})
        shapes.update(ffn_shapes(pre, c, 2048, norms=3))
    shapes.update({"transformer_decoder.post_norm.weight": (c,),
                   "transformer_decoder.post_norm.bias": (c,),
                   "level_embed.weight": (3, c), "cls_embed.weight": (classes + 1, c),
                   "cls_embed.bias": (classes + 1,)})
    for k in (0, 2, 4):
        shapes.update({f"mask_embed.{k}.weight": (c, c), f"mask_embed.{k}.bias": (c,)})
    if rein:
        shapes.update({"querys2feat.weight": (c, c), "querys2feat.bias": (c,)})
    else:
        shapes.update({"query_embed.weight": (queries, c), "query_feat.weight": (queries, c)})
    return shapes


def ffn_shapes(prefix, c, hidden, norms):
    shapes = {f"{prefix}ffn.layers.0.0.weight": (hidden, c), f"{prefix}ffn.layers.0.0.bias":
              (hidden,), f"{prefix}ffn.layers.1.weight": (c, hidden),
              f"{prefix}ffn.layers.1.bias": (c,)}
    for j in range(norms):
        shapes.update({f"{prefix}norms.{j}.weight": (c,), f"{prefix}norms.{j}.bias": (c,)})
    return shapes


def random_state(shapes, device="cpu", seed=0):
    """A state dict of N(0, 1) tensors (meta tensors on ``device="meta"``)."""
    generator = torch.Generator().manual_seed(seed)
    if device == "meta":
        return {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    return {k: torch.randn(s, generator=generator) for k, s in shapes.items()}


def bilinear_at(image, x, y):
    """Bilinear value of ``image (H, W)`` at normalised ``(x, y)`` (pixel centres at
    ``(i + 0.5) / W``), zeros outside: the grid_sample convention, by hand."""
    height, width = image.shape
    px, py = x * width - 0.5, y * height - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    total = 0.0
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - abs(px - xi)) * (1 - abs(py - yi))
            if 0 <= xi < width and 0 <= yi < height:
                total += weight * float(image[yi, xi])
    return total


def explicit_attention(x, qkv_weight, qkv_bias, proj_weight, proj_bias, heads):
    """Softmax attention written out (Rein's DINOv2 copy): ``(B, N, C)`` -> ``(B, N, C)``."""
    batch, tokens, dim = x.shape
    qkv = F.linear(x, qkv_weight, qkv_bias).reshape(batch, tokens, 3, heads, dim // heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    attn = ((q * (dim // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
    return F.linear((attn @ v).transpose(1, 2).reshape(batch, tokens, dim), proj_weight,
                    proj_bias)
