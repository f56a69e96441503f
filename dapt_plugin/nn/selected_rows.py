"""
An encoder's last layer computed only at the positions whose output is read.

A classifier that pools the first token reads one vector per text from the encoder's last
layer, and a masked LM's head reads the ~15% of positions it predicts. Every other layer is
needed at all positions (the next layer attends to them), but the last layer is needed at all
positions only for its keys and values; its queries, attention output and feed-forward (10 of
the 12 d x d multiply-adds per token of a layer d wide) are needed only at the rows read. Run
there alone, a pass of a 6-layer encoder (MiniLM-L6) computes about 14% less for a classifier
and 12% less for a masked LM, one of 12 layers (roberta-base) half that.

The result is the same function of the weights as the model's own forward (tested to float
rounding, gradients included); dropout in that layer draws its masks for fewer rows, so a
training run is reproducible from its seed but not bit for bit the run of the full layer.
`encodes_rows` tells which encoders this applies to: BERT's layout (BERT, RoBERTa, XLM-R,
CamemBERT) with absolute positions and eager or SDPA attention, not under gradient
checkpointing or `torch.compile` (whose forward passes the model's own code must run); callers
run the model's forward for any other.
"""

from typing import Optional

import torch
from transformers import PreTrainedModel

# encoder classes whose `forward` is embeddings, then `encoder.layer` in order, each a BERT layer
_BERT_LAYOUT = ("BertModel", "RobertaModel", "XLMRobertaModel", "CamembertModel")


def encodes_rows(encoder: PreTrainedModel) -> bool:
    """Whether `encode_rows` can compute `encoder`'s last hidden states at selected rows."""
    config = encoder.config
    return (
        type(encoder).__name__ in _BERT_LAYOUT
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not config.is_decoder
        and config._attn_implementation in ("eager", "sdpa")
        and not encoder.encoder.gradient_checkpointing
        and getattr(encoder, "_compiled_call_impl", None) is None
    )


def encode_rows(
    encoder: PreTrainedModel,
    rows: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """
    `encoder(input_ids, attention_mask, token_type_ids).last_hidden_state.flatten(0, 1)[rows]`,
    with the last layer computed at `rows` only. `encoder` must be one that `encodes_rows`.

    # Parameters

    encoder : `PreTrainedModel`
        The encoder (a masked LM's `base_model`, or `AutoModel`'s).
    rows : `torch.LongTensor`
        Positions in the flattened `(batch * length)` batch; may repeat.
    input_ids : `torch.LongTensor`
        `(batch, length)` token ids.
    attention_mask : `torch.Tensor`
        `(batch, length)`, true or 1 at tokens, false or 0 at padding.
    token_type_ids : `torch.LongTensor`, optional (default = `None`)
        `(batch, length)` segment ids; `None` for all zeros.
    """
    batch, length = input_ids.shape
    hidden = encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    # additive, broadcast over heads and queries; none without padding, as the model's SDPA path
    mask = (
        None
        if bool(attention_mask.all())
        else encoder.get_extended_attention_mask(attention_mask, (batch, length))
    )
    layers = encoder.encoder.layer
    for layer in layers[:-1]:
        hidden = layer(hidden, attention_mask=mask)[0]
    return _last_layer(layers[-1], hidden, mask, rows)


def _last_layer(
    layer: torch.nn.Module, hidden: torch.Tensor, mask: Optional[torch.Tensor], rows: torch.Tensor
) -> torch.Tensor:
    """A BERT layer's output at `rows` of its input `hidden` `(batch, length, width)`."""
    batch, length, _ = hidden.shape
    attention = layer.attention.self
    heads, head_size = attention.num_attention_heads, attention.attention_head_size
    # the distinct rows, sorted, and each one's slot among its example's: the queries of an
    # example sit in one row of a (batch, slots) grid, so attention runs batched
    distinct, inverse = torch.unique(rows, return_inverse=True)
    example = distinct // length
    per_example = torch.bincount(example, minlength=batch)
    slot = (
        torch.arange(len(distinct), device=rows.device)
        - (per_example.cumsum(0) - per_example)[example]
    )
    slots = int(per_example.max())
    selected = hidden.flatten(0, 1)[distinct]

    def heads_first(states: torch.Tensor, positions: int) -> torch.Tensor:
        return states.view(batch, positions, heads, head_size).transpose(1, 2)

    query = attention.query(selected)
    queries = query.new_zeros(batch, slots, query.shape[-1]).index_put((example, slot), query)
    context = torch.nn.functional.scaled_dot_product_attention(
        heads_first(queries, slots),
        heads_first(attention.key(hidden), length),
        heads_first(attention.value(hidden), length),
        attn_mask=mask,
        dropout_p=attention.dropout.p if attention.training else 0.0,
    )
    context = context.transpose(1, 2).reshape(batch, slots, heads * head_size)[example, slot]
    attended = layer.attention.output(context, selected)
    return layer.output(layer.intermediate(attended), attended)[inverse]
