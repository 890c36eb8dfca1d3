"""Read a VLM's answer (``<think>...</think><answer>[...]</answer>``) into boxes and points.

Why a tolerant parser: sampled answers (temperature 1.0) often carry small JSON mistakes; the
reference code repairs a few with regexes and counts the rest as failures. This parser reads the
answer block with a forgiving tokenizer (single quotes, Python literals, unquoted words, trailing
or doubled commas, unclosed or mismatched brackets, stray braces, quoted numbers) and then
validates strictly. It never raises: every outcome is a :class:`ParsedAnswer` whose ``status`` is
``ok``, ``no_target`` (``[]``) or ``parse_error`` (with the reason in ``error``).

Differences from the reference parsers (recorded so that results can be compared knowingly):
the reference takes the FIRST ``<answer>`` block, this takes the last complete one (a model that
quotes the format inside its thinking is not misread); answers the reference rejects after its
regex repairs may be repaired here (``repairs`` lists what was fixed); an empty ``<answer></answer>``
is a parse error in both.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reasonseg_x.star.answer.tolerant_json import load_tolerant

__all__ = ["AnswerObject", "ParsedAnswer", "parse_answer", "vote_kind", "STATUSES", "PARSE_STYLES", "VOTE_KINDS"]

STATUSES = ("ok", "no_target", "parse_error")
VOTE_KINDS = ("objects", "no_object", "abstain")
PARSE_STYLES = ("star", "visionreasoner", "segzero")
_STYLE_ALIASES = {"seg-zero": "segzero", "seg_zero": "segzero", "vision_reasoner": "visionreasoner",
                  "vision-reasoner": "visionreasoner", "star_muse_mmr": "star", "star_refcoco": "star"}

_NO_OUTPUT = "no output"
#: answers longer than this are cut before parsing (a runaway generation is not an answer)
MAX_ANSWER_CHARS = 200_000


@dataclass(frozen=True)
class AnswerObject:
    """One answered object, in the model's coordinate frame (see :mod:`reasonseg_x.star.answer.coords`)."""

    label: str | None
    bbox: tuple[float, float, float, float] | None
    point: tuple[float, float] | None
    #: further positive points (Seg-Zero's ``points_2``)
    extra_points: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class ParsedAnswer:
    status: str
    objects: list[AnswerObject] = field(default_factory=list)
    error: str | None = None
    thinking: str | None = None
    #: the repairs that were needed (empty for clean JSON)
    repairs: tuple[str, ...] = ()
    #: whether the text had a complete ``<answer>...</answer>`` block
    answer_block: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def vote_kind(parsed: ParsedAnswer, *, missing_answer_votes_no_object: bool = True) -> str:
    """How one sampled answer enters the majority vote: ``objects``, ``no_object`` or ``abstain``.

    StAR's reference counts an output WITHOUT a complete ``<answer>...</answer>`` block (including
    one cut off by ``max_new_tokens``) as a valid "no object" vote, and only a block it cannot
    read as abstaining; ``missing_answer_votes_no_object=True`` (the default) reproduces that.
    """
    if parsed.status == "ok":
        return "objects"
    if parsed.status == "no_target":
        return "no_object"
    if missing_answer_votes_no_object and not parsed.answer_block and parsed.error != _NO_OUTPUT:
        return "no_object"
    return "abstain"


def _failure(reason: str, thinking: str | None = None, repairs: tuple[str, ...] = (),
             answer_block: bool = False) -> ParsedAnswer:
    return ParsedAnswer("parse_error", [], reason, thinking, repairs, answer_block)


# --- locating the blocks ------------------------------------------------------------------------

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ANSWER_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_THINK_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
_SPECIAL_TOKEN = re.compile(r"<\|[a-z_]+\|>")
_CODE_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def _answer_text(text: str, repairs: list[str]) -> str | None:
    """The last complete ``<answer>`` block, else what follows the last ``<answer>``."""
    blocks = _ANSWER_BLOCK.findall(text)
    if blocks:
        return blocks[-1]
    opens = list(_ANSWER_OPEN.finditer(text))
    if opens:
        repairs.append("missing </answer>")
        return text[opens[-1].end():]
    return None


