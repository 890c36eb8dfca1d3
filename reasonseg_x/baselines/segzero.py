"""Seg-Zero-7B (v1: Qwen2.5-VL, one object answered as a box plus two points) with SAM.

Its answer ``{"bbox": [...], "points_1": [x, y], "points_2": [x, y]}`` becomes one SAM prompt:
the box and both points as positives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from reasonseg_x.baselines.vlm_sam import VlmSamPredictor

__all__ = ["SegZeroPredictor"]


class SegZeroPredictor(VlmSamPredictor):
    """Seg-Zero-7B + SAM 2.1 (full model weights, no adapter)."""

    default_style: ClassVar[str] = "segzero"
    #: Seg-Zero's evaluation script rounds as round(int(v) * scale)
    coord_rounding: ClassVar[str] = "segzero"

    def __init__(self, checkpoint: str = "Ricky06662/Seg-Zero-7B", *, segmenter: str = "sam2.1-hiera-large",
                 batch_size: int | None = None, max_new_tokens: int = 1024, device: str = "auto",
                 dtype: str = "auto", segmenter_device: str | None = None,
                 attn_implementation: str | None = None, vlm: Any = None,
                 logits_processor: Callable[[], Any] | None = None) -> None:
        super().__init__(checkpoint, segmenter=segmenter, tts=1, batch_size=batch_size,
                         max_new_tokens=max_new_tokens, device=device, dtype=dtype, style="segzero",
                         segmenter_device=segmenter_device, attn_implementation=attn_implementation,
                         vlm=vlm, logits_processor=logits_processor)
