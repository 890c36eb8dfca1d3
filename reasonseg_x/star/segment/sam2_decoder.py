"""transformers' SAM 2 mask decoder for ONE image and many prompts, with only the work that
depends on the prompt done per prompt, and that work done without prompt-sized image buffers.

Why: with test-time scaling one image gets dozens of distinct prompts, and on CPU the mask decoder
then costs more than the image encoder. ``Sam2MaskDecoder.forward`` copies the image embedding,
its positional encoding and the high-resolution features once per prompt and pushes
``[prompts, 256, 64, 64]`` and ``[prompts, 32, 256, 256]`` activations through dozens of
elementwise passes, which on CPU spend more time faulting in fresh memory than computing. Here:

- the first two-way block's image side (its image keys, values and queries) is projected once
  and shared by every prompt;
- attention between the few tokens and the 4,096 image pixels is computed with the projections
  folded into the token side (``q . (W_k x + b_k) = (W_k^T q) . x + const``;
  ``sum_p a_p (W_v x_p + b_v) = W_v sum_p a_p x_p + b_v``), so no per-pixel key, value, query
  or output projection of a per-prompt image is ever formed;
- everything per pixel (image-to-token attention, layer norms, the two 2x2 stride-2 transposed
  convolutions of the upscaling, GELU, the hypernetwork product) runs over tiles of pixels, a few
  prompts at a time, in buffers that are reused;
- the final attention runs only for the IoU and the three multimask tokens, and only the chosen
  mask (highest predicted IoU) goes through its hypernetwork.

The arithmetic is transformers' own up to the order of float sums, so the results agree with
``Sam2Model(image_embeddings=..., multimask_output=True)`` to float rounding (tested); a decoder
without the expected structure is reported by :func:`fits` and the caller falls back to the
model's own forward.
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
            and hasattr(model, "get_image_wide_positional_embeddings") and hasattr(model, "prompt_encoder")
            and all(_is_pixel_block_conv(conv) for conv in (decoder.upscale_conv1, decoder.upscale_conv2))
            and all(hasattr(decoder.upscale_layer_norm, part) for part in ("weight", "bias", "eps")))


def _is_pixel_block_conv(conv: Any) -> bool:
    """A 2x2 stride-2 transposed convolution: every input pixel owns its 2x2 output block."""
    return (type(conv).__name__ == "ConvTranspose2d" and tuple(conv.kernel_size) == (2, 2)
            and tuple(conv.stride) == (2, 2) and tuple(conv.padding) == (0, 0)
            and tuple(conv.output_padding) == (0, 0) and tuple(conv.dilation) == (1, 1) and conv.groups == 1
            and conv.bias is not None)


def _heads(x: Any, attention: Any) -> Any:
    """``[..., L, D]`` -> ``[B, heads, L, head_dim]`` (B = the product of the leading dims)."""
    return x.reshape(-1, x.shape[-2], attention.num_attention_heads, attention.head_dim).transpose(1, 2)


def _attend(attention: Any, query: Any, key: Any, value: Any) -> Any:
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(query, key, value, scale=attention.scaling).transpose(1, 2)


#: (prompts per pass, pixels per tile): on CPU small enough for every buffer to stay in cache and be
#: reused; on an accelerator large enough that the kernels, not their launches, take the time
_CHUNKS = {"cpu": (4, 256), "accelerator": (16, 4096)}


def best_masks(model: Any, embeddings: Sequence[Any], image_pe: Any, sparse: Any, dense: Any, *,
               prompts_per_pass: int | None = None, pixels_per_tile: int | None = None) -> tuple[Any, Any]:
    """Chosen low-res mask logits ``[n, 4h, 4w]`` and their predicted IoU ``[n]`` for the ``n``
    prompts of ``sparse`` (``[1, n, tokens, C]`` from the prompt encoder) on one embedded image
    (``embeddings``: the high-resolution features and the ``[1, C, h, w]`` image embedding)."""
    import torch

    default_prompts, default_pixels = _CHUNKS["cpu" if sparse.device.type == "cpu" else "accelerator"]
    prompts_per_pass = prompts_per_pass or default_prompts
    pixels_per_tile = pixels_per_tile or default_pixels
    image = _SharedImage(model, embeddings, image_pe, dense, pixels_per_tile)
    parts = [_decode_prompts(model, image, sparse[0, start:start + prompts_per_pass])
             for start in range(0, sparse.shape[1], prompts_per_pass)]
    return torch.cat([logits for logits, _ in parts]), torch.cat([iou for _, iou in parts]).float()


_IOU_TOKEN = 1  # output tokens: object score, IoU, mask 0 (single-mask output), masks 1-3 (multimask)
_MULTIMASK_TOKENS = (3, 4, 5)


class _SharedImage:
    """What one decoder call computes once: the image side of the first block and the upscaling's
    high-resolution features in per-pixel layout."""

    def __init__(self, model: Any, embeddings: Sequence[Any], image_pe: Any, dense: Any, tile: int) -> None:
        import torch

        decoder = model.mask_decoder
        block = decoder.transformer.layers[0]
        image = embeddings[-1] + dense[:1]  # [1, C, h, w]; no mask prompt: the same dense embedding for all
        self.height, self.width = image.shape[-2:]
        self.pixels = self.height * self.width
        self.tiles = [slice(start, start + tile) for start in range(0, self.pixels, tile)]
        self.keys = image.flatten(2).transpose(1, 2)[0]  # [HW, C]
        self.key_pe = image_pe.flatten(2).transpose(1, 2)[0]
        shared_key = self.keys + self.key_pe
        to_image, to_token = block.cross_attn_token_to_image, block.cross_attn_image_to_token
        self.first_key = _heads(to_image.k_proj(shared_key)[None], to_image)  # [1, heads, HW, head_dim]
        self.first_value = _heads(to_image.v_proj(self.keys)[None], to_image)
        self.first_query = to_token.q_proj(shared_key).view(self.pixels, to_token.num_attention_heads,
                                                            to_token.head_dim)
        self.output_tokens = torch.cat([decoder.obj_score_token.weight, decoder.iou_token.weight,
                                        decoder.mask_tokens.weight])
        self.upscale = _PixelUpscaler(decoder, embeddings[:-1], self.height, self.width)
        # the output tokens the final attention is computed for: IoU and the three multimask masks
        self.read = torch.tensor([_IOU_TOKEN, *_MULTIMASK_TOKENS], device=image.device)


def _decode_prompts(model: Any, image: _SharedImage, sparse: Any) -> tuple[Any, Any]:
    """Low-res logits ``[m, 4h, 4w]`` and predicted IoU ``[m]`` of the chosen mask of each of the
    ``m`` prompts of ``sparse`` (``[m, tokens, C]``): transformers' two-way transformer, final
    attention, IoU head and mask head, in the order described in the module docstring."""
    import torch

    decoder = model.mask_decoder
    layers = decoder.transformer.layers
    m = sparse.shape[0]
    tokens = torch.cat((image.output_tokens.expand(m, -1, -1), sparse), dim=1)[None]  # [1, m, T, C]
    tokens = tokens.to(decoder.iou_token.weight.dtype)
    keys: list[Any] = []  # the per-prompt image tokens [m, tile, C], tile by tile, once the first block made them
    keys_pe: list[Any] = []  # the same with the positional encoding added

    block = layers[0]  # no positional encoding on its self-attention; image side shared
    queries, _ = block.self_attn(query=tokens, key=tokens, value=tokens)
    queries = block.layer_norm1(queries)
    attention = block.cross_attn_token_to_image
    query = _heads(attention.q_proj(queries + tokens), attention)
    first_key, first_value = (t.expand(m, -1, -1, -1) for t in (image.first_key, image.first_value))
    out = _attend(attention, query, first_key, first_value).reshape(*queries.shape[:-1], -1)
    queries = block.layer_norm2(queries + attention.o_proj(out))
    queries = block.layer_norm3(queries + block.mlp(queries))

    read = image.read
    for index, block in enumerate(layers):
        if index:  # tokens -> image, with the attention weights from the previous image pass
            out = _pooled_output(block.cross_attn_token_to_image, weights, keys, image.tiles)
            queries = block.layer_norm2(queries + out)
            queries = block.layer_norm3(queries + block.mlp(queries))
        if index + 1 < len(layers):  # the next block's self-attention only needs the tokens
            following = layers[index + 1]
            with_pe = queries + tokens
            attended, _ = following.self_attn(query=with_pe, key=with_pe, value=queries)
            next_queries = following.layer_norm1(queries + attended)
            next_attention, next_query = following.cross_attn_token_to_image, (next_queries + tokens)[0]
        else:  # the final attention, for the tokens read below only
            next_queries = queries
            next_attention = decoder.transformer.final_attn_token_to_image
            next_query = (queries + tokens)[0][:, read]
        keys, keys_pe, weights = _image_pass(block, image, keys, keys_pe, queries[0], tokens[0],
                                             folded=_fold_queries(next_attention, next_query))
        queries = next_queries
    out = _pooled_output(decoder.transformer.final_attn_token_to_image, weights, keys, image.tiles)
    final = decoder.transformer.layer_norm_final_attn(queries[0][:, read] + out[0])  # [m, 4, C]

    iou = decoder.iou_prediction_head(final[:, 0])[:, 1:]  # the three multimask outputs
    best_iou, best = iou.max(dim=-1)
    hyper = torch.empty((m, decoder.upscale_conv2.out_channels), dtype=final.dtype, device=final.device)
    for k in best.unique().tolist():  # multimask output k is mask token 1 + k
        rows = (best == k).nonzero()[:, 0]
        hyper[rows] = decoder.output_hypernetworks_mlps[1 + k](final[rows, 1 + k])
    return image.upscale(keys, hyper, image.tiles), best_iou


def _image_pass(block: Any, image: _SharedImage, keys: list[Any], keys_pe: list[Any], queries: Any, tokens: Any,
                *, folded: Any) -> tuple[list[Any], list[Any], Any]:
    """A block's image side (pixels attend to the tokens, residual, layer norm) tile by tile, and
    the attention weights ``[m, heads x T, HW]`` of the next token-to-image attention on the new
    image tokens (``folded`` from :func:`_fold_queries`; its softmax needs every pixel's score).
    ``keys`` (and ``keys_pe``, with the positional encoding added) are the previous block's tiles,
    or ``[]`` for the first block, whose input is the shared image."""
    import torch

    first = not keys
    attention = block.cross_attn_image_to_token
    heads, head_dim = attention.num_attention_heads, attention.head_dim
    m, count, channels = queries.shape
    token_keys = attention.k_proj(queries + tokens).view(m, count, heads, head_dim)
    token_values = attention.v_proj(queries).view(m, count, heads, head_dim)
    # the values and the output projection folded into one [heads x T, C] matrix per prompt
    values_out = torch.einsum("mthd,chd->mhtc", token_values, attention.o_proj.weight.view(channels, heads, head_dim))
    # + the output bias spread over the heads: each head's weights sum to one, so the product adds it once
    values_out = values_out.reshape(m, heads * count, channels) + attention.o_proj.bias / heads
    if not first:  # the query projection folded into the token keys: [heads x T, C] per prompt
        query_keys = torch.einsum("hdc,mthd->mhtc", attention.q_proj.weight.view(heads, head_dim, channels),
                                  token_keys).reshape(m, heads * count, channels) * attention.scaling
        query_bias = torch.einsum("hd,mthd->mht", attention.q_proj.bias.view(heads, head_dim),
                                  token_keys).reshape(m, heads * count, 1) * attention.scaling
    scores = torch.empty((m, folded.shape[1], image.pixels), dtype=values_out.dtype, device=values_out.device)
    new_keys, new_keys_pe = [], []
    for number, tile in enumerate(image.tiles):
        # logits [m, heads, T, pixels]: the softmax over T then runs along contiguous pixels
        if first:  # the pixel queries are the shared image's
            source = image.keys[tile].expand(m, -1, -1)
            logits = torch.einsum("phd,mthd->mhtp", image.first_query[tile], token_keys) * attention.scaling
        else:
            source = keys[number]
            logits = torch.baddbmm(query_bias, query_keys, keys_pe[number].transpose(1, 2))
        weights = logits.view(m, heads, count, -1).softmax(dim=2).view(m, heads * count, -1)
        new = block.layer_norm4(torch.baddbmm(source, weights.transpose(1, 2), values_out))
        new_pe = new + image.key_pe[tile]
        scores[:, :, tile] = torch.bmm(folded, new_pe.transpose(1, 2))  # (out= into the strided slice is 2x slower)
        new_keys.append(new)
        new_keys_pe.append(new_pe)
    if scores.dtype != torch.float32:  # half precision: let softmax accumulate in float
        return new_keys, new_keys_pe, scores.softmax(dim=-1)
    scores -= scores.amax(dim=-1, keepdim=True)  # the softmax over the pixels, in place: no second buffer
    scores.exp_()
    scores /= scores.sum(dim=-1, keepdim=True)
    return new_keys, new_keys_pe, scores


def _fold_queries(attention: Any, queries: Any) -> Any:
    """Token queries ``[m, T, C]`` (positional embedding added) of a token-to-image attention,
    projected and folded into its key projection: ``[m, heads x T, C]``, scaled, ready to be
    multiplied with raw image keys (the key bias adds a constant per row: it drops out of the softmax)."""
    import torch

    m, count, _ = queries.shape
    heads, head_dim = attention.num_attention_heads, attention.head_dim
    query = attention.q_proj(queries).view(m, count, heads, head_dim)
    folded = torch.einsum("mthd,hdc->mhtc", query, attention.k_proj.weight.view(heads, head_dim, -1))
    return folded.reshape(m, heads * count, -1) * attention.scaling


def _pooled_output(attention: Any, weights: Any, keys: list[Any], tiles: list[slice]) -> Any:
    """The token-to-image attention's output ``[1, m, T, C]`` from its weights ``[m, heads x T, HW]``:
    the weighted sum of raw image keys, then the value and output projections."""
    import torch

    m = weights.shape[0]
    heads, head_dim = attention.num_attention_heads, attention.head_dim
    pooled = torch.bmm(weights[:, :, tiles[0]], keys[0])  # [m, heads x T, C]: the sum over the tiles
    for tile, tile_keys in zip(tiles[1:], keys[1:]):
        pooled.baddbmm_(weights[:, :, tile], tile_keys)
    pooled = pooled.view(m, heads, -1, pooled.shape[-1])
    values = torch.einsum("mhtc,hdc->mthd", pooled, attention.v_proj.weight.view(heads, head_dim, -1))
    return attention.o_proj(values.reshape(m, -1, heads * head_dim) + attention.v_proj.bias)[None]


class _PixelUpscaler:
    """The decoder's upscaling (two 2x2 stride-2 transposed convolutions with the high-resolution
    features added, layer norm, GELU) and the hypernetwork product, computed per embedding pixel.

    Why: a 2x2 stride-2 transposed convolution maps each input pixel to its own 2x2 output block,
    so the whole mask head is a chain of per-pixel matrix products ending in a 4x4 block of mask
    logits, and no ``[prompts, 32, 256, 256]`` activation is ever formed.
    """

    def __init__(self, decoder: Any, high_res: Sequence[Any], height: int, width: int) -> None:
        conv1, conv2 = decoder.upscale_conv1, decoder.upscale_conv2
        self.norm, self.activation = decoder.upscale_layer_norm, decoder.activation
        self.height, self.width = height, width
        self.mid, self.out = conv1.out_channels, conv2.out_channels
        # [in, out, a, b] -> [in, (a, b, out)]: output pixel (2i + a, 2j + b) of input pixel (i, j)
        self.weight1 = conv1.weight.permute(0, 2, 3, 1).reshape(conv1.in_channels, 4 * self.mid)
        self.weight2 = conv2.weight.permute(0, 2, 3, 1).reshape(self.mid, 4 * self.out)
        feat_s0, feat_s1 = high_res  # [1, out, 4h, 4w], [1, mid, 2h, 2w]
        # each embedding pixel's 2x2 block of feat_s1 and 4x4 block of feat_s0, in the order of the
        # products below (row 2i + a of feat_s1, row 4i + 2a + c of feat_s0, columns alike), with
        # the convolution's bias added: what is added to the product for every prompt
        self.feat1 = (feat_s1[0].reshape(self.mid, height, 2, width, 2).permute(1, 3, 2, 4, 0)
                      .reshape(-1, 4 * self.mid) + conv1.bias.repeat(4))
        self.feat0 = (feat_s0[0].reshape(self.out, height, 2, 2, width, 2, 2).permute(1, 4, 2, 5, 3, 6, 0)
                      .reshape(-1, 4, 4 * self.out) + conv2.bias.repeat(4))

    def __call__(self, keys: list[Any], hyper: Any, tiles: list[slice]) -> Any:
        """``keys``: the image tokens after the transformer, ``[m, tile, C]`` per tile of ``tiles``;
        ``hyper`` ``[m, out]`` -> logits ``[m, 4h, 4w]``."""
        import torch
        import torch.nn.functional as F

        m = hyper.shape[0]
        logits = torch.empty((m, self.height * self.width, 4, 4), dtype=hyper.dtype, device=hyper.device)
        weight1, weight2 = self.weight1.expand(m, -1, -1), self.weight2.expand(m, -1, -1)
        for tile, tile_keys in zip(tiles, keys):
            x = torch.baddbmm(self.feat1[tile], tile_keys, weight1).view(m, -1, 4, self.mid)
            x = self.activation(F.layer_norm(x, (self.mid,), self.norm.weight, self.norm.bias, self.norm.eps))
            x = torch.baddbmm(self.feat0[tile].view(-1, 4 * self.out), x.view(m, -1, self.mid), weight2)
            x = self.activation(x)
            torch.bmm(x.view(m, -1, self.out), hyper[:, :, None], out=logits[:, tile].view(m, -1, 1))
        # [m, (i, j), (a, b), (c, d)] -> row 4i + 2a + c, column 4j + 2b + d
        logits = logits.view(m, self.height, self.width, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4, 6)
        return logits.reshape(m, 4 * self.height, 4 * self.width)
