"""Parameter names, shapes and counts equal the official DeepR50V3PlusD (METHOD.md §2)."""

import pytest
import torch

from network import OFFICIAL_WT_LAYER, get_net
from utils.checkpoint import load_state_dict_forgiving

BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix, channels):
    return {f"{prefix}.{suffix}": (() if suffix == "num_batches_tracked" else (channels,))
            for suffix in BN_SUFFIXES}


def official_r50_keys(num_classes=19):
    """Key -> shape of the official DeepR50V3PlusD (wt_layer 0 0 1 1 1 0 0), from §2.2-2.3."""
    keys = {"layer0.0.weight": (64, 3, 7, 7)}
    in_channels = 64
    for layer, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for i in range(blocks):
            prefix = f"layer{layer}.{i}"
            keys[f"{prefix}.conv1.weight"] = (planes, in_channels, 1, 1)
            keys[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            keys[f"{prefix}.conv3.weight"] = (planes * 4, planes, 1, 1)
            for j, channels in ((1, planes), (2, planes), (3, planes * 4)):
                keys.update(_bn(f"{prefix}.bn{j}", channels))
            if i == 0:
                keys[f"{prefix}.downsample.0.weight"] = (planes * 4, in_channels, 1, 1)
                keys.update(_bn(f"{prefix}.downsample.1", planes * 4))
            in_channels = planes * 4
    keys["aspp.features.0.0.weight"] = (256, 2048, 1, 1)
    for i in (1, 2, 3):
        keys[f"aspp.features.{i}.0.weight"] = (256, 2048, 3, 3)
    for i in range(4):
        keys.update(_bn(f"aspp.features.{i}.1", 256))
    keys["aspp.img_conv.0.weight"] = (256, 2048, 1, 1)
    keys.update(_bn("aspp.img_conv.1", 256))
    keys["bot_fine.0.weight"] = (48, 256, 1, 1)
    keys.update(_bn("bot_fine.1", 48))
    keys["bot_aspp.0.weight"] = (256, 1280, 1, 1)
    keys.update(_bn("bot_aspp.1", 256))
    keys["final1.0.weight"] = (256, 304, 3, 3)
    keys.update(_bn("final1.1", 256))
    keys["final1.3.weight"] = (256, 256, 3, 3)
    keys.update(_bn("final1.4", 256))
    keys["final2.0.weight"], keys["final2.0.bias"] = (num_classes, 256, 1, 1), (num_classes,)
    keys["dsn.0.weight"], keys["dsn.0.bias"] = (512, 1024, 3, 3), (512,)
    keys.update(_bn("dsn.1", 512))
    keys["dsn.4.weight"], keys["dsn.4.bias"] = (num_classes, 512, 1, 1), (num_classes,)
    for head, dim in ((0, 2048), (1, 304), (2, 256)):
        prefix = f"ProjectionHead_cls_{head}.proj"
        keys[f"{prefix}.0.weight"], keys[f"{prefix}.0.bias"] = (dim, dim, 1, 1), (dim,)
        keys[f"{prefix}.2.weight"], keys[f"{prefix}.2.bias"] = (256, dim, 1, 1), (256,)
    return keys


@pytest.fixture(scope="module")
def r50():
    torch.manual_seed(0)
    return get_net("network.deepv3.DeepR50V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)


def test_keys_and_shapes_equal_the_official_table(r50):
    expected = official_r50_keys()
    ours = {k: tuple(v.shape) for k, v in r50.state_dict().items()}
    assert sorted(set(ours) - set(expected)) == []
    assert sorted(set(expected) - set(ours)) == []
    assert ours == expected
    assert len(ours) == 390
    assert sum(k.endswith("num_batches_tracked") for k in ours) == 62


def test_parameter_counts_equal_method_2_4(r50):
    def count(module):
        return sum(p.numel() for p in module.parameters())

    assert count(r50) == 50_104_694
    expected = {"layer0": 9_408, "layer1": 215_808, "layer2": 1_219_584, "layer3": 7_098_368,
                "layer4": 14_964_736, "aspp": 15_206_912, "bot_aspp": 328_192,
                "bot_fine": 12_384, "final1": 1_291_264, "final2": 4_883, "dsn": 4_729_875,
                "ProjectionHead_cls_0": 4_720_896, "ProjectionHead_cls_1": 170_800,
                "ProjectionHead_cls_2": 131_584}
    assert {name: count(getattr(r50, name)) for name in expected} == expected
    # Registration order of the children, as listed in METHOD.md §2.1 (losses excluded).
    assert [name for name, _ in r50.named_children()] == [
        "layer0", "layer1", "layer2", "layer3", "layer4", "aspp", "bot_fine", "bot_aspp",
        "final1", "final2", "dsn", "ProjectionHead_cls_0", "ProjectionHead_cls_1",
        "ProjectionHead_cls_2"]


def test_official_checkpoint_loads_with_no_missing_keys_and_same_logits(r50):
    # An "official" checkpoint: every tensor of the official key table, random values,
    # saved as DDP does (``module.`` prefix).
    generator = torch.Generator().manual_seed(1)
    state = {}
    for key, shape in official_r50_keys().items():
        if key.endswith("num_batches_tracked"):
            state[f"module.{key}"] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[f"module.{key}"] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[f"module.{key}"] = torch.randn(shape, generator=generator) * 0.05
    source = get_net("DeepR50V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    source.load_state_dict({k[len("module."):]: v for k, v in state.items()}, strict=True)

    report = load_state_dict_forgiving(r50, state, log=False)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert len(report.loaded) == 390

    images = torch.randn(1, 3, 64, 64, generator=generator)
    source.eval()
    r50.eval()
    with torch.no_grad():
        torch.testing.assert_close(r50(images), source(images), rtol=0, atol=0)
    r50.train()


def test_wt_layer_changes_only_the_documented_keys():
    bn_stem = get_net("DeepR18V3PlusD", wt_layer=(0, 0, 0, 1, 1, 0, 0), pretrained=False)
    in_stem = get_net("DeepR18V3PlusD", wt_layer=(0, 0, 1, 1, 1, 0, 0), pretrained=False)
    affine = get_net("DeepR18V3PlusD", wt_layer=(0, 0, 1, 4, 1, 0, 0), pretrained=False)
    extra = set(bn_stem.state_dict()) - set(in_stem.state_dict())
    assert extra == {f"layer0.1.{suffix}" for suffix in BN_SUFFIXES}
    assert set(affine.state_dict()) - set(in_stem.state_dict()) == {
        "layer1.1.instance_norm_layer.weight", "layer1.1.instance_norm_layer.bias"}
