"""Norm layers by name (network/norms.py): the registry, --wt_layer codes and names,
--norm_layer / --head_norm_layer, and properties that act by declaration, not by class."""

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from network import FACTORIES, get_net
from network import norms
from network.efficientnet import EfficientNetLite0, file_key
from network.instance_norm import instance_norm_layer, validate_wt_layer
from network.norm_layers import NormLayer
from network.norm_layers.switchable_whitening import SwitchWhiten2d
from network.norm_semantics import Torch12InstanceNorm, apply_norm_semantics
from network.pretrained import efficientnet_lite0_file, init_pretrained
from utils.wt_layer import WT_LAYER_CODES, whitening_modes

TRUNK_ARCHS = ("DeepR18V3PlusD", "DeepR101V3PlusD", "DeepMobileNetV3PlusD",
               "DeepShuffleNetV3PlusD", "DeepEffLite0V3PlusD")
HEADS = ("aspp", "bot_fine", "bot_aspp", "final1", "dsn")


def _meta_net(arch, **kwargs):
    with torch.device("meta"):
        return get_net(arch, pretrained=False, **kwargs)


def _norm_like(module):
    return isinstance(module, (_NormBase, SwitchWhiten2d)) or "Norm" in type(module).__name__


@pytest.mark.parametrize("arch", sorted(FACTORIES))
def test_every_norm_module_of_every_factory_is_registered(arch):
    wt = (0, 0, 5, 5, 5, 0, 0) if arch.startswith("DeepR") else (1, 2, 3, 4, 1, 2, 3)
    model = apply_norm_semantics(_meta_net(arch, wt_layer=wt), "torch1.2")
    unregistered = [name for name, m in model.named_modules()
                    if _norm_like(m) and norms.declared(m) is None]
    assert not unregistered


def test_each_wt_code_builds_the_layer_its_name_declares():
    for code, meaning in WT_LAYER_CODES.items():
        layer = instance_norm_layer(code, 32)
        if meaning.norm is None:
            assert layer is None
            continue
        entry = norms.NORM_LAYERS[meaning.norm]
        assert type(layer) is entry.cls and norms.declared(layer) is entry
        # Only the collected layer (codes 1, 2) feeds the losses; only 1/2 pick a whitening loss.
        assert entry.collected == (code in (1, 2))
        assert whitening_modes([code]) == ({"iw"} if code == 1 else {"isw"} if code == 2
                                           else set())


def test_wt_layer_names_build_what_their_codes_build():
    by_code = _meta_net("DeepR50V3PlusD", wt_layer=(0, 0, 1, 3, 4, 5, 0))
    by_name = _meta_net("DeepR50V3PlusD", wt_layer=(0, "0", "instance_whitening",
                                                    "instancenorm", "instancenorm_affine",
                                                    "switchable_whitening", 0))
    assert [(k, v.shape) for k, v in by_code.state_dict().items()] == \
        [(k, v.shape) for k, v in by_name.state_dict().items()]
    assert [type(m) for m in by_code.modules()] == [type(m) for m in by_name.modules()]
    # A name asks for no RobustNet whitening loss; the code does.
    assert whitening_modes(["instance_whitening"]) == set() and whitening_modes(["2"]) == {"isw"}


@pytest.mark.parametrize("wt_layer, match", [
    ((0, 0, 9, 0, 0, 0, 0), "--wt_layer values must be 7 codes"),
    ((0, 0, "nonorm", 0, 0, 0, 0), "--wt_layer values must be 7 codes"),
    ((0, 0, 1, 1, 1, 0), "--wt_layer values must be 7 codes"),
])
def test_bad_wt_layer_values_are_named(wt_layer, match):
    with pytest.raises(ValueError, match=match):
        validate_wt_layer(wt_layer)


def test_switchable_whitening_by_name_is_refused_outside_resnets_like_code_5():
    for value in (5, "switchable_whitening"):
        with pytest.raises(ValueError, match="only built on the ResNet trunks"):
            _meta_net("DeepMobileNetV3PlusD", wt_layer=(0, 0, value, 0, 0, 0, 0))


