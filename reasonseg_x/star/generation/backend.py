"""The one interface between the VLM + SAM pipeline and whatever generates the answers.

Why: the pipeline used to tell its backends apart by the methods they happened to have
(``generate_stream``, ``build_inputs``, ``max_concurrency``) and read the fast engine's private
state for run.json. Every backend now implements :class:`GenerationBackend`: answers for a batch
of queries, streamed as groups of queries finish (:class:`Answers`), the batch size the runner
should use, and what run.json records. The implementations:

- :class:`~reasonseg_x.star.generation.reference.ReferenceGenerator`: the paper's schedule
  (``transformers.generate`` per chunk);
- :class:`~reasonseg_x.star.generation.fast.FastGenerator`: prefill once, packed decoding
  (docs/generation.md);
- :class:`~reasonseg_x.star.generation.vllm_backend.VllmVLM`: vLLM in-process;
- :class:`~reasonseg_x.star.generation.openai_backend.OpenAIVLM`: an OpenAI-compatible endpoint.

:class:`TextGenerator` holds the one copy of the ``generate(images, prompts, n=..., ...)``
signature every backend (and the loaded :class:`~reasonseg_x.star.vlm.VLM`) offers on top of
``answers``. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from reasonseg_x.star.answer.prompts import VLM_FRAME

__all__ = ["Sampling", "Answers", "GenerationBackend", "TextGenerator", "OnLoadedVLM", "LogitsProcessorFactory"]

#: makes a fresh transformers logits processor per generation call (tests script answers with it)
LogitsProcessorFactory = Callable[[], Any]


@dataclass(frozen=True)
class Sampling:
    """How the answers of every query are drawn: ``n`` answers, greedy or sampled, the budget and
    the frame the image is resized to. The same for every backend."""

    n: int = 1
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 0.9
    top_k: int | None = None
    max_new_tokens: int = 1024
    frame: tuple[int, int] | None = VLM_FRAME

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.n > 1 and not self.do_sample:
            raise ValueError("n > 1 answers need sampling (do_sample=True)")

    @classmethod
    def of(cls, n: int = 1, do_sample: bool | None = None, **settings: Any) -> Sampling:
        """``do_sample`` None means: sample exactly when more than one answer is asked for."""
        return cls(n=n, do_sample=n > 1 if do_sample is None else do_sample, **settings)


@dataclass
class Answers:
    """Queries of one batch that finished together (a decode batch, a chunk, one request):
    their row numbers in the batch, ``n`` texts per row (or the failure of that row), and the
    generation seconds of the group."""

    rows: list[int]
    texts: list[list[str] | Exception]
    seconds: float


@runtime_checkable
class GenerationBackend(Protocol):
    """What the pipeline needs from a generation backend."""

    #: the schedule run.json records: ``fast``, ``reference``, ``vllm``, ``openai``
    schedule: str
    #: the coordinate family of the model's answers (``qwen2.5`` pixels, ``qwen3`` 0-999 grid)
    family: str
    #: where the VLM runs (an endpoint: ``cpu``; SAM then follows the ``device`` option)
    device: str
    #: whether the pipeline may segment a finished group in a worker thread while the next one
    #: generates (the fast engine); False: segmented in the caller's thread as groups arrive
    overlap_sam: bool

    def answers(self, images: Sequence[Any], prompts: Sequence[str], sampling: Sampling,
                seeds: Sequence[int | None], logits_processor: LogitsProcessorFactory | None = None,
                ) -> Iterator[Answers]:
        """Every row's answers, in groups as they finish. ``seeds``: one per row (None: unseeded)."""
        ...

    def generation_config(self) -> Mapping[str, Any]:
        """Sampling settings the checkpoint supplies where the caller sets none (``top_k``, ...)."""
        ...

    def default_batch_size(self, tts: int, batch_size: int | None) -> int:
        """Queries per ``predict`` call the runner should use (``batch_size``: the option, or None)."""
        ...

    def run_info(self) -> dict[str, Any]:
        """What run.json records about the generation (``generation``: the schedule, and the rest)."""
        ...


class TextGenerator:
    """``generate(images, prompts, n=..., ...) -> texts[row][k]`` over ``answers``, for callers
    that want all answers at once (tests, benchmarks, scripts). A failed row raises."""

    def answers(self, images: Sequence[Any], prompts: Sequence[str], sampling: Sampling,
                seeds: Sequence[int | None], logits_processor: LogitsProcessorFactory | None = None,
                ) -> Iterator[Answers]:
        raise NotImplementedError

    def row_seeds(self, seed: int | None, rows: int) -> list[int | None]:
        """The per-row seeds of ``generate(seed=...)``: the same seed for every row by default."""
        return [seed] * rows

    def generate(self, images: Sequence[Any], prompts: Sequence[str], *, n: int = 1, do_sample: bool | None = None,
                 temperature: float = 1.0, top_p: float = 0.9, top_k: int | None = None, seed: int | None = None,
                 seeds: Sequence[int | None] | None = None, max_new_tokens: int = 1024, logits_processor: Any = None,
                 frame: tuple[int, int] | None = VLM_FRAME) -> list[list[str]]:
        """``n`` answers per (image, prompt) row. Greedy when ``do_sample`` is False (the default for
        ``n == 1``), else temperature / top-p / top-k sampling, seeded by ``seed`` (or one of
        ``seeds`` per row). ``logits_processor``: a transformers processor (or a list of them)."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        sampling = Sampling.of(n, do_sample, temperature=temperature, top_p=top_p, top_k=top_k,
                               max_new_tokens=max_new_tokens, frame=frame)
        per_row = list(seeds) if seeds is not None else self.row_seeds(seed, len(images))
        if len(per_row) != len(images):
            raise ValueError(f"{len(per_row)} seeds for {len(images)} rows")
        factory = None if logits_processor is None else (lambda: logits_processor)
        out: list[list[str]] = [[] for _ in images]
        for done in self.answers(images, prompts, sampling, per_row, factory):
            for row, texts in zip(done.rows, done.texts):
                if isinstance(texts, Exception):
                    raise texts
                out[row] = texts
        return out


class OnLoadedVLM(TextGenerator):
    """A backend running on a loaded :class:`~reasonseg_x.star.vlm.VLM` (``self.vlm``): its answer
    coordinates, device and inherited sampling settings are the VLM's."""

    vlm: Any

    @property
    def device(self) -> str:
        return self.vlm.device

    @property
    def family(self) -> str:
        return self.vlm.family

    @property
    def tokenizer(self) -> Any:
        return self.vlm.tokenizer

    def generation_config(self) -> Mapping[str, Any]:
        return self.vlm.info.get("generation_config") or {}
