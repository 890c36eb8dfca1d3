"""The predictor protocol: a batch of queries in, one output per query out.

Kept deliberately small so that any model (a VLM + SAM pipeline, a baseline, a replay of a file,
a third-party plugin) fits: the runner owns batching, resume, sharding and scoring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from reasonseg_x.data.record import GroundTruth, ImageRef, Sample
from reasonseg_x.masks import RLE

__all__ = ["Query", "Output", "Predictor", "MISSING"]

#: ``Output.status`` of a sample the predictor has no prediction for (a replayed file lacks it):
#: the runner writes no line, so scoring counts it ``missing`` rather than as a model failure
MISSING = "missing"


@dataclass(frozen=True)
class Query:
    """What a model may see of a sample: never the masks, unless it declares ``needs_ground_truth``."""

    id: str
    image: ImageRef
    text: str
    height: int
    width: int
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: only filled for predictors with ``needs_ground_truth = True`` (oracle, gt-box-sam)
    ground_truth: GroundTruth | None = None

    @classmethod
    def from_sample(cls, sample: Sample, *, with_ground_truth: bool = False) -> Query:
        meta = {"reasoning_type": sample.reasoning_type, "query_kind": sample.query_kind,
                "source": sample.source, "split": sample.split}
        return cls(id=sample.id, image=sample.image, text=sample.query, height=sample.height,
                   width=sample.width, meta={k: v for k, v in meta.items() if v is not None},
                   ground_truth=sample.ground_truth() if with_ground_truth else None)


@dataclass
class Output:
    """One prediction: a mask (bool array of the image's size, or RLE) or a failure status.

    ``status``: ``ok`` (mask given; ``None`` means empty), ``no_target`` (the model answered that
    nothing matches), ``parse_error`` (unusable answer), ``error`` (the predictor failed; put the
    message in ``error``), ``missing`` (no prediction exists for this sample, e.g. a replayed file
    lacks it: nothing is written and scoring counts it missing). The rest is optional evidence
    kept in the predictions file's ``meta``; ``meta`` holds anything else worth keeping
    (JSON-able; arrays and numpy scalars are converted).
    """

    mask: np.ndarray | RLE | None = None
    status: str = "ok"
    raw_text: str | None = None
    boxes: list[list[float]] | None = None
    points: list[list[float]] | None = None
    candidates: list[dict[str, Any]] | None = None
    timings: dict[str, float] | None = None
    error: str | None = None
    meta: dict[str, Any] | None = None


@runtime_checkable
class Predictor(Protocol):
    """Anything with ``predict(queries) -> outputs`` (same length, same order).

    Optional attributes the runner reads: ``needs_ground_truth`` (default False) and
    ``default_batch_size`` (used when ``--batch-size`` is not given; else 8), ``run_info()`` (a
    JSON-able dict recorded in run.json's session as ``predictor``: the generation schedule, an endpoint's model id). Raising on a batch
    is fine: the runner retries it sample by sample (out of memory: at half size) and records a
    sample that still raises as ``error``.
    """

    #: set True to receive ``Query.ground_truth`` (sanity baselines only)
    needs_ground_truth: ClassVar[bool]

    def predict(self, queries: Sequence[Query]) -> list[Output]: ...
