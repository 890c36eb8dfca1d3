"""Throughput of the VLM + SAM pipeline (StAR): samples/s for greedy decoding and for test-time
scaling (MV-N), fast generation schedule vs the reference one, measured in the same run.

Two ways to get a model:

- ``--shape qwen2.5-vl-7b`` / ``--shape qwen3-vl-8b``: a randomly initialised model of that
  architecture built directly on the GPU in bf16 (no download), a byte-level tokenizer, and a SAM
  2.1 Hiera-L-shaped random segmenter. Answers are forced to ``--answer-tokens`` tokens (257 by
  default) by a logits processor, a valid StAR answer padded in its ``<think>`` part, so the speed
  does not depend on the weights and SAM has objects to segment. ``--shape tiny`` is the same on
  CPU with the tiny test models (checks the script end to end; its figures mean nothing);
- ``--checkpoint``: a real checkpoint (Hub id or folder) and SAM by name, answers unforced unless
  ``--answer-tokens`` is given.

For each mode (``greedy`` = tts 1, ``mv`` = tts ``--tts``) and each schedule (``fast``, and
``reference`` = today's ``generate()`` path, unless ``--skip-reference``) it prints samples/s,
prefill / decode / SAM seconds, decode ms per step, peak GPU memory, and fast/reference ratios.
Greedy answers of both schedules are compared query by query (``same_answers``), forced and
(``--check-tokens``) with the model's own logits, the latter also with transformers' vision
attention. It also times the vision tower alone with both vision attentions (``--vision-queries``)
and can profile single-query prefills (``--profile-prefill``). Compiled decoding builds its graph
for the first measured batch before timing, on answers forced to the shortest valid length. A mode that fails
is recorded with its error; the others still run. Everything goes to ``--json``.

    python benchmarks/gpu_throughput.py --shape qwen2.5-vl-7b --json out/tp7b.json
    python benchmarks/gpu_throughput.py --shape qwen2.5-vl-7b --modes greedy --n 128 --reference-n 32
    python benchmarks/gpu_throughput.py --shape qwen2.5-vl-7b --modes mv --mv-n 16 --reference-mv-n 2
    python benchmarks/gpu_throughput.py --shape qwen2.5-vl-7b --compile on --skip-reference
    python benchmarks/gpu_throughput.py --checkpoint sj9909/StAR-7B --data mini --n 64 --modes greedy,mv
    python benchmarks/gpu_throughput.py --shape tiny           # CPU dry run
    python benchmarks/gpu_throughput.py --shape small --n 16 --mv-n 4 --tts 8   # CPU-sized model, real prompt length
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: Qwen2.5-VL-7B / Qwen3-VL-8B architectures (the published configs' sizes)
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-vl-7b": dict(
        family="qwen2.5", patch=14,
        text=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                  num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                  rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0}),
        vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                    patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                    fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2)),
    # a CPU-sized Qwen2.5-VL (real vocabulary, image tokens and prompt length; 4 narrow layers)
    "small": dict(
        family="qwen2.5", patch=14,
        text=dict(vocab_size=152064, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=32768,
                  rope_parameters={"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 1000000.0}),
        vision=dict(depth=2, hidden_size=128, intermediate_size=256, num_heads=2, out_hidden_size=256,
                    patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                    fullatt_block_indexes=[1], tokens_per_second=2)),
    "qwen3-vl-8b": dict(
        family="qwen3", patch=16,
        text=dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                  num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                  rope_parameters={"rope_type": "default", "mrope_section": [24, 20, 20], "mrope_interleaved": True,
                                   "rope_theta": 5000000.0}),
        vision=dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096,
                    patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
                    deepstack_visual_indexes=[8, 16, 24])),
}


def _log(*parts: Any) -> None:
    print(*parts, flush=True)


def _tests_path() -> None:
    sys.path.insert(0, str(HERE.parent / "tests"))


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


# ----------------------------------------------------------------------------- models

def build_shaped_vlm(shape: str, device: str) -> Any:
    """A random bf16 Qwen-VL of the named architecture, built on ``device`` (no CPU init, no download)."""
    import torch
    from transformers import AutoModelForImageTextToText, Qwen2VLImageProcessor

    from reasonseg_x.star.vlm import VLM

    _tests_path()
    from _star_tiny import CHAT_TEMPLATE, QWEN_SPECIAL_TOKENS, build_tokenizer

    spec = SHAPES[shape]
    tok = build_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    text = dict(spec["text"], bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])
    special = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                   vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    patch = spec["patch"]
    if spec["family"] == "qwen2.5":
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLProcessor as Processor
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import (
            Qwen2VLVideoProcessor as Video,
        )

        image_processor = Qwen2VLImageProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2)
    else:
        from transformers import Qwen3VLConfig as Config
        from transformers import Qwen3VLProcessor as Processor
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import (
            Qwen3VLVideoProcessor as Video,
        )

        image_processor = Qwen2VLImageProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2,
                                                size={"shortest_edge": 64 * 64, "longest_edge": 16384 * 32 * 32},
                                                image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    config = Config(text_config=text, vision_config=spec["vision"], **special)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.repetition_penalty = 1.05  # as Qwen2.5-VL-Instruct's generation config
    processor = Processor(image_processor=image_processor, tokenizer=tok,
                          video_processor=Video(patch_size=patch, merge_size=2, temporal_patch_size=2),
                          chat_template=CHAT_TEMPLATE)
    processor.tokenizer.padding_side = "left"
    return VLM(model=model, processor=processor, device=device, family=spec["family"], checkpoint=f"random:{shape}",
               info={"dtype": str(dtype).replace("torch.", ""), "generation_config": {"repetition_penalty": 1.05}})


def build_models(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """(vlm, segmenter, description) for the chosen shape or checkpoint."""
    import importlib.util

    from reasonseg_x.star.device import resolve_device
    from reasonseg_x.star.segment.segmenters import load_segmenter
    from reasonseg_x.star.vlm import load_vlm

    if args.shape == "tiny":
        _tests_path()
        from _star_tiny import tiny_checkpoints

        ckpt = tiny_checkpoints()
        return load_vlm(str(ckpt.lora_old), device="cpu"), load_segmenter(str(ckpt.sam2), device="cpu"), "tiny"
    if args.shape:
        device = resolve_device(args.device)
        vlm = build_shaped_vlm(args.shape, device)
        spec = importlib.util.spec_from_file_location("bench_tts_sam", HERE / "bench_tts_sam.py")
        bench_sam = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench_sam)
        segmenter = bench_sam.build_segmenter("micro" if args.shape == "small" else "hiera-large", device)
        sam = "test-sized SAM 2" if args.shape == "small" else "SAM 2.1 Hiera-L shape"
        return vlm, segmenter, f"random {args.shape} + {sam}"
    vlm = load_vlm(args.checkpoint, base_model=args.base_model, device=args.device, merge_lora=args.merge_lora,
                   attn_implementation=args.attn_implementation)
    return vlm, load_segmenter(args.segmenter, device=vlm.device), args.checkpoint


# ----------------------------------------------------------------------------- forced answers

def answer_script(tokenizer: Any, tokens: int | None, variants: int = 4) -> list[list[int]]:
    """Token ids of ``variants`` valid StAR answers (different boxes), each exactly ``tokens``
    long with the end token: the ``<think>`` part is padded to the length (None: the shortest
    valid answer, for warm-ups)."""
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    scripts = []
    for v in range(variants):
        x, y = 150 + 90 * v, 200 + 60 * v
        answer = (f'</think><answer>[{{"label": "thing", "bbox_2d": [{x}, {y}, {x + 300}, {y + 260}], '
                  f'"point_2d": [{x + 150}, {y + 130}]}}]</answer>')
        ids = tokenizer.encode("<think>", add_special_tokens=False)
        body = tokenizer.encode(answer, add_special_tokens=False)
        filler = tokenizer.encode("reasoning ", add_special_tokens=False)
        room = 0 if tokens is None else tokens - 1 - len(ids) - len(body)
        if room < 0:
            raise SystemExit(f"--answer-tokens {tokens} is shorter than a minimal answer ({tokens - room})")
        ids += (filler * (room // max(1, len(filler)) + 1))[:room] + body + [end]
        scripts.append(ids)
    return scripts


class ForcedAnswers:
    """A logits processor forcing a fixed answer per row (row r: variant r mod V), vectorised."""

    def __init__(self, scripts: list[list[int]]) -> None:
        self.scripts = scripts
        self.prompt_length: int | None = None
        self.table: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.prompt_length is None or input_ids.shape[1] < self.prompt_length:
            self.prompt_length = input_ids.shape[1]
        if self.table is None or self.table.device != scores.device:
            self.table = torch.tensor(self.scripts, dtype=torch.long, device=scores.device)
        step = min(input_ids.shape[1] - self.prompt_length, self.table.shape[1] - 1)
        rows = torch.arange(scores.shape[0], device=scores.device) % self.table.shape[0]
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(1, self.table[rows, step][:, None], 0.0)
        return forced


# ----------------------------------------------------------------------------- measuring

def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class ForwardTimer:
    """Prefill (sequence length > 1) and decode (length 1) seconds of a model's forward calls,
    measured with forward hooks (a GPU sync at each call): for ``generate()``, whose split is not
    visible otherwise."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.totals: Counter[str] = Counter()
        self._started = 0.0
        self._kind = ""
        self.handles: list[Any] = []

    def __enter__(self) -> ForwardTimer:
        def pre(module: Any, args: Any, kwargs: Any) -> None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            self._kind = "prefill" if ids is not None and ids.shape[-1] > 1 else "decode"
            _sync()
            self._started = time.perf_counter()

        def post(module: Any, args: Any, kwargs: Any, output: Any) -> None:
            _sync()
            self.totals[f"{self._kind}_s"] += time.perf_counter() - self._started
            self.totals[f"{self._kind}_calls"] += 1

        model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model  # peft
        self.handles = [model.register_forward_pre_hook(pre, with_kwargs=True),
                        model.register_forward_hook(post, with_kwargs=True)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()


def _peak_reset() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)


