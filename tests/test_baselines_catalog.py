"""The data in the top-level baselines/ folder: the sanity numbers hold, and the example plugin
installs and runs through its entry point exactly as the README walks through it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from reasonseg_x._resources import shipped_file
from reasonseg_x.cli import app

REPO = Path(__file__).resolve().parents[1]
SANITY = yaml.safe_load(shipped_file("baselines", "sanity.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("model", sorted(SANITY["models"]))
def test_sanity_baselines_reproduce_their_numbers(tmp_path, model):
    out = tmp_path / model
    result = CliRunner().invoke(app, ["eval", "--model", model, "--data", SANITY["data"], "--protocol",
                                      SANITY["protocol"], "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    expected = SANITY["models"][model]
    overall = metrics["overall"]
    assert (overall["n"], overall["sum_I"], overall["sum_U"]) == (
        expected["overall"]["n"], expected["overall"]["sum_I"], expected["overall"]["sum_U"])
    assert overall["giou"] == pytest.approx(expected["overall"]["giou"], abs=1e-12)
    assert overall["ciou"] == pytest.approx(expected["overall"]["ciou"], abs=1e-12)
    assert set(metrics["by_reasoning_type"]) == set(expected["by_reasoning_type"])
    for group, want in expected["by_reasoning_type"].items():
        got = metrics["by_reasoning_type"][group]
        assert got["n"] == want["n"]
        assert got["giou"] == pytest.approx(want["giou"], abs=1e-12)
        assert got["ciou"] == pytest.approx(want["ciou"], abs=1e-12)


def test_example_plugin_installs_and_runs_through_its_entry_point(tmp_path):
    pytest.importorskip("hatchling", reason="building the example plugin offline needs hatchling (dev extra)")
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                              "--no-index", "--target", str(site), str(REPO / "baselines" / "example-plugin")],
                             capture_output=True, text=True, timeout=180)
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "reasonseg_x.cli", *args], capture_output=True, text=True,
                              env=env, timeout=180, cwd=tmp_path)

    listed = cli("models", "center-box")
    assert listed.returncode == 0, listed.stderr
    assert "fraction: float = 0.5" in listed.stdout and "reasonseg-x-center-box" in listed.stdout
    run = cli("eval", "--model", "center-box", "-a", "fraction=0.3", "--out", str(tmp_path / "run"), "--quiet")
    assert run.returncode == 0, run.stderr + run.stdout
    lines = (tmp_path / "run" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 48
    run_info = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert run_info["model"]["name"] == "center-box" and run_info["model"]["args"] == {"fraction": 0.3}
    assert run_info["model"]["origin"].startswith("plugin reasonseg-x-center-box")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert 0 < metrics["overall"]["giou"] < 1
    bad = cli("eval", "--model", "center-box", "-a", "fraction=2", "--out", str(tmp_path / "bad"), "--quiet")
    assert bad.returncode == 2 and "fraction must be in (0, 1]" in bad.stderr + bad.stdout
