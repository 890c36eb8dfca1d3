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
passed through :func:`redact` first, so a server that echoes the key cannot put it in a log.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChatClient", "ClientStats", "RequestFailed", "RetryPolicy", "choice_texts", "redact", "server_message"]

#: HTTP statuses worth another try: rate limits, timeouts and server-side failures
RETRY_STATUSES = frozenset({408, 409, 425, 429})
#: longest back-off between two tries, and the most of a server's Retry-After we honour (seconds)
MAX_DELAY = 30.0


class RequestFailed(Exception):
    """A request that failed for good (attempts spent, or a status not worth retrying)."""


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced (no-op without a secret)."""
    if secret and secret in text:
        return text.replace(secret, "***")
    return text


def server_message(body: bytes, limit: int = 500) -> str:
    """The error message of a reply body: ``{"error": {"message": ...}}`` (OpenAI, vLLM),
    ``{"message": ...}``/``{"detail": ...}``, else the text itself, cut at ``limit`` characters."""
    text = body.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
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

        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.policy = policy or RetryPolicy()
        self.stats = ClientStats()
        self._secret = api_key or None
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        limits = httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency)
        self._http = httpx.AsyncClient(headers=headers, limits=limits, timeout=httpx.Timeout(self.timeout),
                                       follow_redirects=True)
        self._slots = asyncio.Semaphore(max_concurrency)

    def __repr__(self) -> str:  # never the key
        return f"ChatClient({self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def _clean(self, text: str) -> str:
        return redact(text, self._secret)

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

        url = f"{self.base_url}/{path.lstrip('/')}"
        self.stats.requests += 1
        reason = "not tried"
        for attempt in range(1, self.policy.max_attempts + 1):
            retry_after = None
            self.stats.attempts += 1
            async with self._slots:
                try:
                    reply = await asyncio.wait_for(self._http.request(method, url, content=body), self.timeout)
                except (asyncio.TimeoutError, httpx.TimeoutException):
                    reason, kind = f"no reply within {self.timeout:g} s", "timeout"
                except httpx.TransportError as exc:
                    reason, kind = f"connection failed ({type(exc).__name__}: {exc})", "connection"
                else:
                    if reply.status_code == 200:
                        try:
                            obj = json.loads(reply.content)
                        except ValueError as exc:
                            reason, kind = f"malformed JSON in the reply from {url} ({exc})", "malformed"
                        else:
                            try:
                                return parse(obj) if parse is not None else obj
                            except ValueError as exc:
                                reason, kind = f"unusable reply from {url}: {exc}", "malformed"
                    else:
                        reason = f"HTTP {reply.status_code} from {url}: {server_message(reply.content)}"
                        kind = str(reply.status_code)
                        if reply.status_code < 500 and reply.status_code not in RETRY_STATUSES:
                            self.stats.failed += 1
                            raise RequestFailed(self._clean(reason))
                        retry_after = _retry_after(reply.headers)
            if attempt == self.policy.max_attempts:
                break
            self.stats.retries += 1
            self.stats.retry_reasons[kind] = self.stats.retry_reasons.get(kind, 0) + 1
            await asyncio.sleep(self.policy.delay(attempt, retry_after))
        self.stats.failed += 1
        raise RequestFailed(self._clean(f"{reason} (gave up after {self.policy.max_attempts} attempts)"))
