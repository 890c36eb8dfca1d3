"""`reasonseg-x score` and `reasonseg-x compare` end to end (with an in-memory source)."""

from __future__ import annotations

import json
import sys
import types

import pytest
from typer.testing import CliRunner

from _eval_helpers import make_case, predictions_for, write_jsonl
from reasonseg_x import masks
from reasonseg_x.cli import app
from reasonseg_x.predictions import Prediction

runner = CliRunner()


@pytest.fixture
def memory_data(monkeypatch):
    """Point `open_source` at an in-memory source, whatever the data layer's state."""
    source, arrays = make_case(30, seed=11, with_ignore=True)

    def open_source(spec, *, skip_invalid=False, open_taxonomy=False):
        source.spec = spec
        return source

    fake = types.ModuleType("reasonseg_x.data.resolve")
    fake.open_source = open_source
    monkeypatch.setitem(sys.modules, "reasonseg_x.data.resolve", fake)
    return source, arrays


def _score(tmp_path, name, preds, *extra):
    path = write_jsonl(tmp_path / f"{name}.jsonl", preds)
    out = tmp_path / name
    result = runner.invoke(app, ["score", "--data", "mem", "--predictions", str(path), "--out", str(out),
                                 "--bootstrap", "200", *extra])
    return result, out


def test_score_writes_run_and_prints_table(tmp_path, memory_data):
    _, arrays = memory_data
    result, out = _score(tmp_path, "a", predictions_for(arrays))
    assert result.exit_code == 0, result.output
    assert "Overall" in result.output and "C/MH" in result.output
    for name in ("metrics.json", "per_sample.jsonl", "report.md", "chart.png"):
        assert (out / name).is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["spec"] == "mem" and metrics["bootstrap"]["n_resamples"] == 200


def test_score_user_errors_are_one_line(tmp_path, memory_data):
    _, arrays = memory_data
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "s000", "mask": null}\n{nope\n')
    result = runner.invoke(app, ["score", "--data", "mem", "--predictions", str(bad), "--quiet"])
    assert result.exit_code == 2 and "bad.jsonl:2" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["score", "--data", "mem", "--predictions", str(bad), "--quiet", "--skip-invalid"])
    assert result.exit_code == 0
    result, _ = _score(tmp_path, "strict", predictions_for(arrays, drop=("s001",)), "--strict")
    assert result.exit_code == 2 and "strict" in result.output
    result = runner.invoke(app, ["score", "--data", "mem", "--predictions", str(bad), "--protocol", "zzz"])
    assert result.exit_code == 2 and "unknown protocol" in result.output


def test_compare_two_runs(tmp_path, memory_data):
    source, arrays = memory_data
    _, out_a = _score(tmp_path, "a", predictions_for(arrays))
    better = [Prediction(sid, masks.encode(target | ignore if ignore is not None else target))
              for sid, (target, ignore, _) in arrays.items()]
    _, out_b = _score(tmp_path, "b", better)
    report = tmp_path / "cmp.md"
    result = runner.invoke(app, ["compare", str(out_a), str(out_b), "--out", str(report), "--bootstrap", "300"])
    assert result.exit_code == 0, result.output
    assert f"wrote {report}" in result.output.replace("\n", "")  # says what it wrote, as score -o does
    text = report.read_text()
    assert "| Overall | 30 |" in text and "P/F function_purpose" in text
    as_json = tmp_path / "cmp.json"
    runner.invoke(app, ["compare", str(out_a), str(out_b), "--out", str(as_json), "--quiet"])
    cmp = json.loads(as_json.read_text())
    assert cmp["overall"]["delta_giou"] > 0 and cmp["overall"]["giou_b"] == pytest.approx(1.0)
    assert cmp["overall"]["p_giou"] < 0.05
    assert set(cmp["by_reasoning_type"]) == {"function_purpose", "commonsense", "comparative_relational",
                                             "compositional"}


def test_compare_refuses_different_data(tmp_path, memory_data):
    _, arrays = memory_data
    _, out_a = _score(tmp_path, "a", predictions_for(arrays))
    _, out_b = _score(tmp_path, "b", predictions_for(arrays))
    metrics = json.loads((out_b / "metrics.json").read_text())
    metrics["data"]["fingerprint"] = "sha256:other"
    (out_b / "metrics.json").write_text(json.dumps(metrics))
    result = runner.invoke(app, ["compare", str(out_a), str(out_b)])
    assert result.exit_code == 2 and "different data" in result.output
    result = runner.invoke(app, ["compare", str(out_a), str(tmp_path)])
    assert result.exit_code == 2 and "not a scored run folder" in result.output


def test_score_reference_outputs_without_data(tmp_path):
    run = tmp_path / "ref"
    run.mkdir()
    (run / "output_0.json").write_text(json.dumps(
        [{"image_id": "1", "ann_id": "1", "intersection": 1, "union": 2, "reasoning_type": "commonsense"}]))
    result = runner.invoke(app, ["score", "--predictions", str(run), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "only the star and visionreasoner" in " ".join(result.output.split())
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["overall"]["giou"] == 0.5
    (tmp_path / "x.jsonl").write_text('{"id": "a", "mask": null}\n')  # masks (not I/U): they need the data
    result = runner.invoke(app, ["score", "--predictions", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "--data" in result.output


def test_terminal_table_names_protocol_groups_and_problems(tmp_path, memory_data):
    _, arrays = memory_data
    preds = [*predictions_for(arrays, drop=("s002",)), Prediction("ghost", None)]
    result, _ = _score(tmp_path, "t", preds, "--protocol", "segzero", "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "visionreasoner protocol" in result.output  # not eaten as rich markup
    assert "long query" in result.output and "short query" in result.output
    assert "1 problem(s)" in result.output and "unknown id 'ghost'" in result.output


def test_compare_shows_both_runs_and_their_failures(tmp_path, memory_data):
    _, arrays = memory_data
    _, out_a = _score(tmp_path, "a", predictions_for(arrays, drop=("s001", "s004")))
    _, out_b = _score(tmp_path, "b", predictions_for(arrays))
    result = runner.invoke(app, ["compare", str(out_a), str(out_b), "--bootstrap", "100"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "gIoU A -> B" in result.output and "cIoU A -> B" in result.output and "…" not in result.output
    assert "A missing 2" in result.output and "B none" in result.output
