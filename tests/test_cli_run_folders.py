"""Commands that take a run folder use what its run.json records; `score -o` never writes over
another run's scores."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reasonseg_x.cli import app


def _cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, model, extra in (("oracle", "oracle", ["-n", "5"]), ("empty", "empty", ["-n", "5"]),
                               ("full", "oracle", [])):
        done = _cli("eval", "-m", model, "-d", "mini", "-q", "-o", root / name, *extra)
        assert done.exit_code == 0, done.output
    return root


def test_score_of_a_run_folder_needs_no_data_and_scores_the_samples_the_run_covered(runs, tmp_path):
    done = _cli("score", "-p", runs / "oracle", "-o", tmp_path / "rescored", "-q")
    assert done.exit_code == 0, done.output
    metrics = json.loads((tmp_path / "rescored" / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 5 and metrics["counts"]["missing"] == 0
    assert metrics["data"]["split"] == "test" and metrics["data"]["spec"].startswith("mini")


def test_an_explicit_flag_wins_with_a_warning_when_it_differs(runs):
    done = _cli("score", "-p", runs / "oracle", "--protocol", "lisa", "-q")
    assert done.exit_code == 0, done.output
    assert "warning: --protocol lisa differs from the star that" in done.output


def test_score_refuses_to_write_over_another_runs_folder(runs):
    before = (runs / "empty" / "metrics.json").read_bytes()
    done = _cli("score", "-p", runs / "oracle", "-o", runs / "empty", "-q")
    assert done.exit_code == 2 and "--overwrite" in done.output and "another run" in done.output
    assert (runs / "empty" / "metrics.json").read_bytes() == before
    assert _cli("score", "-p", runs / "empty", "-o", runs / "empty", "-q").exit_code == 0  # its own: rescoring


def test_score_refuses_a_folder_scored_from_other_predictions_unless_overwrite(runs, tmp_path):
    assert _cli("score", "-p", runs / "oracle", "-o", tmp_path / "s", "-q").exit_code == 0
    refused = _cli("score", "-p", runs / "empty" / "predictions.jsonl", "-o", tmp_path / "s", "-q")
    assert refused.exit_code == 2 and "scores of other predictions" in refused.output
    forced = _cli("score", "-p", runs / "empty" / "predictions.jsonl", "-o", tmp_path / "s", "-q", "--overwrite")
    assert forced.exit_code == 0, forced.output
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["overall"]["giou"] < 0.5


def test_submit_of_a_run_folder_uses_the_runs_data(runs, tmp_path):
    done = _cli("submit", runs / "full", "--model-name", "Oracle", "--out", tmp_path / "bundle")
    assert done.exit_code == 0, done.output
    assert "of mini:test" in done.output
    warned = _cli("submit", runs / "full", "--model-name", "Oracle", "--out", tmp_path / "b2", "--split", "val")
    assert "warning: --split val differs from the test that" in warned.output
