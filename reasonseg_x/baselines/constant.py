"""Constant baselines: an empty mask or the whole image for every sample.

They bracket a protocol's range (empty: failures only count through U; full: how much of each
image the targets cover) and run in milliseconds, so they also smoke-test a data source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.predictors.protocol import Output, Query

__all__ = ["EmptyPredictor", "FullPredictor"]


class EmptyPredictor:
    """An empty mask (``status='ok'``) or a "nothing matches" answer (``status='no_target'``)."""

    needs_ground_truth: ClassVar[bool] = False

    def __init__(self, status: Literal["ok", "no_target"] = "ok") -> None:
        if status not in ("ok", "no_target"):
            raise InvalidInputError(f"empty baseline: status must be 'ok' or 'no_target', got {status!r}")
        self.status = status

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        if self.status == "no_target":
            return [Output(mask=None, status="no_target") for _ in queries]
        return [Output(mask=masks.empty(q.height, q.width)) for q in queries]


class FullPredictor:
    """Every pixel of the image."""

    needs_ground_truth: ClassVar[bool] = False

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        return [Output(mask=masks.full(q.height, q.width)) for q in queries]
