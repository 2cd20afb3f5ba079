"""Every factory builds and returns the documented shapes; arch resolution and input checks."""

import pytest
import torch

import network
from network import OFFICIAL_WT_LAYER, ModelOutput, ViewOutput, get_net

# name -> (decoder stride, layer3 (aux) stride, layer4 stride, collected IN channels)
EXPECTED = {
    "DeepR18V3PlusD": (4, 16, 32, (64, 64, 128)),
    "DeepR50V3PlusD": (4, 16, 16, (64, 256, 512)),
    "DeepR50V3PlusD_OS8": (4, 8, 8, (64, 256, 512)),
    "DeepR101V3PlusD": (4, 16, 16, (128, 256, 512)),
    "DeepR101V3PlusD_OS8": (4, 8, 8, (128, 256, 512)),
    "DeepMobileNetV3PlusD": (8, 16, 16, (16, 32, 64)),
    "DeepMobileNetV3PlusD_OS8": (8, 8, 8, (16, 32, 64)),
    "DeepShuffleNetV3PlusD": (8, 16, 16, (24, 116, 232)),
    "DeepShuffleNetV3PlusD_OS8": (8, 8, 8, (24, 116, 232)),
    "DeepShuffleNetV3PlusD_OS32": (8, 32, 32, (24, 116, 232)),
    "DeepEffLite0V3PlusD": (4, 16, 16, (16, 24, 40)),
}
SIZE = 64


def test_every_factory_is_tested():
    assert set(network.FACTORIES) == set(EXPECTED)


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_factory_shapes(arch, device):
    torch.manual_seed(0)
    dec_stride, aux_stride, out_stride, in_channels = EXPECTED[arch]
    model = get_net(f"network.deepv3.{arch}", wt_layer=OFFICIAL_WT_LAYER, num_classes=7,
                    pretrained=False).to(device)
    assert model.output_stride == out_stride
    images = torch.randn(2, 3, SIZE, SIZE, device=device)

    output = model(images, images.flip(-1))
    assert isinstance(output, ModelOutput) and output.two_view
    views = (output.original, output.augmented)
    assert all(isinstance(view, ViewOutput) for view in views)
    for view in views:
        assert view.logits.shape == (2, 7, SIZE, SIZE)
        assert view.dec_logits.shape == (2, 7, SIZE // dec_stride, SIZE // dec_stride)
        assert tuple(f.shape[1] for f in view.in_feats) == in_channels
    assert output.aux_logits.shape == (2, 7, SIZE // aux_stride, SIZE // aux_stride)
    for embeddings in (output.original.embeddings, output.augmented.embeddings):
        assert [tuple(e.shape) for e in embeddings] == [
            (2, 256, SIZE // out_stride, SIZE // out_stride),
            (2, 256, SIZE // dec_stride, SIZE // dec_stride),
            (2, 256, SIZE // dec_stride, SIZE // dec_stride)]
        norms = torch.stack([e.norm(dim=1).mean() for e in embeddings])
        torch.testing.assert_close(norms, torch.ones(3, device=device), atol=1e-4, rtol=0)

    model.eval()
    with torch.no_grad():
        logits = model(images)
    assert torch.is_tensor(logits) and logits.shape == (2, 7, SIZE, SIZE)


def test_batch_of_two_is_not_a_pair():
    model = get_net("DeepMobileNetV3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    output = model(torch.randn(2, 3, 32, 32))
    assert isinstance(output, ModelOutput)
    assert output.original.logits.shape[0] == 2
    assert output.augmented is None and not output.two_view
    assert output.aux_logits.shape[0] == 2


def test_without_embeddings_heads_are_not_run():
    model = get_net("DeepShuffleNetV3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    output = model(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32), with_embeddings=False)
    assert output.original.embeddings is None and output.augmented.embeddings is None
    assert output.augmented.logits is not None


def test_arch_names_resolve():
    assert network.resolve_arch("DeepR50V3PlusD") is network.FACTORIES["DeepR50V3PlusD"]
    assert network.resolve_arch("network.deepv3.DeepR50V3PlusD") is \
        network.FACTORIES["DeepR50V3PlusD"]
    with pytest.raises(ValueError, match="network.deepv3.DeepR50V3PlusD_OS8"):
        get_net("network.deepv3.DeepWV3Plus")


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="--wt_layer"):
        get_net("DeepR18V3PlusD", wt_layer=(0, 0, 1, 1, 1, 0), pretrained=False)
    with pytest.raises(ValueError, match="--wt_layer"):
        get_net("DeepR18V3PlusD", wt_layer=(0, 0, 6, 0, 0, 0, 0), pretrained=False)
    with pytest.raises(ValueError, match="--wt_layer code 5"):
        get_net("DeepShuffleNetV3PlusD", wt_layer=(0, 0, 5, 0, 0, 0, 0), pretrained=False)
    model = get_net("DeepShuffleNetV3PlusD", wt_layer=OFFICIAL_WT_LAYER, pretrained=False)
    with pytest.raises(ValueError, match="images_aug must have the shape"):
        model(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.randn(3, 32, 32))
