"""Every transformers, torch and sam2 internal the fast engine and the segmenters rely on, in one place.

Why: the fast engine (:mod:`reasonseg_x.star.generation.fast`, :mod:`.generation.attention`) and
the SAM backends (:mod:`reasonseg_x.star.segment.segmenters`) reach past the public APIs of
transformers and sam2: private attributes (``config._attn_implementation_internal``, the sam2
predictor's ``_features``), an output key transformers renamed (``past_key_values`` -> ``cache``),
a registered attention name that must contain "flash" to be handed the chunk boundaries. Each
such access is a function here, and :func:`fast_engine_unsupported` / :func:`sam2_predictor_unsupported`
probe them when a model loads: where a probe fails, the pipeline runs the reference schedule (or
the sam2 package's public ``predict``) instead, and run.json says why.

The range these internals were checked on is the ``transformers`` pin of pyproject's ``models``
extra (the README says how to move it). Nothing here imports torch at module level.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = [
    "FLASH_MARK", "fast_engine_unsupported", "forward_takes", "cache_argument", "output_cache", "cache_layers",
    "dynamic_cache_class", "text_config", "attention_name", "attention_implementation", "register_attention_function",
    "transformers_sdpa", "rope_owner", "rope_index", "mark_static_address", "sam2_predictor_unsupported", "sam2_set_feature_sizes",
    "sam2_features", "sam2_prep_prompts", "sam2_postprocess",
]

#: transformers hands ``cu_seq_lens_q`` (chunk boundaries) to an attention function only when its
#: registered name contains this (``is_flash_attention_requested``)
FLASH_MARK = "flash"


# ----------------------------------------------------------------------------- transformers models

def _base_model(model: Any) -> Any:
    """The transformers model under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def forward_takes(model: Any, name: str) -> bool:
    """Whether the model's forward has a parameter ``name`` (through a peft wrapper)."""
    return name in inspect.signature(type(_base_model(model)).forward).parameters


def cache_argument(model: Any) -> str:
    """``cache`` (transformers >= 5.2x) or ``past_key_values``: the name the model's forward takes."""
    return "cache" if forward_takes(model, "cache") else "past_key_values"


def output_cache(out: Any) -> Any:
    """The KV cache of a forward's output: ``out["cache"]`` since transformers 5.2x renamed it."""
    return out["cache"] if "cache" in out else out.past_key_values


def cache_layers(cache: Any) -> list[tuple[Any, Any]]:
    """(keys, values) per layer of a transformers cache (5.x ``layers``; older ``key_cache``)."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    return list(zip(cache.key_cache, cache.value_cache))


def dynamic_cache_class() -> type:
    """transformers' ``DynamicCache`` (models check a cache's type; the engine subclasses it)."""
    from transformers import DynamicCache

    return DynamicCache


def text_config(config: Any) -> Any:
    """The language model's config of a (vision-language) config."""
    get_text = getattr(config, "get_text_config", None)
    return get_text() if callable(get_text) else config


def attention_name(config: Any) -> str | None:
    """The attention implementation a config names (transformers' private ``_attn_implementation``)."""
    return getattr(config, "_attn_implementation", None)


@contextmanager
def attention_implementation(configs: Sequence[Any], name: str) -> Iterator[None]:
    """Name ``name`` as the attention function of ``configs`` inside the block, then restore each
    (transformers reads ``config._attn_implementation_internal`` at every forward)."""
    saved = [(config, config._attn_implementation_internal) for config in configs]
    try:
        for config, _ in saved:
            config._attn_implementation_internal = name
        yield
    finally:
        for config, previous in saved:
            config._attn_implementation_internal = previous


def register_attention_function(name: str, function: Any) -> bool:
    """Register an attention function with transformers; False where it has no registry."""
    try:
        from transformers import AttentionInterface
    except ImportError:  # pragma: no cover - older transformers
        return False
    AttentionInterface.register(name, function)
    return True


def transformers_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
    """transformers' own sdpa attention function (what a layer runs by default)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def rope_owner(model: Any) -> Any:
    """The module holding Qwen-VL's ``get_rope_index`` and its ``rope_deltas`` state, or None."""
    for module in model.modules():
        if callable(getattr(type(module), "get_rope_index", None)) and "rope_deltas" in vars(module):
            return module
    return None


