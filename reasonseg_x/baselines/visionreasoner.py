"""VisionReasoner-7B (Qwen2.5-VL, RL-tuned; no labels in its answers) with SAM: the paper's main open
baseline. StAR's pipeline with its own prompt and answer parser, and a 2048-token budget as in its
reference evaluation (both set in the model catalog)."""

from __future__ import annotations

from typing import ClassVar

from reasonseg_x.star.pipeline import VlmSamPipeline

__all__ = ["VisionReasonerPredictor"]


class VisionReasonerPredictor(VlmSamPipeline):
    """VisionReasoner-7B + SAM 2.1 (full model weights, no adapter)."""

    catalog_name: ClassVar[str] = "visionreasoner"
