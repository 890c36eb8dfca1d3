"""torchrun / accelerate: ranks are shards, rank 0 merges after a barrier; equal to one process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from _runner_helpers import REPO_DIR, TESTS_DIR, FakeSource, subprocess_env
from reasonseg_x.errors import ReasonSegXError
from reasonseg_x.runner.distributed import detect, require_visible, wait_for_shards
from reasonseg_x.runner.evaluate import EvalConfig, run_eval


def test_detect_reads_the_launcher_environment():
    assert detect({}) is None
    assert detect({"WORLD_SIZE": "1", "RANK": "0"}) is None
    env = detect({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0", "TORCHELASTIC_RUN_ID": "x"})
    assert (env.rank, env.world_size, env.local_rank, env.launcher, env.is_main) == (2, 4, 0, "torchrun", False)
    assert detect({"WORLD_SIZE": "2", "RANK": "0", "ACCELERATE_MIXED_PRECISION": "no"}).launcher == "accelerate"
    with pytest.raises(ReasonSegXError, match="outside WORLD_SIZE"):
        detect({"WORLD_SIZE": "2", "RANK": "5"})
    assert detect({"SLURM_NTASKS": "3", "SLURM_PROCID": "1"}) is None  # Slurm shards are explicit


def test_file_barrier_waits_for_complete_shards_and_fails_on_a_failed_one(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"status": "running"}))

    def finish():
        time.sleep(0.2)
        for d in dirs:
            (d / "run.json").write_text(json.dumps({"status": "complete"}))

    thread = threading.Thread(target=finish)
    thread.start()
    wait_for_shards(dirs, timeout_s=10, poll_s=0.02)
    thread.join()
    (dirs[1] / "run.json").write_text(json.dumps({"status": "failed"}))
    with pytest.raises(ReasonSegXError, match="failed"):
        wait_for_shards(dirs, timeout_s=10, poll_s=0.02)
    (dirs[1] / "run.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(ReasonSegXError, match="timed out"):
        wait_for_shards(dirs, timeout_s=0.05, poll_s=0.01)


def test_shards_rank_zero_cannot_see_mean_an_unshared_out_folder(tmp_path):
    (tmp_path / "shard-0-of-2").mkdir()
    (tmp_path / "shard-0-of-2" / "run.json").write_text("{}")
    with pytest.raises(ReasonSegXError, match=r"cannot see 1 of 2 .*shard-1-of-2.*filesystem every node shares"):
        require_visible([tmp_path / "shard-0-of-2", tmp_path / "shard-1-of-2"])


def test_torchrun_two_cpu_processes_equal_one_process(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("reasonseg_x.evaluators.api")
    try:
        from reasonseg_x.data.resolve import open_source

        source = open_source("synth:20")
        tail = ["-m", "reasonseg_x.cli", "eval", "--model", "_runner_helpers:HashPredictor", "--data", "synth:20",
                "--batch-size", "3", "--quiet", "--out", str(tmp_path / "dist")]
    except Exception:  # noqa: BLE001 - without the data layer, drive the same code path with a fake source
        source = FakeSource(21)
        tail = [str(TESTS_DIR / "_runner_helpers.py"), str(tmp_path / "dist"), "21"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *tail]
    proc = subprocess.run(cmd, cwd=REPO_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "merged 2 shards" in proc.stdout + proc.stderr
    dist = tmp_path / "dist"
    assert (dist / "shard-0-of-2" / "run.json").exists() and (dist / "shard-1-of-2" / "run.json").exists()
    single = run_eval(EvalConfig(model="_runner_helpers:HashPredictor", out=tmp_path / "single", data=source.spec),
                      source=source)
    merged = json.loads((dist / "metrics.json").read_text())
    for key in ("overall", "by_reasoning_type", "counts"):
        assert merged[key] == single.result.metrics[key], key
    assert merged["data"]["fingerprint"] == single.result.metrics["data"]["fingerprint"]
    assert (dist / "predictions.jsonl").read_text() == (tmp_path / "single" / "predictions.jsonl").read_text()
    info = json.loads((dist / "run.json").read_text())
    assert info["kind"] == "merged" and [p["shard_id"] for p in info["parts"]] == [0, 1]
