"""The oracle: returns the ground truth, so every protocol must score gIoU = cIoU = 1.0.

A whole-pipeline check: if the oracle scores below 1.0 something between the loader, the
runner and the scorer disagrees (sizes, ids, ignore handling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.predictors.protocol import Output, Query

__all__ = ["OraclePredictor"]


class OraclePredictor:
    """The target merged with the ignore region.

    Merging is right for every protocol: star/visionreasoner/gres merge ignore into the target,
    and lisa excludes ignore pixels from I and U, so predicting them costs nothing.
    """

    needs_ground_truth: ClassVar[bool] = True

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        outputs = []
        for query in queries:
            gt = query.ground_truth
            if gt is None:
                raise InvalidInputError("the oracle needs the ground truth, but the runner gave none", query.id)
            mask = gt.target if gt.ignore is None else masks.merge([gt.target, gt.ignore])
            outputs.append(Output(mask=mask))
        return outputs
