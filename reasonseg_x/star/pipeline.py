"""The shared two-stage pipeline of StAR, VisionReasoner and Seg-Zero: a Qwen-VL answers boxes and
points for an implicit query, SAM turns them into a mask.

Generation goes through one interface,
:class:`~reasonseg_x.star.generation.backend.GenerationBackend`: answers for a batch of queries,
streamed as groups of them finish. With the transformers backend the ``generation`` option picks
``fast`` (the default: :class:`~reasonseg_x.star.generation.fast.FastGenerator`, one prefill per
query, several queries' answer rows decoded together in length-sorted batches, and the SAM stage
of each finished batch in a worker thread while the next one decodes) or ``reference`` (the paper's
schedule, :class:`~reasonseg_x.star.generation.reference.ReferenceGenerator`: one batched
``generate`` per chunk). vLLM and an OpenAI-compatible endpoint are backends of their own.

Then per query every answer is parsed (status ok / no_target / parse_error),
mapped from the VLM frame to image pixels and clipped, and all object prompts of all answers are
decoded by SAM on one image embedding in batched calls. One answer: the mask is the OR over its
objects. N answers: the runs go to an aggregator from :mod:`reasonseg_x.tts` (majority vote by default).

Sampling for ``tts > 1`` is seeded per query (``seed`` mixed with a CRC of the sample id; the fast
engine further per answer index), so a query's answers do not depend on which batch, shard or
resumed run it lands in.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from reasonseg_x import masks as rle
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.predictors.protocol import Output, Query
from reasonseg_x.star.generation.backend import GenerationBackend, Sampling
from reasonseg_x.star.options import PipelineOptions
from reasonseg_x.star.segment.base import answer_prompts

__all__ = ["VlmSamPipeline", "PARSER_STYLES"]

#: prompt style -> answer parser style
PARSER_STYLES = {"star": "star", "star_muse_mmr": "star", "star_refcoco": "star",
                 "visionreasoner": "visionreasoner", "segzero": "segzero"}


def _stable_seed(seed: int, sample_id: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(sample_id.encode("utf-8"))) % (2 ** 31)


def _degenerate_sampling(tts: int, top_k: int | None, generation_config: Mapping[str, Any]) -> str | None:
    """Why N sampled answers would all be the greedy one, or None. Sampling inherits ``top_k`` from
    the checkpoint's generation config (as ``generate()`` does); Qwen2.5-VL-Instruct's sets 1."""
    if tts < 2 or top_k is not None:
        return None
    if generation_config.get("top_k") != 1:
        return None
    return (f"tts={tts} samples with the checkpoint's generation config top_k=1: every answer is the greedy one "
            "and the vote sees one answer N times; pass -a top_k=N (e.g. 50) to sample")


def _generation_backend(vlm: Any, opts: PipelineOptions) -> GenerationBackend:
    """The backend that generates with ``vlm``: a loaded transformers VLM runs the fast engine
    (``generation=fast``, where the installed transformers fits it, see
    :mod:`reasonseg_x.star.compat`; else the reference schedule, and run.json says why) or the
    reference schedule; anything else (vLLM, an endpoint, a caller's own) is a backend itself."""
    from reasonseg_x.star.vlm import VLM

    if not isinstance(vlm, VLM):
        if not isinstance(vlm, GenerationBackend):
            raise TypeError(f"vlm={type(vlm).__name__} is neither a loaded VLM nor a GenerationBackend "
                            "(see reasonseg_x.star.generation.backend)")
        return vlm
    from reasonseg_x.star.generation.reference import ReferenceGenerator

    if opts.generation == "reference":
        return ReferenceGenerator(vlm, batch_size=opts.batch_size)
    from reasonseg_x.star.compat import fast_engine_unsupported

    reason = fast_engine_unsupported(vlm.model)
    if reason is not None:
        import warnings

        warnings.warn(f"the fast generation engine does not fit the installed transformers ({reason}); "
                      "running the reference schedule", UserWarning, stacklevel=3)
        return ReferenceGenerator(vlm, batch_size=opts.batch_size, fallback=reason)
    from reasonseg_x.star.generation.fast import FastGenerator

    compiled = opts.compile == "on" or (opts.compile == "auto" and str(vlm.device).startswith("cuda"))
    return FastGenerator(vlm, max_batch_rows=opts.max_batch_rows, compile=compiled,
                         packed_vision_attention=opts.vision_attention == "packed")


def _annotate_clusters(answers: list[dict[str, Any]], explain: dict[str, Any]) -> None:
    """Write the majority vote's clusters into the answers kept in the predictions file: each
    object's ``cluster``, and per answer the clusters it joined and whether the vote ``kept`` one
    of them (what ``reasonseg-x show`` displays)."""
    for number, cluster in enumerate(explain.get("clusters", ())):
        for run, obj in cluster["members"]:
            objects = answers[run]["objects"]
            if obj < len(objects):
                objects[obj]["cluster"] = number
            answer = answers[run]
            joined = answer.setdefault("_clusters", [])
            if number not in joined:
                joined.append(number)
            answer["kept"] = bool(answer.get("kept")) or cluster["kept"]
    for answer in answers:
        joined = answer.pop("_clusters", None)
        if joined is not None:
            answer["cluster"] = ",".join(map(str, joined))
        else:
            answer.setdefault("kept", False)


class _SamWorker:
    """One worker thread for the SAM stage (parse + segment + vote), on its own CUDA stream when
    SAM runs on a GPU, so that it overlaps the next batch's decoding instead of adding to it.

    When the segmenter has CPU work to do per image (``prepares_ahead``: resizing and normalising
    to its input size), a few more threads do it for the next ``LOOKAHEAD`` images while the SAM
    thread keeps the GPU busy with the current one; at most that many prepared images are held."""

    LOOKAHEAD = 4

    def __init__(self, segmenter: Any) -> None:
        self.segmenter = segmenter
        self.stream: Any = None

    def __enter__(self) -> _SamWorker:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        device = str(getattr(self.segmenter, "device", "cpu"))
        if device.startswith("cuda"):
            import torch

            self.stream = torch.cuda.Stream(device=torch.device(device))
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam-stage")
        self.prepare_pool = (ThreadPoolExecutor(max_workers=self.LOOKAHEAD, thread_name_prefix="sam-prepare")
                             if getattr(self.segmenter, "prepares_ahead", False) else None)
        self._images: list[Any] = []
        self._prepared: dict[int, Any] = {}
        self._next = 0  # the next job whose image is not being prepared yet
        self._current = 0  # the job the SAM thread is on
        self._lock = threading.Lock()
        return self

    def submit(self, fn: Callable[..., Any], query: Query, image: Any, *args: Any) -> Any:
        """Run ``fn(query, image, prepared image or None, *args)`` on the SAM thread, in submission order."""
        with self._lock:
            job = len(self._images)
            self._images.append(image)
        self._prepare_ahead(self._current + self.LOOKAHEAD)
        return self.pool.submit(self._run, job, fn, query, image, *args)

    def _prepare_ahead(self, last: int) -> None:
        if self.prepare_pool is None:
            return
        with self._lock:
            while self._next <= min(last, len(self._images) - 1):
                self._prepared[self._next] = self.prepare_pool.submit(self.segmenter.prepare_image,
                                                                      self._images[self._next])
                self._next += 1

    def _take_prepared(self, job: int) -> Any:
        """The job's prepared image, or None (not prepared ahead, or preparing it failed: then
        ``set_image`` does it again and raises where it always did)."""
        self._current = job
        self._prepare_ahead(job + self.LOOKAHEAD)
        with self._lock:
            future = self._prepared.pop(job, None)
            self._images[job] = None  # the pipeline holds the image; do not keep it twice
        try:
            return future.result() if future is not None else None
        except Exception:  # noqa: BLE001 - reported by set_image on the SAM thread instead
            return None

    def _run(self, job: int, fn: Callable[..., Any], query: Query, image: Any, *args: Any) -> Any:
        prepared = self._take_prepared(job)
        if self.stream is None:
            return fn(query, image, prepared, *args)
        import torch

        with torch.cuda.stream(self.stream):
            result = fn(query, image, prepared, *args)
        self.stream.synchronize()
        return result

    def __exit__(self, *exc: Any) -> None:
        self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
        if self.prepare_pool is not None:
            self.prepare_pool.shutdown(wait=True, cancel_futures=True)


class VlmSamPipeline:
    """A Qwen-VL (full model or LoRA adapter) plus a SAM segmenter, with optional test-time scaling.

    Its arguments are the fields of :class:`~reasonseg_x.star.options.PipelineOptions`; the model
    catalog entry named by ``catalog_name`` sets this model's defaults and pinned values. Besides
    them the constructor takes loaded objects that callers share between predictors: ``vlm`` (a
    loaded :class:`~reasonseg_x.star.vlm.VLM`, or any
    :class:`~reasonseg_x.star.generation.backend.GenerationBackend`), a
    ``segmenter`` object in place of its name, and ``logits_processor`` (a factory called once per
    ``generate``; tests script answers with it).
    """

    needs_ground_truth: ClassVar[bool] = False
    Options: ClassVar[type[PipelineOptions]] = PipelineOptions
    #: the entry of baselines/models.yaml whose defaults and pins apply
    catalog_name: ClassVar[str] = "star"
    #: how answer coordinates are rounded to pixels (see reasonseg_x.star.answer.coords.to_image_frame)
    coord_rounding: ClassVar[str] = "half_up"

    def __init__(self, checkpoint: str | None = None, *, vlm: Any = None,
                 logits_processor: Callable[[], Any] | None = None, **options: Any) -> None:
        from reasonseg_x.predictors.catalog import catalog_options
        from reasonseg_x.star.answer.coords import COORDS_FAMILIES
        from reasonseg_x.tts import AGGREGATORS, get_aggregator, majority_vote

        segmenter = options.get("segmenter")
        if segmenter is not None and not isinstance(segmenter, str):  # a loaded Segmenter object
            options.pop("segmenter")
        if checkpoint is not None:
            options["checkpoint"] = checkpoint
        self.options = opts = catalog_options(self.catalog_name, self.Options, options)
        self.tts = opts.tts
        self.style = opts.style
        self.aggregate = get_aggregator(opts.aggregator)
        self.aggregator_options: dict[str, Any] = {}
        if AGGREGATORS.get(opts.aggregator) is majority_vote:  # its options; other aggregators use their defaults
            self.aggregator_options = dict(opts.vote_thresholds, cluster_agg_mode=opts.cluster_agg_mode)
        self.seed = opts.seed
        self.batch_size = opts.batch_size
        self.max_new_tokens = opts.max_new_tokens
        self.temperature = opts.temperature
        self.top_p = opts.top_p
        self.top_k = opts.top_k
        self.keep_answers = opts.keep_answers
        self.logits_processor = logits_processor
        if segmenter is None or isinstance(segmenter, str):  # a typo fails now, not after the VLM has loaded
            from reasonseg_x.star.segment.segmenters import resolve_segmenter

            resolve_segmenter(opts.segmenter)
        if vlm is None and opts.backend == "openai":
            from reasonseg_x.star.generation.openai_backend import load_openai

            vlm = load_openai(opts)
        if vlm is None and opts.backend == "vllm":
            from reasonseg_x.star.generation.vllm_backend import load_vllm

            vlm = load_vllm(opts.checkpoint, base_model=opts.base_model, dtype=opts.dtype, batch_size=opts.batch_size)
        if vlm is None:
            from reasonseg_x.star.vlm import load_vlm

            vlm = load_vlm(opts.checkpoint, base_model=opts.base_model, device=opts.device, dtype=opts.dtype,
                           merge_lora=opts.merge_lora, attn_implementation=opts.attn_implementation)
        #: what was loaded (or given): a transformers VLM, a vLLM engine, an endpoint client
        self.vlm = vlm
        #: what generates the answers (docs/generation.md)
        self.generator: GenerationBackend = _generation_backend(vlm, opts)
        self.sampling_note = _degenerate_sampling(self.tts, self.top_k, self.generator.generation_config())
        if self.sampling_note:
            import warnings

            warnings.warn(self.sampling_note, UserWarning, stacklevel=2)
        #: the coordinate rule of the answers: ``coords`` when set, else the VLM's own family
        self.coord_family = COORDS_FAMILIES.get(opts.coords, self.generator.family)
        if segmenter is None or isinstance(segmenter, str):
            from reasonseg_x.star.segment.segmenters import load_segmenter, needs_device

            seg_device = None
            if needs_device(opts.segmenter):  # the box segmenter runs anywhere, without torch
                from reasonseg_x.star.device import resolve_device

                # vLLM and endpoints hold their GPUs themselves; SAM then follows ``device``
                seg_device = opts.segmenter_device or (self.generator.device if opts.backend == "hf"
                                                       else resolve_device(opts.device))
            segmenter = load_segmenter(opts.segmenter, device=seg_device)
        self.segmenter = segmenter

    @property
    def engine(self) -> Any:
        """The fast engine when it generates (benchmarks read its counters), else None."""
        return self.generator if self.generator.schedule == "fast" else None

    @property
    def default_batch_size(self) -> int:
        """Queries per predict() call the runner should use: the backend's answer (the reference
        schedule: the paper's batches; the fast engine: two decode batches' worth; an endpoint:
        enough to keep its requests in flight)."""
        return self.generator.default_batch_size(self.tts, self.batch_size)

    # ------------------------------------------------------------------ predict

    def prompt_for(self, query_text: str) -> str:
        """The instruction sent with one query's image (a zero-shot model overrides it with its own format's)."""
        from reasonseg_x.star.answer.prompts import build_prompt

        return build_prompt(query_text, self.style)

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        outputs: list[Output | None] = [None] * len(queries)
        ready: list[tuple[int, Query, Any]] = []
        for i, query in enumerate(queries):
            try:
                ready.append((i, query, query.image.open()))
            except InvalidInputError as exc:
                outputs[i] = Output(status="error", error=str(exc))
        sampling = self._sampling()
        stream = self.generator.answers(
            [image for _, _, image in ready], [self.prompt_for(q.text) for _, q, _ in ready], sampling,
            [_stable_seed(self.seed, q.id) if sampling.do_sample else None for _, q, _ in ready],
            self.logits_processor)
        if self.generator.overlap_sam:  # SAM of batch k runs in a worker (its own CUDA stream) while k+1 decodes
            with _SamWorker(self.segmenter) as worker:
                pending = []
                for done in stream:
                    for row, texts in zip(done.rows, done.texts):
                        i, query, image = ready[row]
                        if isinstance(texts, Exception):
                            outputs[i] = Output(status="error", error=str(texts))
                        else:
                            pending.append((i, worker.submit(self._finish, query, image, texts,
                                                             done.seconds / len(done.rows))))
                for i, future in pending:
                    outputs[i] = future.result()
        else:  # each group is parsed, segmented and voted as it arrives (an endpoint: while others are in flight)
            for done in stream:
                for row, texts in zip(done.rows, done.texts):
                    i, query, image = ready[row]
                    if isinstance(texts, Exception):  # a request that failed for good
                        outputs[i] = Output(status="error", error=str(texts))
                    else:
                        outputs[i] = self._finish(query, image, None, texts, done.seconds / len(done.rows))
        return [o if o is not None else Output(status="error", error="not predicted") for o in outputs]

    def _sampling(self) -> Sampling:
        """Greedy for one answer; N sampled answers with the options' settings for ``tts`` > 1."""
        if self.tts == 1:
            return Sampling(n=1, do_sample=False, max_new_tokens=self.max_new_tokens)
        return Sampling(n=self.tts, do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                        max_new_tokens=self.max_new_tokens)

    def run_info(self) -> dict[str, Any]:
        """What run.json records per session: the backend, the generation schedule (and why the
        fast one fell back, if it did) and what the backend reports (an endpoint: its model id,
        the request parameters, whether ``n`` was honoured, retries)."""
        info: dict[str, Any] = {"backend": self.options.backend, "coords_family": self.coord_family,
                                "generation": self.generator.schedule}
        if self.sampling_note:
            info["sampling_warning"] = self.sampling_note
        from reasonseg_x.star.segment.segmenters import Segmenter

        if isinstance(self.segmenter, Segmenter) and self.segmenter.fallback:
            info["segmenter_fallback"] = self.segmenter.fallback
        return {**info, **self.generator.run_info()}

    def _parse(self, text: str, width: int, height: int) -> tuple[Any, list[Any]]:
        """(ParsedAnswer, its objects mapped to image pixels)."""
        from reasonseg_x.star.answer.coords import to_image_frame
        from reasonseg_x.star.answer.parser import parse_answer
        from reasonseg_x.star.answer.prompts import VLM_FRAME

        parsed = parse_answer(text, style=PARSER_STYLES[self.style])
        if parsed.status != "ok" or not parsed.objects:
            return parsed, []
        mapped = to_image_frame(parsed.objects, width, height, model_family=self.coord_family, frame=VLM_FRAME,
                                rounding=self.coord_rounding)
        return parsed, list(mapped)

    def _finish(self, query: Query, image: Any, prepared: Any, texts: Sequence[str], generate_s: float) -> Output:
        """Parse, segment and vote one query's answers (``prepared``: its image made ready for SAM
        ahead of time, or None)."""
        from reasonseg_x.star.answer.parser import vote_kind

        started = time.perf_counter()
        height, width = image.height, image.width
        parsed_runs = [self._parse(text, width, height) for text in texts]
        prompts_per_run = [answer_prompts(objs) for _, objs in parsed_runs]
        flat = [p for prompts in prompts_per_run for p in prompts]
        parse_s = time.perf_counter() - started
        seg_started = time.perf_counter()
        if flat:
            self.segmenter.set_image(prepared if prepared is not None else image)
            found = self.segmenter.segment_unique(flat)
        else:
            from reasonseg_x.star.segment.segmenters import SegmentResult

            found = SegmentResult(np.zeros((0, height, width), bool), np.zeros(0, np.float32), np.zeros(0, np.int64))
        segment_s = time.perf_counter() - seg_started
        timings = {"generate_s": round(generate_s, 4), "parse_s": round(parse_s, 4), "segment_s": round(segment_s, 4)}

        runs: list[list[tuple[np.ndarray, float, str | None]] | None] = []
        answers: list[dict[str, Any]] = []
        offset = 0
        for (parsed, objects), prompts, text in zip(parsed_runs, prompts_per_run, texts):
            count = len(prompts)
            rows = range(offset, offset + count)
            run_masks = [found.mask(i) for i in rows]  # views: repeated objects share one mask
            run_scores = [found.score(i) for i in rows]
            offset += count
            # a single answer without a readable block is a parse error; among N sampled answers
            # StAR counts a missing <answer> block as a "no object" vote (parser.vote_kind)
            kind = vote_kind(parsed) if self.tts > 1 else {"ok": "objects", "no_target": "no_object"}.get(
                parsed.status, "abstain")
            if kind == "abstain":
                runs.append(None)
            elif kind == "no_object" or not objects:
                runs.append([])
            else:
                runs.append([(run_masks[k], float(run_scores[k]), getattr(objects[k], "label", None))
                             for k in range(count)])
            entry: dict[str, Any] = {"status": parsed.status, "objects": [
                {"label": getattr(o, "label", None), "bbox": p.box and [round(v, 2) for v in p.box],
                 "points": [list(pt) for pt in p.points], "score": round(float(s), 4)}
                for o, p, s in zip(objects, prompts, run_scores)]}
            if parsed.status == "parse_error" and getattr(parsed, "error", None):
                entry["error"] = str(parsed.error)
            if self.tts > 1 and self.keep_answers:
                entry["raw_text"] = text
            answers.append(entry)

        agg_started = time.perf_counter()
        explain: dict[str, Any] | None = {} if self.tts > 1 and self.aggregator_options else None
        mask, status = self._combine(runs, (height, width), explain)
        vote = None
        if explain:
            _annotate_clusters(answers, explain)
            vote = {"decision": explain["decision"], "k": explain.get("k"),
                    "clusters": [{k: v for k, v in c.items() if k != "members"} for c in explain.get("clusters", ())]}
        if not any(parsed.status in ("ok", "no_target") for parsed, _ in parsed_runs):
            mask, status = None, "parse_error"  # no answer was readable: a failure, not a "no target"
        if self.tts > 1:
            timings["aggregate_s"] = round(time.perf_counter() - agg_started, 4)
        if (height, width) != (query.height, query.width):
            mask = rle.resize_nearest(rle.encode(mask), query.height, query.width) if mask is not None else None
        elif mask is not None:
            mask = rle.encode(mask)
        first = prompts_per_run[0] if self.tts == 1 else []
        return Output(mask=mask, status=status, raw_text=texts[0] if texts else None,
                      boxes=[list(p.box) for p in first if p.box is not None] or None,
                      points=[list(pt) for p in first for pt in p.points] or None,
                      candidates=answers, timings=timings, meta={"vote": vote} if vote else None)

    def _combine(self, runs: Sequence[Any], shape: tuple[int, int],
                 explain: dict[str, Any] | None = None) -> tuple[np.ndarray | None, str]:
        if self.tts == 1:
            run = runs[0]
            if run is None:
                return None, "parse_error"
            if not run:
                return None, "no_target"
            return np.logical_or.reduce([m for m, _, _ in run]), "ok"
        valid = [r for r in runs if r is not None]
        if not valid:
            return None, "parse_error"
        extra = {"explain": explain} if explain is not None else {}
        mask = self.aggregate(runs, shape, **self.aggregator_options, **extra)
        if not mask.any() and sum(1 for r in valid if not r) / len(valid) >= 0.5:
            return None, "no_target"
        return mask, "ok"

