"""Keep secrets out of everything we store or print: an API key (and its obvious encodings) and
the credentials a URL may carry (``http://user:secret@host/v1``).

Why here, at the package's top: the endpoint client redacts what a server sends back (answers,
model names, error messages) and the runner strips URL credentials from ``run.json``; both use
these two helpers, so the rules are written once (docs/serving.md, "Secrets").

What counts as an *obvious variant* of a key (a server that echoes the key in one of these forms
still cannot put it in ``predictions.jsonl``): the key itself, reversed, percent-encoded (``quote``
and ``quote_plus``), hex (either case), and base64 (standard and URL-safe alphabets) at each of the
three byte alignments it can have inside a longer encoded text. Variants are matched only for keys
of at least :data:`MIN_VARIANT_LENGTH` characters (a shorter key would match ordinary text); the
key itself is always redacted, a shorter one where it stands as a word of its own (a URL's user
name ``u`` must not turn "gave up" into "gave ***p"). Anything further (ROT13, the key spelled out with spaces, split
across answers) is an encoding game without end and is not attempted.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

__all__ = ["MASK", "MIN_VARIANT_LENGTH", "Redactor", "secret_variants", "strip_userinfo", "scrub_urls",
           "url_secrets"]

MASK = "***"
#: keys shorter than this are redacted as written only (their encodings would hit ordinary text)
MIN_VARIANT_LENGTH = 8

# scheme://USERINFO@ : userinfo runs to the last "@" before the host's end ("/", "?", "#", blank)
_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@]*(?:@[^/?#\s@]*)*@")


def strip_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL in it removed.

    Works on one URL (``http://u:p@host/v1`` -> ``http://host/v1``) and on a message that quotes
    URLs; text without a URL is returned unchanged."""
    return _USERINFO.sub(r"\1", text) if "@" in text else text


def scrub_urls(obj: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with :func:`strip_userinfo` applied to
    every string (keys included): what we record never names a URL's credentials."""
    if isinstance(obj, str):
        return strip_userinfo(obj)
    if isinstance(obj, dict):
        return {scrub_urls(k) if isinstance(k, str) else k: scrub_urls(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub_urls(v) for v in obj)
    return obj


def url_secrets(url: str) -> list[str]:
    """The user name and password a URL carries (decoded and as written), for a :class:`Redactor`."""
    try:
        parts = urlsplit(url)
        found = [parts.username, parts.password]
    except ValueError:
        return []
    return [s for value in found if value for s in dict.fromkeys((value, unquote(value)))]


def _base64_variants(raw: bytes) -> set[str]:
    """The characters of ``raw``'s base64 that do not depend on its neighbours, at the three
    alignments ``raw`` can start at inside a longer encoded text, in both alphabets."""
    out: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        stable = encoded[4 if shift else 0: 4 * ((shift + len(raw)) // 3)]
        out.add(stable)
        if shift == 0:
            out.add(encoded)  # the key encoded alone, padding included
    return out | {v.replace("+", "-").replace("/", "_") for v in out}


def secret_variants(secret: str) -> list[str]:
    """The key and its obvious encodings (see the module docstring), longest first."""
    if not secret:
        return []
    if len(secret) < MIN_VARIANT_LENGTH:
        return [secret]
    raw = secret.encode("utf-8")
    variants = {secret, secret[::-1], quote(secret, safe=""), quote_plus(secret), raw.hex(), raw.hex().upper()}
    variants |= _base64_variants(raw)
    return sorted((v for v in variants if len(v) >= MIN_VARIANT_LENGTH or v == secret), key=lambda v: (-len(v), v))


def _as_pattern(variant: str) -> str:
    """A long variant matches anywhere; a short one only between non-alphanumeric characters."""
    if len(variant) >= MIN_VARIANT_LENGTH:
        return re.escape(variant)
    return rf"(?<![^\W_]){re.escape(variant)}(?![^\W_])"


class Redactor:
    """Replaces every secret and its variants with :data:`MASK` (a no-op without secrets)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        variants = sorted({v for s in secrets if s for v in secret_variants(s)}, key=lambda v: (-len(v), v))
        self._pattern = re.compile("|".join(map(_as_pattern, variants))) if variants else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        """``text`` with every secret and variant masked."""
        return self._pattern.sub(MASK, text) if self._pattern is not None else text
