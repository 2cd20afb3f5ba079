"""The VFM segmenters (network/vfm.py): frozen trunk through a training step, Rein's
parameter groups, the eval output, trunk weights and Rein's released checkpoints."""

import warnings

import pytest
import torch

from loss.mask2former import Mask2FormerLoss
from network.dinov2_weights import convert_dinov2_state
from network.mask2former import semantic_inference
from network.vfm import (FACTORIES, Dinov2SMask2Former, MissingDinov2Weights,
                         ReinDinov2LMask2Former, ReinDinov2SMask2Former)
from network.vfm_weights import MMSEG_KEY_MAP, load_rein_release
from tests.vfm_reference import (official_dinov2_shapes, official_head_shapes,
                                 official_reins_shapes, random_state)

TINY = {"pretrained": False, "depth": 2, "num_queries": 6, "num_decoder_layers": 3,
        "pixel_decoder_layers": 1, "img_size": 64}


def tiny(model_class=ReinDinov2SMask2Former, **kwargs):
    torch.manual_seed(0)
    return model_class(**{**TINY, **kwargs})


def snapshot(module):
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


@pytest.mark.parametrize("model_class", [ReinDinov2SMask2Former, Dinov2SMask2Former])
def test_a_training_step_moves_adapter_and_head_but_not_the_trunk(model_class):
    model = tiny(model_class)
    model.train()
    trunk_modules = [m for n, m in model.backbone.named_modules() if n and "reins" not in n]
    assert all(not m.training for m in trunk_modules) and model.decode_head.training
    before = snapshot(model)
    optimizer = torch.optim.AdamW(model.param_groups(1e-3, 0.05))
    labels = torch.randint(0, 19, (2, 64, 64), generator=torch.Generator().manual_seed(0))
    out = model(torch.randn(2, 3, 64, 64)).original
    assert len(out.class_logits) == 4 and out.mask_logits[0].shape == (2, 6, 16, 16)
    assert out.logits is None and out.dec_logits.shape == (2, 19, 16, 16)
    terms = Mask2FormerLoss(num_points=256)(out.class_logits, out.mask_logits, labels)
    sum(terms.values()).backward()
    optimizer.step()
    after = model.state_dict()
    for name, value in before.items():
        moved = not torch.equal(value, after[name])
        trunk = name.startswith("backbone.") and ".reins." not in f".{name}"
        if trunk:
            assert not moved and not dict(model.named_parameters())[name].requires_grad, name
    assert not torch.equal(before["decode_head.cls_embed.weight"],
                           after["decode_head.cls_embed.weight"])
    if model.uses_rein:
        assert not torch.equal(before["backbone.reins.learnable_tokens_a"],
                               after["backbone.reins.learnable_tokens_a"])


def test_parameter_groups_follow_reins_recipe():
    model = tiny()
    groups = {g["decay_mult"]: g for g in model.param_groups(1e-4, 0.05)}
    assert set(groups) == {0.0, 1.0} and all(g["lr"] == 1e-4 for g in groups.values())
    no_decay = set(groups[0.0]["names"])
    for name in ("backbone.reins.learnable_tokens_a", "backbone.reins.scale",
                 "decode_head.level_embed.weight", "decode_head.transformer_decoder.post_norm.bias",
                 "decode_head.pixel_decoder.input_convs.0.gn.weight",
                 "decode_head.pixel_decoder.encoder.layers.0.norms.1.weight"):
        assert name in no_decay, name
    assert groups[0.0]["weight_decay"] == 0.0 and groups[1.0]["weight_decay"] == 0.05
    for name in ("decode_head.pixel_decoder.level_encoding.weight", "backbone.reins.merge.bias",
                 "decode_head.querys2feat.weight", "decode_head.cls_embed.bias"):
        assert name in groups[1.0]["names"], name  # §3.5, §8 item 14
    assert not any(n.startswith("backbone.blocks") for g in groups.values() for n in g["names"])
    frozen = {g["decay_mult"]: g["names"] for g in tiny(Dinov2SMask2Former).param_groups(1, 1)}
    assert "decode_head.query_feat.weight" in frozen[0.0]


