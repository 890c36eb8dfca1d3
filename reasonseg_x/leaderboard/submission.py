"""Validate a predictions file against a split's manifest and turn it into a submission bundle.

The same validator runs on the author's machine (``reasonseg-x submit``) and on the host (for
untrusted bundles): every manifest id present once, no unknown ids, each mask a valid RLE of the
image's size, statuses known. Problems are collected, not raised one at a time, so the error
message lists the first offending ids of every kind at once.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reasonseg_x.errors import InvalidInputError, InvalidMaskError
from reasonseg_x.leaderboard.bundle import (
    DatasetRef,
    SubmissionInfo,
    check_bundle_target,
    is_archive_path,
    write_bundle_archive,
    write_bundle_dir,
)
from reasonseg_x.leaderboard.manifest import Manifest
from reasonseg_x.leaderboard.safety import DEFAULT_LIMITS, JSONSyntaxError, Limits, UnsafeBundleError, safe_json_loads
from reasonseg_x.predictions import STATUSES, Prediction, harness_line, prediction_from_json, prediction_to_json

__all__ = [
    "SubmissionError",
    "Problem",
    "ValidationReport",
    "read_prediction_lines",
    "validate_predictions",
    "parse_meta",
    "parse_parameter_count",
    "build_submission",
    "PROBLEM_KINDS",
]

#: kinds of problems, in the order the error message lists them
PROBLEM_KINDS = ("bad_line", "duplicate_id", "bad_status", "invalid_rle", "missing_id", "unknown_id", "size_mismatch")
_KIND_TEXT = {
    "bad_line": "malformed lines",
    "duplicate_id": "duplicate ids",
    "bad_status": "unknown statuses",
    "invalid_rle": "invalid RLE masks",
    "missing_id": "missing ids (in the split, no prediction)",
    "unknown_id": "unknown ids (predicted, not in the split)",
    "size_mismatch": "masks whose size differs from the image",
}
_MAX_ID = 512


class SubmissionError(InvalidInputError):
    """Predictions that do not fit the split; the message lists the first offending ids per kind."""

    def __init__(self, message: str, where: str | None = None, report: ValidationReport | None = None) -> None:
        super().__init__(message, where)
        self.report = report


@dataclass(frozen=True)
class Problem:
    kind: str
    id: str | None
    where: str
    reason: str


@dataclass
class ValidationReport:
    """Every problem found, plus the predictions that parsed (in file order)."""

    path: str
    predictions: dict[str, Prediction] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: ``file:line`` of each parsed prediction, so later checks can point at the line
    lines: dict[str, str] = field(default_factory=dict)
    #: what the predictions were checked against (``data:split``), for the error message
    against: str = "the split manifest"
    #: advice printed after the problems (e.g. "none of the ids belongs to this split")
    hints: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_kind(self) -> dict[str, list[Problem]]:
        out: dict[str, list[Problem]] = {}
        for kind in PROBLEM_KINDS:
            hits = [p for p in self.problems if p.kind == kind]
            if hits:
                out[kind] = hits
        return out

    def summary(self, max_ids: int = 5) -> str:
        """One line per kind: count, then the first ``max_ids`` offenders with where and why."""
        lines = []
        for kind, hits in self.by_kind().items():
            shown = "; ".join(_describe(p) for p in hits[:max_ids])
            more = f"; ... and {len(hits) - max_ids} more" if len(hits) > max_ids else ""
            lines.append(f"{len(hits)} {_KIND_TEXT[kind]}: {shown}{more}")
        lines.extend(f"hint: {h}" for h in self.hints)
        return "\n".join(lines)

    def counts(self) -> dict[str, int]:
        tally = Counter(p.status for p in self.predictions.values())
        return {status: tally.get(status, 0) for status in STATUSES}

    def raise_for_problems(self) -> None:
        if self.problems:
            raise SubmissionError(f"{len(self.problems)} problem(s) against {self.against}:\n{self.summary()}",
                                  self.path, self)


def _describe(p: Problem) -> str:
    """``'id' (file:line: reason)``; the parts that are empty are left out."""
    detail = ": ".join(x for x in (p.where, p.reason) if x)
    if p.id is None:
        return detail
    return f"{p.id!r} ({detail})" if detail else repr(p.id)


def _read_lines(path: Path, limits: Limits):  # type: ignore[no-untyped-def]
    """Yield ``(line_number, bytes)``; a line over the limit is refused without reading it whole."""
    with path.open("rb") as fh:
        number = 0
        while True:
            line = fh.readline(limits.max_line_bytes + 1)
            if not line:
                return
            number += 1
            if len(line) > limits.max_line_bytes:
                raise UnsafeBundleError(f"line longer than {limits.max_line_bytes} bytes", f"{path}:{number}")
            yield number, line


def read_prediction_lines(path: str | os.PathLike[str], report: ValidationReport | None = None,
                          limits: Limits = DEFAULT_LIMITS) -> ValidationReport:
    """Parse a predictions JSONL file strictly, recording per-line problems in the report.

    Structural attacks (a file or a line over the limits, nested or huge JSON) raise
    :class:`UnsafeBundleError` at once; record-level mistakes become :class:`Problem` entries.
    """
    p = Path(path)
    report = report or ValidationReport(path=str(p))
    if p.is_dir():
        inside = p / "predictions.jsonl"
        raise InvalidInputError("is a folder; give the predictions JSONL file" +
                                (f" (e.g. {inside})" if inside.is_file() else ""), str(p))
    if not p.is_file():
        raise InvalidInputError("predictions file not found", str(p))
    if p.stat().st_size > limits.max_member_bytes:
        raise UnsafeBundleError(f"predictions file is {p.stat().st_size} bytes; the limit is "
                                f"{limits.max_member_bytes}", str(p))
    seen: dict[str, str] = {}
    for number, raw in _read_lines(p, limits):
        where = f"{p.name}:{number}"
        if not raw.strip():
            continue
        try:
            obj = safe_json_loads(raw, limits=limits, max_bytes=limits.max_line_bytes, where=where)
        except JSONSyntaxError as exc:
            report.problems.append(Problem("bad_line", None, where, exc.reason))
            continue
        pred = _parse_record(harness_line(obj), where, report)  # an lmms-eval log line holds one (docs/harness.md)
        if pred is None:
            continue
        if pred.id in seen:
            report.problems.append(Problem("duplicate_id", pred.id, where, f"first at {seen[pred.id]}"))
            continue
        seen[pred.id] = where
        report.predictions[pred.id] = pred
        report.lines[pred.id] = where
    return report


def _parse_record(obj: Any, where: str, report: ValidationReport) -> Prediction | None:
    """The evaluator's line validation, with its errors recorded as problems instead of raised."""
    sid = obj.get("id") if isinstance(obj, dict) else None
    sid = sid if isinstance(sid, str) and sid else None
    if sid is not None and len(sid) > _MAX_ID:
        report.problems.append(Problem("bad_line", None, where, f"'id' must be at most {_MAX_ID} characters"))
        return None
    try:
        return prediction_from_json(obj, where)
    except InvalidMaskError as exc:
        kind, reason = "invalid_rle", exc.reason
    except InvalidInputError as exc:
        bad_status = isinstance(obj, dict) and obj.get("status", "ok") not in STATUSES
        kind, reason = ("bad_status" if bad_status else "bad_line"), exc.reason
    report.problems.append(Problem(kind, sid, where, reason))
    return None


