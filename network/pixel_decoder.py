"""Mask2Former's multi-scale deformable-attention pixel decoder (docs/VFM_METHODS.md §5.2).

Module and parameter names follow mmdet 3 / mmcv (``input_convs.{i}.conv``/``.gn``,
``encoder.layers.{i}.self_attn``/``.ffn.layers.0.0``/``.norms.{j}``, ``level_encoding``,
``lateral_convs``, ``output_convs``, ``mask_feature``), so the ``decode_head.pixel_decoder.*``
tensors of Rein's released checkpoints load without renaming.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from network.ms_deform_attn import MultiScaleDeformableAttention


def sine_position_encoding(batch, height, width, num_feats=128, temperature=10000.0,
                           device=None, dtype=torch.float32):
    """mmdet's normalised ``SinePositionalEncoding`` of an unpadded map (§5.4):
    ``(B, 2 * num_feats, H, W)``, the y code first, each code ``[sin, cos, sin, ...]``
    interleaved, coordinates ``1..H`` scaled to ``(0, 2 pi]`` (eps 1e-6)."""
    eps, scale = 1e-6, 2 * math.pi
    ys = torch.arange(1, height + 1, device=device, dtype=torch.float32)
    xs = torch.arange(1, width + 1, device=device, dtype=torch.float32)
    ys = ys / (ys[-1] + eps) * scale
    xs = xs / (xs[-1] + eps) * scale
    index = torch.arange(num_feats, device=device, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(index, 2, rounding_mode="floor") / num_feats)

    def code(coords):  # (n,) -> (n, num_feats), even channels sin, odd cos
        phase = coords[:, None] / dim_t
        return torch.stack([phase[:, 0::2].sin(), phase[:, 1::2].cos()], dim=-1).flatten(1)

    pos_y = code(ys)[:, None, :].expand(height, width, num_feats)
    pos_x = code(xs)[None, :, :].expand(height, width, num_feats)
    pos = torch.cat([pos_y, pos_x], dim=-1).permute(2, 0, 1)
    return pos.unsqueeze(0).expand(batch, -1, -1, -1).to(dtype)


class ConvGN(nn.Module):
    """mmcv ``ConvModule`` with GroupNorm(32): ``conv`` -> ``gn`` -> optional ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size=1, bias=True, relu=False,
                 groups=32):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                              padding=kernel_size // 2, bias=bias)
        self.gn = nn.GroupNorm(groups, out_channels)
        self.relu = relu

    def forward(self, x):
        x = self.gn(self.conv(x))
        return F.relu(x) if self.relu else x


class FFN(nn.Module):
    """mmcv ``FFN``: ``x + layers(x)``, ``layers = [[Linear, ReLU, Dropout], Linear,
    Dropout]`` (dropout 0), so keys are ``layers.0.0.*`` and ``layers.1.*``."""

    def __init__(self, embed_dims, hidden):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, hidden), nn.ReLU(inplace=True), nn.Dropout(0.0)),
            nn.Linear(hidden, embed_dims), nn.Dropout(0.0))

    def forward(self, x):
        return x + self.layers(x)


class DeformableEncoderLayer(nn.Module):
    """Post-norm encoder layer: ``q = norms[0](MSDA(q))`` then ``q = norms[1](FFN(q))``
    (both with their residual inside)."""

    def __init__(self, embed_dims=256, num_heads=8, num_levels=3, num_points=4, hidden=1024):
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(embed_dims, num_heads, num_levels,
                                                       num_points)
        self.ffn = FFN(embed_dims, hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(2))

    def forward(self, query, query_pos, reference_points, spatial_shapes):
        query = self.norms[0](self.self_attn(query, reference_points, spatial_shapes,
                                             query_pos=query_pos))
        return self.norms[1](self.ffn(query))


class DeformableEncoder(nn.Module):
    """``num_layers`` :class:`DeformableEncoderLayer` in sequence (key ``layers.{i}``)."""

    def __init__(self, num_layers=6, **layer_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(DeformableEncoderLayer(**layer_kwargs)
                                    for _ in range(num_layers))

    def forward(self, query, query_pos, reference_points, spatial_shapes):
        for layer in self.layers:
            query = layer(query, query_pos, reference_points, spatial_shapes)
        return query


def reference_points(spatial_shapes, batch, num_levels, device, dtype):
    """Pixel centres ``((x + 0.5) / W_l, (y + 0.5) / H_l)`` of every level, row-major,
    repeated for each sampled level (valid ratios 1): ``(B, S, num_levels, 2)``."""
    points = []
    for height, width in spatial_shapes:
        ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
        xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=-1))
    points = torch.cat(points, dim=0)
    return points[None, :, None, :].expand(batch, -1, num_levels, -1)


