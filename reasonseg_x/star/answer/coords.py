"""Map a VLM's boxes and points back to pixels of the original image.

Why it matters: the VLM sees the image resized to 840x840 (aspect ratio not kept); each model
family answers in its own frame, and an off-by-one here moves every SAM prompt. The rules follow
the reference code exactly (docs/protocols.md section 4):

- Qwen2.5-VL (StAR-7B, VisionReasoner, Seg-Zero): absolute pixels of the 840 frame;
  ``int(v * (W / 840) + 0.5)`` (the factor is computed first, as the reference does, so ties at
  .5 round the same way). Boxes are not reordered beyond the parser's x1 <= x2 sort. Seg-Zero's
  own evaluation script rounds differently, ``round(int(v) * (W / 840))``: ``rounding="segzero"``.
- Qwen2-VL: the same with a 0-1000 grid instead of the 840 frame.
- Qwen3-VL (StAR-8B/32B): the frame is detected from ALL numbers of one answer (StAR's
  ``_infer_qwen3_grid_from_values``): max |v| <= 1.2 -> unit ``round(v * (size - 1))``;
  <= 1000.5 -> grid999 ``round(v * (size - 1) / 999)``; else pixels of the ORIGINAL image,
  ``round(v)`` (StAR does not rescale them). ``round`` is Python's (ties to even) as in StAR; the
  result is clipped to ``[0, size - 1]``, boxes are reordered and widened to at least 1 px.

Clipping for the Qwen2 families (``clip=True``) limits to ``[0, W] x [0, H]``: every in-frame
answer maps inside that range, so only out-of-frame answers change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.answer.parser import AnswerObject
from reasonseg_x.star.answer.prompts import VLM_FRAME

__all__ = ["COORDS_FAMILIES", "FRAMES", "MODEL_FAMILIES", "ROUNDINGS", "detect_frame", "answer_values", "to_image_frame"]

FRAMES = ("unit", "grid999", "pixels")
MODEL_FAMILIES = ("qwen2.5", "qwen3", "qwen2")
ROUNDINGS = ("half_up", "segzero")
#: the ``coords`` model argument -> the family whose rule applies (``auto``: the checkpoint's own)
COORDS_FAMILIES = {"pixels": "qwen2.5", "grid1000": "qwen3"}
_FAMILY_ALIASES = {"qwen2_5": "qwen2.5", "qwen25": "qwen2.5", "qwen2.5-vl": "qwen2.5", "qwen2_5_vl": "qwen2.5",
                   "qwen3-vl": "qwen3", "qwen3_vl": "qwen3", "qwen2-vl": "qwen2", "qwen2_vl": "qwen2"}


def detect_frame(values: Iterable[float]) -> str:
    """``unit`` when max |v| <= 1.2, ``grid999`` when <= 1000.5, else ``pixels``.

    Non-finite or non-numeric values are ignored (only those left: ``unit``); an empty answer
    gives ``grid999``. Both as StAR's ``_infer_qwen3_grid_from_values``.
    """
    values = list(values)
    if not values:
        return "grid999"
    vmax = 0.0
    for value in values:
        try:
            number = abs(float(value))
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            vmax = max(vmax, number)
    if vmax <= 1.2:
        return "unit"
    if vmax <= 1000.5:
        return "grid999"
    return "pixels"


def answer_values(objects: Iterable[AnswerObject]) -> list[float]:
    """Every coordinate of one answer (boxes, points, extra points), the input of the detection."""
    values: list[float] = []
    for obj in objects:
        if obj.bbox is not None:
            values.extend(obj.bbox)
        if obj.point is not None:
            values.extend(obj.point)
        for extra in obj.extra_points:
            values.extend(extra)
    return values


def _family(model_family: str) -> str:
    key = _FAMILY_ALIASES.get(model_family.lower(), model_family.lower())
    if key not in MODEL_FAMILIES:
        raise InvalidInputError(f"unknown model family {model_family!r}; known: {', '.join(MODEL_FAMILIES)}", "coords")
    return key


def _scale(value: float, factor: float, limit: int, clip: bool, rounding: str) -> int:
    if rounding == "segzero":
        scaled = int(value) * factor  # Seg-Zero: truncate, scale, then Python's round
    else:
        scaled = value * factor + 0.5
    if not math.isfinite(scaled):
        if not clip:
            raise InvalidInputError(f"coordinate {value!r} does not map to a pixel", "coords")
        return 0 if scaled < 0 else limit
    v = round(scaled) if rounding == "segzero" else int(scaled)
    return min(max(v, 0), limit) if clip else v


def _qwen3(value: float, frame: str, size: int) -> int:
    if frame == "pixels":
        v = round(value)
    elif frame == "unit":
        v = round(float(value) * (size - 1))
    else:
        v = round(float(value) * (size - 1) / 999.0)
    return max(0, min(size - 1, int(v)))


def _qwen3_box(box: Sequence[float], frame: str, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1 = _qwen3(box[0], frame, width), _qwen3(box[1], frame, height)
    x2, y2 = _qwen3(box[2], frame, width), _qwen3(box[3], frame, height)
    x1, x2 = min(x1, x2), max(x1, x2)
    y1, y2 = min(y1, y2), max(y1, y2)
    # a degenerate box is widened to 1 px, as StAR does before prompting SAM
    if x2 <= x1:
        x2 = min(width - 1, x1 + 1)
        if x2 <= x1 and width >= 2:
            x1, x2 = min(x1, width - 2), width - 1
    if y2 <= y1:
        y2 = min(height - 1, y1 + 1)
        if y2 <= y1 and height >= 2:
            y1, y2 = min(y1, height - 2), height - 1
    return x1, y1, x2, y2


def to_image_frame(
    objects: Sequence[AnswerObject],
    width: int,
    height: int,
    *,
    model_family: str = "qwen2.5",
    frame: tuple[int, int] = VLM_FRAME,
    grid: str | None = None,
    clip: bool = True,
    rounding: str = "half_up",
) -> list[AnswerObject]:
    """The objects of ONE answer with integer pixel coordinates of the ``width`` x ``height`` image.

    ``frame`` is the (width, height) the VLM saw (Qwen2.5 only); ``grid`` forces the Qwen3 frame
    (``unit``, ``grid999`` or ``pixels``) instead of detecting it, like StAR's
    ``--qwen3_force_coord_grid``. ``rounding`` (Qwen2 families): ``half_up`` = ``int(v * f + 0.5)``
    (StAR, VisionReasoner) or ``segzero`` = ``round(int(v) * f)`` (Seg-Zero's evaluation script).
    Labels and the order of objects are kept; a missing point stays ``None`` (the caller decides,
    e.g. the box centre).
    """
    family = _family(model_family)
    if int(width) <= 0 or int(height) <= 0:
        raise InvalidInputError(f"image size must be positive, got {width}x{height}", "coords")
    width, height = int(width), int(height)
    if rounding not in ROUNDINGS:
        raise InvalidInputError(f"unknown rounding {rounding!r}; known: {', '.join(ROUNDINGS)}", "coords")
    if grid is not None and grid not in FRAMES:
        raise InvalidInputError(f"unknown coordinate grid {grid!r}; known: {', '.join(FRAMES)}", "coords")
    out: list[AnswerObject] = []
    if family == "qwen3":
        detected = grid or detect_frame(answer_values(objects))
        for obj in objects:
            box = _qwen3_box(obj.bbox, detected, width, height) if obj.bbox is not None else None
            pts = [(_qwen3(p[0], detected, width), _qwen3(p[1], detected, height))
                   for p in ([obj.point] if obj.point is not None else []) + list(obj.extra_points)]
            out.append(AnswerObject(obj.label, box, pts[0] if obj.point is not None else None,
                                    tuple(pts[1:] if obj.point is not None else pts)))
        return out
    frame_w, frame_h = (1000, 1000) if family == "qwen2" else (int(frame[0]), int(frame[1]))
    if frame_w <= 0 or frame_h <= 0:
        raise InvalidInputError(f"VLM frame must be positive, got {frame}", "coords")
    fx, fy = width / frame_w, height / frame_h
    def xy(p: Sequence[float]) -> tuple[int, int]:
        return _scale(p[0], fx, width, clip, rounding), _scale(p[1], fy, height, clip, rounding)

    for obj in objects:
        box = None
        if obj.bbox is not None:
            box = (*xy(obj.bbox[:2]), *xy(obj.bbox[2:]))
        point = xy(obj.point) if obj.point is not None else None
        out.append(AnswerObject(obj.label, box, point, tuple(xy(p) for p in obj.extra_points)))
    return out