@pytest.mark.parametrize("arch", TRUNK_ARCHS)
def test_norm_layer_replaces_every_trunk_batchnorm_and_head_norm_layer_the_heads(arch):
    default = _meta_net(arch, wt_layer=(0, 0, 1, 1, 1, 0, 0))
    model = _meta_net(arch, wt_layer=(0, 0, 1, 1, 1, 0, 0), norm_layer="instancenorm_affine",
                      head_norm_layer="syncbatchnorm")
    trunk = [m for name, m in model.named_modules() if name.startswith("layer")]
    heads = [m for name in HEADS for m in getattr(model, name).modules()]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in trunk)
    assert sum(type(m) is nn.InstanceNorm2d and m.affine for m in trunk) == \
        sum(isinstance(m, nn.BatchNorm2d) for name, m in default.named_modules()
            if name.startswith("layer"))
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in heads) == \
        sum(isinstance(m, nn.BatchNorm2d) for name in HEADS
            for m in getattr(default, name).modules())
    # Same parameters under the same names (an affine IN has no running statistics); the
    # --wt_layer layers are still the collected ones.
    assert {k: v.shape for k, v in model.named_parameters()} == \
        {k: v.shape for k, v in default.named_parameters()}
    assert [n for n, m in model.named_modules() if norms.is_collected(m)] == \
        [n for n, m in default.named_modules() if norms.is_collected(m)]


def test_strict_imagenet_loading_fills_a_replacing_layer_with_what_fits():
    """EfficientNet-Lite0 loads its packaged file strictly: with every BatchNorm replaced by an
    affine IN (imagenet="matching"), the IN affines come from the file, the file's running
    statistics stay unused, and every other tensor is still required and loaded."""
    state = torch.load(efficientnet_lite0_file(), map_location="cpu")
    trunk = EfficientNetLite0((0, 0, 4, 0, 0, 0, 0), output_stride=32,
                              norm_layer=norms.NORM_LAYERS["instancenorm_affine"])
    report = init_pretrained(trunk, "efficientnet_lite0", file_key, None)
    assert type(trunk.layer0[0]._bn0) is nn.InstanceNorm2d and trunk.layer0[0]._bn0.eps == 1e-3
    torch.testing.assert_close(trunk.layer0[0]._bn0.weight, state["_bn0.weight"])
    torch.testing.assert_close(trunk.layer3[0]._bn1.bias, state["_blocks.5._bn1.bias"])
    torch.testing.assert_close(trunk.layer4[4]._project_conv.weight,
                               state["_blocks.15._project_conv.weight"])
    assert "layer0.0._bn0.running_mean" in report.unexpected
    # The --wt_layer IN added after block 0 is new: it keeps its init.
    assert torch.equal(trunk.layer0[1].instance_norm_layer.weight, torch.ones(16))


