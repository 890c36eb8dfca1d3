"""A small OpenAI-compatible chat-completion server for tests, on 127.0.0.1 and a free port.

It answers from a script (a function of the prompt and the request's seed, so the same answers
can be fed to the in-process pipeline: :class:`ScriptedVLM`), checks each request's shape (the
data URL decodes to the expected frame, ``n``, sampling parameters, model name) and records
violations in ``problems`` (a server thread cannot fail a test itself), and plays queued faults:
``"429"``, ``"500"``, ``"sleep:SECONDS"``, ``"malformed"``, ``"deep"`` (JSON nested 200,000 levels),
``"short"`` (one choice whatever ``n``),
``"empty"`` (empty ``content``), ``"drop"`` (close the connection without a reply), ``"400"``,
``"ok"`` (no fault: keeps the queue aligned with the requests), and hostile ones: ``"echo"`` (the
answers and the reported model name carry ``echo_key`` as written, reversed, URL-encoded and in
base64), ``"redirect"`` (307 to ``redirect_to``, another server), ``"redirect-here"`` (307 to this
server under ``/alt``), ``"gzip"`` (the reply gzip-encoded), ``"bad-gzip"`` (a body that does not inflate), ``"bomb"`` (a gzip body that inflates to ``bomb_mib`` MiB) and ``"huge"``
(one answer of ``huge_chars`` characters).

Importable by subprocesses and by ``benchmarks/bench_openai_client.py``.
"""

from __future__ import annotations

import base64
import functools
import gzip
import io
import json
import threading
import time
import urllib.parse
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reasonseg_x.star.generation.backend import Answers, Sampling, TextGenerator

#: answers in 840-frame pixels (Qwen2.5-VL style), chosen per prompt and seed by ``scripted_answer``
SCRIPT = (
    '<think>centre</think><answer>[{"label": "thing", "bbox_2d": [210, 210, 630, 630], "point_2d": [420, 420]}]</answer>',
    '<think>left</think><answer>[{"label": "a", "bbox_2d": [0, 100, 400, 700], "point_2d": [200, 400]}]</answer>',
    '<think>two</think><answer>[{"label": "a", "bbox_2d": [50, 50, 300, 300], "point_2d": [170, 170]}, '
    '{"label": "b", "bbox_2d": [500, 420, 830, 800], "point_2d": [660, 600]}]</answer>',
    "<think>none</think><answer>[]</answer>",
    "no answer at all",
    '<think>right</think><answer>[{"label": "c", "bbox_2d": [420, 0, 839, 839], "point_2d": [600, 420]}]</answer>',
)
SERVED_MODEL = "served-star"


def scripted_answer(prompt: str, seed: int | None) -> str:
    """The scripted answer for a prompt (greedy: ``seed`` None) or for one sampled seed."""
    return SCRIPT[(zlib.crc32(prompt.encode("utf-8")) + (seed or 0)) % len(SCRIPT)]


class ScriptedVLM(TextGenerator):
    """The in-process counterpart of the server: a generation backend with the same scripted answers."""

    schedule = "scripted"
    overlap_sam = False
    device = "cpu"
    family = "qwen2.5"

    def answers(self, images: Sequence[Any], prompts: Sequence[str], sampling: Sampling,
                seeds: Sequence[int | None], logits_processor: Any = None) -> Iterator[Answers]:
        for row, (prompt, seed) in enumerate(zip(prompts, seeds)):
            yield Answers([row], [[scripted_answer(prompt, None if seed is None else seed + k)
                                   for k in range(sampling.n)]], 0.0)

    def generation_config(self) -> dict[str, Any]:
        return {}

    def default_batch_size(self, tts: int, batch_size: int | None) -> int:
        return batch_size or 4

    def run_info(self) -> dict[str, Any]:
        return {"backend": "scripted"}


