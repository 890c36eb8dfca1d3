"""transformers' SAM 2 mask decoder for ONE image and many prompts, without repeating per prompt the
work that does not depend on the prompt.

Why: with test-time scaling one image gets dozens of distinct prompts, and on CPU the mask decoder
then costs more than the image encoder. ``Sam2MaskDecoder.forward`` copies the image embedding,
its positional encoding and the high-resolution features once per prompt and runs the first
two-way attention block on those copies, although in that block the image side of both
cross-attentions (the image keys and values tokens attend to, and the image queries that attend
to the tokens) is the same for every prompt. Here those projections are computed once and
broadcast, the high-resolution features are broadcast instead of copied, and only the chosen mask
(highest predicted IoU of the three multimask outputs) goes through its hypernetwork. The
operations and their order are otherwise transformers' own, so the results agree with
``Sam2Model(image_embeddings=..., multimask_output=True)`` to float rounding (tested); a decoder
that does not have the expected structure is reported by :func:`fits` and the caller falls back to
the model's own forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["fits", "best_masks"]

_DECODER_PARTS = ("transformer", "iou_token", "mask_tokens", "obj_score_token", "upscale_conv1", "upscale_conv2",
                  "upscale_layer_norm", "activation", "output_hypernetworks_mlps", "iou_prediction_head")
_BLOCK_PARTS = ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token", "mlp", "layer_norm1",
                "layer_norm2", "layer_norm3", "layer_norm4")
_ATTENTION_PARTS = ("q_proj", "k_proj", "v_proj", "o_proj", "num_attention_heads", "head_dim", "scaling")


def fits(model: Any) -> bool:
    """Whether ``model`` (a transformers ``Sam2Model``) has the decoder this module mirrors."""
    decoder = getattr(model, "mask_decoder", None)
    if decoder is None or not all(hasattr(decoder, part) for part in _DECODER_PARTS):
        return False
    layers = getattr(decoder.transformer, "layers", None)
    if not layers or not getattr(layers[0], "skip_first_layer_pe", False):
        return False
    first = layers[0]
    return (all(hasattr(first, part) for part in _BLOCK_PARTS)
            and all(hasattr(getattr(first, name), part) for name in ("cross_attn_token_to_image",
                                                                     "cross_attn_image_to_token")
                    for part in _ATTENTION_PARTS)
            and hasattr(decoder.transformer, "final_attn_token_to_image")
            and hasattr(decoder.transformer, "layer_norm_final_attn")
            and hasattr(model, "get_image_wide_positional_embeddings") and hasattr(model, "prompt_encoder"))


def _heads(x: Any, attention: Any) -> Any:
    """``[..., L, D]`` -> ``[B, heads, L, head_dim]`` (B = the product of the leading dims)."""
    return x.reshape(-1, x.shape[-2], attention.num_attention_heads, attention.head_dim).transpose(1, 2)


def _attend(attention: Any, query: Any, key: Any, value: Any) -> Any:
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(query, key, value, scale=attention.scaling).transpose(1, 2)


def best_masks(model: Any, embeddings: Sequence[Any], image_pe: Any, sparse: Any, dense: Any) -> tuple[Any, Any]:
    """Chosen low-res mask logits ``[n, h, w]`` and their predicted IoU ``[n]`` for the ``n`` prompts
    of ``sparse`` (``[1, n, tokens, C]`` from the prompt encoder) on one embedded image."""
    import torch

    decoder = model.mask_decoder
    transformer = decoder.transformer
    n = sparse.shape[1]
    image = embeddings[-1] + dense[:1]  # [1, C, H, W]; no mask prompt: the same dense embedding for all
    _, channels, height, width = image.shape
    output_tokens = torch.cat([decoder.obj_score_token.weight, decoder.iou_token.weight, decoder.mask_tokens.weight])
    tokens = torch.cat((output_tokens.repeat(1, n, 1, 1), sparse), dim=2).to(decoder.iou_token.weight.dtype)
    count = tokens.shape[2]
    image_keys = image.flatten(2).transpose(1, 2)  # [1, HW, C]
    key_pe = image_pe.flatten(2).transpose(1, 2)
    shared_key = image_keys + key_pe

    block = transformer.layers[0]  # first block, no positional encoding on its self-attention
    queries, _ = block.self_attn(query=tokens, key=tokens, value=tokens)
    queries = block.layer_norm1(queries)
    attention = block.cross_attn_token_to_image  # tokens -> image: image keys/values shared
    key = _heads(attention.k_proj(shared_key), attention).expand(n, -1, -1, -1)
    value = _heads(attention.v_proj(image_keys), attention).expand(n, -1, -1, -1)
    query = _heads(attention.q_proj(queries + tokens), attention)
    out = attention.o_proj(_attend(attention, query, key, value).reshape(1, n, count, -1))
    queries = block.layer_norm2(queries + out)
    queries = block.layer_norm3(queries + block.mlp(queries))
    attention = block.cross_attn_image_to_token  # image -> tokens: image queries shared
    query = _heads(attention.q_proj(shared_key), attention).expand(n, -1, -1, -1)
    key = _heads(attention.k_proj(queries + tokens), attention)
    value = _heads(attention.v_proj(queries), attention)
    out = attention.o_proj(_attend(attention, query, key, value).reshape(n, 1, height * width, -1))
    keys = block.layer_norm4(image_keys[:, None] + out)  # [n, 1, HW, C]: per prompt from here on

    key_pe = key_pe[:, None]
    for block in transformer.layers[1:]:
        queries, keys, _ = block(queries=queries, keys=keys, query_point_embedding=tokens,
                                 key_point_embedding=key_pe, attention_similarity=None)
    out, _ = transformer.final_attn_token_to_image(query=queries + tokens, key=keys + key_pe, value=keys)
    queries = transformer.layer_norm_final_attn(queries + out)

    iou = decoder.iou_prediction_head(queries[0, :, 1, :])[:, 1:]  # the three multimask outputs
    best_iou, best = iou.max(dim=-1)
    feat_s0, feat_s1 = embeddings[:-1]
    upscaled = decoder.upscale_conv1(keys.transpose(2, 3).reshape(n, channels, height, width)) + feat_s1
    upscaled = decoder.activation(decoder.upscale_layer_norm(upscaled))
    upscaled = decoder.activation(decoder.upscale_conv2(upscaled) + feat_s0)
    hyper = torch.empty((n, upscaled.shape[1]), dtype=upscaled.dtype, device=upscaled.device)
    for k in best.unique().tolist():  # mask token 1 + k, after the object-score and IoU tokens
        rows = (best == k).nonzero()[:, 0]
        hyper[rows] = decoder.output_hypernetworks_mlps[1 + k](queries[0, rows, 3 + k, :])
    masks = torch.bmm(hyper[:, None, :], upscaled.flatten(2))[:, 0]
    return masks.view(n, *upscaled.shape[-2:]), best_iou.float()
