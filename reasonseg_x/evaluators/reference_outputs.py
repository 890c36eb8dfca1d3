"""Re-aggregate the reference scripts' per-sample files (``output_*.json``).

The StAR / Seg-Zero / VisionReasoner evaluation scripts write, per shard, a JSON list of
``{"image_id", "ann_id", "intersection", "union", "reasoning_type"?, ...}``. They carry no masks,
so only conventions that are functions of (I, U) can be derived: ``star`` and
``visionreasoner``/``segzero``. ``lisa`` (needs the ignore region) and ``gres`` (needs to know which
rows have no target and what the model answered) are refused. The files are read with the hazards
of the reference pipeline in mind: a sample present in two shards (an earlier run's file picked up
by the glob) is reported, not double counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES
from reasonseg_x.evaluators.protocols import get_protocol
from reasonseg_x.evaluators.records import SampleRecord
from reasonseg_x.json_input import loads_user_json
from reasonseg_x.predictions import PredictionProblem

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.data.source import Source
    from reasonseg_x.evaluators.api import EvalResult

__all__ = ["DERIVABLE_PROTOCOLS", "NOTE", "ID_KEYS", "reference_output_files", "read_reference_outputs",
           "score_reference_outputs", "looks_like_reference_outputs", "ReferenceRows"]

DERIVABLE_PROTOCOLS = ("star", "visionreasoner")
NOTE = ("re-aggregated from reference per-sample outputs (intersection/union only, no masks): only the star and "
        "visionreasoner/segzero conventions are derivable; failures cannot be told apart from empty masks (with --data "
        "both count as empty_prediction)")


def reference_output_files(path: str | Path) -> list[Path]:
    """``output_*.json`` files of a folder (sorted), or the one file given."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("output_*.json"))
        if not files:
            raise InvalidInputError("no output_*.json files in the folder", str(p))
        return files
    if not p.is_file():
        raise InvalidInputError("reference outputs not found", str(p))
    return [p]


def looks_like_reference_outputs(path: str | Path) -> bool:
    """A folder holding ``output_*.json`` files, or a ``.json`` file holding a JSON list (not JSONL)."""
    p = Path(path)
    if p.is_dir():
        return any(p.glob("output_*.json")) and not any(p.glob("*.png"))
    if p.suffix.lower() != ".json" or not p.is_file():
        return False
    with p.open("rb") as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b"[")


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    return None


#: keys a reference row may name its sample by, in order of preference when no source says which
ID_KEYS = ("id", "ann_id", "image_id")


