"""The one atomic-write recipe: old or new content, never a mix; temporaries cleaned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonseg_x.atomic import atomic_path, remove_stale_temporaries, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_text_bytes_and_json_replace_the_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    write_text_atomic(target, "old\n")
    write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    write_json_atomic(target, {"é": 1}, indent=None)
    assert target.read_text(encoding="utf-8") == '{"é": 1}\n' and json.loads(target.read_text())["é"] == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".run.json.tmp-123-abcd").write_text("{")
    (tmp_path / "keep.txt").write_text("x")
    assert remove_stale_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_atomic_folder_swaps_in_a_complete_folder_and_keeps_the_old_one_on_failure(tmp_path):
    from reasonseg_x.atomic import atomic_folder

    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as staging:
            assert staging.parent == tmp_path and staging != out
            (staging / "half.txt").write_text("half")
            raise RuntimeError("the load failed")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "old.txt").read_text() == "old"
    with atomic_folder(out) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in out.iterdir()] == ["new.txt"]
    with atomic_folder(tmp_path / "fresh") as staging:
        (staging / "a").write_text("a")
    assert (tmp_path / "fresh" / "a").read_text() == "a"
