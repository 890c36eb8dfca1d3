"""What the viewer shows of a run: its predictions, its scores and the data it was run on.

A run is a folder written by ``reasonseg-x eval`` or ``score --out`` (``predictions.jsonl``,
``run.json``, ``metrics.json``, ``per_sample.jsonl``) or a bare predictions file with ``--data``.
The numbers are the run's own ``metrics.json`` and ``per_sample.jsonl`` when it has them (the
viewer shows what the run reported); otherwise the predictions are scored here by the
:class:`~reasonseg_x.evaluators.evaluator.Evaluator`, over the samples the run covers (its run
record's rule: limit, shard, skipped rows), as ``reasonseg-x score --skip-invalid`` scores them.
The viewer never computes a metric itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import loads_user_json

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.data.source import Source
    from reasonseg_x.evaluators.evaluator import Evaluator
    from reasonseg_x.evaluators.records import SampleRecord
    from reasonseg_x.predictions import PredictionSet
    from reasonseg_x.runner.record import RunRecord

__all__ = ["RunView", "open_run", "open_data", "load_scores", "start_scoring", "finish_scoring", "case_entry",
           "MAX_TEXT"]

#: characters of a raw answer kept in the page (a runaway generation would bloat it)
MAX_TEXT = 20_000
#: characters of each sampled answer of a tts run
MAX_ANSWER_TEXT = 4_000


@dataclass
class RunView:
    """One run as the viewer needs it."""

    name: str
    path: str
    predictions: PredictionSet
    protocol: str
    data_spec: str | None
    split: str | None
    fingerprint: str | None = None
    open_taxonomy: bool = False
    model: str | None = None
    records: dict[str, SampleRecord] = field(default_factory=dict)
    #: the run's metrics (its metrics.json, or the Evaluator's when scored here): the summary's numbers
    metrics: dict[str, Any] | None = None
    #: run.json, when the run is a folder of ``eval`` or ``merge``
    record: RunRecord | None = None
    #: whether other data than the run's were asked for (its record's coverage then says nothing)
    other_data: bool = False
    #: prediction ids that are no sample of the data (shown as a note)
    unknown: int = 0


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        obj = loads_user_json(path.read_text(encoding="utf-8"), None)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read: {exc}", str(path)) from None
    return obj if isinstance(obj, dict) else None


def _predictions_of(path: Path, metrics: dict[str, Any] | None) -> Path:
    """What holds a run's predictions: the file itself, the folder's predictions.jsonl, or for a
    folder of ``score --out`` (scores only) the predictions file its metrics.json names."""
    from reasonseg_x.predictions import RUN_PREDICTIONS

    if not path.is_dir() or (path / RUN_PREDICTIONS).is_file() or metrics is None:
        return path
    scored = (metrics.get("predictions") or {}).get("path")
    if isinstance(scored, str) and Path(scored).exists():
        return Path(scored)
    raise InvalidInputError(f"a scored folder without {RUN_PREDICTIONS}, and the predictions its metrics.json "
                            f"names ({scored!r}) are not here: pass the predictions file with --data", str(path))


def open_run(path: str | Path, *, data: str | None = None, split: str | None = None, protocol: str | None = None,
             default_data: str | None = None, default_split: str | None = None) -> RunView:
    """Read a run folder or a predictions file (no scoring yet: see :func:`load_scores`).

    ``data`` / ``split`` / ``protocol`` override what the run recorded; ``default_*`` fill in what a
    bare predictions file cannot say (the other run's data, for a second run)."""
    from reasonseg_x.predictions import read_predictions
    from reasonseg_x.runner.record import read_record, run_folder_of

    p = Path(path)
    p = run_folder_of(p) or p  # a run's predictions.jsonl is its run, as score and submit read it
    if not p.exists():
        raise InvalidInputError("no such run folder or predictions file", str(p))
    record = read_record(p, lenient=True) if p.is_dir() else None
    metrics = _read_json(p / "metrics.json") if p.is_dir() else None
    recorded = dict((metrics or {}).get("data") or {})
    if record is not None:
        recorded.update({k: v for k, v in (("spec", record.data), ("split", record.split),
                                            ("open_taxonomy", record.open_taxonomy)) if v is not None})
    spec = data or recorded.get("spec") or default_data
    if not spec:
        raise InvalidInputError("which data were these predictions made on? pass --data (a run folder records it "
                                "in run.json or metrics.json)", str(p))
    recorded_protocol = (metrics or {}).get("protocol") or (record.protocol if record is not None else None)
    chosen_protocol = protocol or recorded_protocol or "star"
    # other data or another protocol than the run's: its per_sample.jsonl does not hold these numbers
    rescore = bool(data) or bool(split and recorded.get("split") and split != recorded.get("split"))
    if protocol:
        from reasonseg_x.evaluators.protocols import get_protocol

        chosen_protocol = get_protocol(protocol).name
        rescore = rescore or chosen_protocol != get_protocol(str(recorded_protocol or chosen_protocol)).name
    predictions = read_predictions(_predictions_of(p, metrics), skip_invalid=True)
    name = p.name if p.is_dir() else p.stem
    model = record.model.get("name") if record is not None else None
    return RunView(name=name or str(p), path=str(p), predictions=predictions, protocol=str(chosen_protocol),
                   data_spec=str(spec), split=split or recorded.get("split") or default_split,
                   fingerprint=None if rescore else (metrics or {}).get("data", {}).get("fingerprint"),
                   open_taxonomy=bool(recorded.get("open_taxonomy", False)), model=model if isinstance(model, str)
                   else None, metrics=None if rescore else metrics, record=record,
                   other_data=bool(data) and data != recorded.get("spec"))


def open_data(run: RunView) -> tuple[Source, str]:
    """The run's source and split: for a run folder on its own data the samples it covers (its run
    record's rule), else the whole split of the recorded (or given) spec."""
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.runner.record import open_run_data

    if run.record is not None and not run.other_data:
        return open_run_data(run.record, data=run.data_spec, split=run.split, skip_invalid=True,
                             open_taxonomy=run.open_taxonomy)
    source = open_source(run.data_spec or "", skip_invalid=True, open_taxonomy=run.open_taxonomy)
    return source, source.resolve_split(run.split)


def load_scores(run: RunView) -> bool:
    """Fill ``run.records`` from the run's ``per_sample.jsonl`` (its protocol, its numbers, and its
    metrics.json for the summary); False when there is none (or other data were asked for): then
    :func:`start_scoring` scores each sample as the viewer streams it, in one pass over the data."""
    from reasonseg_x.evaluators.records import read_records

    per_sample = Path(run.path) / "per_sample.jsonl"
    if not (Path(run.path).is_dir() and per_sample.is_file() and run.fingerprint is not None
            and run.metrics is not None):
        return False
    run.records = {r.id: r for r in read_records(per_sample, run.protocol)}
    return True


def start_scoring(run: RunView) -> Evaluator:
    """The evaluator that scores ``run`` here, as ``reasonseg-x score --skip-invalid`` would: a bad line
    or a mask of another size is an ``invalid`` failure, a missing line ``missing``. Feed it with
    ``evaluator.add_from(gt, run.predictions)`` (keeping each record in ``run.records``), then call
    :func:`finish_scoring`."""
    from reasonseg_x.evaluators.evaluator import Evaluator

    return Evaluator(run.protocol, skip_invalid=True, n_resamples=0)


def finish_scoring(run: RunView, evaluator: Evaluator) -> None:
    """The evaluator's metrics become the run's numbers (the summary's)."""
    run.metrics = evaluator.compute()


def check_ids(run: RunView, seen: set[str], data: str) -> None:
    """Count prediction ids that are no sample of the data; refuse when none is (wrong data)."""
    ids = set(run.predictions.by_id) | set(run.predictions.invalid_ids)
    run.unknown = len(ids - seen)
    if ids and run.unknown == len(ids):
        raise InvalidInputError(f"none of the {len(ids)} prediction ids is a sample of {data}: wrong --data or "
                                "--split?", run.path)


def _clip(text: Any, limit: int) -> str | None:
    if not isinstance(text, str):
        return None
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit:,} more characters cut]"