def test_a_replaced_trunk_trains_and_collects_its_wt_layer_features():
    torch.manual_seed(0)
    model = get_net("DeepR18V3PlusD", wt_layer=(0, 0, 1, 1, 1, 0, 0), pretrained=False,
                    norm_layer="instancenorm")
    output = model(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64))
    assert [f.shape[1] for f in output.augmented.in_feats] == [64, 64, 128]
    output.original.logits.mean().backward()
    assert model.layer1[0].conv1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("flag, kwargs, match", [
    ("--norm_layer", {"norm_layer": "bogus"}, "not a registered norm layer"),
    ("--norm_layer", {"norm_layer": "instance_whitening"}, "collected for the losses only"),
    ("--head_norm_layer", {"head_norm_layer": "instance_whitening"}, "collected"),
    ("--head_norm_layer", {"head_norm_layer": "instancenorm"}, "ASPP image-pooling"),
])
def test_unusable_norm_layers_are_refused_naming_the_flag(flag, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        _meta_net("DeepR18V3PlusD", **kwargs)
    assert flag in str(info.value)


def test_a_callable_norm_layer_is_used_as_is():
    model = _meta_net("DeepR18V3PlusD", wt_layer=(0,) * 7,
                      norm_layer=lambda channels, **kw: nn.GroupNorm(8, channels, **kw))
    assert isinstance(model.layer1[0].bn1, nn.GroupNorm)
    assert isinstance(model.layer0[1], nn.GroupNorm)


class _Centred(nn.InstanceNorm2d):
    """A stand-in for a new layer: IN without dividing by the deviation (any class would do)."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__(num_features, eps=eps)

    def forward(self, x):
        return x - x.mean(dim=(2, 3), keepdim=True)


@pytest.fixture
def centred_registered(monkeypatch):
    """Register ``centred`` as a collected layer the way a network/norm_layers/ file would."""
    entry = NormLayer("centred", _Centred, collected=True, torch12_batch_statistics=True)
    monkeypatch.setitem(norms.NORM_LAYERS, entry.name, entry)
    monkeypatch.setitem(norms._BY_CLASS, _Centred, [entry])
    return entry


def test_a_new_collected_layer_feeds_the_losses_by_declaration(centred_registered):
    torch.manual_seed(0)
    model = get_net("DeepR18V3PlusD", wt_layer=(0, 0, "centred", 0, "centred", 0, 0),
                    pretrained=False)
    assert isinstance(model.layer0[1], _Centred) and not model.layer0[2].inplace
    output = model(torch.randn(2, 3, 32, 32))
    stem, layer2 = output.original.in_feats
    assert stem.shape[1] == 64 and layer2.shape[1] == 128
    # Collected before the ReLU (negative values kept), centred per image and channel.
    assert (stem < 0).any()
    torch.testing.assert_close(stem.mean(dim=(2, 3)), torch.zeros(2, 64), atol=1e-5, rtol=0)
    apply_norm_semantics(model, "torch1.2")
    assert isinstance(model.layer0[1], Torch12InstanceNorm)


class _Shifted(nn.Module):
    """A stand-in for a layer that transforms features without normalising them."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__()

    def forward(self, x):
        return x + 1


@pytest.fixture
def shifted_registered(monkeypatch):
    entry = NormLayer("shifted", _Shifted, normalises=False)
    monkeypatch.setitem(norms.NORM_LAYERS, entry.name, entry)
    monkeypatch.setitem(norms._BY_CLASS, _Shifted, [entry])
    return entry


def test_a_layer_that_does_not_normalise_is_only_added_never_a_norm(shifted_registered):
    model = _meta_net("DeepR18V3PlusD", wt_layer=(0, 0, 0, "shifted", 0, "shifted", 0))
    assert [n for n, m in model.named_modules() if isinstance(m, _Shifted)] == [
        "layer1.1.instance_norm_layer", "layer3.1.instance_norm_layer"]
    assert isinstance(model.layer1[1].bn2, nn.BatchNorm2d)  # added after the block's norms
    for kwargs, flag in (({"norm_layer": "shifted"}, "--norm_layer shifted"),
                         ({"head_norm_layer": "shifted"}, "--head_norm_layer shifted"),
                         ({"wt_layer": (0, 0, "shifted", 0, 0, 0, 0)}, "--wt_layer shifted")):
        with pytest.raises(ValueError, match="does not normalise") as info:
            _meta_net("DeepR18V3PlusD", **kwargs)
        assert flag in str(info.value)
    with pytest.raises(ValueError, match="stem position"):  # ShuffleNetV2's stem: index 2
        _meta_net("DeepShuffleNetV3PlusD", wt_layer=(0, 0, "shifted", 0, 0, 0, 0))


def test_discovery_finds_each_file_and_refuses_one_without_its_declaration(tmp_path,
                                                                           monkeypatch):
    package = tmp_path / "extra_norms"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "scaled.py").write_text(
        "from torch import nn\nfrom network.norm_layers import NormLayer\n"
        "class Scaled(nn.BatchNorm2d):\n    pass\n"
        "NORM_LAYER = NormLayer('scaled', Scaled, imagenet='all')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import extra_norms
    (entry,) = norms.discover_norm_layers(extra_norms)
    assert entry.name == "scaled" and entry(8).num_features == 8
    (package / "broken.py").write_text("X = 1\n")
    with pytest.raises(TypeError, match="broken.py must declare NORM_LAYER"):
        norms.discover_norm_layers(extra_norms)


def test_registry_refuses_a_repeated_name_and_a_class_with_two_behaviours():
    batchnorm = norms.NORM_LAYERS["batchnorm"]
    with pytest.raises(ValueError, match="declared twice"):
        norms.build_registry([batchnorm, batchnorm])
    other = NormLayer("bn_collected", nn.BatchNorm2d, collected=True)
    with pytest.raises(ValueError, match="same class BatchNorm2d"):
        norms.build_registry([batchnorm, other])
    with pytest.raises(ValueError, match="imagenet must be one of"):
        NormLayer("odd", nn.BatchNorm2d, imagenet="sometimes")
