"""Scoring speed: the reference scripts' way against reasonseg-x, on the published nested-bool schema.

Builds a split like the published evaluation sets (``image``, ``text``, ``mask`` as
list<list<bool>>, ids, sizes, ``reasoning_type``) in a temp folder with blobby masks (ellipses and
a polygon), writes predictions as RLE that overlap them, then in one run times:

  (a) the reference way: ``datasets`` row access -> ``np.array(row["mask"])`` -> numpy I/U per sample;
  (b) ``reasonseg-x`` scoring with a cold ground-truth cache (``open_source(folder)`` + ``score_predictions``),
      then what ``score --out RUN`` adds: metrics.json, per_sample.jsonl, report.md, chart.png and
      worst.png (the worst-case grid, which reads the pictures it shows);
  (c) the same again with the converted ground truth cached (median of ``--repeats``): scores only,
      ``score --out RUN`` repeated into the same folder (as a user re-scoring a run does), and into a
      fresh folder each time (worst.png drawn anew);
  (d) ``reasonseg-x score --out RUN`` as a command in its own process, cold cache then repeated.

and prints the ratios against (a) (targets: scoring >= 3x cold and >= 30x warm; ``score --out``
>= 5x cold and >= 25x repeated). Both sides give the same gIoU/cIoU.

    python benchmarks/bench_scoring.py [--n 300] [--size 1024x768] [--layout disk|parquet]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TYPES = ("function_purpose", "commonsense", "comparative_relational", "compositional")


def parse_size(text: str) -> tuple[int, int]:
    """``1024x768`` -> (height 768, width 1024)."""
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def blobby(rng: np.random.Generator, h: int, w: int, shift: tuple[int, int] = (0, 0), params=None):
    """A few ellipses and one triangle; ``params`` replays a mask with its shapes moved by ``shift``."""
    if params is None:
        params = {"ellipses": [(rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w, rng.uniform(0.04, 0.2) * h,
                                rng.uniform(0.04, 0.2) * w) for _ in range(int(rng.integers(1, 4)))],
                  "triangle": [(rng.uniform(0, h), rng.uniform(0, w)) for _ in range(3)] if rng.random() < 0.5 else None}
    dy, dx = shift
    mask = np.zeros((h, w), dtype=bool)
    for cy, cx, ry, rx in params["ellipses"]:
        y0, y1 = max(0, int(cy + dy - ry)), min(h, int(cy + dy + ry) + 1)
        x0, x1 = max(0, int(cx + dx - rx)), min(w, int(cx + dx + rx) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        mask[y0:y1, x0:x1] |= ((yy - cy - dy) / ry) ** 2 + ((xx - cx - dx) / rx) ** 2 <= 1.0
    if params["triangle"] is not None:
        from PIL import Image, ImageDraw

        img = Image.new("1", (w, h), 0)
        ImageDraw.Draw(img).polygon([(x + dx, y + dy) for y, x in params["triangle"]], fill=1)
        mask |= np.asarray(img, dtype=bool)
    return mask, params


def _nested_bool_chunk(mask: np.ndarray):
    """One row of list<list<bool>> built from a numpy mask without Python lists."""
    import pyarrow as pa

    h, w = mask.shape
    rows = pa.ListArray.from_arrays(pa.array(np.arange(0, h * w + 1, w, dtype=np.int32)), pa.array(mask.ravel()))
    return pa.ListArray.from_arrays(pa.array(np.array([0, h], dtype=np.int32)), rows)


def _jpeg(h: int, w: int, seed: int) -> bytes:
    import io

    from PIL import Image

    img = Image.new("RGB", (w, h), (seed * 37 % 255, seed * 91 % 255, 120))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=70)
    return buf.getvalue()


def build_split(root: Path, n: int, h: int, w: int, *, seed: int = 0, layout: str = "disk") -> tuple[Path, Path]:
    """Write an evaluation split in the published schema and a predictions JSONL; return both paths."""
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    from reasonseg_x import masks
    from reasonseg_x.predictions import Prediction, prediction_to_json

    datasets.disable_progress_bars()
    rng = np.random.default_rng(seed)
    chunks, preds = [], []
    for k in range(n):
        gt, params = blobby(rng, h, w)
        pred, _ = blobby(rng, h, w, shift=(int(rng.integers(-25, 26)), int(rng.integers(-25, 26))), params=params)
        chunks.append(_nested_bool_chunk(gt))
        status = "ok" if rng.random() > 0.03 else "parse_error"
        preds.append(Prediction(f"ann{k:05d}", masks.encode(pred) if status == "ok" else None, status=status))
    image_bytes = _jpeg(h, w, seed)
    table = pa.table({
        "image": pa.array([{"bytes": image_bytes, "path": None}] * n,
                          type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        "text": pa.array([f"query {k}" for k in range(n)]),
        "mask": pa.chunked_array(chunks),
        "image_id": pa.array([f"img{k:05d}" for k in range(n)]),
        "ann_id": pa.array([f"ann{k:05d}" for k in range(n)]),
        "img_height": pa.array([h] * n, type=pa.int64()),
        "img_width": pa.array([w] * n, type=pa.int64()),
        "reasoning_type": pa.array([TYPES[k % 4] for k in range(n)]),
    })
    features = datasets.Features({
        "image": datasets.Image(), "text": datasets.Value("string"),
        "mask": datasets.List(datasets.List(datasets.Value("bool"))),
        "image_id": datasets.Value("string"), "ann_id": datasets.Value("string"),
        "img_height": datasets.Value("int64"), "img_width": datasets.Value("int64"),
        "reasoning_type": datasets.Value("string")})
    ds = datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=features))
    data_dir = root / "ReasonSegX_bench"
    if layout == "disk":
        ds.save_to_disk(str(data_dir), max_shard_size="2GB")
    else:
        (data_dir / "data").mkdir(parents=True)
        ds.to_parquet(str(data_dir / "data" / "test-00000-of-00001.parquet"), batch_size=50)
    pred_path = root / "predictions.jsonl"
    with pred_path.open("w", encoding="utf-8") as fh:
        for p in preds:
            fh.write(json.dumps(prediction_to_json(p)) + "\n")
    return data_dir, pred_path


def reference_way(data_dir: Path, pred_path: Path, layout: str) -> tuple[float, float, float]:
    """What the reference scripts do: datasets rows, np.array of the nested list, numpy I/U."""
    import datasets

    from reasonseg_x import masks

    datasets.disable_progress_bars()
    t0 = time.perf_counter()
    preds = {}
    with pred_path.open(encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            preds[obj["id"]] = obj
    ds = datasets.load_from_disk(str(data_dir)) if layout == "disk" else datasets.load_dataset(str(data_dir),
                                                                                              split="test")
    ious, ti, tu = [], 0, 0
    for j in range(len(ds)):
        row = ds[j]
        gt = np.array(row["mask"])
        p = preds[row["ann_id"]]
        if p["status"] != "ok" or p["mask"] is None:
            i, u = 0, int(gt.sum())
        else:
            pm = masks.decode(p["mask"])
            i, u = int(np.logical_and(pm, gt).sum()), int(np.logical_or(pm, gt).sum())
        ious.append(1.0 if u == 0 else i / u)
        ti += i
        tu += u
    return time.perf_counter() - t0, float(np.mean(ious)), ti / tu


def ours(data_dir: Path, pred_path: Path, out: Path | None = None) -> tuple[float, float, float]:
    """Score (and with ``out``, write the run folder as ``score --out`` does); seconds, gIoU, cIoU."""
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.evaluators.api import score_predictions, write_outputs

    t0 = time.perf_counter()
    source = open_source(str(data_dir))
    result = score_predictions(source, None, pred_path, protocol="star")
    if out is not None:
        paths = write_outputs(result, out, source=source)
        assert "worst" in paths, "worst.png was not drawn"
    elapsed = time.perf_counter() - t0
    return elapsed, result.metrics["overall"]["giou"], result.metrics["overall"]["ciou"]


def command(data_dir: Path, pred_path: Path, out: Path, cache: Path) -> tuple[float, float, float]:
    """``reasonseg-x score --out`` as a user runs it: a fresh process (interpreter start and imports
    included), with the ground-truth cache in ``cache``."""
    import subprocess

    env = {**os.environ, "REASONSEG_X_CACHE": str(cache)}
    argv = [sys.executable, "-m", "reasonseg_x.cli", "score", "-p", str(pred_path), "-d", str(data_dir), "-o", str(out),
            "-q"]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env, capture_output=True)
    elapsed = time.perf_counter() - t0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert (out / "worst.png").is_file(), "worst.png was not drawn"
    return elapsed, metrics["overall"]["giou"], metrics["overall"]["ciou"]


def _warm(runs: int, fn) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """Median seconds of ``runs`` calls of ``fn(k)``, and the last call's gIoU and cIoU."""
    times = []
    for k in range(max(1, runs)):
        elapsed, g, c = fn(k)
        times.append(elapsed)
    return statistics.median(times), g, c


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="samples (default 300)")
    parser.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of every mask (default 1024x768)")
    parser.add_argument("--layout", choices=("disk", "parquet"), default="disk",
                        help="save_to_disk folder (what the reference download script writes) or Hub-style parquet")
    parser.add_argument("--repeats", type=int, default=3, help="warm-cache repetitions (median reported)")
    parser.add_argument("--keep", type=Path, default=None, help="build the split here and keep it")
    args = parser.parse_args(argv)
    h, w = parse_size(args.size)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rsx-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ["REASONSEG_X_CACHE"] = str(root / "cache")  # a cold cache for (b)
    try:
        t0 = time.perf_counter()
        data_dir, pred_path = build_split(root, args.n, h, w, layout=args.layout)
        print(f"built {args.n} masks of {w}x{h} ({args.layout}) in {time.perf_counter() - t0:.1f} s under {root}")
        ref_t, ref_g, ref_c = reference_way(data_dir, pred_path, args.layout)
        print(f"(a) reference way                  {ref_t:8.3f} s   gIoU {ref_g:.6f} cIoU {ref_c:.6f}")
        # cold: the converted ground truth is not cached yet (b: scores only; b': scores, then a fresh cold
        # cache again for `score --out`)
        cold_t, g, c = ours(data_dir, pred_path)
        print(f"(b) cold cache, scores only         {cold_t:7.3f} s   gIoU {g:.6f} cIoU {c:.6f}   {ref_t / cold_t:6.1f}x")
        shutil.rmtree(root / "cache", ignore_errors=True)
        run = root / "run"
        cold_out_t, _, _ = ours(data_dir, pred_path, run)
        print(f"(b') cold cache, score --out RUN    {cold_out_t:7.3f} s   {'':34}{ref_t / cold_out_t:6.1f}x")
        warm_t, g2, c2 = _warm(args.repeats, lambda k: ours(data_dir, pred_path))
        print(f"(c) warm cache, scores only         {warm_t:7.3f} s   gIoU {g2:.6f} cIoU {c2:.6f}   {ref_t / warm_t:6.1f}x")
        again_t, _, _ = _warm(args.repeats, lambda k: ours(data_dir, pred_path, run))
        print(f"(c') warm cache, score --out RUN again {again_t:5.3f} s   {'':33}{ref_t / again_t:6.1f}x")
        fresh_t, _, _ = _warm(args.repeats, lambda k: ours(data_dir, pred_path, root / f"fresh{k}"))
        print(f"(c'') warm cache, score --out NEW   {fresh_t:7.3f} s   {'':34}{ref_t / fresh_t:6.1f}x")
        cli_cache, cli_run = root / "cli-cache", root / "cli-run"
        cli_cold, g3, c3 = command(data_dir, pred_path, cli_run, cli_cache)
        print(f"(d) command, cold cache             {cli_cold:7.3f} s   {'':34}{ref_t / cli_cold:6.1f}x")
        cli_warm, _, _ = _warm(args.repeats, lambda k: command(data_dir, pred_path, cli_run, cli_cache))
        print(f"(d') command, repeated              {cli_warm:7.3f} s   {'':34}{ref_t / cli_warm:6.1f}x")
        same = (abs(ref_g - g) < 1e-9 and abs(ref_c - c) < 1e-9 and abs(g - g2) < 1e-12 and abs(g - g3) < 1e-12
                and abs(c - c3) < 1e-12)
        print(f"ratios: scoring first run {ref_t / cold_t:.1f}x (target >= 3x), repeated {ref_t / warm_t:.1f}x "
              f"(target >= 30x); numbers identical: {same}")
        print(f"ratios: score --out first run {ref_t / cold_out_t:.1f}x (target >= 5x), repeated "
              f"{ref_t / again_t:.1f}x (target >= 25x), repeated into a new folder {ref_t / fresh_t:.1f}x")
        print(f"ratios: the command in its own process (imports included, which (a) is not): first run "
              f"{ref_t / cli_cold:.1f}x, repeated {ref_t / cli_warm:.1f}x")
        try:
            load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
            print(f"machine: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min)")
        except OSError:  # pragma: no cover - no load average on this platform
            pass
        return 0 if same else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