def run_schedule(predictor: Any, queries: list[Any], batch: int) -> tuple[dict[str, Any], list[Any]]:
    """Predict ``queries`` in calls of ``batch`` (as the runner would); figures and outputs."""
    engine = predictor.engine
    if engine is not None:
        engine.stats.clear()
    timer = ForwardTimer(predictor.vlm.model) if engine is None else None
    statuses: Counter[str] = Counter()
    stage: Counter[str] = Counter()
    outputs: list[Any] = []
    _peak_reset()
    started = time.perf_counter()
    if timer is not None:
        timer.__enter__()
    try:
        for start in range(0, len(queries), batch):
            for out in predictor.predict(queries[start:start + batch]):
                outputs.append(out)
                statuses[out.status] += 1
                for key, value in (out.timings or {}).items():
                    stage[key] += value
    finally:
        if timer is not None:
            timer.__exit__(None, None, None)
    _sync()
    seconds = time.perf_counter() - started
    if engine is not None:
        prefill, decode, steps = engine.stats["prefill_s"], engine.stats["decode_s"], engine.stats["steps"]
    else:
        prefill, decode, steps = timer.totals["prefill_s"], timer.totals["decode_s"], timer.totals["decode_calls"]
    result = {"samples": len(queries), "queries_per_call": batch, "seconds": round(seconds, 3),
              "samples_per_s": round(len(queries) / seconds, 4), "prefill_s": round(prefill, 3),
              "decode_s": round(decode, 3), "decode_steps": int(steps),
              "decode_ms_per_step": round(1000 * decode / steps, 2) if steps else None,
              "generate_s": round(stage["generate_s"], 3), "sam_s": round(stage["segment_s"], 3),
              "parse_s": round(stage["parse_s"], 3), "peak_gpu_gib": _peak_gib(), "statuses": dict(statuses)}
    if engine is not None:
        result.update(prepare_s=round(engine.stats["prepare_s"], 3))
        result.update(decode_batches=int(engine.stats["batches"]), rows=int(engine.stats["rows"]),
                      prefill_rows=int(engine.stats["prefill_rows"]), compile_fallback=engine.compile_fallback)
    return result, outputs


