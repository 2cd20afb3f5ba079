"""The Mask2Former head as Rein instantiates it, and its semantic inference.

docs/VFM_METHODS.md §5: the deformable pixel decoder (:mod:`network.pixel_decoder`), nine
masked-attention decoder layers cycling over the strides 32/16/8 maps
(:mod:`network.m2f_decoder`), a class and a mask prediction before the first layer and
after each layer (10 in all, for deep supervision), and semantic scores
``sum_q softmax(cls)[:C] * sigmoid(mask)`` at inference (§5.10).

:class:`Mask2FormerHead` has learned queries (``query_embed``, ``query_feat``), as mmseg's
head; :class:`ReinMask2FormerHead` takes Rein's queries instead (§2.5). Attribute names
are mmseg's / mmdet's, so a released ``decode_head.*`` state dict loads strictly.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from network.m2f_decoder import MaskedTransformerDecoder
from network.pixel_decoder import MSDeformAttnPixelDecoder, sine_position_encoding
from utils.labels import NUM_CLASSES


@dataclass
class MaskFormerOutput:
    """A training forward of a mask-classification segmenter.

    * ``class_logits``: one ``(B, Q, C + 1)`` tensor per prediction (the initial queries,
      then each decoder layer; the last is the final prediction); column C is "no object".
    * ``mask_logits``: the matching ``(B, Q, H/4, W/4)`` mask logits (stride 4).
    * ``pixel_features``: the pixel decoder's outputs, coarse to fine: its deformable
      encoder's stride-32 and stride-8 maps and the stride-4 mask feature, each
      ``(B, 256, h, w)`` (what BlindNet's contrastive losses read on a ViT).
    """

    class_logits: list
    mask_logits: list
    pixel_features: list | None = None

    @property
    def final(self):
        """``(class_logits, mask_logits)`` of the last prediction."""
        return self.class_logits[-1], self.mask_logits[-1]


def semantic_inference(class_logits, mask_logits, size):
    """§5.10: ``(B, Q, C+1)`` and ``(B, Q, h, w)`` -> scores ``(B, C, H, W)`` at ``size``.

    The masks are resized bilinearly (``align_corners=False``) to ``size = (H, W)`` first;
    the "no object" column is dropped after the softmax. Scores lie in ``[0, Q]`` and are
    what sliding windows average and the argmax reads.
    """
    masks = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    probs = class_logits.softmax(dim=-1)[..., :-1]
    return torch.einsum("bqc,bqhw->bchw", probs, masks.sigmoid())


class Mask2FormerHead(nn.Module):
    """mmseg's ``Mask2FormerHead`` with Rein's config numbers (§5 table).

    ``forward(feats)``: four maps at strides 4, 8, 16, 32 (``in_channels`` each) ->
    :class:`MaskFormerOutput` with ``num_decoder_layers + 1`` predictions.
    """

    def __init__(self, in_channels=(1024,) * 4, num_classes=NUM_CLASSES, num_queries=100,
                 feat_channels=256, num_feat_levels=3, num_decoder_layers=9, num_heads=8,
                 pixel_decoder_layers=6, decoder_ffn=2048, encoder_ffn=1024):
        super().__init__()
        self.num_classes, self.num_queries, self.num_heads = num_classes, num_queries, num_heads
        self.num_feat_levels = num_feat_levels
        self.pixel_decoder = MSDeformAttnPixelDecoder(
            in_channels, feat_channels, feat_channels, num_feat_levels, pixel_decoder_layers,
            num_heads, ffn_hidden=encoder_ffn)
        self.transformer_decoder = MaskedTransformerDecoder(num_decoder_layers, feat_channels,
                                                            num_heads, decoder_ffn)
        self.level_embed = nn.Embedding(num_feat_levels, feat_channels)
        self.make_query_params(feat_channels)
        self.cls_embed = nn.Linear(feat_channels, num_classes + 1)
        self.mask_embed = nn.Sequential(
            nn.Linear(feat_channels, feat_channels), nn.ReLU(inplace=True),
            nn.Linear(feat_channels, feat_channels), nn.ReLU(inplace=True),
            nn.Linear(feat_channels, feat_channels))

    def make_query_params(self, channels):
        """Learned positional (``query_embed``) and content (``query_feat``) queries."""
        self.query_embed = nn.Embedding(self.num_queries, channels)
        self.query_feat = nn.Embedding(self.num_queries, channels)

    def initial_queries(self, batch, queries=None):
        """``(query_feat, query_pos)``, each ``(B, Q, C)``."""
        if queries is not None:
            raise ValueError("Mask2FormerHead has learned queries; use ReinMask2FormerHead "
                             "for queries from the backbone")
        return (self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1),
                self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1))

    def forward_head(self, query_feat, mask_feature, attn_size):
        """One prediction (§5.6): ``post_norm`` -> class logits ``(B, Q, C+1)``, mask logits
        ``(B, Q, h, w)`` at the mask feature's size, and the next layer's attention mask
        ``(B * heads, Q, attn_h * attn_w)`` (True where ``sigmoid < 0.5``, detached)."""
        out = self.transformer_decoder.post_norm(query_feat)
        class_logits = self.cls_embed(out)
        mask_logits = torch.einsum("bqc,bchw->bqhw", self.mask_embed(out), mask_feature)
        attn = F.interpolate(mask_logits, size=attn_size, mode="bilinear", align_corners=False)
        attn = attn.flatten(2).sigmoid() < 0.5
        attn = attn.unsqueeze(1).expand(-1, self.num_heads, -1, -1).flatten(0, 1)
        return class_logits, mask_logits, attn.detach()

    def decoder_memory(self, maps):
        """Per level (strides 32, 16, 8): tokens ``(B, hw, C)`` + ``level_embed``, their
        sine position code ``(B, hw, C)``, and the map size."""
        memory, positions, sizes = [], [], []
        for level, feat in enumerate(maps):
            batch, channels, height, width = feat.shape
            memory.append(feat.flatten(2).transpose(1, 2) + self.level_embed.weight[level])
            pos = sine_position_encoding(batch, height, width, channels // 2,
                                         device=feat.device, dtype=feat.dtype)
            positions.append(pos.flatten(2).transpose(1, 2))
            sizes.append((height, width))
        return memory, positions, sizes

    def forward(self, feats, queries=None):
        mask_feature, maps = self.pixel_decoder(feats)
        memory, positions, sizes = self.decoder_memory(maps)
        query_feat, query_pos = self.initial_queries(mask_feature.shape[0], queries)
        class_logits, mask_logits, attn_mask = self.forward_head(query_feat, mask_feature,
                                                                 sizes[0])
        all_classes, all_masks = [class_logits], [mask_logits]
        for index, layer in enumerate(self.transformer_decoder.layers):
            level = index % self.num_feat_levels
            # A query whose mask covers nothing may attend everywhere (else its row is NaN).
            attn_mask = attn_mask & ~attn_mask.all(dim=-1, keepdim=True)
            query_feat = layer(query_feat, query_pos, memory[level], positions[level],
                               attn_mask)
            class_logits, mask_logits, attn_mask = self.forward_head(
                query_feat, mask_feature, sizes[(index + 1) % self.num_feat_levels])
            all_classes.append(class_logits)
            all_masks.append(mask_logits)
        return MaskFormerOutput(all_classes, all_masks, [maps[0], maps[-1], mask_feature])


class ReinMask2FormerHead(Mask2FormerHead):
    """Rein's head (§2.5): no learned queries; the backbone's queries ``q (Q, C)`` are the
    positional queries and ``querys2feat(q)`` the initial content queries.
    ``forward(feats, queries)``."""

    def make_query_params(self, channels):
        self.querys2feat = nn.Linear(channels, channels)

    def initial_queries(self, batch, queries=None):
        if queries is None or queries.shape != (self.num_queries, self.querys2feat.in_features):
            got = None if queries is None else tuple(queries.shape)
            raise ValueError(f"ReinMask2FormerHead needs queries of shape "
                             f"({self.num_queries}, {self.querys2feat.in_features}), got {got}")
        return (self.querys2feat(queries).unsqueeze(0).expand(batch, -1, -1),
                queries.unsqueeze(0).expand(batch, -1, -1))
