"""The leaderboard's store: SQLite through the standard library, schema in ``schema.sql``.

SQLite is the embedded default (one file, no server); the schema is plain SQL so a server database
could replace it. The database runs in WAL mode so the site can be rendered while a scorer writes,
and every change happens in one transaction. A bundle is keyed by its digest, so storing the same
bundle again returns the existing row instead of adding a duplicate.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.output_paths import prepare_file

__all__ = ["LeaderboardStore", "StoredEntry", "result_rows", "utc_now"]

SCHEMA_VERSION = 1


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _schema_sql() -> str:
    return resources.files("reasonseg_x.leaderboard").joinpath("schema.sql").read_text(encoding="utf-8")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _interval(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _number(value[0]), _number(value[1])
    if isinstance(value, dict):
        return _number(value.get("lo", value.get("low"))), _number(value.get("hi", value.get("high")))
    return None, None


def result_rows(metrics: dict[str, Any]) -> list[tuple[str, str, int, float | None, float | None,
                                                       float | None, float | None, float | None, float | None]]:
    """Flatten ``metrics.json`` into ``(group_key, group_value, n, giou, ciou, giou_lo, giou_hi, ciou_lo, ciou_hi)``.

    ``overall`` becomes ``("overall", "")``; every ``by_<key>`` mapping gives one row per group.
    """
    def row(key: str, value: str, m: dict[str, Any]):  # type: ignore[no-untyped-def]
        n = m.get("n")
        return (key, value, int(n) if isinstance(n, int) else 0, _number(m.get("giou")), _number(m.get("ciou")),
                *_interval(m.get("giou_ci")), *_interval(m.get("ciou_ci")))

    overall = metrics.get("overall")
    if not isinstance(overall, dict):
        raise InvalidInputError("metrics have no 'overall' block")
    rows = [row("overall", "", overall)]
    for name, groups in metrics.items():
        if name.startswith("by_") and isinstance(groups, dict):
            for value, m in groups.items():
                if isinstance(m, dict) and "giou" in m:
                    rows.append(row(name[3:], str(value), m))
    return rows


@dataclass(frozen=True)
class StoredEntry:
    """One verified leaderboard entry: a submission's latest evaluation and its per-group results."""

    submission_id: int
    evaluation_id: int
    bundle_sha256: str
    model_name: str
    base_model: str | None
    parameter_count: int | None
    tts: dict[str, Any] | None
    protocol: str
    gt_spec: str
    gt_split: str
    gt_fingerprint: str
    scored_at: str
    created: str | None
    counts: dict[str, int]
    results: dict[str, dict[str, dict[str, Any]]]  # group_key -> group_value -> {n, giou, ciou, *_lo, *_hi}
    #: the submission's free metadata (``answer_format``, ``zero_shot``, checkpoint...)
    meta: dict[str, Any] = field(default_factory=dict)