#: what the vote did with a sampled answer, as the page words it
VERDICTS = ("kept", "outvoted", "rejected", "unknown")


def _verdict(cand: dict[str, Any], objects: int, vote: Any) -> str:
    """``kept``: the mask came from it (or, under a no-object majority, the empty answer it gave);
    ``rejected``: unreadable, not counted; ``outvoted``: its clusters (or its no-object vote) lost;
    ``unknown``: no vote was recorded (another aggregator)."""
    status = str(cand.get("status", ""))
    decision = vote.get("decision") if isinstance(vote, dict) else None
    if cand.get("kept") is True:
        return "kept"
    if status not in ("ok", "no_target"):
        return "rejected"
    if decision == "no-object majority" and objects == 0:
        return "kept"
    if decision is not None or "kept" in cand or "cluster" in cand:
        return "outvoted"
    return "unknown"


def _answers(candidates: Any, vote: Any = None) -> list[dict[str, Any]] | None:
    """The sampled answers of a tts run (number, status, object count, raw text, vote cluster and
    verdict), those the vote kept first: the page must not lead with an answer the vote threw out."""
    if not isinstance(candidates, list) or not any(isinstance(c, dict) and {"status", "objects", "raw_text"} & set(c)
                                                   for c in candidates):
        return None  # none, or not answers (a segmenter's mask candidates: scores only)
    out = []
    for number, cand in enumerate(candidates, start=1):
        if not isinstance(cand, dict):
            continue
        objects = cand.get("objects") if isinstance(cand.get("objects"), list) else []
        entry: dict[str, Any] = {"n": number, "status": str(cand.get("status", "")), "objects": len(objects),
                                 "labels": [str(o.get("label")) for o in objects
                                            if isinstance(o, dict) and o.get("label") is not None][:8],
                                 "verdict": _verdict(cand, len(objects), vote)}
        for key in ("cluster", "kept"):
            if isinstance(cand.get(key), (bool, int, str)):
                entry[key] = cand[key]
        text = _clip(cand.get("raw_text"), MAX_ANSWER_TEXT)
        if text is not None:
            entry["raw"] = text
        if isinstance(cand.get("error"), str):
            entry["error"] = _clip(cand["error"], 500)
        out.append(entry)
    return sorted(out, key=lambda a: a["verdict"] != "kept")  # stable: sample order within each group


