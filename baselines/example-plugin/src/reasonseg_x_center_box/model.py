"""The predictor: one centred box per query, as an RLE mask of the image's size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.predictors.protocol import Output, Query


class CenterBoxPredictor:
    """A centred box covering ``fraction`` of each side of the image."""

    needs_ground_truth = False

    def __init__(self, fraction: float = 0.5) -> None:
        if not 0 < fraction <= 1:
            raise InvalidInputError(f"fraction must be in (0, 1], got {fraction}", "fraction")
        self.fraction = float(fraction)

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        outputs = []
        for query in queries:
            h, w = query.height, query.width
            bh, bw = max(1, round(h * self.fraction)), max(1, round(w * self.fraction))
            top, left = (h - bh) // 2, (w - bw) // 2
            mask = np.zeros((h, w), dtype=bool)
            mask[top:top + bh, left:left + bw] = True
            outputs.append(Output(mask=masks.encode(mask), boxes=[[left, top, left + bw - 1, top + bh - 1]]))
        return outputs
