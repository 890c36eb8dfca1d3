"""A run folder that never got a prediction is not "a different run": the corrected command just runs."""

from __future__ import annotations

import json

import pytest

from _runner_helpers import FakeSource
from reasonseg_x.errors import InvalidInputError, ReasonSegXError
from reasonseg_x.runner.evaluate import EvalConfig, run_eval

HASH = "_runner_helpers:HashPredictor"


def test_a_run_that_failed_before_predicting_does_not_block_the_corrected_command(tmp_path):
    with pytest.raises(ReasonSegXError, match="not found"):
        run_eval(EvalConfig(model="predictions:" + str(tmp_path / "nosuch.jsonl"), out=tmp_path / "run"),
                 source=FakeSource(6))
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"
    outcome = run_eval(EvalConfig(model=HASH, out=tmp_path / "run", batch_size=4), source=FakeSource(6))
    assert outcome.stats.predicted == 6
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "complete" and info["identity"]["model"] == HASH


def test_a_run_killed_inside_its_first_line_resumes(tmp_path):
    """run.json and a torn first prediction line: nothing to mix, the same command runs (it once
    stopped with "has no run.json", though run.json was there)."""
    run_eval(EvalConfig(model=HASH, out=tmp_path, batch_size=4), source=FakeSource(6))
    (tmp_path / "predictions.jsonl").write_text('{"id": "x", "mask')
    outcome = run_eval(EvalConfig(model=HASH, out=tmp_path, batch_size=4), source=FakeSource(6))
    assert outcome.stats.predicted == 6
    assert len((tmp_path / "predictions.jsonl").read_text().splitlines()) == 6


def test_a_folder_holding_predictions_still_refuses_another_run(tmp_path):
    run_eval(EvalConfig(model=HASH, out=tmp_path, batch_size=4), source=FakeSource(6))
    with pytest.raises(InvalidInputError, match="different run.*--fresh"):
        run_eval(EvalConfig(model="empty", out=tmp_path), source=FakeSource(6))


class InterruptedPredictor:
    """Predicts one batch, then the user presses Ctrl-C."""

    def __init__(self) -> None:
        from _runner_helpers import HashPredictor

        self.inner, self.calls = HashPredictor(), 0

    def predict(self, queries):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return self.inner.predict(queries)


def test_an_interrupted_session_is_marked_interrupted_with_its_counts(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_eval(EvalConfig(model=f"{__name__}:InterruptedPredictor", out=tmp_path, batch_size=4),
                 source=FakeSource(12))
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert info["counts"] == {"expected": 12, "written": 4, "statuses": {"ok": 4}}


def test_ctrl_c_while_the_data_is_prepared_says_nothing_was_kept(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from reasonseg_x.cli import app
    from reasonseg_x.runner import evaluate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "open_data", interrupted)
    done = CliRunner().invoke(app, ["eval", "-m", "oracle", "-o", str(tmp_path / "run")])
    assert done.exit_code == 130
    assert "nothing was kept" in done.output and "kept in" not in done.output
    assert not (tmp_path / "run").exists()
