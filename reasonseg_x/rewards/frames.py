"""Which pixels an answer's numbers name: the coordinate rule of a reward (recorded per preset).

- ``pixels`` (default): the numbers are pixels of the image passed to the reward, used as they are
  (the published rewards: StAR and VisionReasoner train Qwen2.5-VL on 840 x 840 images, whose
  answers are pixels of that frame).
- ``qwen3-reference``: StAR's reward worker for Qwen3-VL: the grid is inferred over all numbers of
  the answer (max <= 1.2: [0, 1]; <= 999.5: 0-999; <= 1000.5: 0-1000; else pixels), each number
  becomes ``round(v * (size - 1) / grid)`` clipped to the image, box corners are reordered and a
  box without area is widened by 1 px.
- ``qwen2.5``, ``qwen3``, ``qwen2``: our evaluation frames (:mod:`reasonseg_x.star.answer.coords`:
  the 840 frame, the detected Qwen3 grid, the 0-1000 grid), mapped to the image passed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.answer.parser import AnswerObject

__all__ = ["COORD_RULES", "to_pixels", "infer_reference_grid"]

COORD_RULES = ("pixels", "qwen3-reference", "qwen2.5", "qwen3", "qwen2")

Box = Sequence[float]
Points = Sequence[Sequence[float]]


def check_rule(rule: str) -> str:
    if rule not in COORD_RULES:
        raise InvalidInputError(f"unknown coordinate rule {rule!r}; known: {', '.join(COORD_RULES)}", "reward")
    return rule


def infer_reference_grid(values: Sequence[float]) -> int | None:
    """StAR's reward-side Qwen3 grid: 1, 999, 1000, or None for pixels (non-finite numbers skipped;
    no numbers: 999)."""
    if not values:
        return 999
    finite = [abs(float(v)) for v in values if math.isfinite(float(v))]
    vmax = max(finite, default=0.0)
    if vmax <= 1.2:
        return 1
    if vmax <= 999.5:
        return 999
    if vmax <= 1000.5:
        return 1000
    return None


def _reference_scale(value: float, grid: int | None, size: int) -> int:
    if grid is None:
        v = round(value)
    elif grid == 1:
        v = round(value * (size - 1))
    else:
        v = round(value * (size - 1) / float(grid))
    return max(0, min(size - 1, int(v)))


def _qwen3_reference(objects: Sequence[tuple[Box, Points]], width: int, height: int) -> list[tuple[Box, Points]]:
    values = [float(v) for box, points in objects for v in (*box, *(c for p in points for c in p))]
    grid = infer_reference_grid(values)
    out = []
    for box, points in objects:
        x1, y1 = _reference_scale(box[0], grid, width), _reference_scale(box[1], grid, height)
        x2, y2 = _reference_scale(box[2], grid, width), _reference_scale(box[3], grid, height)
        x1, x2, y1, y2 = min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)
        if x2 <= x1:
            x2 = min(width - 1, x1 + 1)
        if y2 <= y1:
            y2 = min(height - 1, y1 + 1)
        pts = [(_reference_scale(p[0], grid, width), _reference_scale(p[1], grid, height)) for p in points]
        out.append(((x1, y1, x2, y2), pts))
    return out


def to_pixels(objects: Sequence[tuple[Box, Points]], rule: str, width: int, height: int) -> list[tuple[Box, Points]]:
    """``(box, points)`` per object in pixels of the ``width`` x ``height`` image under ``rule``.

    Raises ``ValueError`` for a number no rule can map (the caller scores the answer as unreadable)."""
    if rule == "pixels":
        return [(tuple(box), [tuple(p) for p in points]) for box, points in objects]
    if any(not math.isfinite(float(v)) for box, points in objects for v in (*box, *(c for p in points for c in p))):
        raise ValueError(f"a coordinate is not finite, which the {rule} rule cannot map")
    if rule == "qwen3-reference":
        return _qwen3_reference(objects, width, height)
    from reasonseg_x.star.answer.coords import to_image_frame

    answer = [AnswerObject(None, tuple(box), tuple(points[0]) if points else None, tuple(tuple(p) for p in points[1:]))
              for box, points in objects]
    try:
        mapped = to_image_frame(answer, width, height, model_family=rule)
    except InvalidInputError as exc:
        raise ValueError(exc.reason if hasattr(exc, "reason") else str(exc)) from None
    return [(obj.bbox, ([obj.point] if obj.point is not None else []) + list(obj.extra_points)) for obj in mapped]
