"""Replay a predictions file through the runner (``--model predictions:PATH``).

Useful to re-shard, re-check sizes, or turn someone's file (or PNG folder) into a run directory
with ``run.json`` and all scoring outputs. An id the file lacks is answered ``missing``: no line
is written and scoring counts it missing, as ``reasonseg-x score`` would. A file without any
prediction is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from reasonseg_x.errors import InvalidInputError, SourceNotFoundError
from reasonseg_x.predictors.protocol import MISSING, Output, Query

__all__ = ["ReplayPredictor"]


class ReplayPredictor:
    """Answers each query with the file's prediction for its id."""

    needs_ground_truth: ClassVar[bool] = False

    def __init__(self, path: os.PathLike[str] | str, skip_invalid: bool = False) -> None:
        from reasonseg_x.predictions import read_predictions

        self.path = str(path)
        if not Path(self.path).exists():
            raise SourceNotFoundError(f"predictions file not found: {self.path}")
        self._predictions = read_predictions(self.path, skip_invalid=skip_invalid).by_id
        if not self._predictions:
            raise InvalidInputError("holds no predictions; nothing to replay", self.path)

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        outputs: list[Output] = []
        for query in queries:
            pred = self._predictions.get(query.id)
            if pred is None:
                outputs.append(Output(status=MISSING))
                continue
            meta = dict(pred.meta or {})
            error = meta.pop("error", None)
            outputs.append(Output(mask=pred.mask, status=pred.status, raw_text=pred.raw_text, error=error, meta=meta))
        return outputs
