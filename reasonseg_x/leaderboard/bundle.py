"""The submission bundle: ``predictions.jsonl`` plus ``submission.json``, as a folder or an archive.

``submission.json`` describes the model (name, base model, parameter count, test-time scaling),
the protocol, the toolkit version, the dataset fingerprint it was validated against, and the
sha256 of the predictions file. Its schema is strict (unknown keys and wrong types are refused)
because the host reads it from strangers. A bundle's identity (:func:`bundle_digest`) is the
sha256 of ``submission.json`` in canonical form without its ``created`` time; it pins the
predictions through their checksum. The same bundle sent as a folder, a ``.tar.gz`` or a ``.zip``,
sent twice, or written again by ``submit`` from the same predictions and metadata, is one submission.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonseg_x.atomic import atomic_path
from reasonseg_x.leaderboard.safety import (
    DEFAULT_LIMITS,
    Limits,
    UnsafeBundleError,
    archive_kind,
    check_bundle_dir,
    name_problem,
    read_bounded,
    safe_extract,
    safe_json_loads,
    text_problem,
)

__all__ = [
    "SUBMISSION_FILE",
    "PREDICTIONS_FILE",
    "SUBMISSION_FORMAT",
    "SubmissionInfo",
    "DatasetRef",
    "OpenedBundle",
    "sha256_file",
    "bundle_digest",
    "write_bundle_dir",
    "write_bundle_archive",
    "check_bundle_target",
    "open_bundle",
]

SUBMISSION_FILE = "submission.json"
PREDICTIONS_FILE = "predictions.jsonl"
SUBMISSION_FORMAT = "reasonseg-x-submission"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")

_MAX_TEXT = 1000
_MAX_NAME = 200
_MAX_META = 64
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PROTOCOL = re.compile(r"^[a-z0-9_\-]{1,32}$")
_SCALAR = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class DatasetRef:
    """Which ground truth a bundle was validated against."""

    data: str
    split: str
    fingerprint: str
    n: int


@dataclass(frozen=True)
class SubmissionInfo:
    """The content of ``submission.json``."""

    model_name: str
    protocol: str
    toolkit_version: str
    dataset: DatasetRef
    predictions_sha256: str
    predictions_bytes: int
    base_model: str | None = None
    parameter_count: int | None = None
    tts: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    created: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SUBMISSION_FORMAT,
            "format_version": 1,
            "model_name": self.model_name,
            "base_model": self.base_model,
            "parameter_count": self.parameter_count,
            "tts": self.tts,
            "protocol": self.protocol,
            "toolkit_version": self.toolkit_version,
            "dataset": {"data": self.dataset.data, "split": self.dataset.split,
                        "fingerprint": self.dataset.fingerprint, "n": self.dataset.n},
            "counts": dict(self.counts),
            "files": {PREDICTIONS_FILE: {"sha256": self.predictions_sha256, "bytes": self.predictions_bytes}},
            "created": self.created,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, obj: Any, *, where: str = SUBMISSION_FILE) -> SubmissionInfo:
        """Type-check an untrusted ``submission.json`` object; every violation names the field."""
        check = _Checker(where)
        check.kind(obj, dict, "the document")
        allowed = {"format", "format_version", "model_name", "base_model", "parameter_count", "tts", "protocol",
                   "toolkit_version", "dataset", "counts", "files", "created", "meta"}
        unknown = sorted(set(obj) - allowed)
        if unknown:
            check.fail(f"unknown field(s) {', '.join(map(repr, unknown[:5]))}")
        if obj.get("format") != SUBMISSION_FORMAT:
            check.fail(f"field 'format' must be {SUBMISSION_FORMAT!r}")
        if obj.get("format_version") != 1 or isinstance(obj.get("format_version"), bool):
            check.fail("field 'format_version' must be 1 (this toolkit reads version 1 bundles)")
        model_name = check.text(obj.get("model_name"), "model_name", _MAX_NAME, required=True, shown_as_name=True)
        if not model_name.strip():
            check.fail("field 'model_name' must not be blank")
        base_model = check.text(obj.get("base_model"), "base_model", _MAX_TEXT, shown_as_name=True)
        params = obj.get("parameter_count")
        if params is not None:
            check.integer(params, "parameter_count", 0, 10**15)
        tts = obj.get("tts")
        if tts is not None:
            check.flat_dict(tts, "tts")
        protocol = check.text(obj.get("protocol"), "protocol", 32, required=True)
        if not _PROTOCOL.match(protocol):
            check.fail("field 'protocol' must be a protocol name like 'star' (lower-case letters, digits, - or _)")
        version = check.text(obj.get("toolkit_version"), "toolkit_version", 64, required=True)
        dataset = obj.get("dataset")
        check.kind(dataset, dict, "dataset")
        ds = DatasetRef(data=check.text(dataset.get("data"), "dataset.data", _MAX_TEXT, required=True),
                        split=check.text(dataset.get("split"), "dataset.split", 64, required=True),
                        fingerprint=check.text(dataset.get("fingerprint"), "dataset.fingerprint", 128, required=True),
                        n=check.integer(dataset.get("n"), "dataset.n", 0, 10**8))
        counts = obj.get("counts", {})
        check.kind(counts, dict, "counts")
        for key, value in counts.items():
            check.text(key, "counts key", 32, required=True)
            check.integer(value, f"counts.{key}", 0, 10**8)
        files = obj.get("files")
        check.kind(files, dict, "files")
        if set(files) != {PREDICTIONS_FILE}:
            check.fail(f"field 'files' must list exactly {PREDICTIONS_FILE!r}")
        entry = files[PREDICTIONS_FILE]
        check.kind(entry, dict, f"files.{PREDICTIONS_FILE}")
        sha = check.text(entry.get("sha256"), f"files.{PREDICTIONS_FILE}.sha256", 64, required=True)
        if not _SHA256.match(sha):
            check.fail(f"field 'files.{PREDICTIONS_FILE}.sha256' must be 64 lower-case hex digits")
        size = check.integer(entry.get("bytes"), f"files.{PREDICTIONS_FILE}.bytes", 0, 2**40)
        created = check.text(obj.get("created", ""), "created", 64) or ""
        meta = obj.get("meta", {})
        check.flat_dict(meta, "meta")
        return cls(model_name=model_name, protocol=protocol, toolkit_version=version, dataset=ds,
                   predictions_sha256=sha, predictions_bytes=size, base_model=base_model,
                   parameter_count=params, tts=dict(tts) if tts is not None else None,
                   counts={str(k): int(v) for k, v in counts.items()}, created=created, meta=dict(meta))


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, message: str) -> None:
        raise UnsafeBundleError(message, self.where)

    def kind(self, value: Any, expected: type, name: str) -> None:
        if not isinstance(value, expected):
            self.fail(f"field {name!r} must be a {'JSON object' if expected is dict else expected.__name__}, "
                      f"got {type(value).__name__}")

    def text(self, value: Any, name: str, limit: int, *, required: bool = False, shown_as_name: bool = False) -> Any:
        """A string field; ``shown_as_name``: also refuse lookalike characters (:func:`name_problem`)."""
        if value is None and not required:
            return None
        if not isinstance(value, str):
            self.fail(f"field {name!r} must be a string, got {type(value).__name__}")
        if len(value) > limit:
            self.fail(f"field {name!r} is longer than {limit} characters")
        if any(ord(c) < 32 and c not in "\t" for c in value):
            self.fail(f"field {name!r} contains control characters")
        problem = (name_problem if shown_as_name else text_problem)(value)
        if problem:
            self.fail(f"field {name!r} {problem}")
        return value

    def integer(self, value: Any, name: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(f"field {name!r} must be an integer, got {type(value).__name__}")
        if not low <= value <= high:
            self.fail(f"field {name!r} = {value} is outside [{low}, {high}]")
        return value

    def flat_dict(self, value: Any, name: str) -> None:
        self.kind(value, dict, name)
        if len(value) > _MAX_META:
            self.fail(f"field {name!r} has more than {_MAX_META} entries")
        for key, item in value.items():
            self.text(key, f"{name} key", 64, required=True)
            if not isinstance(item, _SCALAR):
                self.fail(f"field '{name}.{key}' must be a string, number, boolean or null")
            if isinstance(item, str):
                self.text(item, f"{name}.{key}", _MAX_TEXT)


# --- writing -----------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_digest(submission: dict[str, Any]) -> str:
    """A bundle's identity: sha256 of the parsed ``submission.json`` (keys sorted, no whitespace),
    leaving out ``created`` so that re-running ``submit`` on the same predictions changes nothing."""
    import json

    body = {k: v for k, v in submission.items() if k != "created"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _submission_bytes(info: SubmissionInfo) -> bytes:
    import json

    return (json.dumps(info.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def check_bundle_target(out: str | os.PathLike[str]) -> None:
    """Refuse an output path a bundle cannot be written to, before any work is done.

    A folder must be absent or empty, an archive (``.tar.gz`` / ``.tgz``) absent; ``.tar`` and
    ``.zip`` are read by the host but not written, so the author's bundle is always compressed.
    """
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.output_paths import check_creatable

    path = Path(out)
    check_creatable(path, "the bundle output")
    if str(out).lower().endswith((".tar", ".zip")):
        raise InvalidInputError("write bundles as a folder or a .tar.gz (.tgz)", str(out))
    if is_archive_path(out):
        if path.exists():
            raise InvalidInputError("bundle output already exists; choose a new path", str(path))
    elif path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidInputError("bundle output exists and is not an empty folder; choose a new path", str(path))


def write_bundle_dir(predictions: bytes, info: SubmissionInfo, out: str | os.PathLike[str]) -> Path:
    """Write the bundle folder ``out`` (created; must be absent or empty)."""
    check_bundle_target(out)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    (root / PREDICTIONS_FILE).write_bytes(predictions)
    (root / SUBMISSION_FILE).write_bytes(_submission_bytes(info))
    return root


def write_bundle_archive(predictions: bytes, info: SubmissionInfo, out: str | os.PathLike[str]) -> Path:
    """Write the bundle as a reproducible ``.tar.gz`` (fixed mtimes, owner 0, files at the root)."""
    import gzip

    check_bundle_target(out)
    path = Path(out)
    with atomic_path(path) as tmp, open(tmp, "xb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in ((SUBMISSION_FILE, _submission_bytes(info)), (PREDICTIONS_FILE, predictions)):
            member = tarfile.TarInfo(name)
            member.size, member.mode, member.mtime = len(data), 0o644, 0
            archive.addfile(member, io.BytesIO(data))
    return path


def is_archive_path(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


# --- reading (untrusted) ---------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedBundle:
    """A bundle that passed the structural checks: safe files, valid ``submission.json``, checksum ok."""

    info: SubmissionInfo
    digest: str
    predictions_path: Path
    root: Path
    source: str


def _bundle_root(folder: Path, where: str) -> Path:
    """The folder holding ``submission.json``: the top level, or a single top-level folder."""
    if (folder / SUBMISSION_FILE).is_file():
        return folder
    children = [p for p in folder.iterdir()]
    if len(children) == 1 and children[0].is_dir() and not children[0].is_symlink() \
            and (children[0] / SUBMISSION_FILE).is_file():
        return children[0]
    raise UnsafeBundleError(f"bundle has no {SUBMISSION_FILE} at its top level", where)


def open_bundle(path: str | os.PathLike[str], workdir: str | os.PathLike[str],
                limits: Limits = DEFAULT_LIMITS) -> OpenedBundle:
    """Open an untrusted bundle (folder or archive) for scoring.

    Archives are extracted with :func:`safe_extract` into a fresh folder under ``workdir``; a
    folder is checked in place. ``submission.json`` is parsed with bounded JSON and the strict
    schema, and the predictions file must match its declared size and sha256.
    """
    src = Path(path)
    where = str(src)
    if src.is_symlink():
        raise UnsafeBundleError("bundle path is a link", where)
    if src.is_dir():
        check_bundle_dir(src, limits)
        folder = src
    elif src.is_file():
        if archive_kind(src) is None:
            raise UnsafeBundleError("bundle is neither a folder nor a tar/zip archive (a predictions file becomes "
                                    "a bundle with `reasonseg-x submit`)", where)
        folder = Path(workdir) / f"bundle-{hashlib.sha256(where.encode()).hexdigest()[:12]}"
        if folder.exists():
            shutil.rmtree(folder)
        safe_extract(src, folder, limits)
    else:
        raise UnsafeBundleError("bundle not found", where)
    root = _bundle_root(folder, where)
    sub_path = root / SUBMISSION_FILE
    raw = read_bounded(sub_path, limits.max_json_bytes, f"{where}: {SUBMISSION_FILE}")
    obj = safe_json_loads(raw, limits=limits, where=f"{where}: {SUBMISSION_FILE}")
    info = SubmissionInfo.from_json(obj, where=f"{where}: {SUBMISSION_FILE}")
    pred_path = root / PREDICTIONS_FILE
    if not pred_path.is_file() or pred_path.is_symlink():
        raise UnsafeBundleError(f"bundle has no {PREDICTIONS_FILE}", where)
    size = pred_path.stat().st_size
    if size > limits.max_member_bytes:
        raise UnsafeBundleError(f"{PREDICTIONS_FILE} is {size} bytes; the limit is {limits.max_member_bytes}", where)
    if size != info.predictions_bytes:
        raise UnsafeBundleError(f"{PREDICTIONS_FILE} is {size} bytes but {SUBMISSION_FILE} declares "
                                f"{info.predictions_bytes}", where)
    if sha256_file(pred_path) != info.predictions_sha256:
        raise UnsafeBundleError(f"{PREDICTIONS_FILE} does not match the sha256 in {SUBMISSION_FILE} "
                                "(bundle altered or corrupt)", where)
    return OpenedBundle(info=info, digest=bundle_digest(obj), predictions_path=pred_path, root=root, source=where)
