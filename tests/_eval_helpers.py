"""Shared fixtures of the evaluator tests: a small in-memory source and random masks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from reasonseg_x import masks
from reasonseg_x.data.record import GroundTruth, ImageRef, Sample
from reasonseg_x.data.source import Source
from reasonseg_x.predictions import Prediction, prediction_to_json

TYPES = ("function_purpose", "commonsense", "comparative_relational", "compositional")


class MemorySource(Source):
    """A source over samples held in memory (no images needed for scoring)."""

    def __init__(self, samples: list[Sample], spec: str = "memory") -> None:
        super().__init__()
        self._samples = samples
        self.spec = spec

    def splits(self) -> list[str]:
        return ["test"]

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        self.resolve_split(split)
        yield from self._samples


def blob(rng: np.random.Generator, h: int, w: int, p_empty: float = 0.1) -> np.ndarray:
    """A random mask of a few rectangles (empty with probability p_empty)."""
    m = np.zeros((h, w), dtype=bool)
    if rng.random() < p_empty:
        return m
    for _ in range(int(rng.integers(1, 4))):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        m[y0:y0 + int(rng.integers(1, h + 1)), x0:x0 + int(rng.integers(1, w + 1))] = True
    return m


def make_case(n: int = 30, seed: int = 0, *, h: int = 24, w: int = 32, with_ignore: bool = False,
              p_empty: float = 0.1, groups: bool = True):
    """Return (source, arrays) where arrays[id] = (target bool, ignore bool|None, pred bool)."""
    rng = np.random.default_rng(seed)
    samples, arrays = [], {}
    for k in range(n):
        sid = f"s{k:03d}"
        hh, ww = h + int(rng.integers(0, 5)), w + int(rng.integers(0, 5))
        target = blob(rng, hh, ww, p_empty)
        ignore = None
        if with_ignore and rng.random() < 0.6:
            ignore = blob(rng, hh, ww, 0.0) & (rng.random((hh, ww)) < 0.5)
        pred = blob(rng, hh, ww, p_empty) | (target & (rng.random((hh, ww)) < 0.7))
        samples.append(Sample(
            id=sid, image=ImageRef(data=b""), query="q", height=hh, width=ww, target=masks.encode(target),
            ignore=masks.encode(ignore) if ignore is not None else None,
            reasoning_type=TYPES[k % 4] if groups else None,
            query_kind=("long" if k % 3 else "short") if groups else None, split="test"))
        arrays[sid] = (target, ignore, pred)
    return MemorySource(samples), arrays


def write_jsonl(path: Path, preds: list[Prediction] | list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for p in preds:
            obj = prediction_to_json(p) if isinstance(p, Prediction) else p
            fh.write(json.dumps(obj) + "\n")
    return path


def predictions_for(arrays: dict, *, drop: tuple[str, ...] = ()) -> list[Prediction]:
    return [Prediction(id=sid, mask=masks.encode(pred)) for sid, (_, _, pred) in arrays.items() if sid not in drop]


def ground_truth_of(source: Source) -> list[GroundTruth]:
    return list(source.ground_truth("test"))
