"""Text made safe for the static pages (leaderboard, case viewer): they embed untrusted strings."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["script_json", "html_text"]


def script_json(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``</script>``, no HTML comment, no line separators."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def html_text(text: str) -> str:
    """Text for an HTML element or a quoted attribute."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
