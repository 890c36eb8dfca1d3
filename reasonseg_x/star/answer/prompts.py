"""The exact prompts of StAR, VisionReasoner and Seg-Zero, and the VLM input frame.

Why exact: these models were trained (RL) on one wording and one example answer; a paraphrase
changes their outputs and so the benchmark numbers. The texts below are copied character for
character from the public reference code (sources recorded next to each), including their
quirks: VisionReasoner and Seg-Zero join their sentences without spaces, StAR separates them.

Every model first normalises the query the way its reference script does
(``query.lower().strip(...)``), then fills the template with ``str.format`` (the query is an
argument, so braces inside a query are safe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reasonseg_x.errors import InvalidInputError

__all__ = [
    "VLM_FRAME",
    "to_vlm_frame",
    "PromptTemplate",
    "PROMPT_TEMPLATES",
    "STYLES",
    "normalize_query",
    "build_prompt",
]

#: (width, height) the image is resized to (bilinear, aspect ratio not kept) before the VLM sees it.
VLM_FRAME: tuple[int, int] = (840, 840)


def to_vlm_frame(image: Any, frame: tuple[int, int] | None = VLM_FRAME) -> Any:
    """The pixels the VLM sees: RGB, resized bilinearly to ``frame`` (None: the original size).
    Every backend (in-process, vLLM, a served model) goes through this one resize."""
    from PIL import Image

    rgb = image.convert("RGB")
    return rgb.resize(frame, Image.BILINEAR) if frame else rgb


@dataclass(frozen=True)
class PromptTemplate:
    """One model's instruction: ``text`` with ``{Question}`` and ``{Answer}`` fields."""

    text: str
    #: the example answer the reference code substitutes for ``{Answer}``
    answer_example: str
    #: characters stripped from both ends of the lower-cased query
    strip_chars: str
    #: where the text was taken from (repository and file)
    source: str


# StAR: the public StAR evaluation script (sj9909's StAR release, "test" script with majority
# voting and self-correction), variable ``QUESTION_TEMPLATE`` (default branch, used for
# ReasonSeg-X and ReasonSeg); query = item["text"].lower().strip(".\"?!").
_STAR = (
    "Please find \"{Question}\" with bbox(es) and point(s). "
    "Also provide a short label for each object. "
    "First, understand and summarize what the query \u2014\"{Question}\"\u2014 is likely referring to (which object or concept). "
    "Then apply this to the image and find the matched target object(s). "
    "Return ALL matching instances; if there are no matches, return an empty list (<answer>[]</answer>). double-check none are missed. "
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags. "
    "Output the bbox(es) and point(s) inside the interested object(s), along with a short label, in JSON format. "
    "i.e., <think> thinking process (step-by-step reasoning) here </think> "
    "<answer>{Answer}</answer>"
)
# Same script, ``--test_muse_mmr true`` branch: no "empty list" sentence.
_STAR_MUSE_MMR = (
    "Please find \"{Question}\" with bbox(es) and point(s). "
    "Also provide a short label for each object. "
    "First, understand and summarize what the query \u2014\"{Question}\"\u2014 is likely referring to (which object or concept). "
    "Then apply this to the image and find the matched target object(s). "
    "Return ALL matching instances; double-check none are missed. "
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags. "
    "Output the bbox(es) and point(s) inside the interested object(s), along with a short label, in JSON format. "
    "i.e., <think> thinking process (step-by-step reasoning) here </think> "
    "<answer>{Answer}</answer>"
)
# Same script, ``--test_refcoco true`` branch.
_STAR_REFCOCO = (
    "Please find \"{Question}\" with bbox(es) and point(s). "
    "Also provide a short label for each object. "
    "Compare the difference between object(s) and find the most closely matched object(s). "
    "Return ALL matching instances; double-check none are missed. "
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags. "
    "Output the bbox(es) and point(s) inside the interested object(s), along with a short label, in JSON format. "
    "i.e., <think> thinking process (step-by-step reasoning) here </think> "
    "<answer>{Answer}</answer>"
)
_STAR_ANSWER = ('[{"label": "chair", "bbox_2d": [10,100,200,210], "point_2d": [30,110]}, '
                '{"label": "train track", "bbox_2d": [225,296,706,786], "point_2d": [302,410]}]')

