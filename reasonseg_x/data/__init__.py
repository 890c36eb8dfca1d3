"""Data layer: sample records, sources (published HF schema, LISA folders, compact format,
procedural renderer), the spec resolver and the converted-ground-truth cache.

Never imports torch, a predictor or the evaluators.
"""

from reasonseg_x.data.record import GroundTruth, ImageRef, Sample
from reasonseg_x.data.source import Source

__all__ = ["GroundTruth", "ImageRef", "Sample", "Source"]