def _thinking(text: str) -> str | None:
    match = _THINK_BLOCK.search(text)
    if match:
        return match.group(1).strip() or None
    # Qwen3-VL often skips <think>: what precedes <answer> is its reasoning (as StAR reads it)
    start = _ANSWER_OPEN.search(text)
    if start:
        before = _THINK_BLOCK.sub("", text[: start.start()]).replace("<think>", "").strip()
        return before or None
    return None


# --- validation -------------------------------------------------------------------------------------

_BBOX_KEYS = ("bbox_2d", "bbox", "box_2d", "box", "bbox2d", "bounding_box", "boundingbox", "bbox_xyxy")
_POINT_KEYS = ("point_2d", "point", "points_2d", "points", "point2d", "points_1", "point_1", "pos_point")
_LABEL_KEYS = ("label", "name", "category", "object", "class")


def _find_key(obj: Mapping[str, Any], exact: tuple[str, ...], fragment: str) -> str | None:
    lowered = {k.lower().strip(): k for k in obj}
    for key in exact:
        if key in lowered:
            return lowered[key]
    for low, key in lowered.items():
        if fragment in low:
            return key
    return None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{where} is a boolean, not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("px"))
        except ValueError:
            raise ValueError(f"{where} is not a number: {value!r}") from None
    else:
        raise ValueError(f"{where} is not a number: {value!r}")
    if not math.isfinite(number):
        raise ValueError(f"{where} is not finite: {value!r}")
    return number


