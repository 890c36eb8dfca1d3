"""Attention functions the fast generator swaps into a loaded model for one forward, and back.

transformers picks a layer's attention function by the name in its config
(``config._attn_implementation``) from a registry we can add to. Two of its defaults cost the
fast path dearly, so :class:`~reasonseg_x.star.generation.fast.FastGenerator` names its own for the
duration of a call (:func:`~reasonseg_x.star.compat.attention_implementation`, with the other
transformers internals in :mod:`reasonseg_x.star.compat`) and restores the config afterwards, so the
reference schedule sharing the same loaded model keeps transformers' own functions:

- **decode** (:func:`grouped_decode_attention`): with a padding mask transformers' sdpa copies every
  K/V head once per query head it serves, the whole KV cache each step;
- **vision windows** (:func:`packed_chunk_attention`): Qwen2.5-VL's vision tower attends within
  8x8-patch windows, and outside flash-attention transformers runs one sdpa call per window: 64
  calls per layer at the 840x840 frame, 1,792 per image, each a Python round trip.

What this changes in speed and in rounding is measured in docs/generation.md.
"""

from __future__ import annotations

import inspect
from typing import Any

from reasonseg_x.star.compat import (
    FLASH_MARK,
    attention_implementation,
    attention_name,
    register_attention_function,
    transformers_sdpa,
)

__all__ = ["DECODE_ATTENTION", "VISION_ATTENTION", "grouped_decode_attention", "packed_chunk_attention",
           "register_attention", "attention_implementation", "packed_attention_configs"]

#: the attention function name registered with transformers for packed decode steps
DECODE_ATTENTION = "reasonseg_grouped_decode"
#: the name for chunked (windowed) vision attention. transformers hands ``cu_seq_lens_q`` (the
#: chunk boundaries) to an attention function only when its name contains "flash"
#: (:data:`reasonseg_x.star.compat.FLASH_MARK`); the function itself is plain sdpa.
VISION_ATTENTION = f"reasonseg_{FLASH_MARK}_packed_sdpa"


def grouped_decode_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                             dropout: float = 0.0, scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """sdpa for one query token per row with a padding mask, without copying K/V per query head.

    transformers' sdpa path repeats every K/V head for its query heads whenever a mask is given
    (``repeat_kv``: 7x the KV cache copied per layer and step for Qwen2.5-VL-7B), the padding tax
    of mixed-length batches. With one query token the query heads of a KV group can stand in for
    query positions: (rows, kv heads, group, dim) against (rows, kv heads, slots, dim), one kernel,
    no copy. Other shapes go to transformers' own sdpa function."""
    import torch

    batch, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    if (q_len != 1 or heads == kv_heads or heads % kv_heads or attention_mask is None
            or attention_mask.dtype != torch.bool or key.shape[-1] != value.shape[-1]):
        return transformers_sdpa(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  **kwargs)
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    out = torch.nn.functional.scaled_dot_product_attention(grouped, key, value, attn_mask=attention_mask,
                                                           scale=scaling)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def packed_chunk_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any = None,
                           dropout: float = 0.0, scaling: float | None = None, cu_seq_lens_q: Any = None,
                           cu_seq_lens_k: Any = None, max_length_q: int | None = None, is_causal: bool = False,
                           **kwargs: Any) -> tuple[Any, None]:
    """Bidirectional attention within the chunks of one packed sequence, in a single sdpa call.

    ``query``/``key``/``value`` are (1, heads, tokens, dim) with chunk ``i`` at tokens
    ``cu_seq_lens_q[i]:cu_seq_lens_q[i + 1]`` (vision windows, or whole images). The chunks are
    scattered into a (chunks, heads, longest, dim) batch, padded keys masked out (no mask at all
    when every chunk has the same length), and the result gathered back: the same attention as
    one call per chunk. Anything else (a mask, causal, different key chunks) goes to
    transformers' sdpa."""
    import torch

    if (cu_seq_lens_q is None or attention_mask is not None or is_causal or query.shape[0] != 1
            or (cu_seq_lens_k is not None and cu_seq_lens_k is not cu_seq_lens_q
                and not torch.equal(cu_seq_lens_k, cu_seq_lens_q))):
        return transformers_sdpa(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  is_causal=is_causal, **kwargs)
    _, heads, tokens, dim = query.shape
    bounds = cu_seq_lens_q.to(device=query.device, dtype=torch.long)
    lengths = bounds[1:] - bounds[:-1]
    chunks = int(lengths.numel())
    longest = int(max_length_q) if max_length_q is not None else int(lengths.max())
    if chunks == 1:
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, scale=scaling)
        return out.transpose(1, 2).contiguous(), None
    position = torch.arange(tokens, device=query.device)
    chunk = torch.searchsorted(bounds[1:], position, right=True)
    offset = position - bounds[chunk]

    def scatter(x: Any) -> Any:  # (1, heads, tokens, dim) -> (chunks, heads, longest, dim)
        padded = x.new_zeros(chunks, longest, heads, dim)
        padded[chunk, offset] = x[0].transpose(0, 1)
        return padded.transpose(1, 2)

    mask = None
    if tokens != chunks * longest:  # some chunk is shorter: mask its padded keys
        mask = (torch.arange(longest, device=query.device)[None, :] < lengths[:, None])[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(scatter(query), scatter(key), scatter(value),
                                                           attn_mask=mask, scale=scaling)
    return out.transpose(1, 2)[chunk, offset].unsqueeze(0), None


def register_attention() -> bool:
    """Register both functions with transformers; False where it has no registry (the defaults stay)."""
    return (register_attention_function(DECODE_ATTENTION, grouped_decode_attention)
            and register_attention_function(VISION_ATTENTION, packed_chunk_attention))


def packed_attention_configs(model: Any) -> list[Any]:
    """The configs of attention layers that split a packed sequence by ``cu_seqlens`` (Qwen-VL vision
    towers) and run transformers' per-chunk sdpa today; other layers and implementations are left alone."""
    configs: dict[int, Any] = {}
    for module in model.modules():
        config = getattr(module, "config", None)
        forward = getattr(type(module), "forward", None)
        if config is None or forward is None or not type(module).__name__.endswith("Attention"):
            continue
        if "cu_seqlens" not in inspect.signature(forward).parameters:
            continue
        if attention_name(config) in (None, "sdpa"):
            configs[id(config)] = config
    return list(configs.values())
