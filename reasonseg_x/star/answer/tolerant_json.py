"""A forgiving JSON reader for model answers.

Why: sampled answers (temperature 1.0) often carry small JSON mistakes. This reader accepts single
quotes, Python literals, unquoted words, trailing or doubled commas, unclosed or mismatched
brackets, stray braces and quoted numbers, and records each repair it made, so the answer
validator (:mod:`reasonseg_x.star.answer.parser`) can stay strict about what the values mean.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["load_tolerant"]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<punct>[\[\]{}:,])
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
  | (?P<quote>["'])
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)

_WORDS = {"null": None, "None": None, "none": None, "NULL": None, "true": True, "True": True,
          "false": False, "False": False, "NaN": math.nan, "nan": math.nan,
          "Infinity": math.inf, "inf": math.inf}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}


class _Reader:
    """Recursive-descent reader of almost-JSON; records each repair it had to make."""

    def __init__(self, text: str) -> None:
        self.repairs: list[str] = []
        self.tokens = self._tokenize(text)
        self.pos = 0

    def _tokenize(self, text: str) -> list[tuple[str, Any]]:
        tokens: list[tuple[str, Any]] = []
        i, n = 0, len(text)
        while i < n:
            match = _TOKEN.match(text, i)
            assert match is not None  # the last alternative matches any character
            kind = match.lastgroup
            if kind == "quote":
                value, i = self._string(text, match.end(), match.group())
                tokens.append(("string", value))
                continue
            i = match.end()
            if kind == "ws":
                continue
            tokens.append((kind, match.group()))  # type: ignore[arg-type]
        return tokens

    def _string(self, text: str, i: int, quote: str) -> tuple[str, int]:
        out: list[str] = []
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == quote:
                return "".join(out), i + 1
            if ch == "\\" and i + 1 < n:
                nxt = text[i + 1]
                if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6] or ""):
                    out.append(chr(int(text[i + 2:i + 6], 16)))
                    i += 6
                    continue
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        self.note("unterminated string")
        return "".join(out), n

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def note(self, repair: str) -> None:
        if repair not in self.repairs:
            self.repairs.append(repair)

    def value(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise ValueError("unexpected end of answer")
        kind, text = tok
        self.pos += 1
        if kind == "punct":
            if text == "[":
                return self.array()
            if text == "{":
                return self.object()
            raise ValueError(f"unexpected {text!r}")
        if kind == "string":
            return text
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "word":
            if text in _WORDS:
                if text not in ("null", "true", "false"):
                    self.note("python/js literal")
                return _WORDS[text]
            self.note("unquoted word")
            return text
        raise ValueError(f"unexpected character {text!r}")

    def array(self) -> list[Any]:
        items: list[Any] = []
        expect_value = True
        while True:
            tok = self.peek()
            if tok is None:
                self.note("unclosed array")
                return items
            kind, text = tok
            if kind == "punct" and text == "]":
                self.pos += 1
                if not expect_value or not items:
                    return items
                self.note("trailing comma")
                return items
            if kind == "punct" and text == "}":
                self.pos += 1
                if items and isinstance(items[-1], (dict, list)):
                    self.note("stray '}'")  # e.g. [{...}}, {...}]
                    continue
                self.note("'}' closing an array")  # e.g. "point_2d": [30, 110}}]
                return items
            if kind == "punct" and text == ",":
                self.pos += 1
                if expect_value:
                    self.note("extra comma")
                expect_value = True
                continue
            if kind == "punct" and text == ":":
                raise ValueError("unexpected ':' in a list")
            if not expect_value:
                self.note("missing comma")
            items.append(self.value())
            expect_value = False

    def object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        while True:
            tok = self.peek()
            if tok is None:
                self.note("unclosed object")
                return obj
            kind, text = tok
            if kind == "punct" and text == "}":
                self.pos += 1
                return obj
            if kind == "punct" and text == "]":
                self.note("missing '}'")  # leave the ']' to the enclosing array
                return obj
            if kind == "punct" and text == ",":
                self.pos += 1
                continue
            if kind in ("string", "word", "number"):
                self.pos += 1
                key = str(text)
                if kind != "string":
                    self.note("unquoted key")
            else:
                raise ValueError(f"unexpected {text!r} where an object key was expected")
            tok = self.peek()
            if tok is None:
                self.note("unclosed object")
                return obj
            if tok == ("punct", ":"):
                self.pos += 1
            else:
                raise ValueError(f"missing ':' after key {key!r}")
            if self.peek() is None:
                self.note("unclosed object")
                return obj
            obj[key] = self.value()

    def document(self) -> Any:
        """The answer's value; text before the first bracket and after the last value is ignored."""
        start = next((i for i, tok in enumerate(self.tokens) if tok in (("punct", "["), ("punct", "{"))), None)
        if start is None:
            if not self.tokens:
                raise ValueError("no JSON value in the answer")
            value = self.value()
            if self.peek() is not None:
                raise ValueError("answer is not a JSON list")
            return value
        if start > 0:
            self.note("text before the JSON")
            self.pos = start
        values = [self.value()]
        while self.peek() is not None:
            tok = self.peek()
            if tok in (("punct", ","), ("punct", "]"), ("punct", "}")):
                self.pos += 1
                self.note("extra comma" if tok == ("punct", ",") else "extra closing bracket")
                continue
            if tok == ("punct", "{") and isinstance(values[0], dict):
                values.append(self.value())
                continue
            self.note("text after the JSON")
            break
        if len(values) > 1:
            self.note("objects without enclosing list")
            return values
        return values[0]


def load_tolerant(text: str, repairs: list[str]) -> Any:
    """``text`` as JSON when it is; else read forgivingly, appending what was repaired to ``repairs``.
    Raises ValueError when nothing readable is there."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    reader = _Reader(text)
    try:
        data = reader.document()
    except RecursionError:
        raise ValueError("answer nested too deeply") from None
    repairs.extend(r for r in reader.repairs if r not in repairs)
    return data