def validate_predictions(path: str | os.PathLike[str], manifest: Manifest,
                         limits: Limits = DEFAULT_LIMITS) -> ValidationReport:
    """Read ``path`` and check it against ``manifest``; returns the report (call ``raise_for_problems``)."""
    report = read_prediction_lines(path, limits=limits)
    report.against = f"{manifest.data}:{manifest.split}"
    where_of = {p.id: p.where for p in report.problems if p.id is not None}
    unknown = 0
    for sid, pred in report.predictions.items():
        expected = manifest.sizes.get(sid)
        if expected is None:
            unknown += 1
            report.problems.append(Problem("unknown_id", sid, report.lines[sid], ""))
        elif pred.mask is not None and tuple(pred.mask["size"]) != tuple(expected):
            report.problems.append(Problem("size_mismatch", sid, report.lines[sid],
                                           f"mask is {pred.mask['size'][0]}x{pred.mask['size'][1]}, image is "
                                           f"{expected[0]}x{expected[1]}"))
    for sid in manifest.ids:
        if sid not in report.predictions and sid not in where_of:
            report.problems.append(Problem("missing_id", sid, "", ""))
    if not report.predictions and not any(p.kind == "bad_line" for p in report.problems):
        report.hints.append(f"no prediction was read from {Path(path).name}: is it empty?")
    if unknown and unknown == len(report.predictions):
        example = f" (e.g. {manifest.ids[0]!r} is)" if manifest.ids else ""
        report.hints.append(f"none of the {unknown} predicted ids is in {report.against}{example}: are these "
                            "predictions for another split or data source? Check --data / --split (or --manifest).")
    return report


# --- metadata --------------------------------------------------------------------------------

_SCALE = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


