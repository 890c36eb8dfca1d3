"""Text made safe for the static pages (leaderboard, case viewer) and for report.md: they embed
untrusted strings (open-taxonomy type names, source names, file paths, protocol descriptions)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

__all__ = ["script_json", "script_hash", "html_text", "md_text", "md_code"]

#: Markdown punctuation that could start emphasis, a link, an image, a table cell, strike-through or
#: a code span; "_" only at a word's edge (CommonMark ignores it inside a word: ``function_purpose``)
_MD_SPECIAL = re.compile(r"[\\`*\[\]|~!]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def script_json(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``</script>``, no HTML comment, no line separators."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def script_hash(script: str) -> str:
    """The CSP source (``'sha256-...'`` without the quotes) that allows exactly this inline script:
    the pages' policy runs their own code and nothing injected beside it."""
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def html_text(text: str) -> str:
    """Text for an HTML element or a quoted attribute."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", str(text))


def md_text(text: str) -> str:
    """Text for a Markdown paragraph, list item or table cell: shows as written, on one line, and
    never becomes HTML (``<``, ``>``, ``&`` as entities), a link, emphasis or another cell."""
    text = html_text(_one_line(text)).replace('&quot;', '"')
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def md_code(text: str) -> str:
    """Text as one Markdown code span: fenced by more backticks than any run inside it (CommonMark),
    so nothing in it closes the span; inside a span HTML is shown, never rendered."""
    text = _one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
