"""The prediction loop: batches in, validated predictions appended, failures isolated.

- An exception on a batch is retried sample by sample, so only the sample that raises is
  recorded as ``error`` (with its message) and the run goes on. A predictor that raises on
  ``MAX_ERROR_STREAK`` samples in a row is broken (a dead GPU context, a missing file), not
  unlucky: the run stops instead of writing an error line for every remaining sample.
- Out of memory on a batch (``MemoryError``, torch ``OutOfMemoryError``, a RuntimeError saying
  "out of memory") splits it in halves down to one sample; the smaller size is kept for the rest
  of the run. Out of memory on a single sample stops the run (resume later with more memory).
- A predictor that breaks the protocol (wrong number of outputs, wrong mask size or dtype) stops
  the run with a message naming it: such output cannot be trusted for any sample.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasonseg_x.data.record import Sample
from reasonseg_x.errors import InvalidInputError, ReasonSegXError
from reasonseg_x.predictions import Prediction
from reasonseg_x.predictors.protocol import MISSING, Query
from reasonseg_x.runner.convert import error_prediction, output_to_prediction
from reasonseg_x.runner.store import PredictionStore

__all__ = ["LoopStats", "OutOfMemory", "PredictorKeepsFailing", "is_out_of_memory", "predict_samples",
           "MAX_ERROR_STREAK"]

#: consecutive samples on which the predictor raised before the run stops
MAX_ERROR_STREAK = 32


class OutOfMemory(ReasonSegXError):
    """Out of memory even at batch size 1."""


class PredictorKeepsFailing(ReasonSegXError):
    """The predictor raised on ``MAX_ERROR_STREAK`` samples in a row."""


@dataclass
class LoopStats:
    predicted: int = 0
    #: samples on which the predictor raised (those it reported as ``error`` itself are in ``statuses``)
    errors: int = 0
    #: ``id: message`` of the first samples recorded as ``error`` (raised or reported)
    first_errors: list[str] = field(default_factory=list)
    oom_splits: int = 0
    batch_size: int = 0
    predict_seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    #: ids the predictor answered ``missing`` for (no line written)
    declared_missing: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"predicted": self.predicted, "errors": self.errors, "oom_splits": self.oom_splits,
                "declared_missing": len(self.declared_missing),
                "final_batch_size": self.batch_size, "predict_s": round(self.predict_seconds, 3),
                "statuses": dict(sorted(self.statuses.items()))}


def is_out_of_memory(exc: BaseException) -> bool:
    """True for host or accelerator out-of-memory errors, without importing torch."""
    if isinstance(exc, MemoryError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "OutOfMemoryError" in names:
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_accelerator_memory() -> None:
    gc.collect()  # the failed call's frames may sit in reference cycles, holding its tensors
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


class _Batcher:
    def __init__(self, predictor: Any, name: str, batch_size: int, stats: LoopStats, max_error_streak: int) -> None:
        self.predictor = predictor
        self.name = name
        self.batch_size = max(1, int(batch_size))
        self.stats = stats
        self.max_error_streak = max_error_streak
        self.error_streak = 0

    def run(self, queries: Sequence[Query]) -> list[Prediction]:
        failure: tuple[bool, str] | None = None
        try:
            outputs = self.predictor.predict(list(queries))
        except Exception as exc:  # noqa: BLE001 - any model failure is isolated per sample
            failure = (is_out_of_memory(exc), f"{type(exc).__name__}: {exc}")
        if failure is not None:  # retried outside the except block, so the failed call's frames (and GPU
            return self._recover(queries, *failure)  # tensors) are released before the smaller retry
        self.error_streak = 0
        if not isinstance(outputs, (list, tuple)) or len(outputs) != len(queries):
            got = len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
            raise InvalidInputError(f"predict() returned {got} outputs for {len(queries)} queries "
                                    f"(ids {', '.join(q.id for q in queries[:3])}...)", f"predictor {self.name!r}")
        predictions = []
        for out, query in zip(outputs, queries):
            if getattr(out, "status", None) == MISSING:
                self.stats.declared_missing.append(query.id)
            else:
                predictions.append(output_to_prediction(out, query, predictor=self.name))
        return predictions

    def _recover(self, queries: Sequence[Query], out_of_memory: bool, message: str) -> list[Prediction]:
        if out_of_memory:
            _free_accelerator_memory()
            if len(queries) == 1:
                raise OutOfMemory(f"predictor {self.name!r} ran out of memory on sample {queries[0].id!r} even at "
                                  "batch size 1; the predictions so far are saved: rerun the same command with more "
                                  "memory (or a smaller model setting) to resume") from None
            half = (len(queries) + 1) // 2
            self.batch_size = min(self.batch_size, max(1, len(queries) // 2))
            self.stats.oom_splits += 1
            return self.run(queries[:half]) + self.run(queries[half:])
        if len(queries) > 1:
            out: list[Prediction] = []
            for query in queries:
                out.extend(self.run([query]))
            return out
        self.error_streak += 1
        if self.error_streak >= self.max_error_streak:
            raise PredictorKeepsFailing(
                f"predictor {self.name!r} raised on {self.error_streak} samples in a row (last: {queries[0].id}: "
                f"{message}); stopping, since a predictor failing everywhere is broken. The errors of earlier "
                "batches are saved: fix the cause, then rerun the same command with --retry-errors")
        self.stats.errors += 1
        return [error_prediction(queries[0].id, message)]


def predict_samples(
    predictor: Any,
    samples: Iterable[Sample],
    store: PredictionStore,
    *,
    name: str,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    max_error_streak: int = MAX_ERROR_STREAK,
) -> LoopStats:
    """Run ``predictor`` over ``samples`` in batches, appending each batch to ``store`` durably."""
    stats = LoopStats(batch_size=batch_size)
    batcher = _Batcher(predictor, name, batch_size, stats, max_error_streak)
    with_gt = bool(getattr(predictor, "needs_ground_truth", False))
    pending: list[Sample] = []
    iterator = iter(samples)
    exhausted = False
    while not exhausted:
        while len(pending) < batcher.batch_size:
            try:
                pending.append(next(iterator))
            except StopIteration:
                exhausted = True
                break
        if not pending:
            break
        batch, pending = pending[: batcher.batch_size], pending[batcher.batch_size :]
        queries = [Query.from_sample(s, with_ground_truth=with_gt) for s in batch]
        started = time.perf_counter()
        predictions = batcher.run(queries)
        stats.predict_seconds += time.perf_counter() - started
        store.append(predictions)
        stats.predicted += len(predictions)
        for p in predictions:
            stats.statuses[p.status] = stats.statuses.get(p.status, 0) + 1
            if p.status == "error" and len(stats.first_errors) < 5:  # raised, or reported by the predictor
                stats.first_errors.append(f"{p.id}: {p.meta.get('error') or 'no message'}")
        if on_batch is not None:
            on_batch(len(batch))
    stats.batch_size = batcher.batch_size
    return stats
