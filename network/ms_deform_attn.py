"""Multi-scale deformable attention in plain PyTorch (``grid_sample``; no compiled kernel).

docs/VFM_METHODS.md §5.3. Each query samples, per head, ``num_points`` bilinear values on
every level around its reference point and sums them with softmax weights over all
levels x points. Parameter names are mmcv's (``sampling_offsets``, ``attention_weights``,
``value_proj``, ``output_proj``), so Rein's released pixel decoder loads.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def ms_deform_attn(value, spatial_shapes, sampling_locations, attention_weights):
    """The sampling and weighted sum at the heart of deformable attention.

    Args:
        value: ``(B, S, heads, D)``, the levels' tokens concatenated, each level row-major
            (``index = y * W_l + x``); ``S = sum(H_l * W_l)``.
        spatial_shapes: ``[(H_l, W_l), ...]`` (ints), one per level.
        sampling_locations: ``(B, Q, heads, L, K, 2)`` in ``[0, 1]``, ``(x, y)`` order.
        attention_weights: ``(B, Q, heads, L, K)``.

    Returns:
        ``(B, Q, heads * D)``. Locations outside the map sample zeros (bilinear,
        ``align_corners=False``: pixel centres at ``(i + 0.5) / W``).
    """
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    sizes = [int(h) * int(w) for h, w in spatial_shapes]
    if sum(sizes) != value.shape[1]:
        raise ValueError(f"value has {value.shape[1]} tokens, the levels {spatial_shapes} "
                         f"have {sum(sizes)}")
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (chunk, (height, width)) in enumerate(zip(value.split(sizes, dim=1),
                                                         spatial_shapes)):
        # (B, HW, heads, D) -> (B * heads, D, H, W)
        level_value = chunk.permute(0, 2, 3, 1).reshape(batch * heads, dim, height, width)
        # (B, Q, heads, K, 2) -> (B * heads, Q, K, 2)
        grid = grids[:, :, :, level].transpose(1, 2).reshape(batch * heads, queries, points, 2)
        sampled.append(F.grid_sample(level_value, grid, mode="bilinear", padding_mode="zeros",
                                     align_corners=False))  # (B * heads, D, Q, K)
    sampled = torch.stack(sampled, dim=-2)  # (B * heads, D, Q, L, K)
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels,
                                                         points)
    out = (sampled * weights).sum(dim=(-2, -1))  # (B * heads, D, Q)
    return out.reshape(batch, heads * dim, queries).transpose(1, 2)


class MultiScaleDeformableAttention(nn.Module):
    """mmcv's ``MultiScaleDeformableAttention`` as the Mask2Former pixel decoder uses it
    (batch first, no padding mask, dropout 0).

    ``forward(query, reference_points, spatial_shapes, value=None, query_pos=None)``:
    ``query (B, Q, C)``, ``reference_points (B, Q, L, 2)`` normalised ``(x, y)``,
    ``value (B, S, C)`` (defaults to ``query``). Offsets and weights come from
    ``query + query_pos``; the value carries no position. Returns ``query + out`` (the
    identity is the query without position), ``(B, Q, C)``.
    """

    def __init__(self, embed_dims=256, num_heads=8, num_levels=3, num_points=4):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f"embed_dims {embed_dims} not divisible by {num_heads} heads")
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    def init_weights(self):
        """§5.3: zero offset weights, offset bias ``(k+1) * (cos, sin)(2 pi h / heads)``
        scaled so the larger coordinate is ``k+1``; zero attention weights (uniform
        attention); xavier-uniform value/output projections with zero bias."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi
                                                                       / self.num_heads)
        directions = torch.stack([angles.cos(), angles.sin()], dim=-1)
        directions = directions / directions.abs().max(dim=-1, keepdim=True).values
        steps = torch.arange(1, self.num_points + 1, dtype=torch.float32)
        bias = directions[:, None, None, :] * steps[None, None, :, None]  # (heads, 1, K, 2)
        bias = bias.expand(self.num_heads, self.num_levels, self.num_points, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(self, query, reference_points, spatial_shapes, value=None, query_pos=None):
        value = query if value is None else value
        located = query if query_pos is None else query + query_pos
        batch, queries, _ = query.shape
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        projected = self.value_proj(value).view(batch, value.shape[1], heads, -1)
        offsets = self.sampling_offsets(located).view(batch, queries, heads, levels, points, 2)
        weights = self.attention_weights(located).view(batch, queries, heads, levels * points)
        weights = weights.softmax(dim=-1).view(batch, queries, heads, levels, points)
        # Offsets are in level pixels: normalise by each level's (W, H).
        normaliser = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=offsets.dtype,
                                  device=offsets.device)
        locations = (reference_points[:, :, None, :, None, :]
                     + offsets / normaliser[None, None, None, :, None, :])
        out = ms_deform_attn(projected, spatial_shapes, locations, weights)
        return query + self.output_proj(out)
