"""A mask reward for a group of rollouts: one image embedding per group vs one per rollout.

Why: StAR's stage-2 groups are 64-256 rollouts of one image, and the published reward worker calls
SAM's ``set_image`` for every rollout. ``Reward.score_group`` embeds the image once and decodes all
rollouts' objects in batched prompt calls (issue 20 goal: >= 20x at 256 rollouts). Both paths run
here on the same segmenter with the same preset, so the ratio is measured in one run, and the
totals are checked to agree. Wall seconds and this process's CPU seconds are both reported: on a
shared machine the CPU ratio is the steadier one (run with ``--threads 1`` there).

One 840 x 840 image with three target objects; groups of 16 / 64 / 256 rollouts of 1-3 objects
each (the targets with pixel jitter, sometimes a wrong object). The SAM is randomly initialised
from a config, no download (built as in ``bench_tts_sam.py``): SAM 2.1 Hiera-Tiny at its real 1024
input by default (``--arch hiera-tiny``), the Hiera-Large architecture of the default segmenter
(``--arch hiera-large``, for a GPU), or the 32-wide test model (``--arch micro``).

``--reference-max N`` times the per-rollout loop on at most N rollouts of a group and scales it
to the group (the loop's cost is the same for every rollout: one embedding plus its own decode);
the output says when it did. Default: measure every rollout.

    python benchmarks/bench_rewards.py                               # hiera-tiny, 16/64/256, CPU
    python benchmarks/bench_rewards.py --arch micro --groups 16 64
    python benchmarks/bench_rewards.py --arch hiera-large --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_case(rng, n: int, size: int = 840):  # noqa: ANN001, ANN201
    """(truth masks, rollouts): three target rectangles and ``n`` StAR-format answers around them."""
    import numpy as np

    targets = [(100, 120, 380, 420), (450, 80, 760, 300), (300, 500, 620, 800)]
    masks = []
    for x1, y1, x2, y2 in targets:
        m = np.zeros((size, size), dtype=bool)
        m[y1:y2 + 1, x1:x2 + 1] = True
        masks.append(m)
    rollouts = []
    for _ in range(n):
        objects = []
        for k in rng.choice(3, size=int(rng.integers(1, 4)), replace=False):
            x1, y1, x2, y2 = (int(v + rng.integers(-20, 21)) for v in targets[k])
            if rng.random() < 0.15:  # a wrong object
                x1, y1 = int(rng.integers(0, 600)), int(rng.integers(0, 600))
                x2, y2 = x1 + 150, y1 + 150
            objects.append({"label": "object", "bbox_2d": [x1, y1, x2, y2], "point_2d": [(x1 + x2) // 2, (y1 + y2) // 2]})
        rollouts.append(f"<think>looking at the image</think> <answer>{json.dumps(objects)}</answer>")
    return masks, rollouts


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    from PIL import Image

    from bench_tts_sam import build_segmenter
    from reasonseg_x import rewards

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="hiera-tiny", choices=["hiera-tiny", "hiera-large", "micro"])
    ap.add_argument("--preset", default="star-stage2")
    ap.add_argument("--groups", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--reference-max", type=int, default=0,
                    help="time the per-rollout loop on at most this many rollouts and scale (0: all)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    segmenter = build_segmenter(args.arch, args.device)
    reward = rewards.load(args.preset, segmenter=segmenter)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (840, 840, 3), dtype=np.uint8))
    masks, warm = make_case(rng, 8)
    truth = rewards.encode_truth(masks)
    # warm-up: the first embedding and the first decoder call of each prompt count are much slower
    reward.score_group(warm, truth, image)
    for completion in warm[:4]:
        reward.score(completion, truth, image)
    print(f"reward {args.preset}, arch={args.arch}, device={args.device}, torch threads={torch.get_num_threads()}, "
          "image 840x840, 3 targets, rollouts of 1-3 objects")
    rows = []
    for n in args.groups:
        _, rollouts = make_case(rng, n)
        start, cpu = time.perf_counter(), time.process_time()
        grouped = reward.score_group(rollouts, truth, image)
        grouped_s, grouped_cpu = time.perf_counter() - start, time.process_time() - cpu
        timed = n if args.reference_max <= 0 else min(n, args.reference_max)
        start, cpu = time.perf_counter(), time.process_time()
        single = [reward.score(c, truth, image) for c in rollouts[:timed]]
        reference_s = (time.perf_counter() - start) * n / timed
        reference_cpu = (time.process_time() - cpu) * n / timed
        diff = max(abs(a.total - b.total) for a, b in zip(grouped, single))
        same = sum(a.total == b.total for a, b in zip(grouped, single))
        row = {"rollouts": n, "grouped_s": round(grouped_s, 3), "reference_s": round(reference_s, 3),
               "grouped_cpu_s": round(grouped_cpu, 3), "reference_cpu_s": round(reference_cpu, 3),
               "reference_timed_rollouts": timed, "ratio": round(reference_s / grouped_s, 1),
               "cpu_ratio": round(reference_cpu / grouped_cpu, 1),
               "equal_totals": f"{same}/{timed}", "max_total_diff": diff,
               "objects": sum(c.count("bbox_2d") for c in rollouts)}
        rows.append(row)
        note = "" if timed == n else f" (loop timed on {timed} rollouts, scaled to {n})"
        print(f"  {n:4d} rollouts ({row['objects']} objects): grouped {grouped_s:8.2f} s, per-rollout loop "
              f"{reference_s:8.2f} s{note} -> {row['ratio']:.1f}x wall, {row['cpu_ratio']:.1f}x CPU "
              f"({grouped_cpu:.1f} vs {reference_cpu:.1f} CPU s); equal totals {same}/{timed}, max |diff| {diff:.3g}",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"arch": args.arch, "device": args.device, "preset": args.preset,
                                         "rows": rows}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
