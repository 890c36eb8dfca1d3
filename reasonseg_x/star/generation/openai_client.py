"""An asyncio client for OpenAI-compatible chat-completion endpoints (vLLM, SGLang, hosted APIs).

Why a client of our own on ``httpx`` rather than the ``openai`` SDK: the benchmark needs exact
control over what counts as an answer and what is retried (count the choices a reply really holds,
retry 429/5xx/lost connections/malformed replies with jittered back-off, give up after a bounded
number of attempts with the server's own message), and one connection pool shared by every
request in flight. The SDK retries on its own schedule, validates replies into pydantic models
(a malformed reply becomes its exception, not ours) and pulls in pydantic and more; httpx is the
one library it builds on, and it is all we need.

Nothing here knows about images or prompts: :mod:`reasonseg_x.star.generation.openai_backend` builds the
requests. The API key lives only in the request headers; every message this module produces is
passed through :meth:`ChatClient.redact` first (the key and its obvious encodings masked, a URL's
credentials removed: :mod:`reasonseg_x.redaction`), so a server that echoes the key cannot put it
in a log. A hostile or broken server is bounded: a redirect to another origin is not followed (it
would receive the image and prompt while ``run.json`` names the first endpoint), and a reply is read
as a stream and given up past :data:`MAX_REPLY_BYTES` decompressed (a gzip bomb). Rules and
reasons: docs/serving.md, "Secrets and hostile servers".
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reasonseg_x.json_input import loads_user_json
from reasonseg_x.redaction import Redactor, strip_userinfo, url_secrets

__all__ = ["ChatClient", "ClientStats", "RequestFailed", "RetryPolicy", "choice_texts", "server_message"]

#: HTTP statuses worth another try: rate limits, timeouts and server-side failures
RETRY_STATUSES = frozenset({408, 409, 425, 429})
#: longest back-off between two tries, and the most of a server's Retry-After we honour (seconds)
MAX_DELAY = 30.0
#: the most bytes a reply may hold once decompressed (a chat completion of 64 answers of 16 Ki
#: tokens is a few MiB); past it the request fails without a retry
MAX_REPLY_BYTES = 32 * 2**20
#: same-origin redirects followed per request
MAX_REDIRECTS = 5
#: bytes inflated per step (see ChatClient._read)
_INFLATE_STEP = 2**20
#: the content encodings we ask for and inflate ourselves (zlib window bits; 0: none)
_INFLATE_BITS = {"identity": 0, "gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class RequestFailed(Exception):
    """A request that failed for good (attempts spent, or a status not worth retrying)."""


class _Refused(Exception):
    """A reply we will not use and that is not worth another try (a redirect elsewhere, a bomb)."""


def _origin(url: Any) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def server_message(body: bytes, limit: int = 500) -> str:
    """The error message of a reply body: ``{"error": {"message": ...}}`` (OpenAI, vLLM),
    ``{"message": ...}``/``{"detail": ...}``, else the text itself, cut at ``limit`` characters."""
    text = body.decode("utf-8", "replace").strip()
    try:
        obj = loads_user_json(text, None)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict) and err.get("message"):
            text = str(err["message"])
        elif isinstance(err, str) and err:
            text = err
        elif obj.get("message") or obj.get("detail"):
            text = str(obj.get("message") or obj.get("detail"))
    text = " ".join(text.split())
    return (text[:limit] + " ...") if len(text) > limit else (text or "(empty body)")


def choice_texts(body: Any) -> list[str]:
    """The answer texts of a chat-completion reply, in choice order.

    A choice whose ``content`` is null or empty is an empty answer (it counts: the model said
    nothing); a reply without a ``choices`` list is malformed (``ValueError``)."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise ValueError("the reply has no 'choices' list")
    texts: list[tuple[int, str]] = []
    for position, choice in enumerate(body["choices"]):
        if not isinstance(choice, dict):
            raise ValueError(f"choice {position} is not an object")
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else choice.get("text")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        index = choice.get("index", position)
        texts.append((index if isinstance(index, int) else position, content if isinstance(content, str) else ""))
    return [text for _, text in sorted(texts, key=lambda t: t[0])]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded tries with exponential back-off and full jitter (``uniform(0, base * 2**k)``)."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = MAX_DELAY

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        wait = random.uniform(0.0, ceiling)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


@dataclass
class ClientStats:
    """What the requests of a run met (recorded in run.json)."""

    requests: int = 0
    attempts: int = 0
    retries: int = 0
    failed: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "attempts": self.attempts, "retries": self.retries, "failed": self.failed,
                "retry_reasons": dict(sorted(self.retry_reasons.items()))}


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


