"""The Mask2Former head (docs/VFM_METHODS.md §5): mmseg key names, the decoder layer order,
the masked attention, the prediction count, and semantic inference on a toy case."""

import math

import pytest
import torch

from network.mask2former import Mask2FormerHead, ReinMask2FormerHead, semantic_inference
from tests.vfm_reference import official_head_shapes, random_state


@pytest.mark.parametrize("rein", [True, False])
def test_official_head_state_loads_strictly(rein):
    """Rein's config (1024-channel inputs, 100 queries, 6 + 9 layers) on the meta device."""
    with torch.device("meta"):
        head = (ReinMask2FormerHead if rein else Mask2FormerHead)()
    shapes = official_head_shapes(rein=rein)
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == shapes
    head.load_state_dict(random_state(shapes, "meta"), strict=True, assign=True)


def tiny_head(rein=True, queries=5, classes=3):
    torch.manual_seed(0)
    head_class = ReinMask2FormerHead if rein else Mask2FormerHead
    return head_class(in_channels=(16,) * 4, num_classes=classes, num_queries=queries,
                      feat_channels=32, num_decoder_layers=4, pixel_decoder_layers=1,
                      decoder_ffn=64, encoder_ffn=64)


def pyramid(batch=2, size=32, channels=16):
    return [torch.randn(batch, channels, size // s, size // s) for s in (4, 8, 16, 32)]


def test_forward_gives_one_prediction_per_layer_plus_the_initial_one():
    head = tiny_head()
    out = head(pyramid(), torch.randn(5, 32))
    assert len(out.class_logits) == len(out.mask_logits) == 5
    assert out.class_logits[0].shape == (2, 5, 4) and out.mask_logits[-1].shape == (2, 5, 8, 8)
    assert out.final[0] is out.class_logits[-1]
    with pytest.raises(ValueError, match=r"needs queries of shape \(5, 32\)"):
        head(pyramid(), None)
    with pytest.raises(ValueError, match="learned queries"):
        tiny_head(rein=False)(pyramid(), torch.randn(5, 32))


def test_rein_queries_are_position_and_projected_content():
    head = tiny_head()
    queries = torch.randn(5, 32)
    feat, pos = head.initial_queries(3, queries)
    torch.testing.assert_close(pos, queries.expand(3, -1, -1))
    torch.testing.assert_close(feat[1], head.querys2feat(queries))


def test_decoder_layer_is_cross_then_self_then_ffn_post_norm():
    layer = tiny_head().transformer_decoder.layers[0]
    query, pos = torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    memory, mem_pos = torch.randn(2, 7, 32), torch.randn(2, 7, 32)
    mask = torch.rand(2 * 8, 5, 7) < 0.3
    cross = layer.cross_attn.attn(query + pos, memory + mem_pos, memory, attn_mask=mask)[0]
    q = layer.norms[0](query + cross)
    q = layer.norms[1](q + layer.self_attn.attn(q + pos, q + pos, q)[0])
    ffn = layer.ffn.layers
    q = layer.norms[2](q + ffn[1](ffn[0](q)))
    torch.testing.assert_close(layer(query, pos, memory, mem_pos, mask), q)


def test_attention_mask_is_thresholded_prediction_and_empty_rows_are_opened():
    head = tiny_head()
    _, _, mask = head.forward_head(torch.randn(2, 5, 32), torch.randn(2, 32, 8, 8), (2, 2))
    assert mask.shape == (2 * 8, 5, 4) and mask.dtype == torch.bool and not mask.requires_grad
    # Masks that cover nothing (all logits very negative) must not make NaN predictions.
    with torch.no_grad():
        head.mask_embed[4].bias.fill_(-1e4)
        head.mask_embed[4].weight.zero_()
    mask_feature = torch.ones(2, 32, 8, 8)
    _, _, mask = head.forward_head(torch.randn(2, 5, 32), mask_feature, (2, 2))
    assert mask.all()
    out = head(pyramid(), torch.randn(5, 32))
    assert all(torch.isfinite(c).all() for c in out.class_logits)


def test_semantic_inference_on_a_toy_case():
    """Two queries, two classes + no object, 1x2 masks: by hand."""
    class_logits = torch.tensor([[[math.log(3.0), 0.0, 0.0], [0.0, math.log(2.0), 0.0]]])
    mask_logits = torch.tensor([[[[10.0, -10.0]], [[0.0, 0.0]]]])
    scores = semantic_inference(class_logits, mask_logits, (1, 2))
    p = torch.tensor([[0.6, 0.2], [0.25, 0.5]])  # softmax rows, no-object column dropped
    sig = torch.sigmoid(torch.tensor([10.0, -10.0]))
    expected = torch.stack([p[0, c] * sig + p[1, c] * 0.5 for c in range(2)])[None]
    assert scores.shape == (1, 2, 1, 2)
    torch.testing.assert_close(scores, expected.view(1, 2, 1, 2))
    assert scores.argmax(1).tolist() == [[[0, 1]]]
    up = semantic_inference(class_logits, mask_logits, (2, 4))
    assert up.shape == (1, 2, 2, 4)


def test_head_init_follows_the_documented_rules():
    head = tiny_head()
    decoder = head.pixel_decoder
    assert not decoder.input_convs[0].conv.bias.any() and decoder.lateral_convs[0].conv.bias is None
    msda = decoder.encoder.layers[0].self_attn
    assert not msda.attention_weights.weight.any() and not msda.sampling_offsets.weight.any()
    assert not head.transformer_decoder.post_norm.bias.any()