def run_entry(run: RunView, sample_id: str) -> dict[str, Any]:
    """One run's side of a case: score, status and the untrusted evidence (kept as plain data)."""
    record = run.records.get(sample_id)
    pred = run.predictions.get(sample_id)
    entry: dict[str, Any] = {"iou": None if record is None else round(float(record.iou), 6),
                             "status": "missing" if record is None else record.status}
    if record is not None and (record.pred_empty or record.resized or record.mask_ignored):
        entry["flags"] = [f for f in ("pred_empty", "resized", "mask_ignored") if getattr(record, f)]
    if pred is None:
        return entry
    raw = _clip(pred.raw_text, MAX_TEXT)
    if raw is not None:
        entry["raw"] = raw
    meta = pred.meta or {}
    if isinstance(meta.get("error"), str):
        entry["error"] = _clip(meta["error"], 2000)
    answers = _answers(meta.get("candidates"), meta.get("vote"))
    if answers and len(answers) > 1:
        entry["answers"] = answers
        if raw is not None and not any("raw" in a for a in answers):  # texts not kept: raw_text is the first's
            for answer in answers:
                if answer["n"] == 1:
                    answer["raw"] = raw
    from reasonseg_x.render import split_geometry

    geometry = split_geometry(meta)
    for key in ("boxes", "points", "dropped_boxes", "dropped_points"):
        value = getattr(geometry, key)
        if value:
            entry[key] = value
    return {k: v for k, v in entry.items() if v is not None}


def case_entry(sample: Any, key: str, runs: list[RunView]) -> dict[str, Any]:
    """The page's record of one sample: what every run did on it."""
    case: dict[str, Any] = {"id": sample.id, "key": key, "query": _clip(sample.query, MAX_TEXT),
                            "w": sample.width, "h": sample.height,
                            "runs": [run_entry(run, sample.id) for run in runs]}
    for field_name, short in (("reasoning_type", "type"), ("query_kind", "kind"), ("source", "source")):
        value = getattr(sample, field_name, None)
        if value is not None:
            case[short] = str(value)
    return case
