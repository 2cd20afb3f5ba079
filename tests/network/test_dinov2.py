"""DINOv2 trunks: released key names and shapes, position-embedding interpolation, the
official get_intermediate_layers semantics, and the layers' formulas."""

import pytest
import torch
import torch.nn.functional as F

from network.dinov2 import build_dinov2, default_out_indices
from network.dinov2_weights import strip_block_chunks
from network.layers import FeatureInfo
from tests.vfm_reference import (antialiased_bicubic_matrix, bicubic_matrix,
                                 explicit_attention, official_dinov2_shapes, random_state,
                                 resize_grid)

# docs/VFM_METHODS.md §1.1: exact parameter counts of the released trunks (without / reg4).
PARAMS = {"vits14": (22_056_576, 22_058_112), "vitb14": (86_580_480, 86_583_552),
          "vitl14": (304_368_640, 304_372_736), "vitg14": (1_136_480_768, 1_136_486_912)}


def tiny(registers=0, **kwargs):
    torch.manual_seed(0)
    kwargs = {"depth": 3, "img_size": 28, **kwargs}
    return build_dinov2("vits14", num_register_tokens=registers, **kwargs).eval()


@pytest.mark.parametrize("registers", [0, 4])
@pytest.mark.parametrize("variant", list(PARAMS))
def test_official_state_dict_loads_strictly(variant, registers):
    """The documented names and shapes load strictly (meta device: no memory); the
    parameter count is the documented one."""
    with torch.device("meta"):
        model = build_dinov2(variant, num_register_tokens=registers)
    shapes = official_dinov2_shapes(variant, registers)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes
    model.load_state_dict(random_state(shapes, "meta"), strict=True, assign=True)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[variant][registers > 0]


def test_a_loaded_state_is_the_model_state_and_chunked_names_are_flattened():
    model = tiny(4)
    shapes = {k: v for k, v in official_dinov2_shapes("vits14", 4, grid=2).items()
              if not k.startswith("blocks.") or int(k.split(".")[1]) < 3}
    state = random_state(shapes)
    # FSDP layout (§1.5): blocks.<chunk>.<global index>.
    chunked = {(f"blocks.{int(k.split('.')[1]) // 2}.{k[len('blocks.'):]}"
                if k.startswith("blocks.") else k): v for k, v in state.items()}
    assert "blocks.1.2.attn.qkv.weight" in chunked
    model.load_state_dict(strip_block_chunks(chunked), strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_giant_uses_swiglu_with_documented_widths():
    with torch.device("meta"):
        block = build_dinov2("vitg14", depth=1).blocks[0]
    assert block.mlp.w12.weight.shape == (8192, 1536) and block.mlp.w3.weight.shape == (1536, 4096)
    torch.manual_seed(0)
    mlp = build_dinov2("vitg14", depth=1, img_size=14).blocks[0].mlp
    x = torch.randn(2, 5, 1536)
    x1, x2 = F.linear(x, mlp.w12.weight, mlp.w12.bias).chunk(2, dim=-1)
    expected = F.linear(F.silu(x1) * x2, mlp.w3.weight, mlp.w3.bias)
    torch.testing.assert_close(mlp(x), expected)


def test_attention_equals_the_explicit_softmax():
    model = tiny()
    attn = model.blocks[0].attn
    x = torch.randn(2, 7, 384)
    expected = explicit_attention(x, attn.qkv.weight, attn.qkv.bias, attn.proj.weight,
                                  attn.proj.bias, heads=6)
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-5)


def test_block_is_pre_norm_with_layer_scale():
    block = tiny().blocks[1]
    with torch.no_grad():
        block.ls1.gamma.fill_(0.5)
        block.ls2.gamma.uniform_()
    x = torch.randn(2, 5, 384)
    h = x + 0.5 * block.attn(F.layer_norm(x, (384,), block.norm1.weight, block.norm1.bias, 1e-6))
    normed = F.layer_norm(h, (384,), block.norm2.weight, block.norm2.bias, 1e-6)
    expected = h + block.ls2.gamma * block.mlp.fc2(F.gelu(block.mlp.fc1(normed)))
    torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("size", [(42, 70), (84, 28), (70, 70)])
