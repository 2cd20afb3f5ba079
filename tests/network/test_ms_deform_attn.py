"""Multi-scale deformable attention and the sine position code (docs/VFM_METHODS.md §5.3-5.4)
against direct per-point computations."""

import math

import torch

from network.ms_deform_attn import MultiScaleDeformableAttention, ms_deform_attn
from network.pixel_decoder import reference_points, sine_position_encoding
from tests.vfm_reference import bilinear_at


def test_ms_deform_attn_equals_a_per_point_bilinear_sum():
    torch.manual_seed(0)
    shapes = [(3, 4), (2, 5)]
    batch, queries, heads, dim, points = 2, 3, 2, 3, 2
    value = torch.randn(batch, 3 * 4 + 2 * 5, heads, dim)
    # Some locations fall outside [0, 1]: zero padding must apply there.
    locations = torch.rand(batch, queries, heads, 2, points, 2) * 1.4 - 0.2
    weights = torch.rand(batch, queries, heads, 2, points)
    got = ms_deform_attn(value, shapes, locations, weights)
    assert got.shape == (batch, queries, heads * dim)
    levels = value.split([12, 10], dim=1)
    for b in range(batch):
        for q in range(queries):
            for h in range(heads):
                for d in range(dim):
                    expected = 0.0
                    for lvl, (height, width) in enumerate(shapes):
                        image = levels[lvl][b, :, h, d].reshape(height, width)
                        for k in range(points):
                            x, y = locations[b, q, h, lvl, k].tolist()
                            expected += weights[b, q, h, lvl, k].item() * bilinear_at(image, x, y)
                    assert math.isclose(got[b, q, h * dim + d].item(), expected, abs_tol=1e-5)


def test_module_init_gives_documented_offsets_and_uniform_attention():
    module = MultiScaleDeformableAttention(embed_dims=16, num_heads=8, num_levels=2, num_points=3)
    bias = module.sampling_offsets.bias.view(8, 2, 3, 2)
    for h in range(8):
        theta = 2 * math.pi * h / 8
        direction = torch.tensor([math.cos(theta), math.sin(theta)])
        direction = direction / direction.abs().max()
        for k in range(3):
            torch.testing.assert_close(bias[h, 1, k], (k + 1) * direction)
    assert not module.sampling_offsets.weight.any() and not module.attention_weights.weight.any()
    # Uniform attention: the output is output_proj of the mean of the sampled values.
    shapes = [(2, 2), (1, 2)]
    query = torch.randn(1, 6, 16)
    refs = reference_points(shapes, 1, 2, query.device, query.dtype)
    value = module.value_proj(query).view(1, 6, 8, 2)
    offsets = bias.reshape(1, 1, 8, 2, 3, 2)
    normaliser = torch.tensor([[2.0, 2.0], [2.0, 1.0]]).view(1, 1, 1, 2, 1, 2)
    locations = refs[:, :, None, :, None, :] + offsets / normaliser
    uniform = torch.full((1, 6, 8, 2, 3), 1 / 6)
    expected = query + module.output_proj(ms_deform_attn(value, shapes, locations, uniform))
    torch.testing.assert_close(module(query, refs, shapes), expected)


def test_reference_points_are_pixel_centres_row_major():
    refs = reference_points([(2, 3)], batch=1, num_levels=2, device="cpu", dtype=torch.float32)
    assert refs.shape == (1, 6, 2, 2)
    torch.testing.assert_close(refs[0, 4, 1], torch.tensor([1.5 / 3, 1.5 / 2]))


def test_sine_position_encoding_formula():
    pos = sine_position_encoding(2, 3, 4, num_feats=6)
    assert pos.shape == (2, 12, 3, 4)
    y, x, j = 2, 1, 3  # row 3 of 3, column 2 of 4, channel 3 (odd: cos)
    dim_t = 10000 ** (2 * (j // 2) / 6)
    y_embed = 3 / (3 + 1e-6) * 2 * math.pi
    x_embed = 2 / (4 + 1e-6) * 2 * math.pi
    assert math.isclose(pos[1, j, y, x].item(), math.cos(y_embed / dim_t), abs_tol=1e-6)
    assert math.isclose(pos[1, 6 + 2, y, x].item(), math.sin(x_embed / 10000 ** (2 / 6)),
                        abs_tol=1e-6)
