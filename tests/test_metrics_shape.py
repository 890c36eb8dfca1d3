"""metrics.json keeps one shape: by_source even for one source, the count of ground-truth samples
without a target, and a torn last line recorded as torn_tail also under --skip-invalid."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from reasonseg_x.cli import app


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_single_source_metrics_have_by_source_and_the_no_target_count(tmp_path):
    assert _cli("eval", "-m", "oracle", "-q", "-o", tmp_path / "run").exit_code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(metrics["by_source"].values()) == [metrics["overall"]]  # one entry: mini's source label
    assert metrics["counts"]["gt_no_target"] == 5  # the mini split's 5 samples without a target
    keys = list(metrics)
    assert keys.index("by_query_kind") < keys.index("by_source") < keys.index("counts")


def test_a_torn_last_line_scored_with_skip_invalid_is_recorded_as_torn_tail(tmp_path):
    assert _cli("eval", "-m", "oracle", "-q", "-o", tmp_path / "run").exit_code == 0
    raw = (tmp_path / "run" / "predictions.jsonl").read_bytes()
    (tmp_path / "torn.jsonl").write_bytes(raw[:-40])
    done = _cli("score", "-p", tmp_path / "torn.jsonl", "-d", "mini", "--skip-invalid", "-q", "-o", tmp_path / "s")
    assert done.exit_code == 0, done.output
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["predictions"]["torn_tail"] == 1
    assert metrics["counts"]["missing"] == 1
