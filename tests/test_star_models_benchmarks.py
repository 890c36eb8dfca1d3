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
    assert _load("gpu_throughput").main(["--tiny", "--n", "2", "--modes", "1,2", "--warmup", "0",
                                         "--json", str(target)]) == 0
    result = json.loads(target.read_text())
    assert [r["tts"] for r in result["results"]] == [1, 2]
    assert all(r["samples"] == 2 and r["samples_per_s"] > 0 for r in result["results"])
    assert "samples/s" in capsys.readouterr().out
