"""The predictions file: one JSON object per sample, the contract between runners, scorers
and the leaderboard.

``{"id": str, "mask": RLE | null, "status": "ok" | "no_target" | "parse_error" | "error",
"raw_text": str (optional), "meta": object (optional)}``

A ``mask`` of ``null`` with status ``ok`` is an empty prediction; ``no_target`` means the model
said nothing matches; ``parse_error`` / ``error`` are failures the protocol scores as such. The
status decides: a mask on a ``no_target`` or failed line is kept for inspection but not scored.

The reader trusts nothing: every problem (malformed JSON, NaN, wrong types, RLE whose runs do not
sum to ``h * w``, absurd sizes, conflicting duplicates) raises :class:`InvalidInputError` naming
``file:line``, or, under ``skip_invalid``, is recorded in :attr:`PredictionSet.problems` and the
sample (when its id is readable) is scored as a failure counted ``invalid``. Nothing is dropped
silently. Also reads a folder of PNG masks named ``<id>.png`` (nonzero = foreground), and the
per-sample log of lmms-eval (``--log_samples``) written by our tasks (``reasonseg_x/tasks/``): each of
its lines holds a predictions line under :data:`HARNESS_KEY`, read as if it stood alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import loads_user_json, require_file_or_folder, require_regular_file
from reasonseg_x.masks import MAX_SIDE, RLE, validate_rle

__all__ = [
    "STATUSES",
    "FAILURE_STATUSES",
    "Prediction",
    "PredictionProblem",
    "PredictionSet",
    "prediction_to_json",
    "prediction_from_json",
    "iter_prediction_lines",
    "read_predictions",
    "read_png_folder",
    "HARNESS_KEY",
    "harness_line",
    "harness_origin",
]

STATUSES = ("ok", "no_target", "parse_error", "error")
FAILURE_STATUSES = ("parse_error", "error")
#: the predictions file inside a run folder written by ``reasonseg-x eval``
RUN_PREDICTIONS = "predictions.jsonl"
#: the key of an lmms-eval per-sample log line (our tasks' ``process_results``) holding a predictions line
HARNESS_KEY = "predictions"


def harness_line(obj: Any) -> Any:
    """The predictions line inside an lmms-eval per-sample log line, else ``obj`` unchanged."""
    if isinstance(obj, dict) and "doc_id" in obj and isinstance(obj.get(HARNESS_KEY), dict):
        return obj[HARNESS_KEY]
    return obj


def harness_origin(path: str | Path) -> dict[str, str] | None:
    """``{"data", "split", "protocol", "format"}`` recorded by our lmms-eval tasks in the first line of
    their per-sample log (so ``score -p LOG.jsonl`` needs no ``--data`` and ``submit`` knows the answer
    format); None for any other file."""
    p = Path(path)
    if not p.is_file():
        return None
    for _, text in iter_prediction_lines(p, allow_torn_tail=True):
        try:
            obj = _loads(text or "")
        except (ValueError, RecursionError):
            return None
        line = harness_line(obj)
        meta = line.get("meta") if line is not obj and isinstance(line, dict) else None
        if not isinstance(meta, dict):
            return None
        return {k: meta[k] for k in ("data", "split", "protocol", "format") if isinstance(meta.get(k), str)}
    return None


@dataclass(frozen=True)
class Prediction:
    id: str
    mask: RLE | None
    status: str = "ok"
    raw_text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictionProblem:
    """A line (or file) that could not be used: where, why, and the sample id when readable."""

    where: str
    reason: str
    id: str | None = None
    kind: str = "invalid"  # invalid | duplicate_conflict | torn_tail | unknown_id


def prediction_to_json(pred: Prediction) -> dict[str, Any]:
    """The JSON object of one predictions line (keys in a stable order).

    Raises :class:`InvalidInputError` for an unknown status or a mask that is not a valid RLE,
    so a runner can never write a line the scorer would reject.
    """
    if pred.status not in STATUSES:
        raise InvalidInputError(f"unknown status {pred.status!r}; expected one of {', '.join(STATUSES)}",
                                f"prediction {pred.id!r}")
    if not isinstance(pred.id, str) or not pred.id:
        raise InvalidInputError(f"prediction id must be a non-empty string, got {pred.id!r}")
    mask = None if pred.mask is None else validate_rle(pred.mask, where=f"prediction {pred.id!r}")
    obj: dict[str, Any] = {"id": pred.id, "mask": mask, "status": pred.status}
    if pred.raw_text is not None:
        obj["raw_text"] = pred.raw_text
    if pred.meta:
        obj["meta"] = pred.meta
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object with a repeated key (two ``mask`` fields, two ``id`` fields) is ambiguous: json would
    silently keep the last one."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {repeated!r} appears twice in one object")
    return obj


def _loads(text: str) -> Any:
    return loads_user_json(text, None, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)


def _has_non_finite(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v, depth + 1) for v in value)
    return False


def prediction_from_json(obj: Any, where: str) -> Prediction:
    """Validate one parsed predictions object; raises :class:`InvalidInputError` naming ``where``."""
    if not isinstance(obj, dict):
        raise InvalidInputError(f"expected a JSON object, got {type(obj).__name__}", where)
    sample_id = obj.get("id")
    if not isinstance(sample_id, str) or not sample_id:
        raise InvalidInputError(f"'id' must be a non-empty string, got {sample_id!r}", where)
    status = obj.get("status", "ok")
    if status not in STATUSES:
        raise InvalidInputError(f"id {sample_id!r}: unknown status {status!r}; expected one of {', '.join(STATUSES)}",
                                where)
    if "mask" not in obj:
        raise InvalidInputError(f"id {sample_id!r}: missing 'mask' (use null for no mask)", where)
    raw_mask = obj["mask"]
    mask = None
    if raw_mask is not None:
        mask = validate_rle(raw_mask, where=f"{where} (id {sample_id!r})")
    raw_text = obj.get("raw_text")
    if raw_text is not None and not isinstance(raw_text, str):
        raise InvalidInputError(f"id {sample_id!r}: 'raw_text' must be a string", where)
    meta = obj.get("meta")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise InvalidInputError(f"id {sample_id!r}: 'meta' must be an object", where)
    if _has_non_finite(meta):
        raise InvalidInputError(f"id {sample_id!r}: 'meta' holds NaN or infinity", where)
    return Prediction(id=sample_id, mask=mask, status=status, raw_text=raw_text, meta=meta)


#: longest predictions line read (a mask's RLE is kilobytes; an endless line is no predictions file)
MAX_LINE_BYTES = 64 << 20


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(line_number, bytes without the newline, terminated)`` for each line, read as a stream.

    At most :data:`MAX_LINE_BYTES` of one line are ever held: a longer line raises naming it.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InvalidInputError(f"cannot read predictions: {exc.strerror or exc}", str(path)) from None
    with handle:
        number = 0
        while True:
            try:
                raw = handle.readline(MAX_LINE_BYTES + 1)
            except OSError as exc:
                raise InvalidInputError(f"cannot read predictions: {exc.strerror or exc}", str(path)) from None
            if not raw:
                return
            number += 1
            terminated = raw.endswith(b"\n")
            if not terminated and len(raw) > MAX_LINE_BYTES:
                raise InvalidInputError(f"line longer than {MAX_LINE_BYTES:,} bytes: not a predictions file "
                                        "(one line holds one sample's mask, a few kilobytes)", f"{path}:{number}")
            yield number, raw[:-1] if terminated else raw, terminated


def iter_prediction_lines(path: str | Path, *, allow_torn_tail: bool = False) -> Iterator[tuple[int, str | None]]:
    """Yield ``(line_number, text)`` for each non-blank line of a JSONL file, read as a stream.

    A line that is not UTF-8 yields ``text=None`` (the caller reports it). With
    ``allow_torn_tail`` an unterminated last line (a writer killed mid-line) is yielded with
    line number ``-n`` so the caller can ignore it visibly; otherwise it is read like any line.
    """
    for number, raw, terminated in _raw_lines(Path(path)):
        if not raw.strip():
            continue
        try:
            text: str | None = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r")
        except UnicodeDecodeError:
            text = None
        yield (-number if allow_torn_tail and not terminated else number), text


class PredictionSet:
    """The predictions of one run, keyed by sample id, with every problem met while reading.

    ``by_id``: valid predictions. ``invalid_ids``: ids whose line was bad (scored as failures
    under ``skip_invalid``). ``problems``: what was wrong, where. ``counts``: ``lines``,
    ``duplicate`` (identical repeated lines, harmless), ``invalid`` (bad lines), ``torn_tail``.
    ``where``: ``file:line`` of each id, for error messages naming the line.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.by_id: dict[str, Prediction] = {}
        self.invalid_ids: set[str] = set()
        self.problems: list[PredictionProblem] = []
        self.counts: dict[str, int] = {"lines": 0, "duplicate": 0, "invalid": 0, "torn_tail": 0}
        self.where: dict[str, str] = {}
        #: byte length of the complete lines (a resuming writer truncates a torn tail to this)
        self.valid_bytes: int | None = None
        self._raw: dict[str, Any] = {}

    @classmethod
    def from_predictions(cls, predictions: Mapping[str, Prediction] | Any, name: str = "<memory>") -> PredictionSet:
        """Wrap in-memory predictions (a mapping id->Prediction or an iterable); duplicates raise."""
        out = cls(name)
        items = predictions.values() if isinstance(predictions, Mapping) else predictions
        for number, pred in enumerate(items, start=1):
            where = f"{name}[{number}]"
            if pred.id in out.by_id:
                if out.by_id[pred.id] == pred:
                    out.counts["duplicate"] += 1
                    continue
                raise InvalidInputError(f"duplicate id {pred.id!r} with a different prediction", where)
            out.by_id[pred.id] = pred
            out.where[pred.id] = where
            out.counts["lines"] += 1
        return out

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self.by_id

    def get(self, sample_id: str) -> Prediction | None:
        return self.by_id.get(sample_id)

    def location(self, sample_id: str) -> str:
        return self.where.get(sample_id, self.path or "<predictions>")

    # -- filling, shared by the readers --------------------------------------------------------

    def _fail(self, problem: PredictionProblem, skip_invalid: bool) -> None:
        if not skip_invalid:
            raise InvalidInputError(problem.reason, problem.where)
        self.problems.append(problem)
        self.counts["invalid"] += 1
        if problem.id is not None:
            self.invalid_ids.add(problem.id)
            self.by_id.pop(problem.id, None)

    def _add(self, obj: Any, where: str, skip_invalid: bool) -> None:
        self.counts["lines"] += 1
        obj = harness_line(obj)
        readable_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) and obj.get("id") else None
        try:
            pred = prediction_from_json(obj, where)
        except InvalidInputError as exc:
            self._fail(PredictionProblem(exc.where or where, exc.reason, readable_id), skip_invalid)
            return
        if pred.id in self.invalid_ids:
            self._fail(PredictionProblem(where, f"id {pred.id!r} repeats an invalid line", pred.id), skip_invalid)
            return
        if pred.id in self.by_id:
            if self._raw[pred.id] == obj:
                self.counts["duplicate"] += 1
                return
            self._fail(PredictionProblem(
                where, f"duplicate id {pred.id!r} with a different prediction (first at {self.where[pred.id]})",
                pred.id, kind="duplicate_conflict"), skip_invalid)
            return
        self.by_id[pred.id] = pred
        self.where[pred.id] = where
        self._raw[pred.id] = obj