def test_offset_interpolation_matches_an_independent_bicubic(size):
    """No registers: bicubic by scale factor (n + 0.1) / M, whose source mapping uses that
    factor (§1.3); checked against a hand-written bicubic in float64."""
    model = tiny(img_size=4 * 14)  # M = 4
    rows, cols = size[0] // 14, size[1] // 14
    got = model.interpolate_pos_encoding(torch.zeros(1, 1 + rows * cols, 384), *size)
    grid = model.pos_embed[0, 1:].reshape(4, 4, -1).permute(2, 0, 1)
    expected = resize_grid(grid, bicubic_matrix(4, rows, (rows + 0.1) / 4),
                           bicubic_matrix(4, cols, (cols + 0.1) / 4))
    assert got.shape == (1, 1 + rows * cols, 384)
    torch.testing.assert_close(got[0, 0], model.pos_embed[0, 0])
    torch.testing.assert_close(got[0, 1:].double(), expected.permute(1, 2, 0).reshape(-1, 384),
                               rtol=1e-5, atol=1e-5)
    by_size = resize_grid(grid, bicubic_matrix(4, rows, rows / 4),
                          bicubic_matrix(4, cols, cols / 4))
    assert not torch.allclose(expected, by_size, atol=1e-3)  # the offset form is not size=


@pytest.mark.parametrize("size", [(42, 70), (28, 98)])
def test_register_models_resize_to_size_with_antialias(size):
    model = tiny(4, img_size=5 * 14)  # M = 5
    rows, cols = size[0] // 14, size[1] // 14
    got = model.interpolate_pos_encoding(torch.zeros(1, 1 + rows * cols, 384), *size)
    grid = model.pos_embed[0, 1:].reshape(5, 5, -1).permute(2, 0, 1)
    expected = resize_grid(grid, antialiased_bicubic_matrix(5, rows),
                           antialiased_bicubic_matrix(5, cols))
    torch.testing.assert_close(got[0, 1:].double(), expected.permute(1, 2, 0).reshape(-1, 384),
                               rtol=1e-5, atol=1e-5)


def test_square_pretraining_size_keeps_pos_embed_and_registers_get_none():
    model = tiny(4)
    x = torch.randn(2, 3, 28, 28)
    tokens = model.prepare_tokens(x)
    assert tokens.shape == (2, 1 + 4 + 4, 384)
    patches = model.patch_embed(x)
    torch.testing.assert_close(tokens[:, 5:], patches + model.pos_embed[:, 1:])
    torch.testing.assert_close(tokens[:, 0], (model.cls_token + model.pos_embed[:, :1])[:, 0]
                               .expand(2, -1))
    torch.testing.assert_close(tokens[:, 1:5], model.register_tokens.expand(2, -1, -1))


def test_masks_replace_patch_tokens_with_the_mask_token():
    model = tiny()
    with torch.no_grad():
        model.mask_token.normal_()
    masks = torch.tensor([[True, False, False, True]])
    tokens = model.prepare_tokens(torch.randn(1, 3, 28, 28), masks)
    torch.testing.assert_close(tokens[0, 1], model.mask_token[0] + model.pos_embed[0, 1])


@pytest.mark.parametrize("registers", [0, 4])
def test_get_intermediate_layers_official_semantics(registers):
    model = tiny(registers, depth=4)
    x = torch.randn(2, 3, 42, 28)
    with torch.no_grad():
        tokens, per_block = model.prepare_tokens(x), []
        for block in model.blocks:
            tokens = block(tokens)
            per_block.append(tokens)
        prefix = 1 + registers
        last_two = model.get_intermediate_layers(x, n=2)
        assert len(last_two) == 2
        torch.testing.assert_close(last_two[0], model.norm(per_block[2])[:, prefix:])
        raw = model.get_intermediate_layers(x, n=[0, 3], reshape=True, norm=False)
        assert raw[0].shape == (2, 384, 3, 2)
        torch.testing.assert_close(raw[1], per_block[3][:, prefix:].reshape(2, 3, 2, 384)
                                   .permute(0, 3, 1, 2))
        with_cls = model.get_intermediate_layers(x, n=1, return_class_token=True)
        torch.testing.assert_close(with_cls[0][1], model.norm(per_block[3])[:, 0])
        features = model.forward_features(x)
        torch.testing.assert_close(features["x_norm_patchtokens"], last_two[1])
        assert features["x_norm_regtokens"].shape == (2, registers, 384)
    with pytest.raises(ValueError, match="not in 0..3"):
        model.get_intermediate_layers(x, n=[4])


def test_input_not_a_multiple_of_the_patch_is_refused():
    with pytest.raises(ValueError, match="multiple of the patch size 14"):
        tiny()(torch.randn(1, 3, 30, 28))


def test_feature_info_and_out_indices():
    assert default_out_indices(24) == (7, 11, 15, 23)  # Rein's ViT-L (§1.6)
    model = tiny(depth=4)
    assert model.feature_info == [FeatureInfo(f"blocks.{i}", channels=384, stride=14)
                                  for i in range(4)]
    with pytest.raises(ValueError, match="unknown DINOv2 variant"):
        build_dinov2("vitx14")
