"""Replay a predictions file through the runner (``--model predictions:PATH``).

Useful to re-shard, re-check sizes, or turn someone's file (or PNG folder) into a run directory
with ``run.json`` and all scoring outputs. An id the file lacks becomes an ``error`` prediction
whose message says so, so the run's counts show it instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from reasonseg_x.errors import SourceNotFoundError
from reasonseg_x.predictors.protocol import Output, Query

__all__ = ["ReplayPredictor", "ReplayOutput"]


@dataclass
class ReplayOutput(Output):
    """An output carrying the replayed line's ``meta`` (the runner copies ``meta`` through)."""

    meta: dict[str, Any] = field(default_factory=dict)


class ReplayPredictor:
    """Answers each query with the file's prediction for its id."""

    needs_ground_truth: ClassVar[bool] = False

    def __init__(self, path: str, skip_invalid: bool = False) -> None:
        from reasonseg_x.predictions import read_predictions

        self.path = str(path)
        if not Path(self.path).exists():
            raise SourceNotFoundError(f"predictions file not found: {self.path}")
        self._predictions = read_predictions(self.path, skip_invalid=skip_invalid).by_id

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        outputs: list[Output] = []
        for query in queries:
            pred = self._predictions.get(query.id)
            if pred is None:
                outputs.append(ReplayOutput(status="error", error=f"no prediction for {query.id!r} in {self.path}",
                                            meta={"missing": True}))
                continue
            meta = dict(pred.meta or {})
            error = meta.pop("error", None)
            outputs.append(ReplayOutput(mask=pred.mask, status=pred.status, raw_text=pred.raw_text,
                                        error=error, meta=meta))
        return outputs