# VisionReasoner: dvlab-research/VisionReasoner (mirror JIA-Lab-research/VisionReasoner),
# vision_reasoner/models/vision_reasoner_model.py, ``self.DETECTION_TEMPLATE`` and the ``Answer``
# passed in ``_generate_model_output``; query = instruction.lower().strip(".\"?!").
_VISIONREASONER = (
    "Please find \"{Question}\" with bboxs and points."
    "Compare the difference between object(s) and find the most closely matched object(s)."
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "Output the bbox(es) and point(s) inside the interested object(s) in JSON format."
    "i.e., <think> thinking process here </think>"
    "<answer>{Answer}</answer>"
)
_VISIONREASONER_ANSWER = ('[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}, '
                          '{"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]')

# Seg-Zero (v1, one object, two points): dvlab-research/Seg-Zero, inference_scripts/infer.py,
# ``QUESTION_TEMPLATE`` and its ``Answer`` (single quotes in the example are the original's);
# query = args.text.lower().strip(".").
_SEGZERO = (
    "Please find '{Question}' with bbox and points."
    "Compare the difference between objects and find the most closely matched one."
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "Output the one bbox and points of two largest inscribed circles inside the interested object in JSON format."
    "i.e., <think> thinking process here </think>"
    "<answer>{Answer}</answer>"
)
_SEGZERO_ANSWER = "{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}"

_STAR_SOURCE = "StAR public evaluation script (majority voting / self-correction test script), QUESTION_TEMPLATE"

PROMPT_TEMPLATES: dict[str, PromptTemplate] = {
    "star": PromptTemplate(_STAR, _STAR_ANSWER, ".\"?!", _STAR_SOURCE),
    "star_muse_mmr": PromptTemplate(_STAR_MUSE_MMR, _STAR_ANSWER, ".\"?!", _STAR_SOURCE + " (--test_muse_mmr)"),
    "star_refcoco": PromptTemplate(_STAR_REFCOCO, _STAR_ANSWER, ".\"?!", _STAR_SOURCE + " (--test_refcoco)"),
    "visionreasoner": PromptTemplate(
        _VISIONREASONER, _VISIONREASONER_ANSWER, ".\"?!",
        "dvlab-research/VisionReasoner vision_reasoner/models/vision_reasoner_model.py DETECTION_TEMPLATE"),
    "segzero": PromptTemplate(_SEGZERO, _SEGZERO_ANSWER, ".", "dvlab-research/Seg-Zero inference_scripts/infer.py QUESTION_TEMPLATE"),
}
#: accepted aliases
_ALIASES = {"seg-zero": "segzero", "seg_zero": "segzero", "vision_reasoner": "visionreasoner",
            "vision-reasoner": "visionreasoner", "star_muse": "star_muse_mmr", "star_mmr": "star_muse_mmr"}

STYLES: tuple[str, ...] = tuple(PROMPT_TEMPLATES)


def _template(style: str) -> PromptTemplate:
    key = _ALIASES.get(style, style)
    try:
        return PROMPT_TEMPLATES[key]
    except KeyError:
        raise InvalidInputError(f"unknown prompt style {style!r}; known: {', '.join(STYLES)}", "prompt") from None


def normalize_query(query: str, style: str = "star") -> str:
    """The query as the reference code feeds it: lower-cased, end punctuation stripped."""
    return query.lower().strip(_template(style).strip_chars)


def build_prompt(query: str, style: str = "star") -> str:
    """The instruction text for one query (the image goes in the chat message beside it)."""
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string, got {type(query).__name__}", "prompt")
    template = _template(style)
    return template.text.format(Question=normalize_query(query, style), Answer=template.answer_example)