def _is_torn_last(path: Path, text: str) -> bool:
    """Whether ``text`` is the file's last line and the file does not end with a newline."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - len(text.encode("utf-8")) - 1))
            tail = fh.read()
    except OSError:
        return False
    return not tail.endswith(b"\n") and tail.rstrip(b"\r").endswith(text.encode("utf-8"))


def _complete_lines_bytes(path: Path) -> int:
    """Byte length of a file up to its last newline (what a resuming writer keeps of a torn file)."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        end = size
        while end > 0:
            start = max(0, end - (1 << 16))
            fh.seek(start)
            chunk = fh.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline != -1:
                return start + newline + 1
            end = start
    return 0


def _read_jsonl(path: Path, *, skip_invalid: bool, allow_torn_tail: bool) -> PredictionSet:
    out = PredictionSet(str(path))
    name = str(path)
    for number, text in iter_prediction_lines(path, allow_torn_tail=allow_torn_tail):
        if number < 0:
            out.counts["torn_tail"] += 1
            out.problems.append(PredictionProblem(f"{name}:{-number}", "unterminated last line ignored (torn write)",
                                                  kind="torn_tail"))
            continue
        where = f"{name}:{number}"
        if text is None:
            out.counts["lines"] += 1
            out._fail(PredictionProblem(where, "line is not valid UTF-8"), skip_invalid)
            continue
        try:
            obj = _loads(text)
        except (ValueError, RecursionError) as exc:
            out.counts["lines"] += 1
            torn = _is_torn_last(path, text)
            if torn:  # scored as an invalid line, and metrics.json says the file ends torn
                out.counts["torn_tail"] += 1
            hint = " (the unterminated last line of a writer that was killed?)" if torn else ""
            out._fail(PredictionProblem(where, f"malformed JSON: {exc}{hint}"), skip_invalid)
            continue
        out._add(obj, where, skip_invalid)
    out.valid_bytes = _complete_lines_bytes(path) if out.counts["torn_tail"] else path.stat().st_size
    out._raw.clear()
    return out


