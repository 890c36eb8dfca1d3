"""Seconds to build the case viewer for 1,000 synth samples (target: seconds, not minutes).

Writes a predictions file for ``synth:N`` (each target with a third of its rows cut, its box and a
point, so every overlay is drawn), then times ``build_viewer`` on it: one run, then two runs side by
side. Also times streaming the samples alone (the synth source paints each picture: a floor the
viewer cannot go below on this source).

    python benchmarks/bench_viewer.py [--n 1000] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from reasonseg_x import masks
from reasonseg_x.data.resolve import open_source


def write_predictions(spec: str, path: Path) -> int:
    lines = []
    for gt in open_source(spec).ground_truth():
        target = masks.decode(gt.target)
        cut = target & (np.arange(gt.height) % 3 != 0)[:, None]
        meta = {}
        if target.any():
            ys, xs = np.nonzero(target)
            meta = {"boxes": [[int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]],
                    "points": [[int(xs.mean()), int(ys.mean())]]}
        lines.append(json.dumps({"id": gt.id, "mask": masks.encode(cut), "status": "ok", "raw_text": "<answer/>",
                                 "meta": meta}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def _cpu_seconds() -> float:
    """User + system time of this process and its finished children (the drawing processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None, help="drawing processes (default: CPUs)")
    args = parser.parse_args(argv)
    from reasonseg_x.viewer.build import build_viewer

    spec = f"synth:{args.n}"
    with tempfile.TemporaryDirectory(prefix="bench-viewer-") as tmp:
        preds = Path(tmp) / "preds.jsonl"
        n = write_predictions(spec, preds)
        started = time.perf_counter()
        for sample in open_source(spec).samples():
            sample.image.read_bytes()
        stream_s = time.perf_counter() - started
        started, cpu = time.perf_counter(), _cpu_seconds()
        page = build_viewer(preds, Path(tmp) / "one", data=spec, workers=args.workers, progress=False)
        one_s, one_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        size = sum(f.stat().st_size for f in page.parent.rglob("*") if f.is_file())
        started, cpu = time.perf_counter(), _cpu_seconds()
        build_viewer(preds, Path(tmp) / "two", run2=preds, data=spec, workers=args.workers, progress=False)
        two_s, two_cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    print(f"{n} synth samples, {args.workers or os.cpu_count()} drawing processes on {os.cpu_count()} CPUs")
    print(f"streaming the samples alone: {stream_s:.2f} s")
    print(f"viewer, one run:  {one_s:.2f} s ({1000 * one_s / n:.1f} ms/sample, {size / 2 ** 20:.1f} MiB written; "
          f"{one_cpu:.1f} CPU-s in all processes, so {one_cpu / (os.cpu_count() or 1):.1f} s on idle CPUs)")
    print(f"viewer, two runs: {two_s:.2f} s ({1000 * two_s / n:.1f} ms/sample; {two_cpu:.1f} CPU-s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
