"""Cross-entropy and aux cross-entropy (METHOD.md §3.1-3.2)."""

import torch
import torch.nn.functional as F

from loss import AuxCrossEntropy, SegmentationCrossEntropy, resize_labels


def _labels(shape, generator):
    labels = torch.randint(0, 5, shape, generator=generator)
    labels[torch.rand(shape, generator=generator) < 0.3] = 255
    return labels


def test_matches_torch_cross_entropy_with_ignore_and_weights():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 8, 8, generator=generator)
    labels = _labels((2, 8, 8), generator)
    expected = F.cross_entropy(logits, labels, ignore_index=255)
    torch.testing.assert_close(SegmentationCrossEntropy()(logits, labels), expected)
    weights = torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0])
    expected = F.cross_entropy(logits, labels, weight=weights, ignore_index=255)
    torch.testing.assert_close(SegmentationCrossEntropy(class_weights=weights)(logits, labels),
                               expected)


def test_all_ignored_batch_gives_zero_not_nan():
    logits = torch.randn(1, 5, 4, 4, requires_grad=True)
    value = SegmentationCrossEntropy()(logits, torch.full((1, 4, 4), 255))
    assert value.item() == 0.0
    value.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_aux_labels_take_pixel_16i_16j():
    labels = torch.full((1, 64, 64), 255)
    labels[0, ::16, ::16] = torch.arange(16).view(4, 4) % 5
    assert torch.equal(resize_labels(labels, (4, 4))[0], torch.arange(16).view(4, 4) % 5)
    logits = torch.randn(1, 5, 4, 4)
    expected = F.cross_entropy(logits, (torch.arange(16).view(1, 4, 4) % 5))
    torch.testing.assert_close(AuxCrossEntropy()(logits, labels), expected)
