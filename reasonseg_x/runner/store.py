"""The append-only predictions file: the run's only state that costs GPU hours.

Each batch is written with one ``write`` and made durable with ``flush`` + ``fsync`` before the
runner moves on, so a kill at any moment loses at most the batch in flight. A kill inside a write
leaves a torn last line (no trailing newline, or unparseable); :meth:`PredictionStore.recover`
truncates it away before anything new is appended. Damage anywhere else is not guessed around.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reasonseg_x.atomic import fsync_dir, remove_stale_temporaries, write_text_atomic, writing
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import loads_user_json, require_regular_file
from reasonseg_x.predictions import Prediction, prediction_to_json

__all__ = ["PredictionStore", "StoredLines", "first_error", "holds_predictions", "read_stored_lines", "serialize", "write_text_atomic",
           "remove_stale_temporaries"]


def serialize(prediction: Prediction) -> str:
    """One predictions line (no newline): stable key order, no NaN, UTF-8 text kept as is."""
    return json.dumps(prediction_to_json(prediction), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@dataclass
class StoredLines:
    """The intact lines of a predictions file: id -> raw line, in file order."""

    path: Path
    lines: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    #: byte offset where the intact part ends (everything after is a torn tail)
    good_bytes: int = 0
    torn_bytes: int = 0

    @property
    def ids(self) -> list[str]:
        return list(self.lines)


def holds_predictions(path: str | os.PathLike[str]) -> bool:
    """Whether a predictions file has at least one complete line (a torn first line is nothing),
    without reading it all."""
    try:
        if not Path(path).is_file():  # absent, or a FIFO that would block: read_stored_lines says which
            return False
        with Path(path).open("rb") as handle:
            return b"\n" in handle.read(1 << 20) or handle.read(1) != b""
    except FileNotFoundError:
        return False


def read_stored_lines(path: str | os.PathLike[str]) -> StoredLines:
    """Parse a predictions file written by the runner, tolerating only a torn last line.

    A malformed line before the last, or an id written twice, raises :class:`InvalidInputError`
    naming the line: that file was not produced by a clean sequence of appends.
    """
    path = Path(path)
    out = StoredLines(path)
    if not path.exists():
        return out
    data = require_regular_file(path, "the predictions file").read_bytes()
    offset = 0
    line_no = 0
    total = len(data)
    while offset < total:
        end = data.find(b"\n", offset)
        line_no += 1
        terminated = end != -1
        stop = end if terminated else total
        raw = data[offset:stop]
        is_last = (stop + 1 >= total) if terminated else True
        parsed = _parse_line(raw)
        if parsed is None or not terminated:
            if is_last:
                out.torn_bytes = total - offset
                break
            if not raw.strip():
                raise InvalidInputError("blank line inside the predictions file", f"{path}:{line_no}")
            raise InvalidInputError("malformed predictions line (not a JSON object with a string 'id'); "
                                    "the file was edited or corrupted: fix it, or pass --fresh to start over",
                                    f"{path}:{line_no}")
        sample_id, status, text = parsed
        if sample_id in out.lines:
            raise InvalidInputError(f"id {sample_id!r} appears twice in the predictions file", f"{path}:{line_no}")
        out.lines[sample_id] = text
        out.statuses[sample_id] = status
        offset = stop + 1
        out.good_bytes = offset
    return out


def first_error(stored: StoredLines) -> str | None:
    """``id: message`` of the first sample recorded as ``error`` in a predictions file, or None."""
    for sample_id, status in stored.statuses.items():
        if status == "error":
            meta = loads_user_json(stored.lines[sample_id], None).get("meta")
            message = meta.get("error") if isinstance(meta, dict) else None
            return f"{sample_id}: {message or 'no message'}"
    return None


def _parse_line(raw: bytes) -> tuple[str, str, str] | None:
    try:
        text = raw.decode("utf-8")
        obj: Any = loads_user_json(text, None)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return None
    return obj["id"], str(obj.get("status", "ok")), text


class PredictionStore:
    """Append-only writer over ``predictions.jsonl`` with torn-tail recovery."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._handle: IO[bytes] | None = None

    def recover(self) -> StoredLines:
        """Read what survived and truncate a torn tail so the next append starts on a fresh line."""
        stored = read_stored_lines(self.path)
        if stored.torn_bytes:
            with writing(self.path), open(self.path, "r+b") as handle:
                handle.truncate(stored.good_bytes)
                handle.flush()
                os.fsync(handle.fileno())
        return stored

    def drop(self, stored: StoredLines, ids: set[str]) -> StoredLines:
        """Rewrite the file without ``ids`` (atomically: the old file stays whole until the swap)."""
        self.close()
        kept = {i: text for i, text in stored.lines.items() if i not in ids}
        write_text_atomic(self.path, "".join(text + "\n" for text in kept.values()))
        return read_stored_lines(self.path)

    def append(self, predictions: Sequence[Prediction]) -> None:
        """Write a batch in one call and make it durable before returning."""
        if not predictions:
            return
        payload = memoryview("".join(serialize(p) + "\n" for p in predictions).encode("utf-8"))
        with writing(self.path):
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "ab", buffering=0)  # unbuffered: a failed write leaves nothing
                fsync_dir(self.path.parent)                       # behind for close() to retry
            while payload:  # a raw write may be short (a size limit or a full disk ends it part-way)
                payload = payload[self._handle.write(payload):]
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.close()

    def __enter__(self) -> PredictionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
