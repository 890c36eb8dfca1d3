"""The predictions file: one JSON object per sample, the contract between runners, scorers
and the leaderboard.

``{"id": str, "mask": RLE | null, "status": "ok" | "no_target" | "parse_error" | "error",
"raw_text": str (optional), "meta": object (optional)}``

A ``mask`` of ``null`` with status ``ok`` is an empty prediction; ``no_target`` means the model
said nothing matches; ``parse_error`` / ``error`` are failures the protocol scores as such.
(Stub written to fix the interface; the evaluator issue hardens the reader.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonseg_x.masks import RLE

__all__ = ["STATUSES", "FAILURE_STATUSES", "Prediction", "prediction_to_json"]

STATUSES = ("ok", "no_target", "parse_error", "error")
FAILURE_STATUSES = ("parse_error", "error")


@dataclass(frozen=True)
class Prediction:
    id: str
    mask: RLE | None
    status: str = "ok"
    raw_text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def prediction_to_json(pred: Prediction) -> dict[str, Any]:
    """The JSON object of one predictions line (keys in a stable order)."""
    obj: dict[str, Any] = {"id": pred.id, "mask": pred.mask, "status": pred.status}
    if pred.raw_text is not None:
        obj["raw_text"] = pred.raw_text
    if pred.meta:
        obj["meta"] = pred.meta
    return obj
