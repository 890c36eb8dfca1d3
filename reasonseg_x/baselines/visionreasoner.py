"""VisionReasoner-7B (Qwen2.5-VL, RL-tuned; no labels in its answers) with SAM: the paper's main open
baseline. Its own prompt and answer parser; greedy decoding with a 2048-token budget as in its
reference evaluation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from reasonseg_x.baselines.vlm_sam import VlmSamPredictor

__all__ = ["VisionReasonerPredictor"]


class VisionReasonerPredictor(VlmSamPredictor):
    """VisionReasoner-7B + SAM 2.1 (full model weights, no adapter)."""

    default_style: ClassVar[str] = "visionreasoner"

    def __init__(self, checkpoint: str = "Ricky06662/VisionReasoner-7B", *, segmenter: str = "sam2.1-hiera-large",
                 batch_size: int | None = None, max_new_tokens: int = 2048, device: str = "auto",
                 dtype: str = "auto", tts: int = 1, aggregator: str = "majority_vote", seed: int = 42,
                 segmenter_device: str | None = None, attn_implementation: str | None = None,
                 vlm: Any = None, logits_processor: Callable[[], Any] | None = None) -> None:
        super().__init__(checkpoint, segmenter=segmenter, tts=tts, aggregator=aggregator, seed=seed,
                         batch_size=batch_size, max_new_tokens=max_new_tokens, device=device, dtype=dtype,
                         style="visionreasoner", segmenter_device=segmenter_device,
                         attn_implementation=attn_implementation, vlm=vlm, logits_processor=logits_processor)
