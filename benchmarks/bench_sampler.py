"""Cost of one sampled decode step's token choice (temperature 1.0, top-p 0.9): the nucleus sampler
on its top candidates vs the same rule over the whole sorted vocabulary, measured in one run.

Why it matters: on an H200 with a 7B model, MV-32 decode steps of 256 rows took ~57 ms where the
compiled forward alone takes ~11 ms; the full-vocabulary sort of 256 x 152k scores was the rest.
Logits are drawn to look like a language model's (a few strong candidates over a long flat tail),
so the nucleus is small as it is for real answers; --flat makes every row fall back (worst case).

    python benchmarks/bench_sampler.py [--rows 64] [--vocab 152064] [--device cpu|cuda] [--flat]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> int:
    import torch

    from reasonseg_x.star.generation.fast import _nucleus_full, nucleus_sample, row_keys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=152064)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--flat", action="store_true", help="flat logits: every nucleus is wider than the candidates")
    args = ap.parse_args()
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(args.rows, args.vocab, generator=generator) * (0.3 if args.flat else 2.0)
    if not args.flat:  # a handful of strong candidates per row
        top = torch.randint(0, args.vocab, (args.rows, 8), generator=generator)
        scores.scatter_(1, top, torch.linspace(18, 12, 8).repeat(args.rows, 1))
    scores = scores.to(args.device)
    keys = row_keys(torch.arange(args.rows), torch.zeros(args.rows, dtype=torch.long)).to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def timed(fn) -> tuple[float, object]:
        times, out = [], None
        for step in range(args.repeats + 1):
            sync()
            started = time.perf_counter()
            out = fn(step)
            sync()
            if step:  # the first call warms up
                times.append(time.perf_counter() - started)
        return statistics.median(times), out

    lse = torch.logsumexp(scores, dim=-1, keepdim=True)
    full_s, full = timed(lambda step: _nucleus_full(scores, lse, 0.9, keys, step))
    fast_s, fast = timed(lambda step: nucleus_sample(scores, 0.9, keys, step))
    same = bool(torch.equal(full, fast))
    print(f"{args.rows} rows x {args.vocab} tokens on {args.device} ({'flat' if args.flat else 'peaked'} logits): "
          f"full sort {full_s * 1e3:.1f} ms, candidates {fast_s * 1e3:.1f} ms: {full_s / fast_s:.1f}x faster; "
          f"same tokens: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