def _sample_id(item: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = item.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _id_keys(source: Source, split: str) -> tuple[str, ...]:
    """The row key that holds the source's sample id (the scripts write both ``image_id`` and
    ``ann_id``; a source whose ids are image ids must not be matched on ``ann_id``)."""
    rule_of = getattr(source, "id_rule_of", None)
    rule = rule_of(split) if callable(rule_of) else getattr(source, "id_rule", "id")
    return (rule,) if rule in ("ann_id", "image_id") else ID_KEYS


@dataclass
class ReferenceRows:
    """What the files hold: valid ``rows`` ``{id, I, U, reasoning_type, where}``, the ``problems``,
    identical ``duplicates``, ``invalid_ids`` (bad rows, or ids whose rows conflict: none of their
    rows is used) and ``invalid_without_id`` (bad rows or files naming no sample)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[PredictionProblem] = field(default_factory=list)
    duplicates: int = 0
    invalid_ids: set[str] = field(default_factory=set)
    invalid_without_id: int = 0


def read_reference_outputs(path: str | Path, *, skip_invalid: bool = False,
                           id_keys: tuple[str, ...] = ID_KEYS) -> ReferenceRows:
    """Read every ``output_*.json``. A bad row or a conflicting duplicate raises naming
    ``file[index]``, or under ``skip_invalid`` is a problem and its id is invalid (never silently
    left out). A row's id is the first of ``id_keys`` it holds."""
    rows: dict[str, dict[str, Any]] = {}
    out = ReferenceRows()

    def fail(where: str, reason: str, sample_id: str | None = None, kind: str = "invalid") -> None:
        if not skip_invalid:
            raise InvalidInputError(reason, where)
        out.problems.append(PredictionProblem(where, reason, sample_id, kind))
        if sample_id is None:
            out.invalid_without_id += 1
        else:
            out.invalid_ids.add(sample_id)
            rows.pop(sample_id, None)

    for file in reference_output_files(path):
        try:
            data = loads_user_json(file.read_text(encoding="utf-8"), None, parse_constant=lambda c: float("nan"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            fail(str(file), f"malformed JSON: {exc} (none of this file's rows is used)")
            continue
        if not isinstance(data, list):
            fail(str(file), "expected a JSON list of per-sample objects (none of this file's rows is used)")
            continue
        for n, item in enumerate(data):
            where = f"{file}[{n}]"
            if not isinstance(item, dict):
                fail(where, "expected an object")
                continue
            if "intersection" not in item and "mask" in item:
                fail(where, "this is a prediction object, not a reference output row (intersection/union); "
                            "predictions files are JSON Lines: one object per line")
                continue
            sample_id = _sample_id(item, id_keys)
            i, u = _count(item.get("intersection")), _count(item.get("union"))
            if sample_id is None:
                fail(where, f"row has no {' or '.join(id_keys)}")
                continue
            if i is None or u is None or i > u:
                fail(where, f"id {sample_id!r}: intersection/union must be integers with 0 <= I <= U, got "
                            f"{item.get('intersection')!r}/{item.get('union')!r}", sample_id)
                continue
            if sample_id in out.invalid_ids:
                fail(where, f"id {sample_id!r} repeats an invalid row", sample_id)
                continue
            rtype = item.get("reasoning_type")
            row = {"id": sample_id, "I": i, "U": u,
                   "reasoning_type": str(rtype) if isinstance(rtype, str) and rtype else None, "where": where}
            if sample_id in rows:
                first = rows[sample_id]
                if (first["I"], first["U"], first["reasoning_type"]) == (i, u, row["reasoning_type"]):
                    out.duplicates += 1
                    continue
                fail(where, f"id {sample_id!r} also at {first['where']} with different numbers (shards from "
                            "different runs merged by the glob?)", sample_id, kind="duplicate_conflict")
                continue
            rows[sample_id] = row
    out.rows = list(rows.values())
    return out


def score_reference_outputs(path: str | Path, *, protocol: str = "star", source: Source | None = None,
                            split: str | None = None, strict: bool = False, skip_invalid: bool = False,
                            seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES,
                            level: float = DEFAULT_LEVEL) -> EvalResult:
    """Aggregate reference outputs under ``star`` or ``visionreasoner``.

    With a ``source``, ids are checked against the split (unknown ids raise, missing samples
    score as failures with U = area(GT)), groups come from the source and the data fingerprint
    is recorded; without one, groups come from the files' ``reasoning_type``.
    """
    from reasonseg_x.evaluators.api import EvalResult, _fingerprint
    from reasonseg_x.evaluators.evaluator import Evaluator
    from reasonseg_x.evaluators.sample import prepare_truth

    proto = get_protocol(protocol)
    if proto.name not in DERIVABLE_PROTOCOLS:
        raise InvalidInputError(f"protocol {proto.name!r} cannot be derived from reference outputs: they hold only "
                                "intersection and union (no masks, no ignore region, no no-target answers); "
                                "use star or visionreasoner")
    truths = []
    if source is not None:
        split = source.resolve_split(split)
        truths = list(source.ground_truth(split))
    id_keys = _id_keys(source, split) if source is not None else ID_KEYS
    read = read_reference_outputs(path, skip_invalid=skip_invalid, id_keys=id_keys)
    rows, problems = read.rows, list(read.problems)
    evaluator = Evaluator(proto, n_resamples=n_resamples, seed=seed, level=level)
    data: dict[str, Any] = {"spec": str(path), "split": split or "", "fingerprint": ""}
    extra = {"duplicate": read.duplicates}
    if read.invalid_without_id:
        extra["invalid_lines_without_id"] = read.invalid_without_id
    note = NOTE
    if source is None:
        taxonomy = evaluator.taxonomy  # the shipped one, open: aliases (codes, names) -> ids; unknown labels kept
        for row in rows:
            rtype = taxonomy.resolve(row["reasoning_type"])
            groups = {"reasoning_type": rtype} if rtype else {}
            evaluator.add_record(SampleRecord(row["id"], row["I"], row["U"], proto.iou_of(row["I"], row["U"]), "ok", groups))
        if read.invalid_ids:
            extra["invalid"] = len(read.invalid_ids)
            note += (f"; {len(read.invalid_ids)} invalid row id(s) are counted but not in n: without --data there is "
                     "no target area to score them as failures")
    else:
        by_id = {row["id"]: row for row in rows}
        seen, missing = set(), []
        for gt in truths:
            seen.add(gt.id)
            row = by_id.get(gt.id)
            truth = prepare_truth(gt, proto)
            if row is None and gt.id in read.invalid_ids:
                evaluator.add(gt, None, status="invalid")
            elif row is None:
                missing.append(gt.id)
                evaluator.add(gt, None)
            elif row["I"] > truth.target_area or row["U"] < truth.target_area:
                # I <= area(GT) <= U holds for any mask scored on this ground truth
                reason = (f"id {gt.id!r}: intersection {row['I']} / union {row['U']} are impossible for a target of "
                          f"{truth.target_area} pixels: these outputs were computed on other ground truth")
                if not skip_invalid:
                    raise InvalidInputError(reason, row["where"])
                problems.append(PredictionProblem(row["where"], reason, gt.id))
                evaluator.add(gt, None, status="invalid")
            else:
                evaluator.add_record(SampleRecord(gt.id, row["I"], row["U"], proto.iou_of(row["I"], row["U"]), "ok",
                                            dict(gt.groups), gt_empty=truth.target_area == 0,
                                            pred_empty=row["U"] + row["I"] == truth.target_area))
        unknown = [r for r in rows if r["id"] not in seen]
        # a bad row naming an id the split does not hold is an unknown id too (its problem is listed)
        invalid_unknown = [i for i in read.invalid_ids if i not in seen]
        if unknown and not skip_invalid:
            raise InvalidInputError(f"{'/'.join(id_keys)} {unknown[0]['id']!r} is not a sample of split {split!r} "
                                    f"({len(unknown)} unknown)", unknown[0]["where"])
        problems += [PredictionProblem(r["where"], f"unknown id {r['id']!r}", r["id"], "unknown_id") for r in unknown]
        extra["unknown_id"] = len(unknown) + len(invalid_unknown)
        if strict and missing:
            raise InvalidInputError(f"{len(missing)} sample(s) have no reference output (strict mode): "
                                    f"{missing[:5]}", str(path))
        data = {"spec": getattr(source, "spec", "") or "", "split": split,
                "fingerprint": _fingerprint(source, split, truths), "reference_outputs": str(path)}
    metrics = evaluator.compute(data=data, predictions={"path": str(path), "format": "reference output_*.json"},
                                extra_counts=extra, problems=problems, note=note)
    return EvalResult(metrics=metrics, records=evaluator.records, problems=problems)