def _binary_png_mask(array: Any) -> tuple[Any, str]:
    """The foreground of a mask image, or ``(None, why)`` when it is not a binary mask.

    A pixel is foreground when any channel is nonzero; every foreground pixel must have the same
    value (0/1, 0/255, black/red, a palette index...). A probability map or a photo would
    otherwise be thresholded at > 0 without anyone noticing.
    """
    import numpy as np

    flat = array.reshape(array.shape[0], array.shape[1], -1).astype(np.uint64)
    packed = np.zeros(flat.shape[:2], dtype=np.uint64)
    for k in range(flat.shape[2]):
        packed = (packed << np.uint64(16)) | flat[:, :, k]
    foreground = packed != 0
    values = packed[foreground]
    if values.size and bool((values != values[0]).any()):
        return None, ("not a binary mask: its foreground pixels hold several values (a soft/probability map "
                      "or an image?); save 0 for background and one value (1 or 255) for the target")
    return foreground, ""


def read_png_folder(folder: str | Path, *, skip_invalid: bool = False) -> PredictionSet:
    """Read ``<id>.png`` masks as ``ok`` predictions: 0 is background, one other value (in any
    channel) the target; a mask with several foreground values is refused."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from reasonseg_x.masks import encode

    root = Path(folder)
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".png")
    if not files:
        raise InvalidInputError("no <id>.png mask files in the folder", str(root))
    out = PredictionSet(str(root))
    for path in files:
        out.counts["lines"] += 1
        sample_id = path.stem
        try:
            with Image.open(path) as img:
                if max(img.size) > MAX_SIDE:
                    raise ValueError(f"image size {img.size} is out of range (0..{MAX_SIDE})")
                img.load()
                array = np.asarray(img)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
            out._fail(PredictionProblem(str(path), f"unreadable PNG mask: {exc}", sample_id), skip_invalid)
            continue
        mask, reason = _binary_png_mask(array)
        if mask is None:
            out._fail(PredictionProblem(str(path), reason, sample_id), skip_invalid)
            continue
        out.by_id[sample_id] = Prediction(id=sample_id, mask=encode(mask), status="ok")
        out.where[sample_id] = str(path)
    out.valid_bytes = None
    return out


def read_predictions(path: str | Path, *, skip_invalid: bool = False, allow_torn_tail: bool = False) -> PredictionSet:
    """Read a predictions JSONL file, a folder of ``<id>.png`` masks, or a run folder holding
    ``predictions.jsonl``.

    Raises :class:`InvalidInputError` (``file:line``) for any bad line unless ``skip_invalid``;
    ``allow_torn_tail`` ignores (and reports) an unterminated last line.
    """
    p = require_file_or_folder(path, "the predictions file")
    if p.is_dir():
        if (p / RUN_PREDICTIONS).exists():  # a run folder of `reasonseg-x eval` (a FIFO there is refused below)
            p = p / RUN_PREDICTIONS
        elif (p / "metrics.json").is_file():
            raise InvalidInputError(f"this is a scored run folder without {RUN_PREDICTIONS}; pass a predictions "
                                    "JSONL file or a folder of <id>.png masks", str(p))
        else:
            return read_png_folder(p, skip_invalid=skip_invalid)
    if not p.exists():
        raise InvalidInputError("predictions file not found", str(p))
    require_regular_file(p, "the predictions file")
    return _read_jsonl(p, skip_invalid=skip_invalid, allow_torn_tail=allow_torn_tail)
