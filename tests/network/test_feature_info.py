"""Trunks publish their stages as ``feature_info`` and the segmenter is wired from it."""

import pytest
import torch
from torch import nn

from network.deepv3 import TRUNKS, DeepV3Plus
from network.instance_norm import run_stage
from network.layers import FeatureInfo, StagedTrunk

STRIDES = {"resnet18": (4, 8, 16, 32), "resnet50": (4, 8, 16, 32),
           "resnet101_deep_stem": (8, 16), "mobilenet_v2": (8, 16, 32),
           "shufflenet_v2_x1_0": (8, 16, 32), "efficientnet_lite0": (8, 16, 32)}


@pytest.mark.parametrize("trunk_name, output_stride",
                         [(name, stride) for name, strides in STRIDES.items()
                          for stride in strides])
def test_feature_info_matches_what_each_stage_outputs(trunk_name, output_stride):
    builder, _ = TRUNKS[trunk_name]
    with torch.device("meta"):
        trunk = builder((0,) * 7, output_stride=output_stride)
        x = torch.empty(1, 3, 96, 160)
    assert [info.module for info in trunk.feature_info] == [f"layer{i}" for i in range(5)]
    for info in trunk.feature_info:
        x = run_stage(getattr(trunk, info.module), x)
        assert x.shape[1:] == (info.channels, -(-96 // info.stride), -(-160 // info.stride)), \
            info
    assert trunk.feature_info[-1].stride == output_stride


class _TinyTrunk(StagedTrunk):
    """Five strided convs with channels no real trunk has."""

    def __init__(self, names=("layer0", "layer1", "layer2", "layer3", "layer4")):
        super().__init__()
        channels, strides = (3, 8, 12, 20, 24, 40), (2, 2, 2, 1, 1)
        self.feature_info = []
        stride = 1
        for index, name in enumerate(names):
            setattr(self, name, nn.Sequential(nn.Conv2d(channels[index], channels[index + 1], 3,
                                                        strides[index], 1)))
            stride *= strides[index]
            self.feature_info.append(FeatureInfo(name, channels[index + 1], stride))


def test_the_segmenter_reads_channels_and_stride_from_feature_info():
    torch.manual_seed(0)
    model = DeepV3Plus(_TinyTrunk(), num_classes=5)
    assert model.output_stride == 8 and model.aspp.rates == (12, 24, 36)
    assert model.bot_fine[0].in_channels == 12       # layer1
    assert model.dsn[0].in_channels == 24            # layer3
    assert model.aspp.features[0][0].in_channels == 40 and \
        model.ProjectionHead_cls_0.proj[0].in_channels == 40
    output = model(torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16))
    assert output.original.logits.shape == (2, 5, 16, 16) and output.aux_logits.shape[1] == 5


def test_a_trunk_without_the_official_stage_names_is_refused():
    with pytest.raises(ValueError, match="publishing the stages layer0"):
        DeepV3Plus(_TinyTrunk(names=("stem", "s1", "s2", "s3", "s4")))
