"""The paper's generation schedule: ``transformers.generate`` per chunk of queries.

Why keep it beside the fast engine: it is what the reference scripts ran, so it is the schedule
of record for parity checks (``-a generation=reference``), and the one a run falls back to when
the fast engine cannot run on the installed transformers (:mod:`reasonseg_x.star.compat`).
Greedy decoding runs ``batch_size`` queries per call, left padded, in dataset order; with
``tts`` > 1 each query is one call of N sequences (``num_return_sequences``), seeded per query.

torch and transformers are imported inside functions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from reasonseg_x.star.generation.backend import Answers, LogitsProcessorFactory, OnLoadedVLM, Sampling

__all__ = ["ReferenceGenerator", "generate_once", "reference_chunks", "reference_batch_size"]


def generate_once(vlm: Any, images: Sequence[Any], prompts: Sequence[str], sampling: Sampling, seed: int | None,
                  logits_processor: Any = None) -> list[list[str]]:
    """One ``model.generate`` call over every row of a loaded :class:`~reasonseg_x.star.vlm.VLM`.

    Like the reference scripts, only the sampling settings are passed: the rest (e.g. the base
    model's ``repetition_penalty``, ``top_k``) comes from the checkpoint's generation config
    (recorded in ``vlm.info["generation_config"]``); ``top_k`` overrides it when sampling.
    Returns ``texts[row][k]`` with special tokens removed."""
    import torch

    if not images:
        return []
    n = sampling.n
    inputs = vlm.build_inputs(images, prompts, frame=sampling.frame)
    kwargs: dict[str, Any] = dict(max_new_tokens=sampling.max_new_tokens, do_sample=sampling.do_sample,
                                  num_return_sequences=n, pad_token_id=vlm.tokenizer.pad_token_id)
    if sampling.do_sample:
        kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
        if sampling.top_k is not None:
            kwargs["top_k"] = sampling.top_k
    if logits_processor is not None:
        from transformers import LogitsProcessorList

        kwargs["logits_processor"] = LogitsProcessorList(
            logits_processor if isinstance(logits_processor, list) else [logits_processor])
    if seed is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    with torch.inference_mode():
        out = vlm.model.generate(**inputs, **kwargs)
    new_tokens = out[:, inputs["input_ids"].shape[1]:]
    texts = vlm.tokenizer.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return [texts[i * n:(i + 1) * n] for i in range(len(images))]


def reference_chunks(rows: int, sampling: Sampling, batch_size: int | None) -> list[list[int]]:
    """Rows per call of the reference schedule: one query per call when sampling (its N answers
    fill the call and its seed is its own), else ``batch_size`` rows (all when None) in order."""
    step = 1 if sampling.do_sample else (batch_size or max(1, rows))
    return [list(range(start, min(start + step, rows))) for start in range(0, rows, step)]


def reference_batch_size(tts: int, batch_size: int | None, device: str) -> int:
    """Queries per ``predict`` call: the paper ran greedy decoding in batches of 32 and majority
    voting one query at a time (its N answers fill the batch); 4 greedy queries on a CPU."""
    if tts > 1:
        return 1
    if batch_size:
        return batch_size
    return 32 if str(device).startswith("cuda") else 4


class ReferenceGenerator(OnLoadedVLM):
    """The reference schedule on a loaded :class:`~reasonseg_x.star.vlm.VLM`. ``fallback``: why the
    fast engine was asked for but this schedule runs (recorded in run.json), or None."""

    schedule = "reference"
    overlap_sam = False

    def __init__(self, vlm: Any, *, batch_size: int | None = None, fallback: str | None = None) -> None:
        self.vlm = vlm
        self.batch_size = batch_size
        self.fallback = fallback

    def answers(self, images: Sequence[Any], prompts: Sequence[str], sampling: Sampling,
                seeds: Sequence[int | None], logits_processor: LogitsProcessorFactory | None = None,
                ) -> Iterator[Answers]:
        for rows in reference_chunks(len(images), sampling, self.batch_size):
            processor = logits_processor() if logits_processor is not None else None
            started = time.perf_counter()
            texts = generate_once(self.vlm, [images[r] for r in rows], [prompts[r] for r in rows], sampling,
                                  seeds[rows[0]] if sampling.do_sample else None, processor)
            yield Answers(rows, list(texts), time.perf_counter() - started)

    def default_batch_size(self, tts: int, batch_size: int | None) -> int:
        return reference_batch_size(tts, batch_size, self.device)

    def run_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"generation": "reference",
                                "batches": "tts > 1: one query per call; greedy: batch_size in dataset order"}
        if self.fallback:
            info.update(generation_requested="fast", generation_fallback=self.fallback)
        return {**info, **self.vlm.info}
