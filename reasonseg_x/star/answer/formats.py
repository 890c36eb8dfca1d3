"""Answer formats: the prompt a model is asked with, how its text is read, and its coordinate frame.

Why: a base model asked in another model's format answers badly (zero-shot Qwen2.5-VL scored
with VisionReasoner's prompt collapses), so each model is asked the way it was trained to ground:
Qwen2.5-VL's JSON ``bbox_2d`` in pixels, Qwen3-VL's 0-1000 grid, InternVL's ``<box>[[...]]</box>``,
or a plain box list for API models. The formats are data (``baselines/formats.yaml``); this module
reads them and turns a format's text into :class:`~reasonseg_x.star.answer.parser.ParsedAnswer`
objects, then image pixels.

Every syntax ends in the one answer parser (:func:`~reasonseg_x.star.answer.parser.parse_answer`):
the format's payload is rewritten as the JSON list that parser reads, so validation, repairs and
"never raises" are the parser's. Coordinates map through
:func:`~reasonseg_x.star.answer.coords.to_image_frame` (``pixels``: the 840 frame's rule;
``grid1000``: the 0-1000 grid rule ``int(v * size / 1000 + 0.5)``; ``model``: the checkpoint's own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.answer.parser import MAX_ANSWER_CHARS, AnswerObject, ParsedAnswer, parse_answer
from reasonseg_x.star.answer.tolerant_json import load_tolerant

__all__ = ["AnswerFormat", "SYNTAXES", "FRAMES", "NATIVE_FORMATS", "answer_formats", "get_format",
           "format_for_model", "format_of_lmms_model", "read_answer"]

SYNTAXES = ("answer-json", "json", "internvl-box", "box-list")
FRAMES = ("pixels", "grid1000", "model")
#: frame -> the model family whose rule of coords.to_image_frame applies (``model``: the checkpoint's)
_FRAME_FAMILY = {"pixels": "qwen2.5", "grid1000": "qwen2"}
_KEYS = {"name", "description", "syntax", "frame", "prompt", "prompt_style", "source", "models"}


def _failure(reason: str) -> ParsedAnswer:
    return ParsedAnswer("parse_error", [], reason)


@dataclass(frozen=True)
class AnswerFormat:
    """One entry of ``baselines/formats.yaml``."""

    name: str
    description: str
    syntax: str
    frame: str
    source: str
    prompt: str | None = None
    prompt_style: str | None = None
    models: tuple[str, ...] = ()

    @property
    def prompt_template(self) -> str:
        """The instruction with ``{Question}`` (recorded in run.json beside the format's name)."""
        if self.prompt is not None:
            return self.prompt
        from reasonseg_x.star.answer.prompts import PROMPT_TEMPLATES

        template = PROMPT_TEMPLATES[str(self.prompt_style)]
        return template.text.replace("{Answer}", template.answer_example)

    def build_prompt(self, query: str) -> str:
        """The instruction for one query; the query is inserted as text, never as a template."""
        if not isinstance(query, str):
            raise InvalidInputError(f"query must be a string, got {type(query).__name__}", "prompt")
        if self.prompt is None:
            from reasonseg_x.star.answer.prompts import build_prompt

            return build_prompt(query, str(self.prompt_style))
        return self.prompt.replace("{Question}", query.strip())

    def parse(self, text: str | None) -> ParsedAnswer:
        """The answer's objects in the format's own frame; never raises (garbage is a ``parse_error``)."""
        if text is None or not isinstance(text, str):
            return parse_answer(text)  # the parser's own wording for "no output" / "not text"
        text = text[:MAX_ANSWER_CHARS]
        if self.syntax == "answer-json":
            return parse_answer(text, style="star")
        try:
            payload = _PAYLOADS[self.syntax](text)
        except (ValueError, TypeError, RecursionError, OverflowError) as exc:
            return _failure(str(exc) or type(exc).__name__)
        if isinstance(payload, ParsedAnswer):
            return payload
        return parse_answer(f"<answer>{payload}</answer>", style="star")

    def family(self, model_family: str | None) -> str:
        """The model family whose rule of :func:`~reasonseg_x.star.answer.coords.to_image_frame` maps
        this format's numbers (``model``: the checkpoint's own family)."""
        if self.frame == "model":
            return model_family or "qwen2.5"
        return _FRAME_FAMILY[self.frame]

    def to_image(self, objects: Sequence[AnswerObject], width: int, height: int, *,
                 model_family: str | None = None, rounding: str = "half_up") -> list[AnswerObject]:
        """The objects in integer pixels of the ``width`` x ``height`` image, clipped."""
        from reasonseg_x.star.answer.coords import to_image_frame
        from reasonseg_x.star.answer.prompts import VLM_FRAME

        return list(to_image_frame(objects, width, height, model_family=self.family(model_family),
                                   frame=VLM_FRAME, rounding=rounding))

    def describe(self) -> dict[str, Any]:
        """What run.json and the leaderboard record about the format."""
        return {"name": self.name, "syntax": self.syntax, "frame": self.frame, "prompt": self.prompt_template,
                "source": self.source}


def read_answer(fmt: AnswerFormat, text: str | None, width: int, height: int, *,
                model_family: str | None = None, rounding: str = "half_up") -> tuple[ParsedAnswer, list[AnswerObject]]:
    """(the parsed answer, its objects in image pixels): what a predictor and the harness segment."""
    parsed = fmt.parse(text)
    if parsed.status != "ok" or not parsed.objects:
        return parsed, []
    return parsed, fmt.to_image(parsed.objects, width, height, model_family=model_family, rounding=rounding)


# --- payloads: each syntax rewritten as the JSON list the answer parser reads ------------------------

_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_OPEN_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*)$", re.DOTALL)
_BOX = re.compile(r"<box>(.*?)</box>", re.DOTALL | re.IGNORECASE)
_REF = re.compile(r"<ref>(.*?)</ref>", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def _json_text(text: str) -> str:
    """The JSON part of a chatty answer: the last ```json fence, else from the first bracket to the last."""
    text = _THINK.sub("", text)
    fences = _FENCE.findall(text)
    if fences:
        return fences[-1].strip()
    unclosed = _OPEN_FENCE.search(text)
    if unclosed:
        text = unclosed.group(1)
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not starts:
        raise ValueError("no JSON list or object in the answer")
    start = min(starts)
    end = max(text.rfind("]"), text.rfind("}"))
    return text[start:end + 1] if end > start else text[start:]


def _json_objects(text: str) -> str | ParsedAnswer:
    if re.search(r"<answer>", text, re.IGNORECASE):
        return parse_answer(text, style="star")
    return _json_text(text)


def _is_box(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 4 and not any(isinstance(v, (list, tuple, dict)) for v in value)


def _boxes(value: Any, where: str) -> list[Any]:
    """``[x1, y1, x2, y2]`` -> one box; ``[[...], ...]`` -> several; objects pass through."""
    if _is_box(value):
        return [{"bbox_2d": list(value)}]
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of boxes, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, (list, tuple)):
            out.append({"bbox_2d": list(item)})  # the parser checks it has 4 numbers
        else:
            raise ValueError(f"{where}[{i}] is not a box: {item!r}"[:200])
    return out


def _box_list(text: str) -> str | ParsedAnswer:
    repairs: list[str] = []
    value = load_tolerant(_json_text(text), repairs)
    return json.dumps(_boxes(value, "answer"))


def _internvl(text: str) -> str | ParsedAnswer:
    blocks = list(_BOX.finditer(text))
    if not blocks:
        raise ValueError("no <box>...</box> in the answer")
    objects: list[Any] = []
    for n, block in enumerate(blocks):
        refs = _REF.findall(text[:block.start()])
        label = refs[-1].strip() if refs else None
        repairs: list[str] = []
        value = load_tolerant(block.group(1).strip() or "[]", repairs)
        for obj in _boxes(value, f"<box> {n}"):
            if label and isinstance(obj, dict) and "label" not in obj:
                obj = {"label": label, **obj}
            objects.append(obj)
    return json.dumps(objects)


_PAYLOADS = {"json": _json_objects, "box-list": _box_list, "internvl-box": _internvl}


# --- the registry ---------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def answer_formats() -> dict[str, AnswerFormat]:
    """Every format of ``baselines/formats.yaml`` by name (checked: a broken entry is an error naming it)."""
    import yaml

    from reasonseg_x._resources import shipped_file
    from reasonseg_x.star.answer.prompts import PROMPT_TEMPLATES

    path = shipped_file("baselines", "formats.yaml")
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: dict[str, AnswerFormat] = {}
    for i, raw in enumerate(doc.get("formats") or []):
        where = f"{path}: formats[{i}]"
        if not isinstance(raw, dict) or not {"name", "description", "syntax", "frame", "source"} <= set(raw):
            raise InvalidInputError("a format needs name, description, syntax, frame and source", where)
        unknown = set(raw) - _KEYS
        if unknown:
            raise InvalidInputError(f"unknown key(s) {', '.join(sorted(unknown))}", where)
        if raw["syntax"] not in SYNTAXES or raw["frame"] not in FRAMES:
            raise InvalidInputError(f"syntax must be one of {', '.join(SYNTAXES)} and frame one of "
                                    f"{', '.join(FRAMES)}", where)
        if (raw.get("prompt") is None) == (raw.get("prompt_style") is None):
            raise InvalidInputError("give either prompt (with {Question}) or prompt_style", where)
        if raw.get("prompt") is not None and "{Question}" not in str(raw["prompt"]):
            raise InvalidInputError("prompt must contain {Question}", where)
        if raw.get("prompt_style") is not None and raw["prompt_style"] not in PROMPT_TEMPLATES:
            raise InvalidInputError(f"unknown prompt_style {raw['prompt_style']!r}", where)
        fmt = AnswerFormat(str(raw["name"]), str(raw["description"]), str(raw["syntax"]), str(raw["frame"]),
                           str(raw["source"]), raw.get("prompt"), raw.get("prompt_style"),
                           tuple(str(m) for m in raw.get("models") or ()))
        if fmt.name in out:
            raise InvalidInputError(f"format {fmt.name!r} is listed twice", where)
        out[fmt.name] = fmt
    return out


def get_format(name: str) -> AnswerFormat:
    """The format called ``name``; an unknown name is an error listing the known ones."""
    formats = answer_formats()
    try:
        return formats[name]
    except KeyError:
        raise InvalidInputError(f"unknown answer format {name!r}; known: {', '.join(formats)}", "format") from None


#: the format ``-a format=auto`` picks for a checkpoint family
NATIVE_FORMATS = {"qwen2.5": "qwen2.5-native", "qwen3": "qwen3-native"}


def format_for_model(model_family: str | None) -> AnswerFormat:
    """The default format of a checkpoint family (``qwen2.5`` -> Qwen2.5-VL's own, ``qwen3`` -> Qwen3-VL's);
    another family has no default: the error asks for ``-a format=``."""
    try:
        return get_format(NATIVE_FORMATS[str(model_family)])
    except KeyError:
        raise InvalidInputError(f"no default answer format for model family {model_family!r}; pass -a format= one "
                                f"of {', '.join(answer_formats())}", "format") from None


def format_of_lmms_model(model: str | None) -> AnswerFormat | None:
    """The format whose ``models`` list names the lmms-eval model ``model`` (``qwen2_5_vl`` ->
    ``qwen2.5-native``), or None: the lmms-eval tasks ask each model in its own format by default."""
    if not model:
        return None
    return next((fmt for fmt in answer_formats().values() if model in fmt.models), None)
