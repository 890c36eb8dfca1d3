"""The evaluator's state: one small record per sample, mergeable across shards.

Every aggregate (gIoU, cIoU, precision, bootstrap intervals, N-acc/T-acc) is a function of these
records alone, so shards scored separately and merged give exactly the numbers of a single run.
Merging refuses overlapping ids: silently double-counting a re-run shard is one of the hazards
of the reference pipelines (docs/protocols.md section 3).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_x.atomic import atomic_path
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import loads_user_json

__all__ = ["RECORD_STATUSES", "SampleRecord", "RecordSet", "merge_records", "read_records", "write_records"]

#: prediction statuses plus the two the scorer adds (no line / a bad line)
RECORD_STATUSES = ("ok", "no_target", "parse_error", "error", "missing", "invalid")
FAILED = frozenset({"parse_error", "error", "missing", "invalid"})
#: boolean fields of a record, written as the ``flags`` list of per_sample.jsonl
_FLAGS = ("gt_empty", "pred_empty", "resized", "mask_ignored")


@dataclass(frozen=True)
class SampleRecord:
    """Scored sample: intersection ``I``, union ``U`` and ``iou`` under the protocol, the
    prediction ``status``, the sample's ``groups``, and flags: ``gt_empty`` (no target pixels),
    ``pred_empty`` (the prediction selects nothing), ``resized`` (mask resized on request),
    ``mask_ignored`` (a ``no_target`` or failed line carried a non-empty mask, not scored)."""

    id: str
    I: int
    U: int
    iou: float
    status: str
    groups: dict[str, str] = field(default_factory=dict)
    gt_empty: bool = False
    pred_empty: bool = False
    resized: bool = False
    mask_ignored: bool = False

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"id": self.id, "I": int(self.I), "U": int(self.U), "iou": float(self.iou),
                               "status": self.status, "groups": dict(self.groups)}
        flags = [name for name in _FLAGS if getattr(self, name)]
        if flags:
            obj["flags"] = flags
        return obj

    @classmethod
    def from_json(cls, obj: Any, where: str) -> SampleRecord:
        try:
            if not isinstance(obj, dict):
                raise TypeError("not an object")
            sample_id, i, u, iou, status = obj["id"], obj["I"], obj["U"], obj["iou"], obj["status"]
            groups = obj.get("groups") or {}
            flags = obj.get("flags") or []
            ok = (isinstance(sample_id, str) and isinstance(i, int) and isinstance(u, int) and not isinstance(i, bool)
                  and 0 <= i and (i <= u or u == 0) and isinstance(iou, (int, float)) and 0.0 <= float(iou) <= 1.0
                  and status in RECORD_STATUSES and isinstance(groups, dict)
                  and all(isinstance(k, str) and isinstance(v, str) for k, v in groups.items())
                  and isinstance(flags, list))
            if not ok:
                raise TypeError("bad field types or values")
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"not a per-sample record ({exc})", where) from None
        return cls(id=sample_id, I=i, U=u, iou=float(iou), status=status, groups=dict(groups),
                   **{name: name in flags for name in _FLAGS})


class RecordSet:
    """The per-sample records of one protocol, in source order, with column views for numpy."""

    def __init__(self, protocol: str, records: Iterable[SampleRecord] = ()) -> None:
        self.protocol = protocol
        self.records: list[SampleRecord] = list(records)
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[SampleRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> SampleRecord:
        return self.records[index]

    def canonical(self) -> RecordSet:
        """The same records sorted by id: every aggregate is computed in this order, so shards
        merged in any order give bit-identical numbers, bootstrap intervals included."""
        return RecordSet(self.protocol, sorted(self.records, key=lambda r: r.id))

    def append(self, record: SampleRecord) -> None:
        self.records.append(record)
        self._index = None

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {r.id: n for n, r in enumerate(self.records)}
        return self._index

    def columns(self) -> dict[str, np.ndarray]:
        """``I``, ``U`` (int64), ``iou`` (float64) and boolean flag columns."""
        n = len(self.records)
        return {
            "I": np.fromiter((r.I for r in self.records), dtype=np.int64, count=n),
            "U": np.fromiter((r.U for r in self.records), dtype=np.int64, count=n),
            "iou": np.fromiter((r.iou for r in self.records), dtype=np.float64, count=n),
            "gt_empty": np.fromiter((r.gt_empty for r in self.records), dtype=bool, count=n),
            "pred_empty": np.fromiter((r.pred_empty for r in self.records), dtype=bool, count=n),
            "failed": np.fromiter((r.failed for r in self.records), dtype=bool, count=n),
        }

    def statuses(self) -> list[str]:
        return [r.status for r in self.records]

    def group_labels(self, key: str) -> list[str | None]:
        return [r.groups.get(key) for r in self.records]


def merge_records(parts: Iterable[RecordSet | Iterable[SampleRecord]], *, protocol: str | None = None) -> RecordSet:
    """Concatenate record sets of disjoint samples; overlapping ids or mixed protocols raise."""
    merged: RecordSet | None = None
    seen: dict[str, int] = {}
    for part_no, part in enumerate(parts):
        part_protocol = part.protocol if isinstance(part, RecordSet) else None
        if merged is None:
            merged = RecordSet(protocol or part_protocol or "star")
        if part_protocol is not None and part_protocol != merged.protocol:
            raise InvalidInputError(
                f"cannot merge records of protocol {part_protocol!r} into {merged.protocol!r}", f"part {part_no}")
        for record in part:
            if record.id in seen:
                raise InvalidInputError(
                    f"sample {record.id!r} is in part {seen[record.id]} and part {part_no}: "
                    "shards overlap (a re-run or a duplicated shard?)", f"part {part_no}")
            seen[record.id] = part_no
            merged.records.append(record)
    return merged if merged is not None else RecordSet(protocol or "star")


def write_records(records: RecordSet, path: str | Path) -> None:
    """Write ``per_sample.jsonl``: one record per line, source order (atomically: never half a file)."""
    with atomic_path(path) as tmp, tmp.open("x", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")


def read_records(path: str | Path, protocol: str) -> RecordSet:
    """Read a ``per_sample.jsonl``; a bad line raises naming ``file:line``, duplicate ids too."""
    out = RecordSet(protocol)
    seen: set[str] = set()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read per-sample records: {exc}", str(p)) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{p}:{number}"
        try:
            obj = loads_user_json(line, None)
        except ValueError as exc:
            raise InvalidInputError(f"malformed JSON: {exc}", where) from None
        record = SampleRecord.from_json(obj, where)
        if record.id in seen:
            raise InvalidInputError(f"duplicate sample id {record.id!r}", where)
        seen.add(record.id)
        out.records.append(record)
    return out