def ScriptedInProcessStar(tts: int = 1, segmenter: str = "box", seed: int = 42) -> Any:  # noqa: N802 - a factory
    """StAR's pipeline with :class:`ScriptedVLM` (for ``eval -m _openai_server:ScriptedInProcessStar``)."""
    from reasonseg_x.star.predictor import StarPredictor

    return StarPredictor("unused", vlm=ScriptedVLM(), segmenter=segmenter, device="cpu", tts=tts, seed=seed)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        owner = self.server.owner
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": m, "object": "model", "root": owner.root}
                                                                   for m in owner.models]}).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        fault = owner.next_fault()
        fault = None if fault == "ok" else fault
        owner.authorizations.add(self.headers.get("Authorization") or "")
        owner.paths.append(self.path)
        if fault == "redirect":
            self._send(307, b"", {"Location": owner.redirect_to.rstrip("/") + "/chat/completions"})
            return
        if fault == "redirect-here":
            self._send(307, b"", {"Location": "/alt" + self.path})
            return
        if fault == "bad-gzip":
            self._send(200, b"\x1f\x8b\x08\x00 not gzip at all", {"Content-Encoding": "gzip"})
            return
        if fault == "bomb":
            self._send(200, _bomb(owner.bomb_mib), {"Content-Encoding": "gzip"})
            return
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault and fault.startswith("sleep:"):
            time.sleep(float(fault.split(":", 1)[1]))
        if fault in ("429", "500", "400"):
            self._send(int(fault), json.dumps({"error": {"message": f"scripted {fault} (key {owner.echo_key})"}}).encode(),
                       {"Retry-After": "0"} if fault == "429" else None)
            return
        if fault == "malformed":
            self._send(200, b'{"choices": [{"message": ')
            return
        if fault == "deep":  # JSON nested 200,000 levels: a parser's recursion, not a reply
            self._send(200, b"[" * 200_000 + b"]" * 200_000)
            return
        try:
            request = json.loads(body)
            texts = owner.reply(request)
        except Exception as exc:  # noqa: BLE001 - reported to the test through ``problems``
            owner.problem(f"bad request: {type(exc).__name__}: {exc}")
            self._send(400, json.dumps({"error": {"message": str(exc)}}).encode())
            return
        if fault == "short":
            texts = texts[:1]
        if fault == "empty":
            texts = ["" for _ in texts]
        model = owner.reported_model
        if fault == "echo":
            key = owner.echo_key
            echo = (f" key {key} reversed {key[::-1]} url {urllib.parse.quote(key, safe='')} "
                    f"b64 {base64.b64encode(f'Bearer {key}'.encode()).decode()}")
            texts, model = [t + echo for t in texts], f"{model}+{key}"
        if fault == "huge":
            texts = [t + " " + "x" * owner.huge_chars for t in texts]
        reply = {"id": "chatcmpl-test", "object": "chat.completion", "model": model,
                 "choices": [{"index": k, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                             for k, t in enumerate(texts)]}
        if fault == "gzip":
            self._send(200, gzip.compress(json.dumps(reply).encode()), {"Content-Encoding": "gzip"})
            return
        self._send(200, json.dumps(reply).encode())


@functools.lru_cache(maxsize=2)
def _bomb(mib: int) -> bytes:
    """A gzip body of ``mib`` MiB of blanks (about 1000 times smaller on the wire)."""
    block, out = b" " * 2**20, io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz:
        for _ in range(mib):
            gz.write(block)
    return out.getvalue()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    owner: ScriptedOpenAIServer


class ScriptedOpenAIServer:
    """Start with ``with ScriptedOpenAIServer(...) as server:``; ``server.url`` is the ``/v1`` base."""

    def __init__(self, *, expect: dict[str, Any] | None = None, frame: tuple[int, int] | None = (840, 840),
                 faults: Sequence[str] = (), honour_n: bool = True, port: int = 0, check_images: bool = True,
                 answer: Callable[[str, int | None], str] = scripted_answer, echo_key: str = "",
                 models: Sequence[str] = (SERVED_MODEL,), reported_model: str = "org/served-star-7b",
                 root: str | None = None, redirect_to: str = "", bomb_mib: int = 64,
                 huge_chars: int = 10 * 2**20) -> None:
        self.expect = dict(expect or {})
        self.frame = frame
        self.faults: deque[str] = deque(faults)
        self.honour_n = honour_n
        self.check_images = check_images
        self.answer = answer
        self.echo_key = echo_key  # a key the 4xx/5xx messages echo, to check it is redacted
        self.models = list(models)
        self.reported_model = reported_model
        self.root = root  # the folder or repo vLLM lists as the served model's "root"
        self.redirect_to = redirect_to  # the /v1 base of another server, for the "redirect" fault
        self.bomb_mib = bomb_mib
        self.huge_chars = huge_chars
        self.paths: list[str] = []  # the path of every chat request, in arrival order
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.authorizations: set[str] = set()
        self._lock = threading.Lock()
        self._port = port
        self._httpd: _Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._port

    def start(self) -> ScriptedOpenAIServer:
        self._httpd = _Server(("127.0.0.1", self._port), _Handler)
        self._httpd.owner = self
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def next_fault(self) -> str | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)

    def reply(self, request: dict[str, Any]) -> list[str]:
        """The scripted answers for one request, after checking its shape."""
        messages = request["messages"]
        content = messages[-1]["content"]
        url = next(part["image_url"]["url"] for part in content if part.get("type") == "image_url")
        prompt = next(part["text"] for part in content if part.get("type") == "text")
        header, _, data = url.partition(",")
        if not header.startswith("data:image/") or not header.endswith(";base64"):
            self.problem(f"image is not a base64 data URL: {header[:40]}")
        size = None
        if self.check_images:
            from PIL import Image

            with Image.open(io.BytesIO(base64.b64decode(data))) as image:
                size = image.size
            if self.frame and size != tuple(self.frame):
                self.problem(f"image of {size}, expected {self.frame}")
        for key, value in self.expect.items():
            if request.get(key) != value:
                self.problem(f"{key}={request.get(key)!r}, expected {value!r}")
        n = int(request.get("n", 1))
        seed = request.get("seed")
        if request.get("temperature", 1.0) > 0 and seed is None:
            self.problem("a sampled request without a seed")
        with self._lock:
            self.requests.append({k: v for k, v in request.items() if k != "messages"} | {"image_size": size,
                                                                                          "prompt": prompt})
        count = n if self.honour_n else 1
        return [self.answer(prompt, None if seed is None else seed + k) for k in range(count)]
