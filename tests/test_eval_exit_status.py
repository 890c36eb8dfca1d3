"""Outcomes that used to mislead: an empty split blamed a "predictions file not found", an endpoint
that is down blamed ``served_model``, and a run where every request failed exited 0 with a table of
zeros (the cause only in predictions.jsonl). Exit codes are those the README lists."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from typing import ClassVar

import pytest
from typer.testing import CliRunner

import _datahf_helpers as h
from _lisa_helpers import write_pair
from reasonseg_x.cli import app
from reasonseg_x.predictors.protocol import Output, Query


class ReportsErrors:
    """Reports every sample as an error (as a served model does when its endpoint is down); with
    ``ok_every`` N, every N-th sample succeeds."""

    needs_ground_truth: ClassVar[bool] = False

    def __init__(self, ok_every: int = 0) -> None:
        self.ok_every = int(ok_every)
        self.seen = 0

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        out = []
        for q in queries:
            self.seen += 1
            ok = self.ok_every and self.seen % self.ok_every == 0
            out.append(Output(mask=None) if ok else Output(status="error", error=f"backend unreachable for {q.id}"))
        return out


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


# -- an empty split -------------------------------------------------------------------------------

def _empty_hub(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    hub = h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(2)})
    path = hub / "data" / "test-00000-of-00001.parquet"
    pq.write_table(pq.read_table(path).slice(0, 0), path)
    return hub


def test_eval_and_score_on_an_empty_split_say_it_is_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))
    hub = _empty_hub(tmp_path)
    run = _invoke("eval", "-m", "oracle", "-d", str(hub), "-o", str(tmp_path / "run"), "-q")
    assert run.exit_code == 2 and "split 'test'" in run.output and "is empty" in run.output, run.output
    assert "not found" not in run.output and not (tmp_path / "run").exists()
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "x", "mask": null}\n')
    scored = _invoke("score", "-p", str(preds), "-d", str(hub), "-q")
    assert scored.exit_code == 2 and "is empty" in scored.output, scored.output


@pytest.mark.parametrize("argv", [["score", "-p", "{missing}", "-q"], ["score", "-p", "{missing}", "-d", "mini"],
                                  ["submit", "{missing}", "--model-name", "M", "--out", "{missing}.tar.gz"]])
def test_a_predictions_path_that_does_not_exist_says_so(tmp_path, argv):
    """Not "--data is required to score masks", nor a download of the test split: the path is wrong."""
    missing = tmp_path / "nope"
    done = _invoke(*(a.format(missing=missing) for a in argv))
    assert done.exit_code == 2, done.output
    assert f"{missing}: no such predictions file or run folder" in done.output, done.output
    assert "--data" not in done.output and "Hub" not in done.output


def test_a_split_whose_every_row_was_skipped_says_so(tmp_path):
    folder = tmp_path / "lisa" / "test"
    write_pair(folder, "bad", raw=b"{")
    run = _invoke("eval", "-m", "oracle", "-d", str(tmp_path / "lisa"), "-o", str(tmp_path / "run"), "-q",
                  "--skip-invalid")
    assert run.exit_code == 2, run.output
    assert "no valid sample" in run.output and "bad.json" in run.output and "not found" not in run.output


# -- every sample failed --------------------------------------------------------------------------

def test_eval_exits_1_with_the_cause_when_no_sample_could_be_predicted(tmp_path):
    out = tmp_path / "run"
    result = _invoke("eval", "-m", "test_eval_exit_status:ReportsErrors", "-o", str(out), "-q", "-n", "5")
    assert result.exit_code == 1, result.output
    assert "backend unreachable for mini-000" in result.output
    assert "no sample could be predicted: all 5" in result.output and "--retry-errors" in result.output
    assert "gIoU" not in result.output  # no table of zeros that reads as a score
    assert json.loads((out / "metrics.json").read_text())["counts"]["error"] == 5  # written all the same
    again = _invoke("eval", "-m", "test_eval_exit_status:ReportsErrors", "-o", str(out), "-q", "-n", "5")
    assert again.exit_code == 1 and "backend unreachable for mini-000" in again.output, again.output


def test_eval_that_predicted_some_samples_exits_0_and_names_the_first_failure(tmp_path):
    result = _invoke("eval", "-m", "test_eval_exit_status:ReportsErrors", "-a", "ok_every=2",
                     "-o", str(tmp_path / "run"), "-q", "-n", "6")
    assert result.exit_code == 0, result.output
    assert "3 sample(s) failed" in result.output and "backend unreachable for mini-000" in result.output
    assert "gIoU" in result.output


@pytest.mark.timeout(120)
def test_endpoint_down_names_the_endpoint_before_served_model_and_exit_status(tmp_path):
    pytest.importorskip("httpx")
    url = _closed_port_url()
    common = ["eval", "-m", "star", "-a", "backend=openai", "-a", f"base_url={url}", "-a", "segmenter=box",
              "-a", "max_attempts=1", "-q", "-n", "3"]
    unnamed = _invoke(*common, "-o", str(tmp_path / "a"))
    assert unnamed.exit_code == 2, unnamed.output
    line = next(x for x in unnamed.output.splitlines() if x.startswith("error:"))
    assert line.startswith("error: base_url: the endpoint") and "could not list its models" in line, line
    assert line.index("server running") < line.index("served_model")
    named = _invoke(*common, "-a", "served_model=m", "-o", str(tmp_path / "b"))
    assert named.exit_code == 1, named.output
    assert "no sample could be predicted: all 3" in named.output and "connection failed" in named.output


# -- a live run -----------------------------------------------------------------------------------

@pytest.mark.timeout(180)
def test_score_into_the_folder_of_a_running_eval_is_refused_then_works(tmp_path):
    import subprocess
    import sys
    import time

    from _runner_helpers import REPO_DIR, subprocess_env

    out = tmp_path / "live"
    cmd = [sys.executable, "-m", "reasonseg_x.cli", "eval", "--model", "_runner_helpers:HashPredictor",
           "--model-arg", "delay=0.05", "--data", "synth:40", "--batch-size", "2", "--quiet", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO_DIR, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        predictions = out / "predictions.jsonl"
        while not (predictions.exists() and predictions.read_bytes().count(b"\n") >= 2):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "eval wrote no predictions"
            time.sleep(0.02)
        refused = _invoke("score", "-p", str(out), "-o", str(out), "-q")
        assert proc.poll() is None, "eval finished before the check: the refusal proves nothing"
        assert refused.exit_code == 2, refused.output
        assert "another reasonseg-x process is writing to" in refused.output and str(out) in refused.output
        assert not (out / "metrics.json").exists()  # no partial scores beside a live run
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 40
    again = _invoke("score", "-p", str(out), "-o", str(out), "-q")
    assert again.exit_code == 0, again.output