def rope_index(owner: Any, inputs: dict[str, Any]) -> tuple[Any, Any]:
    """(3-D position ids, rope delta per row) of a prompt batch, from the ``rope_owner``'s
    ``get_rope_index`` given the inputs it takes (image grid, attention mask, ...)."""
    params = inspect.signature(owner.get_rope_index).parameters
    kwargs = {k: v for k, v in inputs.items() if k in params and k != "input_ids"}
    return owner.get_rope_index(inputs["input_ids"], **kwargs)


def mark_static_address(tensor: Any) -> None:
    """Tell ``torch.compile`` a buffer keeps its address (CUDA graphs then reuse it)."""
    import torch

    torch._dynamo.mark_static_address(tensor)


def fast_engine_unsupported(model: Any) -> str | None:
    """Why the fast engine cannot run on this model with the installed transformers, or None.

    Probes every internal above the engine uses (cheaply: no forward pass): the attention
    registry and transformers' sdpa function, the private attention name on the text config,
    the cache class and how a forward takes and returns the cache, ``logits_to_keep``, and
    (Qwen-VL) the rope index the decode positions come from."""
    try:
        from transformers import AttentionInterface  # noqa: F401
        from transformers.integrations.sdpa_attention import sdpa_attention_forward  # noqa: F401
    except ImportError as exc:
        return f"transformers has no attention registry or sdpa function ({exc})"
    try:
        cache = dynamic_cache_class()
    except ImportError as exc:
        return f"transformers has no DynamicCache ({exc})"
    if not all(callable(getattr(cache, name, None)) for name in ("update", "get_seq_length")):
        return "transformers' DynamicCache has no update/get_seq_length"
    config = text_config(getattr(_base_model(model), "config", None))
    if config is None or not hasattr(config, "_attn_implementation_internal"):
        return "the model config has no _attn_implementation_internal (the attention name the engine swaps)"
    try:
        takes_cache = forward_takes(model, "cache") or forward_takes(model, "past_key_values")
        takes_logits_to_keep = forward_takes(model, "logits_to_keep")
    except (TypeError, ValueError) as exc:
        return f"the model's forward has no readable signature ({exc})"
    if not takes_cache:
        return "the model's forward takes neither cache nor past_key_values"
    if not takes_logits_to_keep:
        return "the model's forward does not take logits_to_keep"
    model_type = str(getattr(getattr(_base_model(model), "config", None), "model_type", ""))
    if model_type.startswith("qwen") and "vl" in model_type and rope_owner(model) is None:
        return "no module of the model holds get_rope_index with rope_deltas (Qwen-VL's 3-D positions)"
    return None


# ----------------------------------------------------------------------------- the sam2 package

_SAM2_PRIVATE = ("_bb_feat_sizes", "_prep_prompts", "_transforms", "_orig_hw", "_features")


def sam2_predictor_unsupported(predictor: Any) -> str | None:
    """Why the sam2 package's ``SAM2ImagePredictor`` lacks the internals the segmenter's batched
    decode reads, or None (then its public ``predict`` runs, one prompt at a time)."""
    missing = [name for name in _SAM2_PRIVATE if not hasattr(predictor, name)]
    if not callable(getattr(getattr(predictor, "_transforms", None), "postprocess_masks", None)):
        missing.append("_transforms.postprocess_masks")
    model = getattr(predictor, "model", None)
    missing += [name for name in ("sam_prompt_encoder", "sam_mask_decoder", "image_size") if not hasattr(model, name)]
    if missing:
        return f"sam2's SAM2ImagePredictor has no {', '.join(missing)}"
    return None


def sam2_set_feature_sizes(predictor: Any, side: int) -> None:
    """The predictor hard-codes the feature sizes of a 1024 input; set them for ``side``."""
    predictor._bb_feat_sizes = [(side // 4, side // 4), (side // 8, side // 8), (side // 16, side // 16)]


def sam2_features(predictor: Any) -> Any:
    """The image features ``set_image`` computed."""
    return predictor._features


def sam2_prep_prompts(predictor: Any, points: Any, labels: Any, boxes: Any) -> tuple[Any, Any, Any]:
    """(coords, point labels, box) as the predictor's ``_predict`` takes them (normalised)."""
    _, coords, point_labels, box = predictor._prep_prompts(points, labels, boxes, None, True)
    return coords, point_labels, box


def sam2_postprocess(predictor: Any, low_res: Any) -> Any:
    """Low-resolution mask logits upsampled to the current image's size."""
    return predictor._transforms.postprocess_masks(low_res, predictor._orig_hw[-1])
