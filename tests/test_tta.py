"""Test-time augmentation: the default is single-scale exactly; flips and scales average."""

import pytest
import torch
import torch.nn as nn

from engine.tta import check_eval_scales, scaled_size, tta_description, tta_logits, tta_name


def _images(b=2, h=40, w=56):
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(0))


class _Conv(nn.Module):
    """A small conv net; ``symmetric`` makes every kernel mirror-symmetric (flip-equivariant)."""

    def __init__(self, symmetric):
        super().__init__()
        torch.manual_seed(1)
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 19, 3, padding=1)
        if symmetric:
            with torch.no_grad():
                for conv in (self.a, self.b):
                    conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_one_scale_without_flip_is_single_scale_exactly():
    model = _Conv(symmetric=False).eval()
    images = _images()
    with torch.no_grad():
        expected = model(images)
    out = tta_logits(model, images, scales=[1.0], flip=False)
    assert torch.equal(out, expected)


def test_flip_of_a_flip_equivariant_model_equals_no_flip():
    model = _Conv(symmetric=True).eval()
    images = _images()
    with torch.no_grad():
        plain = model(images)
        assert torch.allclose(model(images.flip(-1)).flip(-1), plain, atol=1e-6)
    flipped = tta_logits(model, images, scales=[1.0], flip=True)
    torch.testing.assert_close(flipped, plain, rtol=1e-5, atol=1e-6)
    assert torch.equal(flipped.argmax(1), plain.argmax(1))


def test_flip_changes_a_model_that_is_not_flip_equivariant():
    model = _Conv(symmetric=False).eval()
    images = _images()
    with torch.no_grad():
        plain = model(images)
    assert not torch.allclose(tta_logits(model, images, flip=True), plain, atol=1e-4)


def test_scales_and_flips_are_all_predicted_and_averaged_at_the_input_size():
    seen = []

    def predict(x):
        seen.append(tuple(x.shape[-2:]))
        # logits: a constant per call, so the average is checkable
        return torch.full((x.shape[0], 19, *x.shape[-2:]), float(len(seen)))

    out = tta_logits(predict, _images(h=40, w=56), scales=[0.5, 1.0, 1.5], flip=True)
    assert seen == [(20, 28), (20, 28), (40, 56), (40, 56), (60, 84), (60, 84)]
    assert out.shape == (2, 19, 40, 56)
    assert torch.allclose(out, torch.full_like(out, 3.5))  # mean of 1..6


def test_flipped_logits_are_mirrored_back():
    def predict(x):  # logits = the first input channel, so a flip is visible
        return x[:, :1].repeat(1, 19, 1, 1)

    images = _images()
    out = tta_logits(predict, images, flip=True)
    assert torch.allclose(out, images[:, :1].repeat(1, 19, 1, 1))


def test_names_and_validation():
    assert tta_name([1.0], False) == "single-scale"
    assert tta_name([1.0], True) == "flip"
    assert tta_name([0.5, 0.75, 1.0, 1.25, 1.5, 1.75], True) == \
        "ms(0.5,0.75,1,1.25,1.5,1.75)+flip"
    assert tta_description([0.5, 1], False) == {"name": "ms(0.5,1)", "scales": [0.5, 1.0],
                                                "flip": False}
    assert scaled_size(1024, 2048, 0.75) == (768, 1536)
    assert scaled_size(3, 5, 0.5) == (2, 3)
    for bad in ([], [0], [-1.0], [float("nan")], [1.0, 1.0]):
        with pytest.raises(ValueError, match="--eval_scales"):
            check_eval_scales(bad)
