"""Fast generation for the transformers backend: prefill once per query, decode many rows packed.

Why not ``model.generate``: for N sampled answers it expands the text inputs first
(``num_return_sequences``), so the same ~2k-token prompt is prefilled N times; it decodes one
left-padded batch per call with a cache that grows by concatenation (the whole KV is copied
every step); and its sampling draws from one global generator, so a query's answers depend on
which other rows share its batch. Here:

- **prefill once, sample N**: each query's prompt is prefilled once (queries of equal token length
  together, never padded) and its KV rows are copied N times into the decode buffer;
- **packed decode**: the rows of several queries share one decode batch (up to ``max_batch_rows``
  rows and a KV-memory budget), each with its own positions (Qwen-VL's 3-D mrope: prefill
  positions from the model's ``get_rope_index``, then prompt length + step + the row's rope delta)
  and its own mask over a preallocated buffer written in place;
- **counter-based sampling**: Gumbel-max with noise hashed from (query seed, sample index, step,
  token id), after the same per-row temperature / top-k / top-p filtering as transformers'
  warpers; so a query's answers do not depend on batch composition, shards or resumed runs;
- **greedy** is the argmax of the same processed scores as ``generate`` (repetition penalty from
  the checkpoint's generation config, then the caller's logits processor): the same tokens;
- **compiled decoding** (the default on CUDA, ``compile=auto``): the decode step runs under
  ``torch.compile`` on a fixed-shape buffer (``mode="reduce-overhead"`` = CUDA graphs on a GPU),
  one graph per power-of-two row bucket; a failure to compile falls back to eager;
- **one attention call per layer** where transformers makes many (:mod:`reasonseg_x.star.generation.attention`):
  Qwen2.5-VL's vision windows in prefill, KV groups in decode.

Every transformers internal this relies on is reached through :mod:`reasonseg_x.star.compat`, which
probes them when the pipeline loads a model (the run falls back to the reference schedule where
they do not fit, and run.json says why).

The schedule, its parity with ``generate`` and its measured speed are told in docs/generation.md.
The entry point is :class:`FastGenerator`, a
:class:`~reasonseg_x.star.generation.backend.GenerationBackend`: :meth:`FastGenerator.answers` yields
finished decode batches as they complete (the pipeline overlaps SAM with the next batch's decoding).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reasonseg_x.star.compat import (
    attention_implementation,
    attention_name,
    cache_argument,
    cache_layers,
    dynamic_cache_class,
    forward_takes,
    mark_static_address,
    output_cache,
    rope_index,
    rope_owner,
    text_config,
)
from reasonseg_x.star.generation.attention import (
    DECODE_ATTENTION,
    VISION_ATTENTION,
    packed_attention_configs,
    register_attention,
)
from reasonseg_x.star.generation.backend import Answers, LogitsProcessorFactory, OnLoadedVLM, Sampling

__all__ = ["FastGenerator", "DecodeBatch", "SamplingSettings", "plan_batches", "gumbel_noise", "row_keys",
           "default_max_batch_rows", "nucleus_sample", "gumbel_noise_at", "compiled_rows"]

log = logging.getLogger(__name__)

_M32 = 0xFFFFFFFF
#: decode steps between checks that every row has ended (each check is a GPU sync)
_END_CHECK_EVERY = 4


# ----------------------------------------------------------------------------- counter-based RNG

def _pcg(x: Any) -> Any:
    """PCG-RXS-M-XS hash of uint32 values held in an int64 tensor (a bijection on 32 bits)."""
    state = (x * 747796405 + 2891336453) & _M32
    word = (((state >> ((state >> 28) + 4)) ^ state) * 277803737) & _M32
    return ((word >> 22) ^ word) & _M32


def row_keys(seeds: Any, samples: Any) -> Any:
    """One 32-bit key per row from its query seed and sample index (int64 tensors)."""
    return _pcg((_pcg(seeds & _M32) + _pcg(samples & _M32) * 31) & _M32)


def gumbel_noise(keys: Any, step: int, vocab: int) -> Any:
    """Gumbel(0, 1) noise of shape (rows, vocab): a pure function of (row key, step, token id)."""
    import torch

    return gumbel_noise_at(keys, step, torch.arange(vocab, device=keys.device, dtype=torch.int64)[None, :])


def gumbel_noise_at(keys: Any, step: int, ids: Any) -> Any:
    """The same noise for chosen token ids only (``ids``: (rows, k) or (1, k) int64), so a sampler
    that looks at a few candidates draws exactly what the full-vocabulary one would for them."""
    import torch

    step_keys = _pcg((keys + (step + 1) * 0x9E3779B9) & _M32)
    bits = _pcg(step_keys[:, None] ^ ids)
    uniform = ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / 2 ** 24)
    return -torch.log(-torch.log(uniform))


#: candidates the nucleus sampler looks at first (the top-k by score); a row whose nucleus is wider
#: falls back to the full-vocabulary sort, so the result never depends on this number
NUCLEUS_CANDIDATES = 512


def nucleus_sample(scores: Any, top_p: float, keys: Any, step: int, candidates: int = NUCLEUS_CANDIDATES) -> Any:
    """Gumbel-max over the top-p nucleus (transformers' TopPLogitsWarper rule: a token stays while
    the probability of the tokens ranked above it is below ``top_p``), one token per row.

    Why not sort the whole vocabulary: at 256 rows x 152k tokens the sort dominated a decode step
    on the GPU. The nucleus of a real model is a few tokens to a few hundred, so the rule is applied
    to the top ``candidates`` tokens; rows whose nucleus reaches past them (flat distributions) are
    sampled by the full sort, with the same arithmetic, so both paths give the same token."""
    import torch

    vocab = scores.shape[-1]
    lse = torch.logsumexp(scores, dim=-1, keepdim=True)
    k = min(candidates, vocab)
    values, ids = torch.topk(scores, k, dim=-1)  # descending
    probs = (values - lse).exp()
    above = probs.cumsum(dim=-1) - probs
    noisy = torch.where(above < top_p, values + gumbel_noise_at(keys, step, ids), float("-inf"))
    choice = ids.gather(1, noisy.argmax(dim=-1, keepdim=True)).squeeze(1)
    if k == vocab:
        return choice
    covered = probs.sum(dim=-1) >= top_p  # the nucleus ends inside the candidates
    if bool(covered.all()):  # one GPU sync per sampled step; the decode forward is queued already
        return choice
    return torch.where(covered, choice, _nucleus_full(scores, lse, top_p, keys, step))


def _nucleus_full(scores: Any, lse: Any, top_p: float, keys: Any, step: int) -> Any:
    """:func:`nucleus_sample` over the whole sorted vocabulary."""
    import torch

    values, order = torch.sort(scores, descending=True, dim=-1)
    probs = (values - lse).exp()
    above = probs.cumsum(dim=-1) - probs
    noisy = torch.where(above < top_p, values + gumbel_noise_at(keys, step, order), float("-inf"))
    return order.gather(1, noisy.argmax(dim=-1, keepdim=True)).squeeze(1)


# ----------------------------------------------------------------------------- decode attention

# ----------------------------------------------------------------------------- settings and plans

@dataclass(frozen=True)
class SamplingSettings:
    """What turns logits into the next token (transformers' order: penalty, caller's processors,
    then temperature, top-k, top-p when sampling)."""

    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    repetition_penalty: float | None = None
    max_new_tokens: int = 1024


def plan_batches(lengths: Sequence[int], n: int, max_rows: int, max_tokens: int | None = None,
                 max_new_tokens: int = 0) -> list[list[int]]:
    """Query indices per decode batch: queries in a stable sort by prompt length, packed while the
    batch holds at most ``max_rows`` rows (``n`` per query; a query is never split) and its KV
    buffer (rows x (longest prompt + max_new_tokens)) at most ``max_tokens`` tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        rows = (len(current) + 1) * n
        tokens = rows * (max(lengths[j] for j in current + [i]) + max_new_tokens)
        if current and (rows > max_rows or (max_tokens is not None and tokens > max_tokens)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def default_max_batch_rows(device: str, n: int = 1) -> int:
    """Rows per decode batch when the caller sets none: 256 on a GPU (weights are read once per
    step for all rows, so more rows is nearly free until the KV reads dominate; measured on an
    H200 with a 7B model, 32 to 256 eager rows all took 80-108 ms a step), 16 on CPU; at least ``n``
    so that one query's N answers always fit. The KV-memory budget may cut a batch further."""
    base = 256 if str(device).startswith("cuda") else 16
    return max(base, n)


def compiled_rows(rows: int, limit: int) -> int:
    """The row count a compiled decode graph is built for: the next power of two (at least 8) up to
    ``limit``, so a handful of graphs serve every batch and a small batch does not pay for the
    largest one's attention."""
    bucket = 8
    while bucket < rows:
        bucket *= 2
    return max(rows, min(bucket, limit))


@dataclass
class DecodeBatch:
    """One finished decode batch: the caller's query indices and their answers, with timings."""

    indices: list[int]
    texts: list[list[str]]
    prefill_s: float
    decode_s: float


# ----------------------------------------------------------------------------- the KV buffer

class _PackedCache:
    """Preallocated KV buffers (layers x (rows, kv heads, slots, head dim)) written in place.

    Rows are right-aligned: a prompt of length L sits in slots [P - L, P) where P is the longest
    prompt of the batch, so every row writes its t-th new token at slot P + t. Eager decoding
    attends over the filled slots only; compiled decoding over the whole buffer (static shapes).
    """

    def __init__(self, keys: list[Any], values: list[Any], length: int, slot: Any, static: bool) -> None:
        self.buffers_k = keys
        self.buffers_v = values
        self.length = length  # slots filled so far (eager view)
        self.slot = slot      # 1-element int64 tensor: where the next token goes (compiled path)
        self.static = static

    def update(self, key_states: Any, value_states: Any, layer_idx: int, cache_kwargs: Any = None) -> tuple[Any, Any]:
        keys, values = self.buffers_k[layer_idx], self.buffers_v[layer_idx]
        if self.static:
            keys.index_copy_(2, self.slot, key_states)
            values.index_copy_(2, self.slot, value_states)
            return keys, values
        end = self.length + key_states.shape[2]
        keys[:, :, self.length:end] = key_states
        values[:, :, self.length:end] = value_states
        return keys[:, :, :end], values[:, :, :end]

    def get_seq_length(self, layer_idx: int | None = 0) -> int:
        return self.length


def _make_cache_class() -> type:
    """A transformers ``DynamicCache`` subclass (models check the type) backed by _PackedCache."""
    base = dynamic_cache_class()

    class PackedKVCache(base):  # type: ignore[misc, valid-type]
        def __init__(self, packed: _PackedCache) -> None:
            super().__init__()
            self.packed = packed

        def update(self, key_states: Any, value_states: Any, layer_idx: int, *args: Any, **kwargs: Any) -> Any:
            return self.packed.update(key_states, value_states, layer_idx)

        def get_seq_length(self, layer_idx: int | None = 0, *args: Any, **kwargs: Any) -> int:
            return self.packed.length

    return PackedKVCache


# ----------------------------------------------------------------------------- the generator

@dataclass
class _Prepared:
    """One query's tokenized inputs (CPU tensors, no padding)."""

    inputs: dict[str, Any]
    length: int


@dataclass
class _Buffers:
    """The per-batch decode state: KV buffers, tokens (prompt right-aligned, then answers), mask."""

    key: tuple[int, int]
    keys: list[Any]
    values: list[Any]
    tokens: Any
    valid: Any
    slot: Any
    packed: _PackedCache
    pad: int
    step: Any
    static: bool


@dataclass
class FastGenerator(OnLoadedVLM):
    """Prefill-once, packed, counter-sampled decoding on a loaded :class:`~reasonseg_x.star.vlm.VLM`:
    a :class:`~reasonseg_x.star.generation.backend.GenerationBackend`."""

    schedule = "fast"
    overlap_sam = True

    vlm: Any
    max_batch_rows: int | None = None
    compile: bool = False
    #: prompt tokens per prefill forward (queries of equal length share one)
    prefill_tokens: int = 16384
    #: share of free GPU memory the decode buffer may take (KV-memory budget; the rest is for
    #: activations, the logits of every row and SAM working beside the decoder)
    memory_fraction: float = 0.7
    #: decode steps attend per KV group (:func:`grouped_decode_attention`); False: transformers' sdpa
    grouped_attention: bool = True
    #: vision windows attend in one sdpa call per layer (:func:`packed_chunk_attention`), not one
    #: call per window; False: transformers' own per-window loop
    packed_vision_attention: bool = True
    #: threads preparing the queries' inputs (CPU: resize, image processor, tokenizer); 1 = the caller's
    prepare_threads: int = field(default_factory=lambda: min(8, os.cpu_count() or 1))
    stats: Counter = field(default_factory=Counter)
    #: why compiled decoding fell back to eager (recorded in run.json), or None
    compile_fallback: str | None = None
    _pool: Any = field(default=None, repr=False)

    # ------------------------------------------------------------------ public API

    def batch_rows(self, n: int = 1) -> int:
        """Rows per decode batch for ``n`` answers a query: ``max_batch_rows``, else the device's default."""
        return self.max_batch_rows or default_max_batch_rows(self.device, n)

    def row_seeds(self, seed: int | None, rows: int) -> list[int | None]:
        """``generate(seed=...)``: the seed mixed with the row index, so equal rows differ."""
        return [(int(seed or 0) * 1_000_003 + i) % 2 ** 31 for i in range(rows)]

    def answers(self, images: Sequence[Any], prompts: Sequence[str], sampling: Sampling,
                seeds: Sequence[int | None], logits_processor: LogitsProcessorFactory | None = None,
                ) -> Iterator[Answers]:
        """Decode batches in completion order (each covers whole queries; see :func:`plan_batches`).
        ``logits_processor`` makes a fresh processor per decode batch (processors keep per-call
        state). A row's seed (None: 0) keys its answers' noise."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        if len(seeds) != len(images):
            raise ValueError(f"{len(seeds)} seeds for {len(images)} rows")
        if not images:
            return
        n = sampling.n
        inherited = self.generation_config()
        penalty = inherited.get("repetition_penalty")
        do_sample = sampling.do_sample
        settings = SamplingSettings(do_sample=do_sample, temperature=sampling.temperature,
                                    top_p=sampling.top_p if do_sample else 1.0,
                                    top_k=(sampling.top_k if sampling.top_k is not None else inherited.get("top_k"))
                                    if do_sample else None,
                                    repetition_penalty=penalty if penalty not in (None, 1.0) else None,
                                    max_new_tokens=sampling.max_new_tokens)
        started = time.perf_counter()
        prepared = self._prepare_all(images, prompts, sampling.frame)
        self.stats["prepare_s"] += time.perf_counter() - started
        rows = self.batch_rows(n)
        if rows < n:
            raise ValueError(f"max_batch_rows={rows} is below the {n} answers of one query")
        row_seeds = [int(s or 0) for s in seeds]
        plan = plan_batches([p.length for p in prepared], n, rows, self._token_budget(), sampling.max_new_tokens)
        for indices in plan:
            processor = logits_processor() if logits_processor is not None else None
            batch = self._run_batch(indices, [prepared[i] for i in indices], [row_seeds[i] for i in indices], n,
                                    settings, processor)
            yield Answers(batch.indices, list(batch.texts), batch.prefill_s + batch.decode_s)

    # ------------------------------------------------------------------ the backend's report

    def default_batch_size(self, tts: int, batch_size: int | None) -> int:
        """Two decode batches' worth of queries, so that SAM on the first overlaps the second's
        decoding and length-sorting has queries to choose from."""
        return batch_size or max(1, 2 * self.batch_rows(tts) // tts)

    def run_info(self) -> dict[str, Any]:
        return {"generation": "fast", "max_batch_rows": self.max_batch_rows or default_max_batch_rows(self.device),
                "compile": self.compile, "compile_fallback": self.compile_fallback,
                "vision_attention": "packed" if self.packed_vision_attention else "transformers",
                "sampling": "gumbel-max, counter-based per (query seed, answer index)",
                "greedy_batches": "stable sort by prompt token length", **self.vlm.info}

    # ------------------------------------------------------------------ internals

    def _prepare_all(self, images: Sequence[Any], prompts: Sequence[str],
                     frame: tuple[int, int] | None) -> list[_Prepared]:
        """Every query's inputs, on ``prepare_threads`` threads: resizing, the image processor and the
        tokenizer are CPU work of ~20-50 ms a query that would otherwise keep the GPU waiting."""
        jobs = list(zip(images, prompts))
        threads = min(self.prepare_threads, len(jobs))
        if threads > 1:
            try:
                with ThreadPoolExecutor(threads, thread_name_prefix="vlm-prepare") as pool:
                    return list(pool.map(lambda job: self._prepare(job[0], job[1], frame), jobs))
            except RuntimeError as exc:
                if "borrow" not in str(exc):  # only a tokenizer refusing concurrent use ("Already borrowed")
                    raise
                log.warning("preparing inputs on %d threads failed (%s); preparing them one at a time", threads, exc)
                self.prepare_threads = 1
        return [self._prepare(image, prompt, frame) for image, prompt in jobs]

    def _prepare(self, image: Any, prompt: str, frame: tuple[int, int] | None) -> _Prepared:
        inputs = self.vlm.build_inputs([image], [prompt], frame=frame, to_device=False)
        inputs = {k: v for k, v in inputs.items()}
        return _Prepared(inputs, int(inputs["input_ids"].shape[1]))

    def _token_budget(self) -> int | None:
        """KV slots (rows x tokens) the decode buffer may hold: a share of free GPU memory."""
        import torch

        if not str(self.device).startswith("cuda"):
            return None
        free, _total = torch.cuda.mem_get_info(torch.device(self.device if ":" in self.device else "cuda"))
        if self._pool is not None:  # the kept compiled buffer is reused or freed before the next one
            free += sum(t.numel() * t.element_size() for t in (*self._pool.keys, *self._pool.values))
        return max(1, int(free * self.memory_fraction // self._kv_bytes_per_token()))

    def _text_config(self) -> Any:
        return text_config(self.vlm.model.config)

    def _kv_layout(self) -> tuple[int, int, int]:
        """(layers, KV heads, head dim) of the language model."""
        cfg = self._text_config()
        heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return cfg.num_hidden_layers, heads, head_dim

    def _kv_bytes_per_token(self) -> int:
        layers, heads, head_dim = self._kv_layout()
        dtype = next(self.vlm.model.parameters()).dtype
        return 2 * layers * heads * head_dim * dtype.itemsize

    def _rope_owner(self) -> Any:
        """The module holding ``get_rope_index`` (Qwen-VL's inner model), or None."""
        if "rope" not in self.__dict__:
            self.__dict__["rope"] = rope_owner(self.vlm.model)
        return self.__dict__["rope"]

    def _positions(self, inputs: dict[str, Any]) -> tuple[Any, Any]:
        """(prefill position ids or None, rope delta per row) as ``generate`` would compute them."""
        import torch

        ids = inputs["input_ids"]
        owner = self._rope_owner()
        if owner is None:
            return None, torch.zeros(ids.shape[0], 1, dtype=torch.long, device=ids.device)
        positions, deltas = rope_index(owner, inputs)
        return positions, deltas.reshape(-1, 1).to(torch.long)

    def _prefill(self, group: list[_Prepared]) -> tuple[list[tuple[Any, Any]], Any, Any]:
        """Prefill equal-length prompts together: per-layer KV, last-position logits, rope deltas."""
        import torch

        device = self.vlm.device
        inputs = {k: torch.cat([p.inputs[k] for p in group], dim=0).to(device) for k in group[0].inputs}
        positions, deltas = self._positions(inputs)
        kwargs: dict[str, Any] = dict(inputs, use_cache=True, logits_to_keep=1)
        if positions is not None:
            kwargs["position_ids"] = positions
        self.stats["prefill_rows"] += len(group)
        self.stats["prefill_calls"] += 1
        with attention_implementation(self._vision_attention_configs(), VISION_ATTENTION):
            out = self.vlm.model(**kwargs)
        return cache_layers(output_cache(out)), out.logits[:, -1].float(), deltas

    def _vision_attention_configs(self) -> list[Any]:
        """The configs whose attention runs :func:`packed_chunk_attention` during prefill (none when off)."""
        if not self.packed_vision_attention:
            return []
        if "vision_configs" not in self.__dict__:  # the model's, found once
            self.__dict__["vision_configs"] = packed_attention_configs(self.vlm.model) if register_attention() else []
        return self.__dict__["vision_configs"]

    def _decode_step_fn(self, cache: Any, static: bool) -> Any:
        """The decode forward: eager, or under ``torch.compile`` (CUDA graphs on a GPU)."""
        model = self.vlm.model
        cache_kwarg: dict[str, Any] = {cache_argument(model): cache}
        if forward_takes(model, "cache_position"):  # transformers < 5.2x: else it asks the cache (a changing int)
            cache_kwarg["cache_position"] = cache.packed.slot

        def step(input_ids: Any, position_ids: Any, mask: Any) -> Any:
            out = model(input_ids=input_ids, position_ids=position_ids, attention_mask=mask, use_cache=True,
                        **cache_kwarg)
            return out.logits[:, -1]

        run = step
        if static:
            import torch

            mode = "reduce-overhead" if str(self.device).startswith("cuda") else "default"
            run = torch.compile(step, mode=mode, fullgraph=False, dynamic=False)
        language = self._text_config()
        current = attention_name(language)
        if not self.grouped_attention or current not in (None, "sdpa") or not register_attention():
            return run

        def with_grouped_attention(*args: Any) -> Any:
            with attention_implementation([language], DECODE_ATTENTION):  # the language model's layers only
                return run(*args)

        return with_grouped_attention

    def _mask(self, valid: Any) -> Any:
        """The 4-D attention mask transformers takes as-is: bool for sdpa/flash, additive for eager."""
        import torch

        mask = valid[:, None, None, :]
        if attention_name(self.vlm.model.config) == "eager":
            dtype = next(self.vlm.model.parameters()).dtype
            return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
        return mask

    def _buffers(self, rows: int, slots: int, static: bool) -> _Buffers:
        """KV buffers, token and mask rows for a decode batch. Compiled decoding keeps one set
        (fixed shapes and addresses: the compiled graph is reused batch after batch)."""
        import torch

        key = (rows, slots)
        if static and self._pool is not None and self._pool.key == key:
            buffers = self._pool
            buffers.tokens.fill_(buffers.pad)
            buffers.valid.zero_()
            return buffers
        self._pool = None  # free the previous set before allocating
        layers, heads, head_dim = self._kv_layout()
        dtype = next(self.vlm.model.parameters()).dtype
        device = self.vlm.device
        shape = (rows, heads, slots, head_dim)
        keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        slot = torch.zeros(1, dtype=torch.long, device=device)
        packed = _PackedCache(keys, values, 0, slot, static)
        cache = _make_cache_class()(packed)
        buffers = _Buffers(key, keys, values, torch.full((rows, slots), pad, dtype=torch.long, device=device),
                           torch.zeros(rows, slots, dtype=torch.bool, device=device), slot, packed, pad,
                           self._decode_step_fn(cache, static), static)
        if static:
            for tensor in [*keys, *values, slot, buffers.valid]:
                mark_static_address(tensor)
            self._pool = buffers
        return buffers

    def _run_batch(self, indices: list[int], prepared: list[_Prepared], seeds: list[int], n: int,
                   settings: SamplingSettings, logits_processor: Any) -> DecodeBatch:
        import torch

        device = self.vlm.device
        sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
        started = time.perf_counter()
        lengths = [p.length for p in prepared]
        longest = max(lengths)
        rows = len(prepared) * n
        slots = longest + settings.max_new_tokens
        static = bool(self.compile and not self.compile_fallback)
        allocated = rows
        if static:  # fixed shapes: one compiled graph per row bucket serves every batch
            slots = -(-slots // 256) * 256
            allocated = compiled_rows(rows, self.batch_rows(n))
            kept = self._pool
            if kept is not None and kept.key[0] >= rows and kept.key[1] >= slots:
                allocated, slots = kept.key  # a smaller batch reuses the compiled graph: no recompile
        buffers = self._buffers(allocated, slots, static)
        first_logits = None
        deltas = torch.zeros(allocated, 1, dtype=torch.long, device=device)
        with torch.inference_mode():
            # prefill: groups of equal prompt length, each query once; copy its KV into its n rows
            by_length: dict[int, list[int]] = {}
            for q, length in enumerate(lengths):
                by_length.setdefault(length, []).append(q)
            for length, members in by_length.items():
                per_call = max(1, self.prefill_tokens // length)
                for start in range(0, len(members), per_call):
                    group = members[start:start + per_call]
                    kv, logits, group_deltas = self._prefill([prepared[q] for q in group])
                    if first_logits is None:
                        first_logits = logits.new_zeros(allocated, logits.shape[-1])
                    where = slice(longest - length, longest)
                    for j, q in enumerate(group):
                        span = slice(q * n, (q + 1) * n)
                        for buf_k, buf_v, (k, v) in zip(buffers.keys, buffers.values, kv):
                            buf_k[span, :, where] = k[j:j + 1]
                            buf_v[span, :, where] = v[j:j + 1]
                        first_logits[span] = logits[j]
                        deltas[span] = group_deltas[j].to(device)
                        buffers.tokens[span, where] = prepared[q].inputs["input_ids"][0].to(device)
                        buffers.valid[span, where] = True
                    del kv
            sync()
            prefill_s = time.perf_counter() - started
            decode_started = time.perf_counter()
            row_lengths = [length for length in lengths for _ in range(n)] + [0] * (allocated - rows)
            row_seeds = [s for s in seeds for _ in range(n)] + [0] * (allocated - rows)
            row_samples = list(range(n)) * len(lengths) + [0] * (allocated - rows)
            out_tokens, steps = self._decode(buffers, first_logits, deltas, row_lengths, row_seeds, row_samples,
                                             longest, settings, logits_processor)
            sync()
        decode_s = time.perf_counter() - decode_started
        texts = self.tokenizer.batch_decode(out_tokens[:rows].tolist(), skip_special_tokens=True,
                                            clean_up_tokenization_spaces=False)
        self.stats["batches"] += 1
        self.stats["rows"] += rows
        self.stats["steps"] += steps
        self.stats["prefill_s"] += prefill_s
        self.stats["decode_s"] += decode_s
        return DecodeBatch(indices=list(indices), texts=[texts[q * n:(q + 1) * n] for q in range(len(prepared))],
                           prefill_s=prefill_s, decode_s=decode_s)

    def _eos_ids(self) -> list[int]:
        eos = getattr(self.vlm.model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None]

    def _decode(self, buffers: _Buffers, first_logits: Any, deltas: Any, row_lengths: list[int], row_seeds: list[int],
                row_samples: list[int], longest: int, settings: SamplingSettings,
                logits_processor: Any) -> tuple[Any, int]:
        """The decode loop; returns the new tokens (rows x max_new_tokens, pad after EOS) and the step count."""
        import torch

        tokens, valid, packed = buffers.tokens, buffers.valid, buffers.packed
        device = tokens.device
        rows = tokens.shape[0]
        processors = logits_processor if isinstance(logits_processor, list) else (
            [logits_processor] if logits_processor is not None else [])
        prompt_lengths = torch.tensor(row_lengths, dtype=torch.long, device=device).reshape(-1, 1)
        first_position = (prompt_lengths + deltas).reshape(1, rows, 1)  # a row's rope position at step 0
        keys = row_keys(torch.tensor(row_seeds, dtype=torch.int64, device=device),
                        torch.tensor(row_samples, dtype=torch.int64, device=device)) if settings.do_sample else None
        eos = torch.tensor(self._eos_ids(), dtype=torch.long, device=device)
        seen = None
        if settings.repetition_penalty is not None:
            seen = torch.zeros(rows, first_logits.shape[-1], dtype=torch.bool, device=device)
            seen.scatter_(1, tokens, valid)  # the prompt's tokens (padding excluded)
        finished = torch.zeros(rows, dtype=torch.bool, device=device)
        finished[len([x for x in row_lengths if x]):] = True  # filler rows of a fixed-shape batch
        logits = first_logits
        step = 0
        for step in range(settings.max_new_tokens):
            position = longest + step
            scores = logits.float()
            if seen is not None:
                penalised = torch.where(scores < 0, scores * settings.repetition_penalty,
                                        scores / settings.repetition_penalty)
                scores = torch.where(seen, penalised, scores)
            for processor in processors:
                scores = processor(tokens[:, :position], scores)
            next_tokens = self._choose(scores, settings, keys, step)
            next_tokens = next_tokens.masked_fill(finished, buffers.pad)
            tokens[:, position] = next_tokens
            valid[:, position] = True
            if seen is not None:
                seen.scatter_(1, next_tokens[:, None], True)
            finished |= torch.isin(next_tokens, eos)
            # asking whether all rows ended waits for the GPU: only every few steps, so that the
            # CPU queues the next steps meanwhile (steps after the end only append padding)
            if step + 1 == settings.max_new_tokens or (step % _END_CHECK_EVERY == 0 and bool(finished.all())):
                break
            position_ids = (first_position + step).expand(3, rows, 1)
            packed.length = position
            buffers.slot.fill_(position)
            try:
                logits = buffers.step(tokens[:, position:position + 1], position_ids,
                                      self._mask(valid if packed.static else valid[:, :position + 1]))
            except Exception as exc:  # noqa: BLE001 - a compiler failure must not lose the run
                if not packed.static:
                    raise
                log.warning("compiled decoding failed (%s: %s); falling back to eager", type(exc).__name__, exc)
                self.compile_fallback = f"{type(exc).__name__}: {exc}"
                self._pool = None
                packed.static = False
                buffers.step = self._decode_step_fn(_make_cache_class()(packed), False)
                logits = buffers.step(tokens[:, position:position + 1], position_ids, self._mask(valid[:, :position + 1]))
        return tokens[:, longest:longest + settings.max_new_tokens], step + 1

    @staticmethod
    def _choose(scores: Any, settings: SamplingSettings, keys: Any, step: int) -> Any:
        """Greedy argmax, or Gumbel-max over the temperature / top-k / top-p filtered scores."""
        import torch

        if not settings.do_sample:
            return scores.argmax(dim=-1)
        scores = scores / settings.temperature
        if settings.top_k is not None and settings.top_k < scores.shape[-1]:
            kth = torch.topk(scores, settings.top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if settings.top_p < 1.0:  # transformers' TopPLogitsWarper, row by row
            return nucleus_sample(scores, settings.top_p, keys, step)
        return (scores + gumbel_noise(keys, step, scores.shape[-1])).argmax(dim=-1)
