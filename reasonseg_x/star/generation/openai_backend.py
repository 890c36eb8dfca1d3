"""Generation on a serving engine: any OpenAI-compatible endpoint (``-a backend=openai``).

Why: a researcher who serves the VLM with ``vllm serve`` (tensor or data parallel), SGLang or a
hosted API keeps this toolkit's prompts, parsing, voting and scoring, and SAM stays local. The
request carries today's prompt and the 840x840 frame the model expects (as a base64 data URL, PNG
by default: lossless, so the server sees the pixels the in-process path feeds the processor); N
answers come from the request's ``n``, or from N requests where a server ignores ``n`` (counted
from the choices it returns, and recorded).

Requests run on an event loop in a background thread, at most ``max_concurrency`` in flight, so
that :meth:`OpenAIVLM.generate_stream` can hand each query's answers to the caller as soon as
they arrive: the pipeline parses and segments (SAM) one query while the others are in flight.
A request that still fails after its retries is that query's error, with the server's message.
This module and :mod:`.openai_client` import no torch: with ``segmenter=box`` a core install
(plus httpx, the ``serve`` extra) runs an endpoint end to end.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import io
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.answer.coords import COORDS_FAMILIES
from reasonseg_x.star.generation.backend import Answers, LogitsProcessorFactory, Sampling, TextGenerator
from reasonseg_x.star.generation.openai_client import ChatClient, RequestFailed, RetryPolicy, choice_texts
from reasonseg_x.star.answer.prompts import VLM_FRAME, to_vlm_frame

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from reasonseg_x.star.options import PipelineOptions

__all__ = ["OpenAIVLM", "answer_limit", "coords_family", "image_data_url", "load_openai", "png_bytes"]

#: prompt styles of models that always answer in 840-frame pixels (Qwen2.5-VL based)
_PIXEL_STYLES = ("visionreasoner", "segzero")
#: the least characters :func:`answer_limit` allows, and the marker a cut answer ends with
ANSWER_LIMIT_FLOOR = 64 * 1024
TRUNCATED = " [... {} characters cut by reasonseg-x]"


def answer_limit(max_tokens: int) -> int:
    """The most characters of one answer we store: 16 per requested token (more than any tokenizer's
    longest token yields in practice) and never under 64 Ki; a server sending more is not a model
    answering within ``max_tokens``, and a 10 MB answer would bloat predictions and the viewer."""
    return max(ANSWER_LIMIT_FLOOR, 16 * int(max_tokens))


def coords_family(coords: str, *, style: str, model_id: str | None) -> tuple[str, str]:
    """(model family, why) for an endpoint: ``coords`` when set; else VisionReasoner and Seg-Zero
    answer in pixels, and a served name mentioning Qwen3 (or StAR-8B/32B) in the 0-999 grid."""
    if coords in COORDS_FAMILIES:
        return COORDS_FAMILIES[coords], f"coords={coords}"
    if style in _PIXEL_STYLES:
        return "qwen2.5", f"style {style} answers in 840-frame pixels"
    name = (model_id or "").lower()
    if re.search(r"qwen3|star[-_]?(8|32)b", name):
        return "qwen3", f"served model {model_id!r} looks Qwen3-VL based (0-999 grid); set -a coords= to override"
    return "qwen2.5", f"served model {model_id!r} taken as Qwen2.5-VL based (840-frame pixels); set -a coords= to override"


def png_bytes(rgb: Any, level: int = 1) -> bytes:
    """A lossless RGB PNG: every row "Up"-filtered, zlib at ``level``.

    Why not PIL's encoder: its adaptive per-row filter search is half the cost of a 840x840 frame,
    and holds the GIL; one fixed filter (numpy) plus zlib (which releases the GIL) is about 2x
    cheaper in CPU for a similar size, and the two image threads then really run in parallel."""
    import numpy as np

    pixels = np.asarray(rgb, dtype=np.uint8)
    height, width = pixels.shape[:2]
    flat = pixels.reshape(height, 3 * width)
    rows = np.empty((height, 1 + 3 * width), dtype=np.uint8)
    rows[:, 0] = 2  # filter type Up: each byte minus the byte above (mod 256)
    rows[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
            + chunk(b"IEND", b""))


def image_data_url(image: Image.Image, frame: tuple[int, int] | None = VLM_FRAME, fmt: str = "png") -> str:
    """The image as the VLM sees it (RGB, resized bilinearly to ``frame``) in a base64 data URL."""
    pixels = to_vlm_frame(image, frame)
    if fmt == "png":
        data, mime = png_bytes(pixels), "image/png"
    elif fmt == "jpeg":
        buf = io.BytesIO()
        pixels.save(buf, format="JPEG", quality=95)
        data, mime = buf.getvalue(), "image/jpeg"
    else:
        raise InvalidInputError(f"unknown image format {fmt!r}; use png or jpeg", "image_format")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class _LoopThread:
    """An asyncio event loop running in a daemon thread; coroutines are submitted from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="reasonseg-x-openai", daemon=True)
        self._thread.start()

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Any) -> Any:
        return self.submit(coro).result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)


