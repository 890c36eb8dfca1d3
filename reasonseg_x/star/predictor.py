"""StAR: the reference model of ReasonSeg-X, runnable as ``reasonseg-x eval --model star``.

A LoRA-tuned Qwen-VL (StAR-7B on Qwen2.5-VL-7B, StAR-8B / 32B on Qwen3-VL) answers every matching
instance as ``{"label", "bbox_2d", "point_2d"}``; SAM 2.1 Hiera-L segments each. ``tts=1`` decodes
greedily; ``tts=N`` samples N answers (temperature 1.0, top-p 0.9, seeded) and aggregates them with
the paper's majority vote (or another aggregator by name). It is the pipeline of
:mod:`reasonseg_x.star.pipeline` with StAR's defaults from the model catalog.
"""

from __future__ import annotations

from typing import ClassVar

from reasonseg_x.star.pipeline import VlmSamPipeline

__all__ = ["StarPredictor"]


class StarPredictor(VlmSamPipeline):
    """StAR (LoRA Qwen-VL + SAM 2.1), greedy or with parallel test-time scaling."""

    catalog_name: ClassVar[str] = "star"
