"""Score a predictions set against a source split; write the run folder.

``score_predictions`` streams the split's ground truth once (no pixels), scores every sample on
RLE, and accounts for every prediction: missing, invalid, unknown and duplicate ones are
counted (or raised), never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.atomic import write_json_atomic, write_text_atomic, writing
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES
from reasonseg_x.evaluators.evaluator import MAX_LISTED_PROBLEMS, Evaluator, build_metrics
from reasonseg_x.evaluators.records import RecordSet, write_records
from reasonseg_x.predictions import PredictionProblem, PredictionSet, read_predictions

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.data.source import Source

__all__ = ["EvalResult", "score_predictions", "score_records", "build_metrics", "write_outputs"]

@dataclass
class EvalResult:
    """``metrics`` is the content of metrics.json; ``records`` the per-sample state."""

    metrics: dict[str, Any]
    records: RecordSet
    problems: list[PredictionProblem] = field(default_factory=list)
    #: the predictions as scored (the worst-case grid draws them without reading the file again)
    predictions: PredictionSet | None = None

    @property
    def protocol(self) -> str:
        return self.records.protocol


def _as_prediction_set(predictions: Any, skip_invalid: bool) -> PredictionSet:
    if isinstance(predictions, PredictionSet):
        return predictions
    if isinstance(predictions, (str, Path)):
        return read_predictions(predictions, skip_invalid=skip_invalid)
    if isinstance(predictions, Mapping) or isinstance(predictions, Iterable):
        return PredictionSet.from_predictions(predictions)
    raise TypeError(f"predictions must be a path, a PredictionSet or Prediction objects, not {type(predictions)}")


def score_records(source: Source, split: str | None, predictions: Any, *, protocol: str = "star",
                  strict: bool = False, skip_invalid: bool = False, resize: bool = False,
                  ids: set[str] | None = None) -> tuple[RecordSet, PredictionSet, dict[str, Any]]:
    """The per-sample records only (what a shard of the runner keeps); see :func:`score_predictions`.

    ``ids`` restricts scoring to those samples (a shard); predictions for other samples of the
    split are then not reported as unknown.
    """
    evaluator = Evaluator(protocol, resize=resize, skip_invalid=skip_invalid)
    preds = _as_prediction_set(predictions, skip_invalid)
    split = source.resolve_split(split)
    seen: set[str] = set()
    truths = []
    missing: list[str] = []
    for gt in source.ground_truth(split):
        if gt.id in seen:
            raise InvalidInputError(f"the source yields sample id {gt.id!r} twice", f"{source.spec or 'source'}:{split}")
        seen.add(gt.id)
        truths.append(gt)
        if ids is not None and gt.id not in ids:
            continue
        if gt.id not in preds.by_id and gt.id not in preds.invalid_ids:
            missing.append(gt.id)
        evaluator.add_from(gt, preds)
    records = evaluator.records
    problems = [*preds.problems, *evaluator.problems]
    if seen and isinstance(predictions, (str, Path)) and not preds.counts.get("lines"):
        raise InvalidInputError(f"no prediction in it (empty): all {len(seen)} samples of split {split!r} would "
                                "score as missing; is this the right file?", preds.path or str(predictions))
    if strict and missing:
        shown = ", ".join(repr(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InvalidInputError(f"{len(missing)} sample(s) have no prediction (strict mode): {shown}",
                                preds.path or "predictions")
    unknown = [i for i in (*preds.by_id, *sorted(preds.invalid_ids)) if i not in seen]
    if unknown:
        if not seen:  # not a stray id: there is no sample at all
            raise source.empty_split_error(split)
        if not skip_invalid:
            first = unknown[0]
            raise InvalidInputError(
                f"prediction id {first!r} is not a sample of {source.spec or 'the source'} split {split!r}"
                + (f" ({len(unknown)} unknown ids)" if len(unknown) > 1 else "")
                + (f"; {first.strip()!r} is: stray whitespace in the id?" if first.strip() in seen else "")
                + (f"; sample ids of this source come from {source.id_rule!r}"
                   if getattr(source, "id_rule", "") not in ("", "id") else ""), preds.location(first))
        problems.extend(PredictionProblem(preds.location(i), f"unknown id {i!r}", i, kind="unknown_id")
                        for i in unknown)
    fingerprint = _fingerprint(source, split, truths)
    info = {"split": split, "fingerprint": fingerprint, "problems": problems,
            "unknown_id": len(unknown), "n_source": len(seen)}
    return records, preds, info


def _fingerprint(source: Source, split: str, truths: list) -> str:
    """The source's fingerprint, computed from the ground truth already streamed when possible."""
    from reasonseg_x.data.source import Source as _Base
    from reasonseg_x.data.source import fingerprint_ground_truth

    if type(source).fingerprint is not _Base.fingerprint:
        return source.fingerprint(split)
    cache = getattr(source, "_fingerprints", None)
    if isinstance(cache, dict) and split in cache:
        return cache[split]
    value = fingerprint_ground_truth(iter(truths))
    if isinstance(cache, dict):
        cache[split] = value
    return value