def check_unforced_greedy(vlm: Any, segmenter: Any, queries: list[Any], tokens: int, reference_batch: int,
                          compile: str = "auto") -> dict[str, str]:
    """Greedy answers the model itself chooses (no forcing), fast vs reference: ``same/total``.
    On random weights the logits are nearly flat, so this is a strict test of equal arithmetic."""
    from reasonseg_x.star.predictor import StarPredictor

    answers = {}
    for schedule in ("fast", "reference"):
        predictor = StarPredictor("unused", vlm=vlm, segmenter=segmenter, tts=1, max_new_tokens=tokens,
                                  generation=schedule, batch_size=reference_batch if schedule == "reference" else None,
                                  compile=compile)
        answers[schedule] = [o.raw_text for o in predictor.predict(queries)]
        if predictor.engine is not None:  # the same engine (no new graph) with transformers' vision attention
            predictor.engine.packed_vision_attention = False
            answers["fast, transformers' vision attention"] = [o.raw_text for o in predictor.predict(queries)]
    return {name: f"{sum(a == b for a, b in zip(texts, answers['reference']))}/{len(queries)}"
            for name, texts in answers.items() if name != "reference"}


def profile_prefill(predictor: Any, queries: list[Any], out: str | None) -> str:
    """torch.profiler's table of one fast-schedule prefill per query (no decoding): where prefill time goes."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from reasonseg_x.star.answer.prompts import VLM_FRAME, build_prompt

    engine = predictor.engine
    prepared = [engine._prepare(q.image.open(), build_prompt(q.text, predictor.style), VLM_FRAME) for q in queries]
    with torch.inference_mode():
        engine._prefill(prepared[:1])  # warm
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        with profile(activities=activities) as prof:
            for p in prepared:
                engine._prefill([p])
            _sync()
    averages = prof.key_averages()
    table = ""
    for key in ("self_cuda_time_total", "self_device_time_total", "self_cpu_time_total"):
        try:
            table = averages.table(sort_by=key, row_limit=25, max_name_column_width=60)
            break
        except (AttributeError, KeyError, ValueError):
            continue
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(table)
    return table


def compile_warmup(predictor: Any, queries: list[Any], rows: int, script: list[list[int]]) -> None:
    """Build the compiled decode graph of the first measured batch's row bucket before timing: the
    engine alone (no SAM) on that batch's queries, answers forced to the shortest valid answer
    (the same buffer shapes, so the same graph; a few decode steps instead of hundreds)."""
    from reasonseg_x.star.answer.prompts import build_prompt

    engine, tts = predictor.engine, predictor.tts
    first = queries[:max(1, rows // tts)]
    shortest = answer_script(engine.tokenizer, None, variants=len(script))
    engine.generate([q.image.open().convert("RGB") for q in first], [build_prompt(q.text, predictor.style) for q in first],
                    n=tts, do_sample=tts > 1, max_new_tokens=predictor.max_new_tokens,
                    logits_processor=ForcedAnswers(shortest), seeds=list(range(len(first))))


def vision_tower_ms(vlm: Any, queries: list[Any], repeats: int = 3) -> dict[str, float]:
    """Milliseconds per image of the vision tower alone at the pipeline's frame, with transformers'
    attention and with the packed one the fast schedule uses (:mod:`reasonseg_x.star.generation.attention`)."""
    import torch

    from reasonseg_x.star.generation.attention import (
        VISION_ATTENTION,
        attention_implementation,
        packed_attention_configs,
        register_attention,
    )
    from reasonseg_x.star.answer.prompts import VLM_FRAME

    model = vlm.model.get_base_model() if hasattr(vlm.model, "get_base_model") else vlm.model
    visual = next(m for name, m in model.named_modules() if name.endswith("visual"))
    configs = packed_attention_configs(vlm.model) if register_attention() else []
    inputs = [vlm.build_inputs([q.image.open()], ["x"], frame=VLM_FRAME) for q in queries]
    figures: dict[str, float] = {}
    for name, chosen in (("transformers", []), ("packed", configs)):
        with torch.inference_mode(), attention_implementation(chosen, VISION_ATTENTION):
            visual(inputs[0]["pixel_values"], grid_thw=inputs[0]["image_grid_thw"])  # warm-up
            _sync()
            started = time.perf_counter()
            for _ in range(repeats):
                for x in inputs:
                    visual(x["pixel_values"], grid_thw=x["image_grid_thw"])
            _sync()
        figures[f"{name}_ms"] = round(1000 * (time.perf_counter() - started) / (repeats * len(inputs)), 2)
    figures["packed_windows"] = bool(configs)
    return figures


def _count(text: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _modes(text: str, tts: int) -> list[int]:
    """``greedy,mv`` or tts values (``1,32``) -> tts values."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        out.append(1 if part == "greedy" else tts if part == "mv" else int(part))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=[*SHAPES, "tiny"], default=None,
                    help="random model of this architecture (no download); tiny = CPU dry run")
    ap.add_argument("--tiny", action="store_true", help="same as --shape tiny")
    ap.add_argument("--checkpoint", default="sj9909/StAR-7B", help="real checkpoint (when no --shape)")
    ap.add_argument("--base-model", default=None)
    ap.add_argument("--segmenter", default="sam2.1-hiera-large")
    ap.add_argument("--data", default=None, help="default: synth:160:11 (shapes), mini (checkpoint)")
    ap.add_argument("--split", default=None)
    ap.add_argument("--n", type=int, default=64, help="samples for greedy")
    ap.add_argument("--mv-n", type=int, default=8, help="samples (queries) for MV")
    ap.add_argument("--modes", default="greedy,mv", help="greedy, mv, or tts values (1,32)")
    ap.add_argument("--tts", type=int, default=32, help="answers per query in the mv mode")
    ap.add_argument("--answer-tokens", type=int, default=None,
                    help="force answers of this many tokens (default 257 with --shape; 0 = unforced)")
    ap.add_argument("--max-new-tokens", type=int, default=1024)
    ap.add_argument("--max-batch-rows", type=int, default=None, help="fast schedule: rows per decode batch")
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                    help="fast schedule: compiled decoding (auto: on with CUDA)")
    ap.add_argument("--reference-n", type=int, default=None,
                    help="samples for the reference schedule's greedy (default --n; samples/s is per sample)")
    ap.add_argument("--reference-mv-n", type=int, default=None,
                    help="queries for the reference schedule's MV (default --mv-n)")
    ap.add_argument("--skip-reference", action="store_true", help="measure the fast schedule only")
    ap.add_argument("--decode-attention", choices=["grouped", "transformers"], default="grouped",
                    help="fast schedule: per-KV-group decode attention, or transformers' sdpa (repeat_kv under a mask)")
    ap.add_argument("--vision-attention", choices=["packed", "transformers"], default="packed",
                    help="fast schedule: vision windows in one sdpa call per layer, or transformers' call per window")
    ap.add_argument("--vision-queries", type=_count, default=4,
                    help="images of the vision-tower timing, both attentions (0 = skip)")
    ap.add_argument("--profile-prefill", type=_count, default=0,
                    help="profile this many single-query prefills (torch.profiler table; 0 = skip)")
    ap.add_argument("--reference-batch", type=int, default=32, help="reference greedy queries per call (paper: 32)")
    ap.add_argument("--check-queries", type=int, default=8, help="queries of the unforced greedy comparison")
    ap.add_argument("--check-tokens", type=int, default=32,
                    help="tokens of the unforced greedy comparison of both schedules (0 = skip)")
    ap.add_argument("--merge-lora", action="store_true")
    ap.add_argument("--attn-implementation", default=None, help="e.g. flash_attention_2, sdpa")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--warmup", type=int, default=2, help="queries run once per schedule before timing")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import torch

    from reasonseg_x.star.generation.fast import default_max_batch_rows
    from reasonseg_x.star.predictor import StarPredictor

    if args.tiny:
        args.shape = "tiny"
    if args.shape == "tiny":
        _tests_path()
        from _star_tiny import tiny_checkpoints

        tiny_checkpoints()  # one torch thread; the tiny models are built once
        args.n, args.mv_n = min(args.n, 8), min(args.mv_n, 4)
        args.tts = min(args.tts, 4)
        args.max_new_tokens = min(args.max_new_tokens, 160)
    data = args.data or ("synth:160:11" if args.shape else "mini")
    forced = args.answer_tokens if args.answer_tokens is not None else (257 if args.shape not in (None, "tiny") else
                                                                        128 if args.shape == "tiny" else 0)
    started = time.perf_counter()
    vlm, segmenter, what = build_models(args)
    build_s = time.perf_counter() - started
    modes = _modes(args.modes, args.tts)
    queries = _queries(data, args.split, max(args.n if 1 in modes else 0, args.mv_n if any(t > 1 for t in modes) else 0))
    # MV answers differ per row (4 boxes: SAM has distinct prompts); greedy answers are one text,
    # so that both schedules' greedy predictions must agree whatever the row order
    scripts = {tts: answer_script(vlm.tokenizer, forced, variants=1 if tts == 1 else 4) for tts in modes} if forced else {}
    header = {"model": what, "segmenter": type(segmenter).__name__, "data": data, "device": str(vlm.device),
              "gpu": torch.cuda.get_device_name() if str(vlm.device).startswith("cuda") else None,
              "dtype": vlm.info.get("dtype"), "build_s": round(build_s, 1), "answer_tokens": forced or None,
              "max_new_tokens": args.max_new_tokens, "compile": args.compile, "max_batch_rows": args.max_batch_rows,
              "decode_attention": args.decode_attention, "vision_attention": args.vision_attention,
              "torch": torch.__version__, "transformers": __import__("transformers").__version__}
    _log(json.dumps(header))
    results: list[dict[str, Any]] = []
    ratios: dict[str, Any] = {}
    if args.vision_queries:
        header["vision_tower"] = vision_tower_ms(vlm, queries[:args.vision_queries])
        _log(f"[vision tower] ms per image: {json.dumps(header['vision_tower'])}")
    for tts in modes:
        mode = "greedy" if tts == 1 else f"mv-{tts}"
        n = args.n if tts == 1 else args.mv_n
        texts: dict[str, list[str | None]] = {}
        speeds: dict[str, float] = {}
        for schedule in (["fast"] if args.skip_reference else ["fast", "reference"]):
            entry: dict[str, Any] = {"mode": mode, "tts": tts, "schedule": schedule}
            limit = (args.reference_n if tts == 1 else args.reference_mv_n) if schedule == "reference" else None
            subset = queries[:min(n, limit)] if limit else queries[:n]
            try:
                script = scripts.get(tts)
                factory = (lambda script=script: ForcedAnswers(script)) if script else None
                predictor = StarPredictor("unused", vlm=vlm, segmenter=segmenter, tts=tts, seed=42,
                                          max_new_tokens=args.max_new_tokens, generation=schedule,
                                          max_batch_rows=args.max_batch_rows, compile=args.compile,
                                          logits_processor=factory, keep_answers=False,
                                          vision_attention=args.vision_attention)
                if predictor.engine is not None:
                    predictor.engine.grouped_attention = args.decode_attention == "grouped"
                batch = predictor.default_batch_size if schedule == "fast" else (
                    args.reference_batch if tts == 1 else 1)
                warmup = args.warmup if tts == 1 else min(args.warmup, 1)  # one MV query fills a batch
                if warmup:
                    _log(f"[{mode} {schedule}] warm-up ({warmup} queries)")
                    warm = time.perf_counter()
                    if predictor.engine is not None and predictor.engine.compile and script:
                        # first the measured batch's graph: the warm-up's smaller batch then reuses it
                        compile_warmup(predictor, subset[:min(len(subset), batch)], predictor.engine.batch_rows(tts),
                                       script)
                    predictor.predict(subset[:warmup])
                    entry["warmup_s"] = round(time.perf_counter() - warm, 2)
                _log(f"[{mode} {schedule}] {len(subset)} samples, {batch} per call")
                figures, outputs = run_schedule(predictor, subset, batch)
                entry.update(figures)
                texts[schedule] = [o.raw_text for o in outputs]
                entry["compiled"] = bool(predictor.engine is not None and predictor.engine.compile)
                speeds[schedule] = figures["samples_per_s"]
                peak = f"{figures['peak_gpu_gib']} GiB" if figures["peak_gpu_gib"] is not None else "n/a"
                _log(f"[{mode} {schedule}] {figures['samples_per_s']:.3f} samples/s  prefill {figures['prefill_s']:.1f}s"
                     f"  decode {figures['decode_s']:.1f}s ({figures['decode_ms_per_step']} ms/step)  "
                     f"SAM {figures['sam_s']:.1f}s  prepare {figures.get('prepare_s', 0):.1f}s  peak {peak}  "
                     f"{figures['statuses']}")
            except Exception as exc:  # noqa: BLE001 - one failed mode must not lose the others
                entry["error"] = f"{type(exc).__name__}: {exc}"
                entry["traceback"] = traceback.format_exc(limit=8)
                _log(f"[{mode} {schedule}] FAILED: {entry['error']}")
            results.append(entry)
        if len(speeds) == 2:
            ratios[mode] = round(speeds["fast"] / speeds["reference"], 2)
            line = f"[{mode}] fast / reference: {ratios[mode]}x"
            if tts == 1:
                compared = min(len(texts["fast"]), len(texts["reference"]))
                same = sum(a == b for a, b in zip(texts["fast"], texts["reference"]))
                ratios[f"{mode}_same_answers"] = f"{same}/{compared}"
                line += f"; same greedy answers: {same}/{compared}"
            _log(line)
        if tts == 1 and len(speeds) == 2 and args.check_tokens:
            checks = check_unforced_greedy(vlm, segmenter, queries[:args.check_queries], args.check_tokens,
                                           args.reference_batch, args.compile)
            ratios["greedy_unforced_same_answers"] = checks.pop("fast")
            ratios.update({f"greedy_unforced_same_answers ({name})": same for name, same in checks.items()})
            _log(f"[greedy] unforced greedy, {args.check_tokens} tokens, same answers as the reference: "
                 f"{ratios['greedy_unforced_same_answers']}; " + "; ".join(f"{k}: {v}" for k, v in checks.items()))
    if args.profile_prefill:
        predictor = StarPredictor("unused", vlm=vlm, segmenter=segmenter, tts=1, generation="fast", compile="off")
        table = profile_prefill(predictor, queries[:args.profile_prefill],
                                str(Path(args.json).with_suffix(".prefill-profile.txt")) if args.json else None)
        _log(f"[prefill profile] {args.profile_prefill} queries, one prefill each\n{table}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"setup": header, "results": results, "ratios": ratios}, indent=1))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
