"""Peak memory while scoring a 773-sample split (the size of the ReasonSeg-X test split).

Builds the split in the published nested-bool schema (see ``bench_scoring.py``), then scores it in
fresh subprocesses, once with a cold ground-truth cache and once warm, and reports each run's
peak RSS from ``resource.getrusage(RUSAGE_CHILDREN)`` of a helper process (target: < 1.5 GB).

    python benchmarks/bench_scoring_memory.py [--n 773] [--size 1024x768] [--layout disk|parquet]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scoring import build_split, parse_size  # noqa: E402

_CHILD = """
import sys, time
from reasonseg_x.data.resolve import open_source
from reasonseg_x.evaluators.api import score_predictions
t0 = time.perf_counter()
result = score_predictions(open_source(sys.argv[1]), None, sys.argv[2])
m = result.metrics
print(f"n={m['overall']['n']} gIoU={m['overall']['giou']:.6f} cIoU={m['overall']['ciou']:.6f} "
      f"in {time.perf_counter() - t0:.2f} s")
"""

TARGET_MB = 1536


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=773)
    parser.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT (default 1024x768)")
    parser.add_argument("--layout", choices=("disk", "parquet"), default="disk")
    args = parser.parse_args(argv)
    h, w = parse_size(args.size)
    root = Path(tempfile.mkdtemp(prefix="rsx-mem-"))
    try:
        data_dir, pred_path = build_split(root, args.n, h, w, layout=args.layout)
        env = dict(os.environ, REASONSEG_X_CACHE=str(root / "cache"))
        cold_mb, cold_out = peak_in_fresh_process(data_dir, pred_path, env)
        print(f"cold cache: peak RSS {cold_mb:7.1f} MiB  ({cold_out})")
        warm_mb, warm_out = peak_in_fresh_process(data_dir, pred_path, env)
        print(f"warm cache: peak RSS {warm_mb:7.1f} MiB  ({warm_out})")
        ok = max(cold_mb, warm_mb) < TARGET_MB
        print(f"{args.n} masks of {w}x{h} ({args.layout}): peak {max(cold_mb, warm_mb):.0f} MiB, target < {TARGET_MB} "
              f"MiB: {'ok' if ok else 'OVER'}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


def peak_in_fresh_process(data_dir: Path, pred_path: Path, env: dict[str, str]) -> tuple[float, str]:
    """Peak RSS (MiB) and output of one scoring in a fresh interpreter.

    Measured from a helper process whose only child is the scorer: ``RUSAGE_CHILDREN`` keeps the
    maximum over all children ever waited for, so measuring from this process would also count
    the split builder and the other run."""
    code = ("import resource, subprocess, sys\n"
            f"p = subprocess.run([sys.executable, '-c', {_CHILD!r}, sys.argv[1], sys.argv[2]], capture_output=True, "
            "text=True)\n"
            "assert p.returncode == 0, p.stderr\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)\n"
            "print(p.stdout.strip())\n")
    proc = subprocess.run([sys.executable, "-c", code, str(data_dir), str(pred_path)], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"scoring failed:\n{proc.stderr}")
    peak, out = proc.stdout.strip().split("\n", 1)
    return float(peak), out


if __name__ == "__main__":
    sys.exit(main())