class ChatClient:
    """POST/GET JSON to one endpoint with at most ``max_concurrency`` requests in flight.

    Create and use it inside one running event loop (the httpx pool belongs to that loop).
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 600.0,
                 max_concurrency: int = 64, policy: RetryPolicy | None = None) -> None:
        import httpx

        self._target = base_url.rstrip("/")  # credentials in the URL included: httpx sends them
        self.base_url = strip_userinfo(self._target)  # what messages and run.json name
        self.timeout = float(timeout)
        self.policy = policy or RetryPolicy()
        self.stats = ClientStats()
        #: masks the key, the URL's credentials and their obvious encodings (answers go through it)
        self.redactor = Redactor([api_key, *url_secrets(self._target)])
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        limits = httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency)
        self._http = httpx.AsyncClient(headers=headers, limits=limits, timeout=httpx.Timeout(self.timeout),
                                       follow_redirects=False)
        self._origin = _origin(httpx.URL(self._target))
        self._slots = asyncio.Semaphore(max_concurrency)

    def __repr__(self) -> str:  # never the key
        return f"ChatClient({self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def redact(self, text: str) -> str:
        """A message (an error, a model name) with the key, the URL's credentials and their obvious
        encodings masked, and the credentials of any URL it quotes removed."""
        return strip_userinfo(self.redactor(text))

    async def _read(self, reply: Any, url: str) -> bytes:
        """The decompressed body, given up past :data:`MAX_REPLY_BYTES`.

        Why our own inflating rather than httpx's: httpx inflates each received chunk whole (64 KiB
        of a gzip bomb is 64 MiB); ``zlib``'s ``max_length`` stops at the bound itself."""
        encoding = reply.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in _INFLATE_BITS:
            raise _Refused(f"the reply from {url} has Content-Encoding {encoding!r}, which was not asked for")
        inflater = zlib.decompressobj(_INFLATE_BITS[encoding]) if _INFLATE_BITS[encoding] else None
        chunks: list[bytes] = []
        size = 0

        def keep(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise _Refused(f"the reply from {url} is larger than {MAX_REPLY_BYTES // 2**20} MiB "
                               "(decompressed); not read further")
            chunks.append(chunk)

        async for raw in reply.aiter_raw():
            if inflater is None:
                keep(raw)
                continue
            while True:  # in steps: one large step would be held twice while zlib assembles it
                piece = inflater.decompress(raw, _INFLATE_STEP)
                keep(piece)
                raw = inflater.unconsumed_tail
                if not raw and len(piece) < _INFLATE_STEP:
                    break
        if inflater is not None:
            keep(inflater.flush())
        return b"".join(chunks)

    async def _exchange(self, method: str, target: str, body: bytes | None, url: str) -> tuple[int, Any, bytes]:
        """(status, headers, body) of one try at ``target`` (``url`` names it in messages); redirects
        are followed only within the endpoint's origin (scheme, host, port): another origin would
        receive the image and prompt."""
        request = self._http.build_request(method, target, content=body)
        for _ in range(MAX_REDIRECTS + 1):
            reply = await self._http.send(request, stream=True)
            try:
                if reply.is_redirect and reply.next_request is not None:
                    target = reply.next_request.url
                    if _origin(target) != self._origin:
                        raise _Refused(f"HTTP {reply.status_code} from {url} redirects to another origin "
                                       f"({strip_userinfo(str(target))}); not followed: it would receive the "
                                       "image and prompt. Point base_url at the server that answers")
                    request = reply.next_request
                    continue
                return reply.status_code, reply.headers, await self._read(reply, url)
            finally:
                await reply.aclose()
        raise _Refused(f"more than {MAX_REDIRECTS} redirects from {url}")

    async def get_json(self, path: str, parse: Callable[[Any], Any] | None = None) -> Any:
        return await self.request("GET", path, parse=parse)

    async def post_json(self, path: str, payload: dict[str, Any], parse: Callable[[Any], Any] | None = None) -> Any:
        return await self.request("POST", path, json.dumps(payload).encode("utf-8"), parse=parse)

    async def request(self, method: str, path: str, body: bytes | None = None, *,
                      parse: Callable[[Any], Any] | None = None) -> Any:
        """The reply's JSON (through ``parse`` when given: a ``ValueError`` there is a malformed
        reply); retried on 429, 5xx, timeouts, lost connections and malformed replies, up to
        ``policy.max_attempts`` tries; :class:`RequestFailed` with the last reason after that."""
        import httpx

        url = f"{self.base_url}/{path.lstrip('/')}"  # as messages name it
        target = f"{self._target}/{path.lstrip('/')}"
        self.stats.requests += 1
        reason = "not tried"
        for attempt in range(1, self.policy.max_attempts + 1):
            retry_after = None
            self.stats.attempts += 1
            async with self._slots:
                try:
                    status, headers, content = await asyncio.wait_for(self._exchange(method, target, body, url),
                                                                      self.timeout)
                except _Refused as exc:
                    self.stats.failed += 1
                    raise RequestFailed(self.redact(str(exc))) from None
                except zlib.error as exc:
                    reason, kind = f"undecodable compressed reply from {url} ({exc})", "malformed"
                except (asyncio.TimeoutError, httpx.TimeoutException):
                    reason, kind = f"no reply within {self.timeout:g} s", "timeout"
                except httpx.TransportError as exc:
                    reason, kind = f"connection failed ({type(exc).__name__}: {exc})", "connection"
                else:
                    if status == 200:
                        try:
                            obj = loads_user_json(content, None)  # a hostile server's nesting is bounded too
                        except ValueError as exc:
                            reason, kind = f"malformed JSON in the reply from {url} ({exc})", "malformed"
                        else:
                            try:
                                return parse(obj) if parse is not None else obj
                            except ValueError as exc:
                                reason, kind = f"unusable reply from {url}: {exc}", "malformed"
                    else:
                        reason = f"HTTP {status} from {url}: {server_message(content)}"
                        kind = str(status)
                        if status < 500 and status not in RETRY_STATUSES:
                            self.stats.failed += 1
                            raise RequestFailed(self.redact(reason))
                        retry_after = _retry_after(headers)
            if attempt == self.policy.max_attempts:
                break
            self.stats.retries += 1
            self.stats.retry_reasons[kind] = self.stats.retry_reasons.get(kind, 0) + 1
            await asyncio.sleep(self.policy.delay(attempt, retry_after))
        self.stats.failed += 1
        raise RequestFailed(self.redact(f"{reason} (gave up after {self.policy.max_attempts} attempts)"))