class MSDeformAttnPixelDecoder(nn.Module):
    """``feats`` (strides 4, 8, 16, 32, each ``(B, in_channels[i], h_i, w_i)``) ->
    ``(mask_feature (B, C, h_0, w_0), [maps at strides 32, 16, 8, each (B, C, h, w)])``.

    The three coarsest levels go through the deformable encoder; the stride-4 level joins
    by an FPN step (§5.2). ``C = feat_channels`` (256).
    """

    def __init__(self, in_channels=(1024,) * 4, feat_channels=256, out_channels=256,
                 num_encoder_levels=3, num_layers=6, num_heads=8, num_points=4,
                 ffn_hidden=1024):
        super().__init__()
        self.num_input_levels = len(in_channels)
        self.num_encoder_levels = num_encoder_levels
        # input_convs[0] projects the coarsest map (stride 32), [1] stride 16, [2] stride 8.
        self.input_convs = nn.ModuleList(
            ConvGN(in_channels[self.num_input_levels - 1 - i], feat_channels)
            for i in range(num_encoder_levels))
        self.encoder = DeformableEncoder(num_layers, embed_dims=feat_channels,
                                         num_heads=num_heads, num_levels=num_encoder_levels,
                                         num_points=num_points, hidden=ffn_hidden)
        self.level_encoding = nn.Embedding(num_encoder_levels, feat_channels)
        fpn_levels = self.num_input_levels - num_encoder_levels
        self.lateral_convs = nn.ModuleList(
            ConvGN(in_channels[i], feat_channels, bias=False) for i in range(fpn_levels))
        self.output_convs = nn.ModuleList(
            ConvGN(feat_channels, feat_channels, 3, bias=False, relu=True)
            for _ in range(fpn_levels))
        self.mask_feature = nn.Conv2d(feat_channels, out_channels, 1)
        self.init_weights()

    def init_weights(self):
        """§5.11: xavier-uniform input convs, kaiming-uniform (a=1) lateral/output/mask
        convs, N(0, 1) level encoding, xavier-normal encoder matrices with the deformable
        attention's own init on top; zero conv biases."""
        for module in self.input_convs:
            nn.init.xavier_uniform_(module.conv.weight)
            nn.init.zeros_(module.conv.bias)
        for conv in [m.conv for m in [*self.lateral_convs, *self.output_convs]] + [
                self.mask_feature]:
            nn.init.kaiming_uniform_(conv.weight, a=1)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        nn.init.normal_(self.level_encoding.weight)
        for param in self.encoder.parameters():
            if param.dim() > 1:
                nn.init.xavier_normal_(param)
        for layer in self.encoder.layers:
            layer.self_attn.init_weights()

    def forward(self, feats):
        if len(feats) != self.num_input_levels:
            raise ValueError(f"pixel decoder takes {self.num_input_levels} maps, got {len(feats)}")
        batch = feats[0].shape[0]
        tokens, positions, shapes = [], [], []
        for i in range(self.num_encoder_levels):
            projected = self.input_convs[i](feats[self.num_input_levels - 1 - i])
            height, width = projected.shape[-2:]
            pos = sine_position_encoding(batch, height, width, projected.shape[1] // 2,
                                         device=projected.device, dtype=projected.dtype)
            pos = pos + self.level_encoding.weight[i].view(1, -1, 1, 1)
            tokens.append(projected.flatten(2).transpose(1, 2))
            positions.append(pos.flatten(2).transpose(1, 2))
            shapes.append((height, width))
        query = torch.cat(tokens, dim=1)
        refs = reference_points(shapes, batch, self.num_encoder_levels, query.device,
                                query.dtype)
        memory = self.encoder(query, torch.cat(positions, dim=1), refs, shapes)
        outs = [chunk.transpose(1, 2).reshape(batch, -1, h, w) for chunk, (h, w) in
                zip(memory.split([h * w for h, w in shapes], dim=1), shapes)]
        for i in range(self.num_input_levels - self.num_encoder_levels - 1, -1, -1):
            lateral = self.lateral_convs[i](feats[i])
            merged = lateral + F.interpolate(outs[-1], size=lateral.shape[-2:],
                                             mode="bilinear", align_corners=False)
            outs.append(self.output_convs[i](merged))
        return self.mask_feature(outs[-1]), outs[:self.num_encoder_levels]
