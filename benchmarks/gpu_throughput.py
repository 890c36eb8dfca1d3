"""Throughput of the StAR predictor on a real checkpoint: samples/s for greedy decoding and for
test-time scaling (tts=32 by default), per-stage time, and peak GPU memory.

Run on a GPU machine (the checkpoint and SAM are downloaded from the Hub or read from folders):

    python benchmarks/gpu_throughput.py --checkpoint sj9909/StAR-7B --data mini --n 64
    python benchmarks/gpu_throughput.py --checkpoint sj9909/StAR-8B --data sj9909/ReasonSegX_val --n 128 \\
        --modes 1,32 --batch-size 32 --json out/throughput.json

``--tiny`` is a dry run on CPU with tiny random models built from configs (no download, no GPU):
it checks the script end to end, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any


def _queries(spec: str, split: str | None, n: int) -> list[Any]:
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.predictors.protocol import Query

    source = open_source(spec)
    split = split or source.default_split()
    queries = []
    for sample in source.samples(split):
        queries.append(Query.from_sample(sample))
        if len(queries) >= n:
            break
    if not queries:
        raise SystemExit(f"no samples in {spec} split {split}")
    return queries


def _tiny_models() -> tuple[str, str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _star_tiny import tiny_checkpoints

    ckpt = tiny_checkpoints()
    return str(ckpt.lora_old), str(ckpt.sam2)


def _peak_memory_reset() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_gib() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2 ** 30


def run_mode(predictor: Any, queries: list[Any], batch_size: int) -> dict[str, Any]:
    _peak_memory_reset()
    statuses: Counter[str] = Counter()
    stage = Counter()
    started = time.perf_counter()
    for start in range(0, len(queries), batch_size):
        for out in predictor.predict(queries[start:start + batch_size]):
            statuses[out.status] += 1
            for key, value in (out.timings or {}).items():
                stage[key] += value
    seconds = time.perf_counter() - started
    return {"tts": predictor.tts, "batch_size": batch_size, "samples": len(queries), "seconds": round(seconds, 3),
            "samples_per_s": round(len(queries) / seconds, 4),
            "generate_s": round(stage["generate_s"], 3), "segment_s": round(stage["segment_s"], 3),
            "parse_s": round(stage["parse_s"], 3), "peak_gpu_gib": _peak_memory_gib(),
            "statuses": dict(statuses)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="sj9909/StAR-7B")
    ap.add_argument("--base-model", default=None)
    ap.add_argument("--segmenter", default="sam2.1-hiera-large")
    ap.add_argument("--data", default="mini")
    ap.add_argument("--split", default=None)
    ap.add_argument("--n", type=int, default=64, help="samples per mode")
    ap.add_argument("--modes", default="1,32", help="comma-separated tts values (1 = greedy)")
    ap.add_argument("--batch-size", type=int, default=32, help="queries per predict() call for greedy (tts>1: 1)")
    ap.add_argument("--max-new-tokens", type=int, default=1024)
    ap.add_argument("--merge-lora", action="store_true")
    ap.add_argument("--attn-implementation", default=None, help="e.g. flash_attention_2, sdpa")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--warmup", type=int, default=2, help="samples run once before timing")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--tiny", action="store_true", help="dry run on CPU with tiny random models")
    args = ap.parse_args(argv)

    import torch

    from reasonseg_x.star.predictor import StarPredictor
    from reasonseg_x.star.vlm import load_vlm

    checkpoint, segmenter, device = args.checkpoint, args.segmenter, args.device
    if args.tiny:
        checkpoint, segmenter = _tiny_models()
        device = "cpu"
        if args.data == "mini":
            args.data = "synth:8"
        args.n = min(args.n, 8)
        args.max_new_tokens = min(args.max_new_tokens, 16)
        args.modes = args.modes if args.modes != "1,32" else "1,4"
    queries = _queries(args.data, args.split, args.n)
    started = time.perf_counter()
    vlm = load_vlm(checkpoint, base_model=args.base_model, device=device, merge_lora=args.merge_lora,
                   attn_implementation=args.attn_implementation)
    load_s = time.perf_counter() - started
    header = {"checkpoint": checkpoint, "segmenter": segmenter, "data": args.data, "n": len(queries),
              "device": torch.cuda.get_device_name() if torch.cuda.is_available() and device != "cpu" else "cpu",
              "dtype": vlm.info.get("dtype"), "merged": vlm.info.get("merged"), "load_s": round(load_s, 1),
              "max_new_tokens": args.max_new_tokens, "torch": torch.__version__}
    print(json.dumps(header))
    results = []
    shared_segmenter = None
    for tts in [int(t) for t in args.modes.split(",") if t.strip()]:
        predictor = StarPredictor(checkpoint, vlm=vlm, segmenter=shared_segmenter or segmenter, tts=tts,
                                  max_new_tokens=args.max_new_tokens, device=device, seed=42)
        shared_segmenter = predictor.segmenter
        batch = args.batch_size if tts == 1 else 1
        if args.warmup:
            predictor.predict(queries[:min(args.warmup, batch)])
        result = run_mode(predictor, queries, batch)
        results.append(result)
        peak = f"{result['peak_gpu_gib']:.1f} GiB" if result["peak_gpu_gib"] is not None else "n/a"
        print(f"tts={tts:<3d} batch={batch:<3d} {result['samples_per_s']:8.3f} samples/s  "
              f"generate {result['generate_s']:.1f}s  segment {result['segment_s']:.1f}s  peak GPU {peak}  "
              f"statuses {result['statuses']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"setup": header, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
