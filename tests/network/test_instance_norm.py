"""IN placement by --wt_layer, feature collection, and per-view BatchNorm statistics."""

import torch

from network import OFFICIAL_WT_LAYER, get_net
from network.instance_norm import InstanceWhitening


def _standardised(feature):
    mean = feature.mean(dim=(2, 3))
    var = feature.var(dim=(2, 3), unbiased=False)
    return (torch.allclose(mean, torch.zeros_like(mean), atol=1e-4)
            and torch.allclose(var, torch.ones_like(var), atol=1e-2))


def test_official_wt_layer_collects_three_standardised_features():
    model = get_net("DeepR50V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    whitening = [name for name, m in model.named_modules() if isinstance(m, InstanceWhitening)]
    assert whitening == ["layer0.1", "layer1.2.instance_norm_layer",
                         "layer2.3.instance_norm_layer"]
    output = model(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64))
    for feats in (output.original.in_feats, output.augmented.in_feats):
        assert [tuple(f.shape) for f in feats] == [(2, 64, 32, 32), (2, 256, 16, 16),
                                                   (2, 512, 8, 8)]
        # Collected before the ReLU, and not clobbered by an in-place ReLU afterwards.
        assert all(_standardised(f) and (f < 0).any() for f in feats)


def test_wt_values_3_and_4_are_not_collected_and_0_adds_nothing():
    images = torch.randn(2, 3, 32, 32)
    plain = get_net("DeepShuffleNetV3PlusD", wt_layer=(0,) * 7, pretrained=False)
    assert plain(images).original.in_feats == []
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in plain.modules())
    other = get_net("DeepShuffleNetV3PlusD", wt_layer=(0, 0, 3, 4, 1, 0, 2), pretrained=False)
    feats = other(images).original.in_feats
    assert [f.shape[1] for f in feats] == [232, 1024]   # stage3 end and conv5
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in other.modules()) == 4


def test_deep_stem_positions():
    model = get_net("DeepR101V3PlusD", wt_layer=(1, 2, 1, 1, 0, 0, 0), pretrained=False)
    names = [name for name, m in model.named_modules() if isinstance(m, InstanceWhitening)]
    assert names == ["layer0.1", "layer0.4", "layer0.7", "layer1.2.instance_norm_layer"]
    feats = model(torch.randn(2, 3, 32, 32)).original.in_feats
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 16, 16), (64, 16, 16), (128, 16, 16),
                                                   (256, 8, 8)]


def test_light_trunk_positions():
    model = get_net("DeepMobileNetV3PlusD", wt_layer=(1, 1, 1, 1, 1, 1, 1), pretrained=False)
    names = [name for name, m in model.named_modules() if isinstance(m, InstanceWhitening)]
    # Features 1, 6, 10, 17 (indices 0, 1 and 6 have no effect on MobileNetV2).
    assert names == ["layer0.1.instance_norm_layer", "layer1.4.instance_norm_layer",
                     "layer2.3.instance_norm_layer", "layer3.6.instance_norm_layer"]


def test_each_view_is_normalised_by_its_own_batch():
    torch.manual_seed(0)
    model = get_net("DeepR18V3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    images, images_aug = torch.randn(2, 3, 64, 64), 3 * torch.randn(2, 3, 64, 64) + 1
    tracked = model.layer1[0].bn1.num_batches_tracked.item()
    pair = model(images, images_aug)
    assert model.layer1[0].bn1.num_batches_tracked.item() == tracked + 2  # updated twice
    alone = model(images)
    alone_aug = model(images_aug)
    torch.testing.assert_close(pair.original.logits, alone.original.logits)
    torch.testing.assert_close(pair.augmented.logits, alone_aug.original.logits)
    torch.testing.assert_close(pair.augmented.embeddings[2], alone_aug.original.embeddings[2])


def test_eval_uses_running_stats_and_per_image_instance_norm():
    model = get_net("DeepMobileNetV3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        both = model(images)
        first = model(images[:1])
    torch.testing.assert_close(both[:1], first, atol=1e-5, rtol=1e-4)
