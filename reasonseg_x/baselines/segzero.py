"""Seg-Zero-7B (v1: Qwen2.5-VL, one object answered as a box plus two points) with SAM.

Its answer ``{"bbox": [...], "points_1": [x, y], "points_2": [x, y]}`` becomes one SAM prompt:
the box and both points as positives. One greedy answer per query (pinned in the model catalog)."""

from __future__ import annotations

from typing import ClassVar

from reasonseg_x.star.pipeline import VlmSamPipeline

__all__ = ["SegZeroPredictor"]


class SegZeroPredictor(VlmSamPipeline):
    """Seg-Zero-7B + SAM 2.1 (full model weights, no adapter)."""

    catalog_name: ClassVar[str] = "segzero"
    #: Seg-Zero's evaluation script rounds as round(int(v) * scale)
    coord_rounding: ClassVar[str] = "segzero"
