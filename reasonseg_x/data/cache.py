"""Cache of converted ground truth, keyed by the content hash of the source file.

Why: turning the published nested-bool ``mask`` column into RLE costs about a second per 300
masks (pyarrow's nested decoding); every later scoring of the same file should only read a few
kilobytes of RLE. Entries are Arrow IPC files named by the sha256 of the source file's bytes (plus
the converter's version), under ``$REASONSEG_X_CACHE`` (default: the platform's user cache dir).

Writes are atomic (temp file in the same folder, then ``os.replace``) and a file lock keeps two
processes from converting the same file twice; a reader never sees a half-written entry, and a
damaged entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from reasonseg_x.atomic import atomic_path, write_bytes_atomic
from reasonseg_x.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["cache_dir", "file_digest", "cached_table"]

_ENV = "REASONSEG_X_CACHE"
_CHUNK = 8 * 1024 * 1024


def cache_dir() -> Path:
    """The cache root: ``$REASONSEG_X_CACHE`` or the platform's user cache dir for reasonseg-x."""
    root = os.environ.get(_ENV)
    if root:
        return Path(root).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("reasonseg-x"))


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, read in chunks.

    The digest is remembered under the cache keyed by (real path, size, mtime_ns, inode), so a
    large parquet file is hashed once until it changes.
    """
    path = Path(path)
    try:
        st = path.stat()
        real = str(path.resolve())
    except OSError as exc:
        raise InvalidInputError(f"cannot read file: {exc.strerror or exc}", str(path)) from None
    stamp = f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
    memo = cache_dir() / "digests" / (hashlib.sha1(stamp.encode("utf-8")).hexdigest() + ".txt")
    try:
        known = memo.read_text(encoding="ascii").strip()
        if len(known) == 64:
            return known
    except (OSError, UnicodeDecodeError):
        pass
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise InvalidInputError(f"cannot read file: {exc.strerror or exc}", str(path)) from None
    hexdigest = digest.hexdigest()
    try:
        write_bytes_atomic(memo, hexdigest.encode("ascii"))
    except OSError:  # a read-only cache only costs speed
        pass
    return hexdigest


def _read_entry(path: Path, expected_key: str) -> pa.Table | None:
    import pyarrow as pa

    try:  # the mapping stays open as long as the table's buffers live
        table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    except (OSError, pa.ArrowInvalid):
        return None
    meta = table.schema.metadata or {}
    if meta.get(b"reasonseg_x_cache_key", b"").decode("utf-8", "replace") != expected_key:
        return None
    return table


def _write_entry(path: Path, table: pa.Table, key: str) -> None:
    import pyarrow as pa

    meta = dict(table.schema.metadata or {})
    meta[b"reasonseg_x_cache_key"] = key.encode("utf-8")
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def cached_table(source_file: str | Path, kind: str, version: int, build: Callable[[], pa.Table],
                 *, params: dict[str, object] | None = None) -> pa.Table:
    """Return ``build()`` for ``source_file``, computed once per file content and cached.

    ``kind`` and ``version`` name the conversion (bump the version when its output changes);
    ``params`` are extra inputs of the conversion that change its output. Two processes asking for
    the same entry at once convert it once: the second waits on a file lock and reads the result.
    When the cache folder is not writable the table is built and returned uncached.
    """
    from filelock import FileLock, Timeout

    digest = file_digest(source_file)
    key = json.dumps({"kind": kind, "version": version, "sha256": digest, "params": params or {}}, sort_keys=True)
    name = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    entry = cache_dir() / f"{kind}-v{version}" / name[:2] / f"{name}.arrow"
    if entry.is_file() and (table := _read_entry(entry, key)) is not None:
        return table
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(entry) + ".lock", timeout=600)
        lock.acquire()
    except (OSError, Timeout):
        return build()
    try:
        if entry.is_file() and (table := _read_entry(entry, key)) is not None:
            return table
        table = build()
        try:
            _write_entry(entry, table, key)
        except OSError:
            pass
        return table
    finally:
        lock.release()