def _numbers(value: Any, where: str, repairs: list[str]) -> list[float]:
    if isinstance(value, str):
        inner = value.strip()
        if inner.startswith("[") or inner.startswith("("):
            if "quoted array" not in repairs:
                repairs.append("quoted array")
            value = load_tolerant(inner.replace("(", "[").replace(")", "]"), repairs)
        else:
            value = [v for v in re.split(r"[\s,]+", inner) if v]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        value = [x for v in value for x in v]  # [[x1, y1], [x2, y2]]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where} must be a list of numbers, got {value!r}")
    if any(isinstance(v, str) for v in value) and "quoted number" not in repairs:
        repairs.append("quoted number")
    return [_number(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _bbox(value: Any, where: str, repairs: list[str]) -> tuple[float, float, float, float]:
    nums = _numbers(value, where, repairs)
    if len(nums) != 4:
        raise ValueError(f"{where} must have 4 numbers, got {len(nums)}")
    x1, y1, x2, y2 = nums
    if x1 > x2 or y1 > y2:
        if "unordered bbox" not in repairs:
            repairs.append("unordered bbox")
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _points(value: Any, where: str, repairs: list[str]) -> list[tuple[float, float]]:
    """One point ``[x, y]`` or several ``[[x, y], ...]``."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        out = []
        for i, v in enumerate(value):
            nums = _numbers(v, f"{where}[{i}]", repairs)
            if len(nums) != 2:
                raise ValueError(f"{where}[{i}] must have 2 numbers, got {len(nums)}")
            out.append((nums[0], nums[1]))
        if not out:
            raise ValueError(f"{where} is empty")
        return out
    nums = _numbers(value, where, repairs)
    if len(nums) != 2:
        raise ValueError(f"{where} must have 2 numbers, got {len(nums)}")
    return [(nums[0], nums[1])]


def _label(obj: Mapping[str, Any]) -> str | None:
    key = _find_key(obj, _LABEL_KEYS, "label")
    if key is None or obj[key] is None:
        return None
    value = obj[key]
    return value if isinstance(value, str) else json.dumps(value)


def _object(obj: Any, index: int, style: str, repairs: list[str]) -> AnswerObject:
    where = f"object {index}"
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where} is not a JSON object: {obj!r}"[:200])
    bbox_key = _find_key(obj, _BBOX_KEYS, "box")
    if bbox_key is None or obj[bbox_key] is None:
        raise ValueError(f"{where} has no bbox (keys: {', '.join(map(str, obj)) or 'none'})"[:200])
    if bbox_key != "bbox_2d" and style != "segzero" and "bbox key variant" not in repairs:
        repairs.append("bbox key variant")
    bbox = _bbox(obj[bbox_key], f"{where}.{bbox_key}", repairs)
    points: list[tuple[float, float]] = []
    point_keys = [k for k in obj if "point" in k.lower() and obj[k] is not None
                  and not k.lower().startswith(("neg", "negative"))]
    preferred = _find_key({k: obj[k] for k in point_keys}, _POINT_KEYS, "point")
    if style == "segzero":
        ordered = point_keys[:2]  # Seg-Zero reads the first two keys holding "points"
    else:
        ordered = [preferred] if preferred is not None else []
    for key in ordered:
        points.extend(_points(obj[key], f"{where}.{key}", repairs))
    if ordered and ordered[0] not in ("point_2d", "points_1") and "point key variant" not in repairs:
        repairs.append("point key variant")
    if style == "segzero" and len(points) < 2:
        raise ValueError(f"{where} must have two points (points_1, points_2) in the Seg-Zero format")
    point = points[0] if points else None
    return AnswerObject(label=_label(obj), bbox=bbox, point=point, extra_points=tuple(points[1:]))


def _style(style: str) -> str:
    key = _STYLE_ALIASES.get(style, style)
    return key if key in PARSE_STYLES else ""


def parse_answer(text: str | None, *, style: str = "star") -> ParsedAnswer:
    """Parse one generated text; never raises.

    ``style``: ``star`` (a list of ``{"label", "bbox_2d", "point_2d"}``), ``visionreasoner``
    (the same without labels) or ``segzero`` (one ``{"bbox", "points_1", "points_2"}`` object;
    the first point becomes ``point``, the second goes to ``extra_points``). Coordinates stay in
    the model's frame; boxes come back with ``x1 <= x2`` and ``y1 <= y2``.
    """
    kind = _style(style)
    if not kind:
        return _failure(f"unknown answer style {style!r}; known: {', '.join(PARSE_STYLES)}")
    if text is None:
        return _failure(_NO_OUTPUT)
    if not isinstance(text, str):
        return _failure(f"output is not text ({type(text).__name__})")
    text = text[:MAX_ANSWER_CHARS]
    repairs: list[str] = []
    thinking = None
    block = bool(_ANSWER_BLOCK.search(text))
    try:
        thinking = _thinking(text)
        answer = _answer_text(text, repairs)
        if answer is None:
            if kind != "segzero":
                return _failure("no <answer> block", thinking)
            # Seg-Zero's reference reads the first {...} anywhere in the output
            answer = _THINK_BLOCK.sub("", text)
            match = re.search(r"\{[^}]*\}", answer)
            if match is None:
                return _failure("no <answer> block and no JSON object", thinking)
            answer = match.group(0)
            repairs.append("no <answer> tags")
        answer = _SPECIAL_TOKEN.sub("", answer).strip()
        answer = _CODE_FENCE.sub("", answer).strip()
        if not answer:
            return _failure("empty <answer> block", thinking, tuple(repairs), block)
        try:
            data = load_tolerant(answer, repairs)
        except ValueError as exc:
            return _failure(f"answer is not JSON: {exc}", thinking, tuple(repairs), block)
        if isinstance(data, Mapping):
            if not data:
                return ParsedAnswer("no_target", [], None, thinking, tuple(repairs), block)
            if kind != "segzero":
                repairs.append("bare object instead of a list")
            data = [data]
        if not isinstance(data, list):
            return _failure(f"answer must be a list of objects, got {type(data).__name__}: {data!r}"[:200],
                            thinking, tuple(repairs), block)
        if len(data) == 1 and isinstance(data[0], list) and all(isinstance(v, Mapping) for v in data[0]):
            repairs.append("nested list")
            data = data[0]
        if not data or all(isinstance(v, Mapping) and not v for v in data):
            return ParsedAnswer("no_target", [], None, thinking, tuple(repairs), block)
        objects = [_object(obj, i, kind, repairs) for i, obj in enumerate(data)]
        return ParsedAnswer("ok", objects, None, thinking, tuple(repairs), block)
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        return _failure(str(exc) or type(exc).__name__, thinking, tuple(repairs), block)
