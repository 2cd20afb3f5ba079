"""BlindNetCriterion: terms, weights, errors, and full training steps."""

import pytest
import torch

import cli
from loss import BlindNetCriterion, SegmentationCrossEntropy
from network import OFFICIAL_WT_LAYER, ModelOutput, ViewOutput, get_net

OFFICIAL_FLAGS = ["--dataset", "gtav_jitter", "--wt_layer", "0", "0", "1", "1", "1", "0", "0",
                  "--use_ca", "--use_cwcl", "--use_sdcl", "--w1", "0.2", "--w2", "0.2",
                  "--w3", "0.3", "--w4", "0.3", "--nce_T", "0.07", "--contrast_max_classes",
                  "15", "--contrast_max_view", "50", "--num_patch", "20"]


def _blocky_labels(batch, size, generator):
    """Labels made of 8x8 blocks of 4 classes, a few ignored: every loss has work to do."""
    blocks = torch.randint(0, 4, (batch, size // 8, size // 8), generator=generator)
    labels = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)
    labels[:, :, :4] = 255
    return labels


def test_the_official_flags_build_the_official_criterion():
    criterion = BlindNetCriterion(**cli.criterion_kwargs(cli.parse_args("train", OFFICIAL_FLAGS)))
    assert criterion.weights == {"main": 1.0, "aux": 0.4, "cml": 0.2, "ccl": 0.2, "cwcl": 0.3,
                                 "sdcl": 0.3}
    cwcl, sdcl = criterion.term("cwcl"), criterion.term("sdcl")
    assert (cwcl.max_classes, cwcl.max_views) == (15, 50)
    assert sdcl.num_patch == 20 and cwcl.temperature == 0.07
    assert criterion.needs_embeddings and criterion.needs_two_views
    assert criterion.needs_in_features and criterion.whitening_loss is None


def _fake_output(generator, two_view=True, classes=5, size=16):
    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    def view():
        return ViewOutput(logits=randn(2, classes, size, size), dec_logits=randn(2, classes, 4, 4),
                          in_feats=[torch.nn.functional.instance_norm(randn(2, 4, 8, 8))],
                          embeddings=[torch.nn.functional.normalize(randn(2, 8, s, s), dim=1)
                                      for s in (2, 4, 4)])
    original, augmented = view(), view()
    return ModelOutput(original=original, aux_logits=randn(2, classes, 2, 2),
                       augmented=augmented if two_view else None)


def test_total_is_the_weighted_sum_of_the_enabled_terms():
    generator = torch.Generator().manual_seed(0)
    output = _fake_output(generator)
    labels = torch.randint(0, 5, (2, 16, 16), generator=generator)
    criterion = BlindNetCriterion(use_ca=True, use_sdcl=True, w1=0.2, w2=0.5, w4=0.3,
                                  num_patch=2)
    losses = criterion(output, labels, torch.Generator().manual_seed(1))
    assert set(losses) == {"main", "aux", "cml", "ccl", "sdcl", "total"}
    ce = SegmentationCrossEntropy()
    torch.testing.assert_close(losses["main"], 0.5 * (ce(output.original.logits, labels)
                                                      + ce(output.augmented.logits, labels)))
    expected = (losses["main"] + 0.4 * losses["aux"] + 0.2 * losses["cml"]
                + 0.5 * losses["ccl"] + 0.3 * losses["sdcl"])
    torch.testing.assert_close(losses["total"], expected)


def test_single_view():
    generator = torch.Generator().manual_seed(0)
    output = _fake_output(generator, two_view=False)
    labels = torch.randint(0, 5, (2, 16, 16), generator=generator)
    losses = BlindNetCriterion()(output, labels)
    assert set(losses) == {"main", "aux", "total"}
    torch.testing.assert_close(losses["main"], SegmentationCrossEntropy()(output.original.logits,
                                                                          labels))
    with pytest.raises(ValueError, match="--use_cwcl needs two views"):
        BlindNetCriterion(use_cwcl=True)(output, labels)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="--cwcl_negatives"):
        BlindNetCriterion(use_cwcl=True, cwcl_negatives="all")
    with pytest.raises(ValueError, match="--num_patch"):
        BlindNetCriterion(use_sdcl=True, num_patch=1)


@pytest.mark.parametrize("arch, size", [("DeepR50V3PlusD", 64), ("DeepShuffleNetV3PlusD", 64)])
def test_full_training_step(arch, size):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = get_net(arch, wt_layer=OFFICIAL_WT_LAYER, num_classes=5, pretrained=False)
    criterion = BlindNetCriterion(use_ca=True, use_cwcl=True, use_sdcl=True, w1=0.2, w2=0.2,
                                  w3=0.3, w4=0.3, contrast_max_classes=3, contrast_max_views=6,
                                  num_patch=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(2, 3, size, size, generator=generator)
    images_aug = images + 0.5 * torch.randn(2, 3, size, size, generator=generator)
    labels = _blocky_labels(2, size, generator)

    output = model(images, images_aug, with_embeddings=criterion.needs_embeddings)
    losses = criterion(output, labels, generator)
    assert set(losses) == {"main", "aux", "cml", "ccl", "cwcl", "sdcl", "total"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["cwcl"] > 0
    optimizer.zero_grad()
    losses["total"].backward()
    for name in ("layer0", "layer3", "aspp", "final2", "dsn", "ProjectionHead_cls_0",
                 "ProjectionHead_cls_2"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), name
    optimizer.step()
