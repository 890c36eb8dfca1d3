"""The two model benchmarks run end to end (dry runs with tiny models on CPU)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

# third-party deprecation noise (peft/transformers/torch.jit), not ours
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
pytest.importorskip("peft")

from _star_tiny import tiny_checkpoints  # noqa: E402

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_tts_sam_micro(capsys):
    tiny_checkpoints()  # sets one torch thread
    assert _load("bench_tts_sam").main(["--arch", "micro", "--images", "2", "--repeats", "1", "--answers", "8"]) == 0
    out = capsys.readouterr().out
    assert "ratio 8 vs 1" in out and "decoder calls" in out


def test_gpu_throughput_tiny_dry_run(tmp_path, capsys):
    tiny_checkpoints()
    target = tmp_path / "tp.json"
    assert _load("gpu_throughput").main(["--shape", "tiny", "--n", "3", "--mv-n", "2", "--tts", "2", "--warmup", "0",
                                         "--check-queries", "3", "--check-tokens", "6", "--json", str(target)]) == 0
    result = json.loads(target.read_text())
    runs = {(r["mode"], r["schedule"]): r for r in result["results"]}
    assert set(runs) == {("greedy", "fast"), ("greedy", "reference"), ("mv-2", "fast"), ("mv-2", "reference")}
    assert all(r["samples_per_s"] > 0 and r["statuses"] == {"ok": r["samples"]} for r in runs.values())
    assert runs[("mv-2", "fast")]["prefill_rows"] == 2  # one prefill row per query
    assert runs[("greedy", "fast")]["decode_ms_per_step"] > 0
    assert result["ratios"]["greedy_same_answers"] == "3/3"
    assert result["ratios"]["greedy_unforced_same_answers"] == "3/3"
    assert "fast / reference" in capsys.readouterr().out


def test_gpu_throughput_records_a_failed_mode_and_runs_the_others(tmp_path):
    tiny_checkpoints()
    target = tmp_path / "tp.json"
    # max_batch_rows below tts makes the fast MV mode fail; greedy must still run
    code = _load("gpu_throughput").main(["--shape", "tiny", "--n", "2", "--mv-n", "1", "--tts", "3", "--warmup", "0",
                                         "--max-batch-rows", "2", "--skip-reference", "--json", str(target)])
    assert code == 1
    result = json.loads(target.read_text())
    by_mode = {r["mode"]: r for r in result["results"]}
    assert "max_batch_rows" in by_mode["mv-3"]["error"]
    assert by_mode["greedy"]["samples_per_s"] > 0