def parse_parameter_count(text: str) -> int:
    """``"7B"`` -> 7_000_000_000, ``"700M"``, ``"8.3b"``, ``"7e9"``, ``"7000000000"``."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([kmbgt]?)\s*", text.strip().lower())
    if not match:
        raise InvalidInputError(f"parameter count {text!r} is not a number like 7B, 700M or 7000000000")
    value = float(match.group(1)) * _SCALE[match.group(2)]
    if not 0 <= value <= 10**15:
        raise InvalidInputError(f"parameter count {text!r} is out of range")
    if round(value) < 1:  # "0B", "0.1": a model has parameters; 0 would sort first as the smallest model
        raise InvalidInputError(f"parameter count {text!r} is not a positive number of parameters "
                                "(e.g. 7B, 700M); leave --meta params out when it is unknown")
    return int(round(value))


def _scalar(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none", ""):
        return None
    if re.fullmatch(r"[+-]?[0-9]{1,15}", low):
        return int(low)
    if re.fullmatch(r"[+-]?[0-9]*\.[0-9]+(e[+-]?[0-9]+)?|[+-]?[0-9]+e[+-]?[0-9]+", low):
        return float(low)
    return text


def parse_meta(items: list[str] | None) -> dict[str, Any]:
    """Turn ``--meta KEY=VALUE`` options into submission fields.

    ``base_model``, ``parameter_count`` (or ``params``), ``tts`` (a method name, or ``none``: no
    test-time scaling) and ``tts.KEY`` (settings such as ``tts.n=32``) fill their fields; any other
    key goes to ``meta``.
    """
    out: dict[str, Any] = {"meta": {}}
    tts: dict[str, Any] = {}
    no_tts = False
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError(f"--meta {item!r} must be KEY=VALUE")
        if key == "base_model":
            out["base_model"] = None if value.strip().lower() in ("", "none", "null") else value.strip()
        elif key in ("parameter_count", "params"):
            out["parameter_count"] = parse_parameter_count(value)
        elif key == "tts":
            if value.strip().lower() in ("", "none", "null"):
                no_tts = True
            else:
                tts["method"] = value.strip()
        elif key.startswith("tts."):
            tts[key[4:]] = _scalar(value)
        else:
            out["meta"][key] = _scalar(value)
    if no_tts and tts:
        raise InvalidInputError("--meta tts=none contradicts the tts.* settings given with it")
    if tts or no_tts:
        out["tts"] = tts or None
    return out


# --- building --------------------------------------------------------------------------------


def _canonical_predictions(report: ValidationReport, manifest: Manifest) -> bytes:
    """The predictions in manifest order, one canonical JSON line each (stable bytes and checksum)."""
    lines = [json.dumps(prediction_to_json(report.predictions[sid]), ensure_ascii=False, separators=(",", ":"),
                        sort_keys=False) for sid in manifest.ids]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def build_submission(predictions: str | os.PathLike[str], manifest: Manifest, *, model_name: str,
                     out: str | os.PathLike[str], protocol: str = "star", meta: dict[str, Any] | None = None,
                     limits: Limits = DEFAULT_LIMITS) -> tuple[Path, SubmissionInfo]:
    """Validate ``predictions`` against ``manifest`` and write the bundle to ``out``.

    ``out`` ending in ``.tar.gz``/``.tgz`` gives an archive, anything else a folder. ``meta`` is
    what :func:`parse_meta` returns. Raises :class:`SubmissionError` listing the offending ids.
    """
    import hashlib

    from reasonseg_x._version import __version__

    if not model_name or not model_name.strip():
        raise InvalidInputError("--model-name must not be empty")
    check_bundle_target(out)
    fields = dict(meta or {})

    def describe(sha256: str, size: int, counts: dict[str, int]) -> SubmissionInfo:
        return SubmissionInfo(
            model_name=model_name.strip(), protocol=protocol, toolkit_version=__version__,
            dataset=DatasetRef(data=manifest.data, split=manifest.split, fingerprint=manifest.fingerprint,
                               n=len(manifest)),
            predictions_sha256=sha256, predictions_bytes=size, base_model=fields.get("base_model"),
            parameter_count=fields.get("parameter_count"), tts=fields.get("tts"), counts=counts,
            created=datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            meta=fields.get("meta", {}))

    # the author's bundle must pass the host's own schema check: test the metadata before the work
    try:
        SubmissionInfo.from_json(describe("0" * 64, 0, {}).to_json())
    except UnsafeBundleError as exc:
        raise InvalidInputError(exc.reason, "--model-name / --meta") from None
    report = validate_predictions(predictions, manifest, limits=limits)
    report.raise_for_problems()
    body = _canonical_predictions(report, manifest)
    info = describe(hashlib.sha256(body).hexdigest(), len(body), report.counts())
    writer = write_bundle_archive if is_archive_path(out) else write_bundle_dir
    return writer(body, info, out), info

