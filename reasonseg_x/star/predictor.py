"""StAR: the reference model of ReasonSeg-X, runnable as ``reasonseg-x eval --model star``.

A LoRA-tuned Qwen-VL (StAR-7B on Qwen2.5-VL-7B, StAR-8B / 32B on Qwen3-VL) answers every matching
instance as ``{"label", "bbox_2d", "point_2d"}``; SAM 2.1 Hiera-L segments each. ``tts=1`` decodes
greedily; ``tts=N`` samples N answers (temperature 1.0, top-p 0.9, seeded) and aggregates them with
the paper's majority vote (or another aggregator by name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from reasonseg_x.baselines.vlm_sam import VlmSamPredictor

__all__ = ["StarPredictor"]


class StarPredictor(VlmSamPredictor):
    """StAR (LoRA Qwen-VL + SAM 2.1), greedy or with parallel test-time scaling."""

    default_style: ClassVar[str] = "star"

    def __init__(self, checkpoint: str = "sj9909/StAR-7B", *, base_model: str | None = None,
                 segmenter: str = "sam2.1-hiera-large", tts: int = 1, aggregator: str = "majority_vote",
                 seed: int = 42, batch_size: int | None = None, max_new_tokens: int = 1024,
                 merge_lora: bool = False, device: str = "auto", dtype: str = "auto",
                 temperature: float = 1.0, top_p: float = 0.9, top_k: int | None = None,
                 style: str = "star",
                 segmenter_device: str | None = None, attn_implementation: str | None = None,
                 no_object_vote_threshold: float = 0.5, mask_iou_cluster_threshold: float = 0.85,
                 cluster_vote_threshold: float = 0.2, cluster_agg_mode: str = "best",
                 pixel_majority_threshold: float = 0.5, keep_answers: bool = True, backend: str = "hf", vlm: Any = None,
                 logits_processor: Callable[[], Any] | None = None) -> None:
        super().__init__(checkpoint, base_model=base_model, segmenter=segmenter, tts=tts, aggregator=aggregator,
                         seed=seed, batch_size=batch_size, max_new_tokens=max_new_tokens, merge_lora=merge_lora,
                         device=device, dtype=dtype, temperature=temperature, top_p=top_p, top_k=top_k,
                         style=style,
                         segmenter_device=segmenter_device, attn_implementation=attn_implementation,
                         no_object_vote_threshold=no_object_vote_threshold,
                         mask_iou_cluster_threshold=mask_iou_cluster_threshold,
                         cluster_vote_threshold=cluster_vote_threshold, cluster_agg_mode=cluster_agg_mode,
                         pixel_majority_threshold=pixel_majority_threshold, keep_answers=keep_answers, backend=backend, vlm=vlm,
                         logits_processor=logits_processor)