class OpenAIVLM(TextGenerator):
    """A served VLM: a :class:`~reasonseg_x.star.generation.backend.GenerationBackend` whose queries
    finish as their answers arrive (:meth:`generate_stream`)."""

    schedule = "openai"
    overlap_sam = False  # SAM runs in the caller's thread while the requests are in flight
    device = "cpu"  # nothing of the VLM runs here; SAM follows ``device``/``segmenter_device``

    def __init__(self, base_url: str, *, served_model: str | None = None, api_key: str | None = None,
                 max_concurrency: int = 64, request_timeout: float = 600.0, max_attempts: int = 5,
                 image_format: str = "png", coords: str = "auto", style: str = "star",
                 api_key_env: str = "OPENAI_API_KEY", retry_base_delay: float = 0.5) -> None:
        self.max_concurrency = int(max_concurrency)
        self.image_format = image_format
        self._runner = _LoopThread()
        policy = RetryPolicy(max_attempts=max_attempts, base_delay=retry_base_delay)

        async def make() -> ChatClient:
            return ChatClient(base_url, api_key=api_key, timeout=request_timeout,
                              max_concurrency=max_concurrency, policy=policy)

        self._client: ChatClient = self._runner.run(make())
        self.base_url = self._client.base_url  # without the credentials a URL may carry
        self._encoder = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="reasonseg-x-image")
        self.n_honoured: bool | None = None  # unknown until a request with n > 1 comes back
        self.short_replies = 0  # replies with fewer choices than asked for
        self.empty_answers = 0
        self.truncated_answers = 0  # answers cut at ``answer_limit`` characters
        self.reported_models: set[str] = set()
        roots, listing_error = self._list_models()
        self.listed_models = list(roots)
        if served_model is None:
            if listing_error and not self.listed_models:  # the endpoint first: no model name would help
                self.close()
                raise InvalidInputError(f"the endpoint {self.base_url} could not list its models ({listing_error}): "
                                        "is the server running, base_url right and the key accepted? Once it "
                                        "answers, the model it serves is used (or pass -a served_model=NAME)",
                                        "base_url")
            if len(self.listed_models) != 1:
                found = ", ".join(self.listed_models) or "none"
                self.close()
                raise InvalidInputError(f"which model? the endpoint {self.base_url} serves: {found}; "
                                        "pass -a served_model=NAME", "served_model")
            served_model = self.listed_models[0]
        self.served_model = served_model
        # vLLM lists the served folder or repo as the model's "root": a better hint than a short alias
        described = " ".join(dict.fromkeys(filter(None, [served_model, roots.get(served_model)])))
        self.family, self.coords_reason = coords_family(coords, style=style, model_id=described)
        self.last_params: dict[str, Any] = {}
        self.info: dict[str, Any] = {
            "backend": "openai", "base_url": self.base_url, "served_model": served_model,
            "listed_models": self.listed_models, "api_key_env": api_key_env, "api_key_set": bool(api_key),
            "image_format": image_format, "frame": list(VLM_FRAME), "max_concurrency": self.max_concurrency,
            "request_timeout_s": float(request_timeout), "max_attempts": int(max_attempts),
            "coords_family": self.family, "coords_reason": self.coords_reason,
        }
        if listing_error:
            self.info["models_listing_error"] = listing_error

    # ------------------------------------------------------------------ set-up

    def _list_models(self) -> tuple[dict[str, str | None], str | None]:
        """``{id: root}`` of what ``GET /models`` lists (retried like any request), or the reason it could not."""
        def ids(body: Any) -> dict[str, str | None]:
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise ValueError("the model list has no 'data' list")
            clean = self._client.redact  # ids and roots go to run.json
            return {clean(str(m["id"])): (clean(str(m["root"])) if m.get("root") else None)
                    for m in data if isinstance(m, dict) and "id" in m}

        try:
            return self._runner.run(self._client.get_json("models", parse=ids)), None
        except RequestFailed as exc:
            return {}, str(exc)

    def close(self) -> None:
        """Close the connections and stop the loop thread (also at interpreter exit: it is a daemon)."""
        try:
            self._runner.run(self._client.aclose())
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
        self._runner.stop()
        self._encoder.shutdown(wait=False, cancel_futures=True)

    def run_info(self) -> dict[str, Any]:
        """For run.json: the endpoint, the model id the server reports, the request parameters,
        whether ``n`` was honoured, and what the requests met. Never the API key."""
        return {**self.info, "reported_models": sorted(self.reported_models), "request": dict(self.last_params),
                "n_honoured": self.n_honoured, "short_replies": self.short_replies,
                "empty_answers": self.empty_answers, "truncated_answers": self.truncated_answers,
                **self._client.stats.to_json()}

    # ------------------------------------------------------------------ requests

    def _params(self, *, n: int, do_sample: bool, temperature: float, top_p: float, top_k: int | None,
                max_new_tokens: int) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.served_model, "n": n, "max_tokens": int(max_new_tokens),
                                  "temperature": float(temperature) if do_sample else 0.0,
                                  "top_p": float(top_p) if do_sample else 1.0}
        if do_sample and top_k is not None:
            params["top_k"] = int(top_k)  # not OpenAI's, but vLLM and SGLang take it
        return params

    async def _ask(self, data_url: str, prompt: str, params: dict[str, Any], n: int, seed: int | None) -> list[str]:
        payload = {**params, "n": n, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_url}}, {"type": "text", "text": prompt}]}]}
        if seed is not None:
            payload["seed"] = int(seed)

        def parse(body: Any) -> list[str]:
            texts = [self._record(text, params["max_tokens"]) for text in choice_texts(body)]
            if isinstance(body.get("model"), str):
                self.reported_models.add(self._record(body["model"], 0))
            return texts

        return await self._client.post_json("chat/completions", payload, parse=parse)

    def _record(self, text: str, max_tokens: int) -> str:
        """What a server sent, as our records may hold it: the one place answers enter them.

        The key (and its obvious encodings) is masked, the text left as it is otherwise, and an
        answer longer than :func:`answer_limit` is cut with a marker and counted (``truncated_answers``)."""
        text = self._client.redactor(text)
        limit = answer_limit(max_tokens)
        if len(text) > limit:
            self.truncated_answers += 1
            text = text[:limit] + TRUNCATED.format(len(text) - limit)
        return text

    async def _answers(self, image: Image.Image, prompt: str, params: dict[str, Any], n: int,
                       seed: int | None, frame: tuple[int, int] | None) -> tuple[list[str], float]:
        """``n`` answers for one query: one request with ``n``, topped up by single-answer requests
        (distinct seeds) where the server returned fewer choices; ``n`` single requests at once
        once the server is known to ignore ``n``."""
        loop = asyncio.get_running_loop()
        data_url = await loop.run_in_executor(self._encoder, image_data_url, image, frame, self.image_format)
        started = time.perf_counter()
        texts: list[str] = []
        if n == 1 or self.n_honoured is not False:
            texts = await self._ask(data_url, prompt, params, n, seed)
            if n > 1:
                if len(texts) < n:
                    self.short_replies += 1
                    self.n_honoured = False
                elif self.n_honoured is None:
                    self.n_honoured = True
        for _ in range(self._client.policy.max_attempts):  # bounded top-up rounds
            missing = n - len(texts)
            if missing <= 0:
                break
            seeds = [None if seed is None else seed + len(texts) + k for k in range(missing)]
            replies = await asyncio.gather(*(self._ask(data_url, prompt, params, 1, s) for s in seeds))
            texts += [t for reply in replies for t in reply[:1]]
        if len(texts) < n:
            raise RequestFailed(f"the server returned {len(texts)} of {n} answers")
        texts = texts[:n]
        self.empty_answers += sum(1 for t in texts if not t)
        return texts, time.perf_counter() - started

    def generate_stream(self, images: Sequence[Image.Image], prompts: Sequence[str], sampling: Sampling = Sampling(),
                        seeds: Sequence[int | None] | None = None,
                        ) -> Iterator[tuple[int, list[str] | RequestFailed, float]]:
        """``(row, answers or the failure, seconds)`` for every row, in the order they complete.

        Closing the iterator early (an exception in the caller, Ctrl-C) cancels the requests
        still in flight."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        n, frame = sampling.n, sampling.frame
        seeds = list(seeds) if seeds is not None else [None] * len(images)
        params = self._params(n=n, do_sample=sampling.do_sample, temperature=sampling.temperature,
                              top_p=sampling.top_p, top_k=sampling.top_k, max_new_tokens=sampling.max_new_tokens)
        self.last_params = {k: v for k, v in params.items() if k != "model"}
        self.last_params["seed"] = "per query" if any(s is not None for s in seeds) else None
        futures = {self._runner.submit(self._answers(image, prompt, params, n, seed, frame)): row
                   for row, (image, prompt, seed) in enumerate(zip(images, prompts, seeds))}
        try:
            for future in concurrent.futures.as_completed(futures):
                row = futures[future]
                try:
                    texts, seconds = future.result()
                except RequestFailed as exc:
                    yield row, exc, 0.0
                else:
                    yield row, texts, seconds
        finally:
            for future in futures:
                future.cancel()

    def answers(self, images: Sequence[Image.Image], prompts: Sequence[str], sampling: Sampling,
                seeds: Sequence[int | None], logits_processor: LogitsProcessorFactory | None = None,
                ) -> Iterator[Answers]:
        """:meth:`generate_stream` as the backend protocol has it: one group per query, as it
        completes; a request that failed for good is that row's failure."""
        if logits_processor is not None:
            raise InvalidInputError("the openai backend does not take a transformers logits processor", "backend")
        for row, texts, seconds in self.generate_stream(images, prompts, sampling, seeds):
            yield Answers([row], [texts], seconds)

    def generation_config(self) -> Mapping[str, Any]:
        return {}

    def default_batch_size(self, tts: int, batch_size: int | None) -> int:
        """Enough queries to keep ``max_concurrency`` requests in flight."""
        return batch_size or 4 * self.max_concurrency


def load_openai(opts: PipelineOptions) -> OpenAIVLM:
    """The endpoint of ``opts`` (``base_url``, ``served_model``; the key from ``api_key_env``)."""
    try:
        import httpx  # noqa: F401
    except ModuleNotFoundError:
        raise InvalidInputError("backend=openai needs httpx: pip install 'reasonseg-x[serve]'", "backend") from None
    if not opts.base_url:
        raise InvalidInputError("backend=openai needs the endpoint: -a base_url=http://HOST:PORT/v1", "base_url")
    return OpenAIVLM(opts.base_url, served_model=opts.served_model, api_key=os.environ.get(opts.api_key_env) or None,
                     max_concurrency=opts.max_concurrency, request_timeout=opts.request_timeout,
                     max_attempts=opts.max_attempts, image_format=opts.image_format, coords=opts.coords,
                     style=opts.style, api_key_env=opts.api_key_env)