def test_eval_returns_semantic_scores_and_pads_to_the_patch():
    model = tiny()
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        out = model.train()(x).original
        expected = semantic_inference(out.class_logits[-1], out.mask_logits[-1],
                                      size=(64, 80))
        scores = model.eval()(x)
        odd = model(torch.randn(2, 3, 50, 70))
    torch.testing.assert_close(scores, expected)
    assert scores.shape == (1, 19, 64, 80) and odd.shape == (2, 19, 50, 70)
    assert [f.stride for f in model.feature_info] == [4, 8, 16, 32]
    with pytest.raises(ValueError, match="one view in eval mode"):
        model(x, x)


def test_large_model_counts_on_the_meta_device():
    with torch.device("meta"):
        model = ReinDinov2LMask2Former(pretrained=False)
    reins = sum(p.numel() for p in model.backbone.reins.parameters())
    trunk = sum(p.numel() for n, p in model.backbone.named_parameters() if "reins" not in n)
    assert reins == 2_990_081  # §2.2
    # The released ViT-L (304,368,640) with a 16x16 kernel and a 32x32 position grid (§3.6).
    assert trunk == 304_368_640 + (256 - 196) * 3 * 1024 - (1370 - 1025) * 1024
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.startswith(("backbone.reins.", "decode_head.")) for n in trainable)


def test_pretrained_file_is_converted_on_load(tmp_path):
    shapes = {k: v for k, v in official_dinov2_shapes("vits14", grid=5).items()
              if not k.startswith("blocks.") or int(k.split(".")[1]) < 2}
    state = random_state(shapes, seed=3)
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(state, path)
    model = tiny(pretrained=str(path))
    converted = convert_dinov2_state(dict(state), 16, 64)
    for key, value in converted.items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    with pytest.raises(MissingDinov2Weights, match="--pretrained PATH .* --pretrained none"):
        tiny(pretrained=None)
    with pytest.raises(ValueError, match="no instance-normalisation positions"):
        tiny(wt_layer=[0, 0, 1, 1, 1, 0, 0])


def test_rein_release_loads_through_the_key_map(tmp_path):
    model = tiny()
    release = {f"backbone.reins.{k}": v for k, v in random_state(official_reins_shapes(
        num_layers=2, dims=384, tokens=6)).items()}
    release.update({f"decode_head.{k}": v for k, v in random_state(official_head_shapes(
        in_dims=384, queries=6, enc_layers=1, dec_layers=3), seed=1).items()})
    path = tmp_path / "iter_40000_published.pth"
    torch.save({"meta": {"iter": 40000}, "state_dict": release}, path)
    dinov2 = {k: v for k, v in random_state(official_dinov2_shapes("vits14", grid=4, patch=16),
                                            seed=2).items()
              if not k.startswith("blocks.") or int(k.split(".")[1]) < 2}
    load_rein_release(model, path, dinov2)
    loaded = model.state_dict()
    assert torch.equal(loaded["decode_head.querys2feat.weight"],
                       release["decode_head.querys2feat.weight"])
    assert torch.equal(loaded["backbone.blocks.1.attn.qkv.weight"],
                       dinov2["blocks.1.attn.qkv.weight"])
    assert all(MMSEG_KEY_MAP[p] == p for p in MMSEG_KEY_MAP)  # our names are mmseg's
    del release["decode_head.level_embed.weight"]
    torch.save(release, path)
    with pytest.raises(ValueError, match="missing.*level_embed"):
        load_rein_release(model, path, dinov2)


def test_every_factory_builds_a_named_class():
    assert sorted(FACTORIES) == sorted(f"{p}Dinov2{s}Mask2Former" for p in ("Rein", "")
                                       for s in "SBLG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = FACTORIES["Dinov2BMask2Former"](pretrained=False, depth=1, img_size=32,
                                                num_decoder_layers=1, pixel_decoder_layers=1,
                                                num_queries=2)
    assert model.backbone.embed_dim == 768 and not model.uses_rein
