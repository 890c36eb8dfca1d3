"""Cost of the SAM stage with test-time scaling: 32 sampled answers vs 1 answer on the same images.

Why: majority voting needs one SAM candidate per object of every sampled answer. With one image
embedding per image and all prompts decoded in batched calls (``reasonseg_x.star.segmenters``),
the SAM stage for 32 answers should cost at most 1.5x the single-answer stage (issue 5).

The SAM is randomly initialised from a config (no download): by default the SAM 2.1 Hiera-Tiny
architecture at its real 1024 input (``--arch hiera-tiny``), the Hiera-Large architecture of the
default segmenter (``--arch hiera-large``), or the 32-wide test model (``--arch micro``). All share
the real 256-wide mask decoder except micro, so the ratio says how the per-prompt decoder cost
compares with one image embedding. Sampled answers are the greedy answer's objects with pixel jitter (``--jitter``
px; 0 = every answer repeats the greedy one) and, with probability ``--extra``, one more object.

It prints the wall-time ratio (32 answers vs 1, against the 1.5x target) and the ratio of this
process's CPU seconds, which is steadier on a machine shared with other jobs.

    python benchmarks/bench_tts_sam.py                 # 6 images, 2 objects, 32 answers
    python benchmarks/bench_tts_sam.py --arch micro --images 3 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


def build_segmenter(arch: str, device: str):
    import torch
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model, Sam2Processor

    from reasonseg_x.star.segmenters import HFSam2Segmenter

    torch.manual_seed(0)
    if arch == "hiera-tiny":
        config = Sam2Config()  # transformers' default: the sam2.1-hiera-tiny architecture, 1024 input
        processor = Sam2Processor(image_processor=Sam2ImageProcessor())
    elif arch == "hiera-large":  # the architecture of the default segmenter, facebook/sam2.1-hiera-large
        config = Sam2Config(vision_config=dict(
            model_type="sam2_vision_model", backbone_channel_list=[1152, 576, 288, 144],
            backbone_config=dict(model_type="sam2_hiera_det_model", hidden_size=144, num_attention_heads=2,
                                 blocks_per_stage=[2, 6, 36, 4], embed_dim_per_stage=[144, 288, 576, 1152],
                                 num_attention_heads_per_stage=[2, 4, 8, 16], window_size_per_stage=[8, 4, 16, 8],
                                 global_attention_blocks=[23, 33, 43],
                                 window_positional_embedding_background_size=[7, 7])))
        processor = Sam2Processor(image_processor=Sam2ImageProcessor())
    elif arch == "micro":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        import tempfile

        from _star_tiny import build_sam2

        folder = build_sam2(Path(tempfile.mkdtemp(prefix="bench-sam2-")))
        return HFSam2Segmenter(str(folder), device=device)
    else:
        raise SystemExit(f"unknown --arch {arch!r}")
    model = Sam2Model(config).eval()
    return HFSam2Segmenter("random", device=device, model=model, processor=processor)


def sampled_answers(rng, width: int, height: int, objects: int, answers: int, jitter: float, extra: float,
                    repeat: float = 0.0):
    from reasonseg_x.star.segmenters import Prompt

    def obj(x, y, w, h):
        return Prompt((x, y, x + w, y + h), ((x + w / 2, y + h / 2),))

    greedy = [obj(float(rng.uniform(0, width * 0.6)), float(rng.uniform(0, height * 0.6)),
                  float(rng.uniform(width * 0.1, width * 0.4)), float(rng.uniform(height * 0.1, height * 0.4)))
              for _ in range(objects)]
    runs = [greedy]
    for _ in range(answers - 1):
        if rng.random() < repeat:
            runs.append(list(greedy))
            continue
        run = []
        for p in greedy:
            d = rng.integers(-int(jitter), int(jitter) + 1, size=6) if jitter > 0 else [0] * 6
            x1, y1, x2, y2 = p.box
            ((px, py),) = p.points
            run.append(Prompt((x1 + d[0], y1 + d[1], x2 + d[2], y2 + d[3]), ((px + d[4], py + d[5]),)))
        if rng.random() < extra:
            run.append(obj(float(rng.uniform(0, width / 2)), float(rng.uniform(0, height / 2)), width / 4, height / 4))
        runs.append(run)
    return runs


def sam_stage(segmenter, image, runs) -> tuple[float, int, float]:
    """(wall seconds, decoder calls, CPU seconds of this process) for one image: embed once, decode
    every prompt of every run together, the way the predictor does (``segment_unique``)."""
    prompts = [p for run in runs for p in run]
    calls = segmenter.calls
    cpu = time.process_time()
    start = time.perf_counter()
    segmenter.set_image(image)
    segmenter.segment_unique(prompts)
    return time.perf_counter() - start, segmenter.calls - calls, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="hiera-tiny", choices=["hiera-tiny", "hiera-large", "micro"])
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--answers", type=int, default=32)
    ap.add_argument("--objects", type=int, default=2)
    ap.add_argument("--jitter", type=float, default=8.0, help="pixel jitter of sampled answers (0: identical)")
    ap.add_argument("--extra", type=float, default=0.25, help="chance a sampled answer adds an object")
    ap.add_argument("--repeat", type=float, default=0.0,
                    help="chance a sampled answer repeats the greedy one exactly (then no jitter / extra)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    segmenter = build_segmenter(args.arch, args.device)
    rng = np.random.default_rng(0)
    sizes = [(640, 480), (1024, 768), (800, 600), (500, 375), (1280, 720), (768, 1024)]
    cases = []
    for i in range(args.images):
        w, h = sizes[i % len(sizes)]
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        cases.append((image, sampled_answers(rng, w, h, args.objects, args.answers, args.jitter, args.extra, args.repeat)))
    for image, runs in cases:  # warm-up: the first call at a new image size or prompt count is slower
        sam_stage(segmenter, image, runs[:1])
        sam_stage(segmenter, image, runs)
    one, many, calls_many, prompts_many, distinct_many, cpu_one, cpu_many = [], [], [], [], [], [], []
    for rep in range(args.repeats):
        for i, (image, runs) in enumerate(cases):
            if (rep + i) % 2:  # alternate the order: shared machines drift
                tn, calls, cn = sam_stage(segmenter, image, runs)
                t1, _, c1 = sam_stage(segmenter, image, runs[:1])
            else:
                t1, _, c1 = sam_stage(segmenter, image, runs[:1])
                tn, calls, cn = sam_stage(segmenter, image, runs)
            one.append(t1)
            many.append(tn)
            cpu_one.append(c1)
            cpu_many.append(cn)
            calls_many.append(calls)
            prompts_many.append(sum(len(r) for r in runs))
            distinct_many.append(len({p for r in runs for p in r}))
    m1, mn = statistics.median(one), statistics.median(many)
    print(f"SAM stage, arch={args.arch}, device={args.device}, torch threads={torch.get_num_threads()}, "
          f"{args.images} images x {args.repeats} repeats; answers: repeat={args.repeat} jitter={args.jitter}px "
          f"extra={args.extra}")
    print(f"  1 answer  : median {m1 * 1000:8.1f} ms, min {min(one) * 1000:8.1f} ms / image ({args.objects} prompts)")
    print(f"  {args.answers} answers: median {mn * 1000:8.1f} ms, min {min(many) * 1000:8.1f} ms / image "
          f"({statistics.mean(prompts_many):.0f} prompts, {statistics.mean(distinct_many):.0f} distinct, "
          f"{statistics.mean(calls_many):.1f} decoder calls)")
    ratios = [b / a for a, b in zip(one, many)]
    ratio = mn / m1
    print(f"  ratio {args.answers} vs 1: {ratio:.2f}x of medians, {statistics.median(ratios):.2f}x median per image, "
          f"{min(many) / min(one):.2f}x of minima (target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})")
    # CPU seconds are steadier than wall time on a shared machine (other processes' load cancels out)
    print(f"  CPU-time ratio {args.answers} vs 1: {sum(cpu_many) / max(sum(cpu_one), 1e-9):.2f}x "
          f"({statistics.median(cpu_one) * 1000:.0f} vs {statistics.median(cpu_many) * 1000:.0f} CPU ms / image)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
