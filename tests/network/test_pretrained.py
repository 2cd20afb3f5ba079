"""Trunks match torchvision's networks; ImageNet weights load from a file or the hub cache."""

import logging

import pytest
import torch
import torchvision

from network import OFFICIAL_WT_LAYER, get_net
from network.deepv3 import TRUNKS
from network.pretrained import MissingImageNetWeights, cached_weight_files, load_trunk_weights
from utils.logging import LOGGER_NAME

NO_IN = (0,) * 7


@pytest.fixture
def log_records(caplog):
    """Records of the project logger, whether or not setup_logging() stopped propagation."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    yield caplog
    logger.removeHandler(caplog.handler)


def _randomise_bn_stats(model):
    generator = torch.Generator().manual_seed(3)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator))
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + .5)


def _resnet_features(tv, x):
    x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
    return tv.layer4(tv.layer3(tv.layer2(tv.layer1(x))))


def _shufflenet_features(tv, x):
    x = tv.maxpool(tv.conv1(x))
    return tv.conv5(tv.stage4(tv.stage3(tv.stage2(x))))


CASES = {
    "resnet18": (torchvision.models.resnet18, _resnet_features),
    "resnet50": (torchvision.models.resnet50, _resnet_features),
    "mobilenet_v2": (torchvision.models.mobilenet_v2, lambda tv, x: tv.features(x)),
    "shufflenet_v2_x1_0": (torchvision.models.shufflenet_v2_x1_0, _shufflenet_features),
}


@pytest.mark.parametrize("trunk_name", sorted(CASES))
def test_trunk_equals_torchvision_network(trunk_name, tmp_path):
    torch.manual_seed(0)
    build_torchvision, features = CASES[trunk_name]
    reference = build_torchvision(weights=None)
    _randomise_bn_stats(reference)
    path = tmp_path / "imagenet.pth"
    torch.save(reference.state_dict(), path)

    build_trunk, key_map = TRUNKS[trunk_name]
    trunk = build_trunk(NO_IN, output_stride=32)
    report = load_trunk_weights(trunk, path, key_map)
    assert report.missing == [] and report.mismatched == []
    assert report.unexpected
    assert all(k.startswith(("fc.", "classifier.")) for k in report.unexpected)

    images = torch.randn(1, 3, 64, 64)
    reference.eval()
    trunk.eval()
    with torch.no_grad():
        torch.testing.assert_close(trunk(images), features(reference, images))


def test_pretrained_path_loads_trunk_and_lists_skipped(tmp_path, log_records):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": reference.state_dict()}, path)
    model = get_net("DeepR18V3PlusD", wt_layer=OFFICIAL_WT_LAYER,  # bn1 -> IN
                    pretrained=str(path))
    torch.testing.assert_close(model.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    torch.testing.assert_close(model.layer0[0].weight, reference.conv1.weight)
    text = log_records.text
    assert "fc.weight" in text and "layer0.1.weight" in text  # unused: classifier, stem BN


def test_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--pretrained"):
        get_net("DeepR18V3PlusD", pretrained=str(tmp_path / "missing.pth"))
    path = tmp_path / "other.pth"
    torch.save({"classifier.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match="no tensor matches"):
        get_net("DeepR18V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=str(path))


def test_hub_cache_is_used_only_when_the_file_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(0)
    cached = cached_weight_files("shufflenet_v2_x1_0")[0]
    assert cached.parent == tmp_path / "checkpoints" and cached.name.startswith("shufflenetv2")
    with pytest.raises(MissingImageNetWeights) as missing:
        get_net("DeepShuffleNetV3PlusD", wt_layer=OFFICIAL_WT_LAYER)
    assert str(cached) in str(missing.value)

    reference = torchvision.models.shufflenet_v2_x1_0(weights=None)
    cached.parent.mkdir()
    torch.save(reference.state_dict(), cached)
    model = get_net("DeepShuffleNetV3PlusD", wt_layer=OFFICIAL_WT_LAYER)
    torch.testing.assert_close(model.layer2[3].branch2[0].weight,
                               reference.stage3[3].branch2[0].weight)


@pytest.mark.parametrize("arch", ["DeepR18V3PlusD", "DeepR50V3PlusD"])
def test_no_weights_found_is_an_error_naming_both_ways_on(arch, tmp_path, monkeypatch):
    # Before: a warning and a random trunk, so an offline 40k-iteration run trained a random
    # ResNet and exited 0. Now: the paths looked in, --pretrained PATH and --pretrained none.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError) as missing:
        get_net(arch)
    text = str(missing.value)
    assert isinstance(missing.value, MissingImageNetWeights)
    assert str(tmp_path / "checkpoints") in text
    assert "--pretrained PATH" in text and "--pretrained none" in text
    assert get_net(arch, pretrained=False).training  # the deliberate random start still works


def test_deep_stem_never_uses_the_torchvision_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "resnet101-63fe2227.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(MissingImageNetWeights, match="torchvision has no ImageNet weights"):
        get_net("DeepR101V3PlusD", wt_layer=OFFICIAL_WT_LAYER)


def test_deep_stem_file_keys_map_to_layer0(tmp_path):
    build_trunk, key_map = TRUNKS["resnet101_deep_stem"]
    source = build_trunk(NO_IN, output_stride=16)
    to_file = {"layer0.0.": "conv1.", "layer0.1.": "bn1.", "layer0.3.": "conv2.",
               "layer0.4.": "bn2.", "layer0.6.": "conv3.", "layer0.7.": "bn3."}
    state = {}
    for key, value in source.state_dict().items():
        prefix = next((p for p in to_file if key.startswith(p)), None)
        state[key if prefix is None else to_file[prefix] + key[len(prefix):]] = value
    torch.save(state, tmp_path / "resnet101-imagenet.pth")
    target = build_trunk(NO_IN, output_stride=16)
    report = load_trunk_weights(target, tmp_path / "resnet101-imagenet.pth", key_map)
    assert report.complete
    torch.testing.assert_close(target.layer0[6].weight, source.layer0[6].weight)
    torch.testing.assert_close(target.layer0[7].running_var, source.layer0[7].running_var)
