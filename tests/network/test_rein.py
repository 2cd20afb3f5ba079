"""Reins / LoRAReins (docs/VFM_METHODS.md §2): official names and shapes, the refinement
formula, the query pooling order, and the Rein-wrapped frozen trunk."""

import math

import pytest
import torch

from network.rein import LoRAReins, ReinDinoVisionTransformer, Reins, feature_pyramid
from tests.vfm_reference import official_reins_shapes, random_state

RELEASE = {"num_layers": 24, "embed_dims": 1024, "patch_size": 16, "token_length": 100}


@pytest.mark.parametrize("lora, count", [(True, 2_990_081), (False, 5_016_065)])
def test_official_adapter_state_loads_strictly(lora, count):
    """Rein's GTAV config (§2.2) on the meta device: names, shapes, the 2.99 M count."""
    with torch.device("meta"):
        reins = LoRAReins(lora_dim=16, **RELEASE) if lora else Reins(**RELEASE)
    shapes = official_reins_shapes(rank=16 if lora else None)
    assert {k: tuple(v.shape) for k, v in reins.state_dict().items()} == shapes
    reins.load_state_dict(random_state(shapes, "meta"), strict=True, assign=True)
    assert sum(p.numel() for p in reins.parameters()) == count


def test_init_follows_the_documented_bounds():
    torch.manual_seed(0)
    reins = LoRAReins(num_layers=2, embed_dims=1024, patch_size=16, lora_dim=16)
    bound = math.sqrt(6 / 896)  # §2.2: 0.081832
    for tokens in (reins.learnable_tokens_a, reins.learnable_tokens_b):
        assert tokens.abs().max() <= bound and tokens.abs().max() > 0.95 * bound
    assert reins.scale.item() == pytest.approx(0.001)
    plain = Reins(num_layers=2, embed_dims=1024, patch_size=16)
    assert plain.learnable_tokens.abs().max() <= math.sqrt(6 / (3 * 256 + 1024))
    zero = Reins(num_layers=2, embed_dims=64, patch_size=16, zero_mlp_delta_f=True)
    assert zero.scale == 1.0 and "scale" not in zero.state_dict()
    assert not zero.mlp_delta_f.weight.any()


def refine_by_hand(reins, x, layer):
    """§2.3 written out per token: x (B, 1+N, C) batch first."""
    tokens = reins.get_tokens(layer)
    out = x.clone()
    for b in range(x.shape[0]):
        for n in range(1, x.shape[1]):
            f = x[b, n]
            s = torch.softmax(tokens @ f / math.sqrt(reins.embed_dims), dim=0)
            delta = sum(s[m] * reins.mlp_token2feat(tokens[m]) for m in range(1, len(tokens)))
            out[b, n] = f + reins.scale * reins.mlp_delta_f(delta + f)
    return out


@pytest.mark.parametrize("lora", [True, False])
def test_forward_is_the_documented_formula_in_both_layouts(lora):
    torch.manual_seed(0)
    kwargs = {"num_layers": 3, "embed_dims": 16, "patch_size": 4, "token_length": 5,
              "query_dims": 8, "scale_init": 0.7}
    reins = LoRAReins(lora_dim=2, **kwargs) if lora else Reins(**kwargs)
    x = torch.randn(2, 4, 16)
    with torch.no_grad():
        got = reins(x, 1, batch_first=True, has_cls_token=True)
        torch.testing.assert_close(got, refine_by_hand(reins, x, 1), rtol=1e-5, atol=1e-5)
        assert torch.equal(got[:, 0], x[:, 0])  # the cls token is never changed
        seq_first = reins(x.transpose(0, 1), 1, batch_first=False)  # (1+N, B, C)
        assert torch.equal(reins(x, 1), got)  # batch_first=True is the default
        torch.testing.assert_close(seq_first.transpose(0, 1), got)
        no_cls = reins(x[:, 1:], 1, batch_first=True, has_cls_token=False)
        torch.testing.assert_close(no_cls, got[:, 1:])


def test_queries_pool_max_mean_last_interleaved_per_channel():
    torch.manual_seed(0)
    reins = Reins(num_layers=3, embed_dims=4, patch_size=2, token_length=5, query_dims=2)
    with torch.no_grad():
        reins.transform.weight.copy_(torch.eye(2, 4))
        reins.transform.bias.zero_()
        reins.merge.bias.zero_()
        reins.merge.weight.zero_()
        reins.merge.weight[0, 0] = 1.0   # max of channel 0
        reins.merge.weight[0, 4] = 10.0  # mean of channel 1 (input 1 * 3 + 1)
        reins.merge.weight[1, 5] = 1.0   # last layer of channel 1
        maps, queries = reins.return_auto(["maps"])
    tokens = reins.learnable_tokens[..., :2]  # transform = the first two channels
    assert maps == ["maps"] and queries.shape == (5, 2)
    torch.testing.assert_close(queries[:, 0], tokens[..., 0].amax(0) + 10 * tokens[..., 1].mean(0))
    torch.testing.assert_close(queries[:, 1], tokens[-1, :, 1])
    reins.link_token_to_query = False
    assert reins.return_auto(["maps"]) == ["maps"]


def tiny_rein_trunk(registers=0):
    torch.manual_seed(0)
    reins = LoRAReins(num_layers=3, embed_dims=384, patch_size=16, token_length=6, lora_dim=4)
    return ReinDinoVisionTransformer(
        reins, img_size=32, patch_size=16, embed_dim=384, depth=3, num_heads=6,
        num_register_tokens=registers, out_indices=(0, 1, 2, 2))


def test_rein_trunk_refines_every_block_and_stays_frozen():
    model = tiny_rein_trunk()
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"reins.{n}" for n, _ in model.reins.named_parameters()}
    assert all(not m.training for n, m in model.named_modules() if n and "reins" not in n)
    assert model.reins.training
    x = torch.randn(2, 3, 32, 48)
    maps, queries = model.forward_features(x)
    tokens = model.prepare_tokens(x)
    for index, block in enumerate(model.blocks):
        tokens = model.reins(block(tokens), index, batch_first=True)
    torch.testing.assert_close(maps[2], tokens[:, 1:].reshape(2, 2, 3, 384).permute(0, 3, 1, 2))
    assert len(maps) == 4 and maps[3] is maps[2]  # out_indices (0, 1, 2, 2)
    assert queries.shape == (6, 256)
    with pytest.raises(ValueError, match="do not fit a trunk"):
        ReinDinoVisionTransformer(LoRAReins(num_layers=2, embed_dims=384, patch_size=16),
                                  embed_dim=384, depth=3, num_heads=6)


def test_registers_are_skipped_like_the_cls_token():
    model = tiny_rein_trunk(registers=4)
    x = torch.randn(1, 3, 32, 32)
    tokens = model.prepare_tokens(x)
    refined = model.reins(model.blocks[0](tokens)[:, 5:], 0, batch_first=True,
                          has_cls_token=False)
    maps, _ = model.forward_features(x)
    # The first published block is block 0: its map is the refined patch tokens only.
    torch.testing.assert_close(maps[0], refined.reshape(1, 2, 2, 384).permute(0, 3, 1, 2))


def test_feature_pyramid_resizes_to_strides_4_8_16_32():
    maps = [torch.randn(1, 8, 4, 6) for _ in range(4)]
    sizes = [tuple(m.shape[-2:]) for m in feature_pyramid(maps)]
    assert sizes == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert feature_pyramid(maps)[2] is maps[2]
