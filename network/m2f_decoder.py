"""Mask2Former's masked-attention transformer decoder (docs/VFM_METHODS.md §5.5).

Names follow mmdet 3 / mmcv: ``layers.{i}.cross_attn.attn`` and ``.self_attn.attn`` (an
``nn.MultiheadAttention``: ``in_proj_weight``, ``out_proj``), ``.ffn.layers.0.0`` /
``.ffn.layers.1``, ``.norms.{0,1,2}``, and ``post_norm``.
"""

from torch import nn

from network.pixel_decoder import FFN


class MultiheadAttention(nn.Module):
    """mmcv's ``MultiheadAttention`` (batch first, dropout 0): ``identity + attn(q + q_pos,
    k + k_pos, v)``. ``key``/``value`` default to ``query`` (self-attention: the value is the
    query without position; the key takes ``query_pos`` when ``key_pos`` is not given)."""

    def __init__(self, embed_dims=256, num_heads=8):
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=0.0, batch_first=True)

    def forward(self, query, key=None, value=None, query_pos=None, key_pos=None,
                attn_mask=None):
        key = query if key is None else key
        value = key if value is None else value
        if key_pos is None and query_pos is not None and query_pos.shape == key.shape:
            key_pos = query_pos
        q = query if query_pos is None else query + query_pos
        k = key if key_pos is None else key + key_pos
        out = self.attn(q, k, value, attn_mask=attn_mask, need_weights=False)[0]
        return query + out


class MaskedDecoderLayer(nn.Module):
    """Post-norm: masked cross-attention -> ``norms[0]``, self-attention -> ``norms[1]``,
    FFN (256 -> 2048 -> 256, ReLU) -> ``norms[2]``."""

    def __init__(self, embed_dims=256, num_heads=8, ffn_hidden=2048):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dims, num_heads)
        self.cross_attn = MultiheadAttention(embed_dims, num_heads)
        self.ffn = FFN(embed_dims, ffn_hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))

    def forward(self, query, query_pos, memory, memory_pos, attn_mask):
        """``query``/``query_pos`` ``(B, Q, C)``, ``memory``/``memory_pos`` ``(B, HW, C)``,
        ``attn_mask`` ``(B * heads, Q, HW)`` bool, True = may not attend."""
        query = self.norms[0](self.cross_attn(query, memory, memory, query_pos, memory_pos,
                                              attn_mask))
        query = self.norms[1](self.self_attn(query, query_pos=query_pos))
        return self.norms[2](self.ffn(query))


class MaskedTransformerDecoder(nn.Module):
    """``num_layers`` :class:`MaskedDecoderLayer` and the shared ``post_norm`` (LayerNorm)
    applied before every prediction head (the loop itself lives in the head, which
    predicts a mask between layers)."""

    def __init__(self, num_layers=9, embed_dims=256, num_heads=8, ffn_hidden=2048):
        super().__init__()
        self.layers = nn.ModuleList(MaskedDecoderLayer(embed_dims, num_heads, ffn_hidden)
                                    for _ in range(num_layers))
        self.post_norm = nn.LayerNorm(embed_dims)
        self.init_weights()

    def init_weights(self):
        """§5.11: xavier-normal for every matrix of the layers (and PyTorch defaults for
        the norms)."""
        for param in self.layers.parameters():
            if param.dim() > 1:
                nn.init.xavier_normal_(param)
