"""The prediction loop: batches in, validated predictions appended, failures isolated.

- An exception on a batch is retried sample by sample, so only the sample that raises is
  recorded as ``error`` (with its message) and the run goes on.
- Out of memory on a batch (``MemoryError``, torch ``OutOfMemoryError``, a RuntimeError saying
  "out of memory") splits it in halves down to one sample; the smaller size is kept for the rest
  of the run. Out of memory on a single sample stops the run (resume later with more memory).
- A predictor that breaks the protocol (wrong number of outputs, wrong mask size or dtype) stops
  the run with a message naming it: such output cannot be trusted for any sample.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasonseg_x.data.record import Sample
from reasonseg_x.errors import InvalidInputError, ReasonSegXError
from reasonseg_x.predictions import Prediction
from reasonseg_x.predictors.protocol import Query
from reasonseg_x.runner.convert import error_prediction, output_to_prediction
from reasonseg_x.runner.store import PredictionStore

__all__ = ["LoopStats", "OutOfMemory", "is_out_of_memory", "predict_samples"]


class OutOfMemory(ReasonSegXError):
    """Out of memory even at batch size 1."""


@dataclass
class LoopStats:
    predicted: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    oom_splits: int = 0
    batch_size: int = 0
    predict_seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"predicted": self.predicted, "errors": self.errors, "oom_splits": self.oom_splits,
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
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


class _Batcher:
    def __init__(self, predictor: Any, name: str, batch_size: int, stats: LoopStats) -> None:
        self.predictor = predictor
        self.name = name
        self.batch_size = max(1, int(batch_size))
        self.stats = stats

    def run(self, queries: Sequence[Query]) -> list[Prediction]:
        try:
            outputs = self.predictor.predict(list(queries))
        except Exception as exc:  # noqa: BLE001 - any model failure is isolated per sample
            return self._recover(queries, exc)
        if not isinstance(outputs, (list, tuple)) or len(outputs) != len(queries):
            got = len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
            raise InvalidInputError(f"predict() returned {got} outputs for {len(queries)} queries "
                                    f"(ids {', '.join(q.id for q in queries[:3])}...)", f"predictor {self.name!r}")
        return [output_to_prediction(out, q, predictor=self.name) for out, q in zip(outputs, queries)]

    def _recover(self, queries: Sequence[Query], exc: Exception) -> list[Prediction]:
        if is_out_of_memory(exc):
            del exc
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
        message = f"{type(exc).__name__}: {exc}"
        self.stats.errors += 1
        if len(self.stats.first_errors) < 5:
            self.stats.first_errors.append(f"{queries[0].id}: {message}")
        return [error_prediction(queries[0].id, message)]


def predict_samples(
    predictor: Any,
    samples: Iterable[Sample],
    store: PredictionStore,
    *,
    name: str,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> LoopStats:
    """Run ``predictor`` over ``samples`` in batches, appending each batch to ``store`` durably."""
    stats = LoopStats(batch_size=batch_size)
    batcher = _Batcher(predictor, name, batch_size, stats)
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
        if on_batch is not None:
            on_batch(len(predictions))
    stats.batch_size = batcher.batch_size
    return stats
