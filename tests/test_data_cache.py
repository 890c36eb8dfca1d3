"""The converted-ground-truth cache: keyed by content, atomic, safe with two processes."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pyarrow as pa

import _datahf_helpers as h
from reasonseg_x.data.cache import cache_dir, cached_table, file_digest


def _table(n: int) -> pa.Table:
    return pa.table({"x": list(range(n))})


def test_built_once_per_content_and_rebuilt_when_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "f.bin"
    data.write_bytes(b"one")
    calls = []

    def build():
        calls.append(1)
        return _table(3)

    assert cached_table(data, "t", 1, build).num_rows == 3
    assert cached_table(data, "t", 1, build).num_rows == 3 and len(calls) == 1
    copy = tmp_path / "copy.bin"  # same bytes elsewhere: same entry
    copy.write_bytes(b"one")
    cached_table(copy, "t", 1, build)
    assert len(calls) == 1
    data.write_bytes(b"two!")
    os.utime(data, ns=(1, 1))
    cached_table(data, "t", 1, build)
    assert len(calls) == 2
    cached_table(data, "t", 2, build)  # a new converter version is a new entry
    assert len(calls) == 3
    assert not list((tmp_path / "cache").rglob(".*.tmp-*"))


def test_a_damaged_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "f.bin"
    data.write_bytes(b"content")
    cached_table(data, "t", 1, lambda: _table(2))
    (entry,) = list((tmp_path / "cache").rglob("*.arrow"))
    entry.write_bytes(b"garbage")
    assert cached_table(data, "t", 1, lambda: _table(5)).num_rows == 5


def test_default_cache_dir_is_the_platform_user_cache(monkeypatch):
    monkeypatch.delenv("REASONSEG_X_CACHE", raising=False)
    assert "reasonseg-x" in str(cache_dir())


def test_digest_is_sha256_of_the_bytes(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "f.bin"
    data.write_bytes(b"x" * 100_000)
    assert file_digest(data) == hashlib.sha256(b"x" * 100_000).hexdigest() == file_digest(data)


def _fill(args: tuple[str, str, str]) -> list[str]:
    cache, path, _ = args
    os.environ["REASONSEG_X_CACHE"] = cache
    from reasonseg_x.data.hf import convert_ground_truth

    return convert_ground_truth(Path(path)).column("counts").to_pylist()


def test_two_processes_filling_the_cache_at_once(tmp_path):
    rows = h.make_rows(8)
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    path = tmp_path / "hub" / "data" / "test-00000-of-00001.parquet"
    cache = str(tmp_path / "cache")
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_fill, [(cache, str(path), "a"), (cache, str(path), "b")])
    expected = list(h.expected_counts(rows).values())
    assert results[0] == results[1] == expected
    entries = list(Path(cache).rglob("*.arrow"))
    assert len(entries) == 1 and not list(Path(cache).rglob(".*.tmp-*"))
    assert _fill((cache, str(path), "c")) == expected  # the entry reads back intact