class LeaderboardStore:
    """A connection to the leaderboard database (created on first use)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = prepare_file(path, "the leaderboard database (--db)")
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise InvalidInputError(f"database schema version {version} is newer than this toolkit's "
                                        f"({SCHEMA_VERSION}); upgrade reasonseg-x", str(self.path))
            with self.transaction():
                for statement in _split_sql(_schema_sql()):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise InvalidInputError(f"not a usable leaderboard database: {exc}", str(self.path)) from None

    # -- plumbing --

    def transaction(self):  # type: ignore[no-untyped-def]
        """``with store.transaction():`` runs the block in one ``BEGIN IMMEDIATE`` transaction."""
        return _Transaction(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LeaderboardStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes --

    def add_submission(self, digest: str, submission: dict[str, Any], raw_json: str) -> tuple[int, bool]:
        """Insert a submission keyed by ``digest``; returns ``(id, created)`` (``False`` when already there)."""
        with self.transaction():
            row = self.conn.execute("SELECT id FROM submissions WHERE bundle_sha256 = ?", (digest,)).fetchone()
            if row is not None:
                return int(row["id"]), False
            ds = submission["dataset"]
            cur = self.conn.execute(
                "INSERT INTO submissions (bundle_sha256, model_name, base_model, parameter_count, tts_json, "
                "protocol_declared, toolkit_version, data_spec, data_split, data_fingerprint, predictions_sha256, "
                "submission_json, created, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (digest, submission["model_name"], submission.get("base_model"), submission.get("parameter_count"),
                 json.dumps(submission["tts"]) if submission.get("tts") is not None else None,
                 submission["protocol"], submission["toolkit_version"], ds["data"], ds["split"], ds["fingerprint"],
                 submission["files"]["predictions.jsonl"]["sha256"], raw_json, submission.get("created"), utc_now()))
            return int(cur.lastrowid), True

    def same_predictions(self, submission_id: int) -> list[tuple[int, str]]:
        """Other submissions carrying byte-identical predictions: ``(id, model_name)``, oldest first.

        The predictions are canonical (manifest order, one JSON form), so a copied file under
        another name or with other metadata is found here."""
        rows = self.conn.execute(
            "SELECT o.id, o.model_name FROM submissions s JOIN submissions o ON o.predictions_sha256 = "
            "s.predictions_sha256 AND o.id != s.id WHERE s.id = ? ORDER BY o.id", (submission_id,))
        return [(int(r["id"]), str(r["model_name"])) for r in rows]

    def find_submission(self, digest: str) -> int | None:
        row = self.conn.execute("SELECT id FROM submissions WHERE bundle_sha256 = ?", (digest,)).fetchone()
        return int(row["id"]) if row else None

    def find_evaluation(self, submission_id: int, gt_fingerprint: str, protocol: str) -> int | None:
        row = self.conn.execute("SELECT id FROM evaluations WHERE submission_id = ? AND gt_fingerprint = ? AND "
                                "protocol = ?", (submission_id, gt_fingerprint, protocol)).fetchone()
        return int(row["id"]) if row else None

    def add_evaluation(self, submission_id: int, *, gt_spec: str, gt_split: str, gt_fingerprint: str, protocol: str,
                       metrics: dict[str, Any], toolkit_version: str, replace: bool = False) -> tuple[int, bool]:
        """Store an evaluation and its per-group results in one transaction.

        Returns ``(id, created)``; an existing evaluation of the same (submission, ground truth,
        protocol) is kept as is unless ``replace``, which rewrites it under the same id.
        """
        rows = result_rows(metrics)
        counts = metrics.get("counts") if isinstance(metrics.get("counts"), dict) else {}
        with self.transaction():
            existing = self.find_evaluation(submission_id, gt_fingerprint, protocol)
            if existing is not None and not replace:
                return existing, False
            values = (gt_spec, gt_split, utc_now(), toolkit_version, json.dumps(counts, sort_keys=True),
                      json.dumps(metrics, sort_keys=True))
            if existing is None:
                cur = self.conn.execute(
                    "INSERT INTO evaluations (submission_id, gt_fingerprint, protocol, gt_spec, gt_split, scored_at, "
                    "toolkit_version, counts_json, metrics_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (submission_id, gt_fingerprint, protocol, *values))
                evaluation_id = int(cur.lastrowid)
            else:
                evaluation_id = existing
                self.conn.execute("UPDATE evaluations SET gt_spec = ?, gt_split = ?, scored_at = ?, "
                                  "toolkit_version = ?, counts_json = ?, metrics_json = ? WHERE id = ?",
                                  (*values, evaluation_id))
                self.conn.execute("DELETE FROM results WHERE evaluation_id = ?", (evaluation_id,))
            self.conn.executemany(
                "INSERT INTO results (evaluation_id, group_key, group_value, n, giou, ciou, giou_lo, giou_hi, "
                "ciou_lo, ciou_hi) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(evaluation_id, *r) for r in rows])
            return evaluation_id, existing is None

    def add_rejection(self, source_name: str, reason: str, file_sha256: str | None = None) -> int:
        with self.transaction():
            cur = self.conn.execute("INSERT INTO rejections (source_name, file_sha256, reason, rejected_at) "
                                    "VALUES (?, ?, ?, ?)", (source_name, file_sha256, reason[:2000], utc_now()))
            return int(cur.lastrowid)

    # -- reads --

    def count(self, table: str) -> int:
        if table not in ("submissions", "evaluations", "results", "rejections"):
            raise ValueError(table)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def rejections(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM rejections ORDER BY id")]

    def entries(self, *, protocol: str | None = None) -> list[StoredEntry]:
        """Every evaluation (one per submission, ground truth and protocol; optionally of one
        protocol only), oldest first, with its results."""
        query = ("SELECT s.id AS sid, s.bundle_sha256, s.model_name, s.base_model, s.parameter_count, s.tts_json, "
                 "s.created, s.submission_json, e.id AS eid, e.protocol, e.gt_spec, e.gt_split, e.gt_fingerprint, e.scored_at, "
                 "e.counts_json FROM evaluations e JOIN submissions s ON s.id = e.submission_id")
        params: tuple[Any, ...] = ()
        if protocol is not None:
            query += " WHERE e.protocol = ?"
            params = (protocol,)
        query += " ORDER BY e.id"
        out = []
        for row in self.conn.execute(query, params).fetchall():
            results: dict[str, dict[str, dict[str, Any]]] = {}
            for r in self.conn.execute("SELECT * FROM results WHERE evaluation_id = ? ORDER BY group_key, group_value",
                                       (row["eid"],)):
                results.setdefault(r["group_key"], {})[r["group_value"]] = {
                    k: r[k] for k in ("n", "giou", "ciou", "giou_lo", "giou_hi", "ciou_lo", "ciou_hi")}
            out.append(StoredEntry(
                submission_id=row["sid"], evaluation_id=row["eid"], bundle_sha256=row["bundle_sha256"],
                model_name=row["model_name"], base_model=row["base_model"], parameter_count=row["parameter_count"],
                tts=json.loads(row["tts_json"]) if row["tts_json"] else None, protocol=row["protocol"],
                gt_spec=row["gt_spec"], gt_split=row["gt_split"], gt_fingerprint=row["gt_fingerprint"],
                scored_at=row["scored_at"], created=row["created"], counts=json.loads(row["counts_json"]),
                results=results, meta=_submission_meta(row["submission_json"])))
        return out


def _submission_meta(raw: str | None) -> dict[str, Any]:
    """The ``meta`` object of a stored submission.json (validated flat when it was received)."""
    try:
        meta = json.loads(raw or "{}").get("meta")
    except (ValueError, AttributeError):
        return {}
    return dict(meta) if isinstance(meta, dict) else {}


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outer = False

    def __enter__(self) -> sqlite3.Connection:
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if not self.outer:
            return
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def _split_sql(script: str) -> list[str]:
    """Statements of the schema file (comments dropped; no semicolons inside statements)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
