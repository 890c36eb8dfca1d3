"""The evaluator: protocol-exact gIoU/cIoU per group, honest counts, intervals, reports.

Modules: ``protocols`` (conventions as data), ``sample`` (one pair -> one record, on RLE),
``records`` (mergeable per-sample state), ``aggregate`` and ``bootstrap`` (numbers),
``evaluator`` (the in-memory :class:`Evaluator`, the one scoring path), ``api`` (score a split
through it, write a run folder), ``report`` (Markdown, rich, PNG chart), ``compare``
(paired comparison of two runs), ``reference_outputs`` (re-aggregate reference ``output_*.json``).
Nothing here imports torch or a predictor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Evaluator", "score_predictions", "write_outputs", "EvalResult", "get_protocol", "merge_records"]

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.evaluators.api import EvalResult, score_predictions, write_outputs
    from reasonseg_x.evaluators.evaluator import Evaluator
    from reasonseg_x.evaluators.protocols import get_protocol
    from reasonseg_x.evaluators.records import merge_records

_HOME = {"Evaluator": "evaluator", "score_predictions": "api", "write_outputs": "api", "EvalResult": "api",
         "get_protocol": "protocols", "merge_records": "records"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"reasonseg_x.evaluators.{_HOME[name]}"), name)
    raise AttributeError(f"module 'reasonseg_x.evaluators' has no attribute {name!r}")
