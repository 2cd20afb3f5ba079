"""EfficientNet-Lite0 trunk: the packaged ImageNet weights classify real photos, load strictly,
and the DeepLabV3+ on it collects IN outputs at the documented block ends."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from skimage import data, transform

from loss import BlindNetCriterion
from network import OFFICIAL_WT_LAYER, get_net
from network.efficientnet import (BN_EPS, IN_POSITIONS, STAGE_BLOCKS, STAGE_CHANNELS,
                                  Conv2dSame, EfficientNetLite0, file_key)
from network.pretrained import efficientnet_lite0_file, init_pretrained
from transforms import IMAGENET_MEAN, IMAGENET_STD

NO_IN = (0,) * 7


class ImageNetHead(nn.Module):
    """The packaged file's classifier: 1x1 conv -> BN -> ReLU6 -> global mean -> linear.

    ``(B, 320, h, w) -> (B, 1000)`` logits; keys ``_conv_head``, ``_bn1``, ``_fc``.
    """

    def __init__(self, channels=1280, classes=1000):
        super().__init__()
        self._conv_head = Conv2dSame(STAGE_CHANNELS[4], channels, 1)
        self._bn1 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self._fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def imagenet_head(state_dict):
    """:class:`ImageNetHead` loaded strictly from the head entries of the packaged file."""
    head = ImageNetHead()
    head.load_state_dict({k: v for k, v in state_dict.items()
                          if k.startswith(("_conv_head.", "_bn1.", "_fc."))}, strict=True)
    return head


def _imagenet_input(image):
    """Resize the short side to 256, centre-crop 224, ImageNet mean/std: (1, 3, 224, 224)."""
    height, width = image.shape[:2]
    scale = 256 / min(height, width)
    image = transform.resize(image, (round(height * scale), round(width * scale)),
                             anti_aliasing=True)
    top, left = (image.shape[0] - 224) // 2, (image.shape[1] - 224) // 2
    x = torch.tensor(image[top:top + 224, left:left + 224], dtype=torch.float32)
    x = x.permute(2, 0, 1)[None]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    return (x - mean) / torch.tensor(IMAGENET_STD).view(3, 1, 1)


def test_packaged_weights_classify_imagenet_photos():
    trunk = EfficientNetLite0(NO_IN, output_stride=32)
    init_pretrained(trunk, "efficientnet_lite0", file_key, None)
    head = imagenet_head(torch.load(efficientnet_lite0_file(), map_location="cpu"))
    trunk.eval(), head.eval()
    images = torch.cat([_imagenet_input(getattr(data, name)())
                        for name in ("chelsea", "coffee", "rocket")])
    with torch.no_grad():
        top1 = head(trunk(images)).argmax(1)
    # Egyptian cat, espresso, missile
    assert top1.tolist() == [285, 967, 657]


def test_factory_loads_the_packaged_file_by_default_and_not_with_false():
    state = torch.load(efficientnet_lite0_file(), map_location="cpu")
    model = get_net("network.deepv3.DeepEffLite0V3PlusD", wt_layer=OFFICIAL_WT_LAYER)
    torch.testing.assert_close(model.layer0[0]._conv_stem.weight, state["_conv_stem.weight"])
    torch.testing.assert_close(model.layer4[4]._project_conv.weight,
                               state["_blocks.15._project_conv.weight"])
    torch.testing.assert_close(model.layer3[0]._bn1.running_var,
                               state["_blocks.5._bn1.running_var"])
    random = get_net("DeepEffLite0V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    assert not torch.equal(random.layer0[0]._conv_stem.weight, state["_conv_stem.weight"])


def test_every_file_key_of_the_trunk_maps_and_the_head_does_not():
    state = torch.load(efficientnet_lite0_file(), map_location="cpu")
    own = EfficientNetLite0(NO_IN).state_dict()
    mapped = {file_key(k) for k in state} - {None}
    assert mapped == set(own)
    assert {k for k in state if file_key(k) is None} == {
        k for k in state if k.startswith(("_conv_head.", "_bn1.", "_fc."))}


def test_strict_loading_names_every_mismatch(tmp_path):
    state = torch.load(efficientnet_lite0_file(), map_location="cpu")
    del state["_blocks.3._bn1.weight"]
    state["_blocks.7._project_conv.weight"] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="strict") as info:
        get_net("DeepEffLite0V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=str(path))
    assert "layer2.0._bn1.weight" in str(info.value)
    assert "layer3.2._project_conv.weight" in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        get_net("DeepEffLite0V3PlusD", pretrained=str(tmp_path / "missing.pth"))


def test_our_checkpoint_loads_as_pretrained(tmp_path):
    source = get_net("DeepEffLite0V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    path = tmp_path / "ours.pth"
    torch.save(source.state_dict(), path)
    model = get_net("DeepEffLite0V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=str(path))
    torch.testing.assert_close(model.layer2[1]._depthwise_conv.weight,
                               source.layer2[1]._depthwise_conv.weight)


@pytest.mark.parametrize("size", [16, 17])
def test_stride_two_pads_like_tensorflow_same(size):
    torch.manual_seed(0)
    conv = Conv2dSame(2, 3, 5, stride=2)
    x = torch.randn(1, 2, size, size)
    total = max((-(-size // 2) - 1) * 2 + 5 - size, 0)  # 3 for 16, 2 for 17
    expected = F.conv2d(F.pad(x, [total // 2, total - total // 2] * 2), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape[-1] == -(-size // 2)


def test_two_view_blindnet_step_collects_in_at_the_stage_ends():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = get_net("DeepEffLite0V3PlusD", num_classes=5, wt_layer=(0, 0, 1, 1, 1, 1, 1),
                    pretrained=False)
    block_outputs = []
    blocks = [model.layer0[1], model.layer1[1], model.layer2[1], model.layer3[5],
              model.layer4[4]]
    assert sorted(IN_POSITIONS) == [end - 1 for end in STAGE_BLOCKS[1:]]
    for block in blocks:
        block.register_forward_hook(lambda module, args, out: block_outputs.append(out))
    criterion = BlindNetCriterion(use_ca=True, use_cwcl=True, use_sdcl=True, w1=0.2, w2=0.2,
                                  w3=0.3, w4=0.3, contrast_max_classes=3, contrast_max_views=6,
                                  num_patch=3)
    images = torch.randn(2, 3, 64, 64, generator=generator)
    images_aug = images + 0.5 * torch.randn(2, 3, 64, 64, generator=generator)
    labels = torch.randint(0, 5, (2, 4, 4), generator=generator)
    labels = labels.repeat_interleave(16, 1).repeat_interleave(16, 2)

    output = model(images, images_aug, with_embeddings=True)
    assert [tuple(f.shape[1:]) for f in output.original.in_feats] == [
        (16, 32, 32), (24, 16, 16), (40, 8, 8), (112, 4, 4), (320, 4, 4)]
    in_feats = output.original.in_feats + output.augmented.in_feats
    for collected, block_out in zip(in_feats, block_outputs):
        assert collected is block_out
        torch.testing.assert_close(collected.mean(dim=(2, 3)),
                                   torch.zeros(collected.shape[:2]), atol=1e-5, rtol=0)
    losses = criterion(output, labels, generator)
    assert all(torch.isfinite(v) for v in losses.values()) and losses["cml"] > 0
    losses["total"].backward()
    assert all(p.grad is not None for p in model.layer0.parameters())