def score_predictions(source: Source, split: str | None, predictions: Any, *, protocol: str = "star",
                      strict: bool = False, skip_invalid: bool = False, resize: bool = False, seed: int = 0,
                      n_resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL) -> EvalResult:
    """Score ``predictions`` (a JSONL path, a PNG folder, a :class:`PredictionSet` or Predictions)
    on ``split`` of ``source`` under ``protocol``.

    Missing predictions score as failures (``strict`` raises instead); bad lines, unknown ids and
    size mismatches raise :class:`InvalidInputError` naming ``file:line`` unless ``skip_invalid``
    (then counted ``invalid``); ``resize`` resizes mismatched masks (nearest).
    """
    records, preds, info = score_records(source, split, predictions, protocol=protocol, strict=strict,
                                         skip_invalid=skip_invalid, resize=resize)
    data = {"spec": getattr(source, "spec", "") or "", "split": info["split"], "fingerprint": info["fingerprint"]}
    id_rule = getattr(source, "id_rule", None)
    if id_rule:
        data["id_rule"] = id_rule
    skipped = getattr(source, "skipped", None)
    if skipped:  # rows the source left out under skip_invalid: not scored, so say so everywhere
        data["skipped_rows"] = len(skipped)
        data["skipped"] = [{"where": row.where, "reason": row.reason} for row in skipped[:MAX_LISTED_PROBLEMS]]
    pred_info = {"path": preds.path, "lines": preds.counts.get("lines", 0),
                 "torn_tail": preds.counts.get("torn_tail", 0), "resized": sum(1 for r in records if r.resized)}
    extra = {"duplicate": preds.counts.get("duplicate", 0), "unknown_id": info["unknown_id"]}
    invalid_lines_without_id = sum(1 for p in preds.problems if p.id is None and p.kind == "invalid")
    if invalid_lines_without_id:
        extra["invalid_lines_without_id"] = invalid_lines_without_id
    metrics = build_metrics(records, data=data, predictions=pred_info, n_resamples=n_resamples, seed=seed,
                            level=level, extra_counts=extra, problems=info["problems"])
    return EvalResult(metrics=metrics, records=records, problems=info["problems"], predictions=preds)


def write_outputs(result: EvalResult, out_dir: str | Path, *, chart: bool = True, source: Source | None = None,
                  predictions: Any = None) -> dict[str, Path]:
    """Write metrics.json, per_sample.jsonl, report.md and chart.png into ``out_dir``; with the
    ``source`` also worst.png, the report's worst-case grid (of ``result.predictions``, else of
    ``predictions``)."""
    from reasonseg_x.evaluators.report import draw_chart, render_markdown

    out = Path(out_dir)
    paths = {"metrics": out / "metrics.json", "per_sample": out / "per_sample.jsonl", "report": out / "report.md"}
    with writing(out):  # a refused write names its file (or this folder) and what to do, never a traceback
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(paths["metrics"], result.metrics)
        write_records(result.records, paths["per_sample"])
        grid = _worst_grid(result, out, source, predictions) if source is not None else None
        if grid is not None:
            paths["worst"] = grid
        write_text_atomic(paths["report"], render_markdown(result.metrics, worst_grid=grid.name if grid else None))
        if chart:
            paths["chart"] = out / "chart.png"
            draw_chart(result.metrics, paths["chart"])
    return paths


def _worst_grid(result: EvalResult, out: Path, source: Source, predictions: Any) -> Path | None:
    """worst.png, or None (with the previous one removed) when it cannot be drawn: the scores stand."""
    from reasonseg_x.errors import ReasonSegXError, WriteError
    from reasonseg_x.evaluators.report import draw_worst_grid

    target = out / "worst.png"
    try:
        if result.predictions is not None:
            predictions = result.predictions
        elif isinstance(predictions, (str, Path)):
            predictions = read_predictions(predictions, skip_invalid=True)
        grid = draw_worst_grid(result.records, source, result.metrics["data"]["split"], predictions, target)
    except WriteError:  # a refused write (a full disk, ``ulimit -f``) is the user's to fix: say it
        raise
    except (ReasonSegXError, OSError):
        grid = None
    if grid is None:
        target.unlink(missing_ok=True)
    return grid
