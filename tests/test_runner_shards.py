"""Shards cover the split disjointly; merge refuses every inconsistency and equals a single run."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _runner_helpers import FakeSource
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.runner.evaluate import EvalConfig, run_eval
from reasonseg_x.runner.merge import merge_runs
from reasonseg_x.runner.shards import Shard, parse_shard_dirname, select_shard

pytest.importorskip("reasonseg_x.evaluators.api")
HASH = "_runner_helpers:HashPredictor"


@settings(max_examples=80, deadline=None)
@given(ids=st.lists(st.text(min_size=1, max_size=6), unique=True, max_size=40), k=st.integers(1, 7))
def test_shards_are_disjoint_balanced_and_cover(ids, k):
    parts = [select_shard(ids, Shard(i, k)) for i in range(k)]
    flat = [x for p in parts for x in p]
    assert sorted(flat) == sorted(ids) and len(flat) == len(set(flat))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    for p in parts:  # the input order is kept inside a shard
        assert p == [x for x in ids if x in set(p)]
    shuffled = list(reversed(ids))  # the assignment depends on the ids only, not on their order
    assert [set(select_shard(shuffled, Shard(i, k))) for i in range(k)] == [set(p) for p in parts]


def test_shard_arguments_are_checked():
    with pytest.raises(InvalidInputError, match="--shard-id must be in 0..1"):
        Shard(2, 2)
    with pytest.raises(InvalidInputError, match="--num-shards must be >= 1"):
        Shard(0, 0)
    assert Shard(1, 3).dirname == "shard-1-of-3" and parse_shard_dirname("shard-1-of-3") == (1, 3)
    assert parse_shard_dirname("shard-x-of-3") is None


def _shards(tmp_path, k=3, n=20, **kw):
    for i in range(k):
        run_eval(EvalConfig(model=HASH, out=tmp_path / "run", num_shards=k, shard_id=i, batch_size=4, **kw),
                 source=FakeSource(n))
    return [tmp_path / "run" / Shard(i, k).dirname for i in range(k)]


def test_merged_shards_equal_a_single_run(tmp_path):
    single = run_eval(EvalConfig(model=HASH, out=tmp_path / "single"), source=FakeSource(20))
    dirs = _shards(tmp_path)
    shard_metrics = json.loads((dirs[0] / "metrics.json").read_text())
    assert shard_metrics["overall"]["n"] == 7 and shard_metrics["counts"]["missing"] == 0
    merged = merge_runs(dirs, tmp_path / "merged", source=FakeSource(20))
    for key in ("overall", "by_reasoning_type", "by_query_kind", "counts", "data"):
        assert merged.result.metrics[key] == single.result.metrics[key], key
    single_lines = (tmp_path / "single" / "predictions.jsonl").read_text()
    assert (tmp_path / "merged" / "predictions.jsonl").read_text() == single_lines  # same order, same bytes
    info = json.loads((tmp_path / "merged" / "run.json").read_text())
    assert info["kind"] == "merged" and len(info["parts"]) == 3 and info["identity"]["num_shards"] == 1
    # a parent folder stands for its shards; merging again into it is idempotent
    again = merge_runs([tmp_path / "run"], tmp_path / "run", source=FakeSource(20))
    assert again.result.metrics["overall"] == single.result.metrics["overall"]
    again = merge_runs([tmp_path / "run"], tmp_path / "run", source=FakeSource(20))
    assert len(again.parts) == 3


def test_merge_with_limit(tmp_path):
    single = run_eval(EvalConfig(model=HASH, out=tmp_path / "single", limit=11), source=FakeSource(20))
    dirs = _shards(tmp_path, k=2, limit=11)
    merged = merge_runs(dirs, tmp_path / "merged", source=FakeSource(20))
    assert merged.result.metrics["overall"] == single.result.metrics["overall"]
    assert merged.result.metrics["overall"]["n"] == 11


def test_merge_refuses_an_incomplete_shard_naming_the_missing_count(tmp_path):
    dirs = _shards(tmp_path)
    path = dirs[1] / "predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]))  # as if shard 1 crashed after 3 of its 7 samples
    with pytest.raises(InvalidInputError, match=r"4 of 20 ids are missing.*shard-1-of-3 \(3/7"):
        merge_runs(dirs, tmp_path / "merged", source=FakeSource(20))


def test_merge_refuses_missing_or_repeated_shards(tmp_path):
    dirs = _shards(tmp_path)
    with pytest.raises(InvalidInputError, match=r"1 of 3 shards are missing: \S*run/shard-2-of-3 \(given: "
                                                r".*shard-0-of-3, .*shard-1-of-3\)\. Run them \(eval \.\.\. "
                                                r"--num-shards 3 --shard-id 2\)"):
        merge_runs(dirs[:2], tmp_path / "m", source=FakeSource(20))
    with pytest.raises(InvalidInputError, match="given twice"):
        merge_runs([dirs[0], dirs[0], dirs[1]], tmp_path / "m", source=FakeSource(20))
    copy = tmp_path / "copy0"
    shutil.copytree(dirs[0], copy)
    with pytest.raises(InvalidInputError, match="shard 0 of 3 is given twice"):
        merge_runs([dirs[0], copy, dirs[1], dirs[2]], tmp_path / "m", source=FakeSource(20))


def test_merge_refuses_shards_of_different_runs(tmp_path):
    dirs = _shards(tmp_path)
    other = tmp_path / "other"
    run_eval(EvalConfig(model="empty", out=other, num_shards=3, shard_id=2), source=FakeSource(20))
    with pytest.raises(InvalidInputError, match=r"not a shard of the same run.*model"):
        merge_runs(dirs[:2] + [other / "shard-2-of-3"], tmp_path / "m", source=FakeSource(20))
    with pytest.raises(InvalidInputError, match=r"shards ran on data 'fake:20:0' .* but 'fake:20:5' has fingerprint"):
        merge_runs(dirs, tmp_path / "m", source=FakeSource(20, seed=5))
    two = tmp_path / "two"
    run_eval(EvalConfig(model=HASH, out=two, num_shards=2, shard_id=0, batch_size=4), source=FakeSource(20))
    with pytest.raises(InvalidInputError, match="different shardings"):
        merge_runs(dirs + [two / "shard-0-of-2"], tmp_path / "m", source=FakeSource(20))


def test_merge_refuses_overlapping_ids(tmp_path):
    dirs = _shards(tmp_path)
    stolen = (dirs[0] / "predictions.jsonl").read_text().splitlines(keepends=True)[0]
    with (dirs[1] / "predictions.jsonl").open("a") as fh:
        fh.write(stolen)
    with pytest.raises(InvalidInputError, match=r"1 ids were predicted by two shards"):
        merge_runs(dirs, tmp_path / "m", source=FakeSource(20))


def test_merge_does_not_overwrite_a_different_run(tmp_path):
    dirs = _shards(tmp_path)
    run_eval(EvalConfig(model="empty", out=tmp_path / "busy"), source=FakeSource(20))
    with pytest.raises(InvalidInputError, match="different run.*--fresh"):
        merge_runs(dirs, tmp_path / "busy", source=FakeSource(20))
    merge_runs(dirs, tmp_path / "busy", source=FakeSource(20), fresh=True)


def test_merge_command(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from reasonseg_x.cli import app
    from reasonseg_x.runner import evaluate, merge

    dirs = _shards(tmp_path, k=2)
    monkeypatch.setattr(merge, "open_data", lambda spec, **_: FakeSource(20))
    result = CliRunner().invoke(app, ["merge", *map(str, dirs), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "merged 2 shards" in result.output and (tmp_path / "m" / "metrics.json").exists()
    result = CliRunner().invoke(app, ["merge", str(dirs[0]), "--out", str(tmp_path / "m2")])
    assert result.exit_code == 2 and "1 of 2 shards are missing" in result.output
    result = CliRunner().invoke(app, ["merge", str(tmp_path / "run")])  # no --out: into the shards' parent
    assert result.exit_code == 0, result.output
    assert f"merging into {tmp_path / 'run'}" in result.output and (tmp_path / "run" / "metrics.json").exists()
    result = CliRunner().invoke(app, ["merge", str(tmp_path / "m")])
    assert result.exit_code == 2 and "pass --out" in result.output
    (tmp_path / "afile").write_text("")
    result = CliRunner().invoke(app, ["merge", str(tmp_path / "run"), "-o", str(tmp_path / "afile")])
    assert result.exit_code == 2 and "is a file, not a folder" in result.output
    assert evaluate  # imported for symmetry with the eval tests


def test_merge_accepts_ids_left_out_on_purpose(tmp_path):
    """Ids a replayed file lacks (missing) and bad rows under --skip-invalid are not holes in coverage."""
    single = run_eval(EvalConfig(model=HASH, out=tmp_path / "full", limit=14), source=FakeSource(20))
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join((tmp_path / "full" / "predictions.jsonl").read_text().splitlines(True)[:14]))
    replay = f"predictions:{partial}"
    for i in range(2):
        run_eval(EvalConfig(model=replay, out=tmp_path / "run", num_shards=2, shard_id=i), source=FakeSource(20))
    merged = merge_runs([tmp_path / "run"], tmp_path / "m", source=FakeSource(20))
    assert merged.result.metrics["counts"]["missing"] == 6 and merged.result.metrics["overall"]["n"] == 20
    assert merged.run_info["not_written"]["declared_missing"] == [f"r{i:03d}" for i in range(14, 20)]
    assert single.result.metrics["overall"]["n"] == 14
