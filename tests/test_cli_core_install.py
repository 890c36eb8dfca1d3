"""A core install (no torch, transformers, sam2, ...): every path a user can reach says "install the
models extra" in one line and exits 2, never a traceback; the numpy paths keep working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    return subprocess.run([sys.executable, str(TESTS / "_hide_extras.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _builtin_models_needing_the_extra() -> list[str]:
    from reasonseg_x.predictors.catalog import builtin_models

    return [entry.name for entry in builtin_models() if entry.extra]


@pytest.mark.parametrize("model_args", [
    pytest.param((), id="defaults"),
    pytest.param(("-a", "device=cuda"), id="device-cuda"),
])
def test_every_model_needing_the_extra_says_so_in_one_line(tmp_path, model_args):
    names = _builtin_models_needing_the_extra()
    assert {"star", "visionreasoner", "segzero", "gt-box-sam"} <= set(names)
    for name in names:
        done = _cli("eval", "-m", name, *model_args, "-n", "2", "-q", "-o", str(tmp_path / name), cwd=tmp_path)
        assert done.returncode == 2, (name, done.stderr)
        assert "Traceback" not in done.stderr, (name, done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and "pip install 'reasonseg-x[models]'" in last, (name, done.stderr)


def test_listing_and_the_numpy_paths_work_without_the_extra(tmp_path):
    listed = _cli("models", "star", cwd=tmp_path)
    assert listed.returncode == 0 and "checkpoint" in listed.stdout, listed.stderr
    run = _cli("eval", "-m", "oracle", "-n", "3", "-q", "-o", str(tmp_path / "oracle"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    replay = _cli("eval", "-m", f"predictions:{tmp_path / 'oracle'}", "-n", "3", "-q", "-o", str(tmp_path / "replay"),
                  cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    scored = _cli("score", "-p", str(tmp_path / "oracle"), "-d", "mini", "-q", cwd=tmp_path)
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stderr
