"""The published reward terms as small numpy functions (docs/rewards.md section 2 records each formula and its source).

Why separate from the presets: each term is checked against hand-computed values in the tests,
and the presets only combine them. Everything here is written from the formulas, in our words;
quirks of the published code that change a number are kept on purpose and named where they occur.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

__all__ = [
    "THINK_LAYOUT", "think_format", "answer_json", "object_format", "non_repeat",
    "box_iou_matrix", "box_l1_matrix", "point_distance_matrix", "points_in_own_box",
    "grade_mask_iou", "mask_iou_matrix", "hungarian_total", "segzero_box_iou", "segzero_points_distance",
]

#: the whole text must be this layout for the "think" format point (DOTALL, full match)
THINK_LAYOUT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
#: the first answer block, whitespace inside the tags trimmed (as the published code reads it)
_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)


def think_format(text: str) -> float:
    """1 when the whole text is ``<think>...</think>`` then ``<answer>...</answer>``, else 0."""
    return 1.0 if THINK_LAYOUT.fullmatch(text) else 0.0


def answer_json(text: str) -> Any:
    """What ``json.loads`` makes of the first ``<answer>`` block; ``ValueError`` when there is no
    block or it is not JSON (Python's ``json`` accepts ``NaN`` and ``Infinity``, as the published
    code does)."""
    match = _ANSWER.search(text)
    if match is None:
        raise ValueError("no <answer>...</answer> block")
    try:
        return json.loads(match.group(1))
    except RecursionError:
        raise ValueError("answer JSON nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"answer is not JSON: {exc}") from None


def object_format(data: Any, weights: dict[str, float]) -> float:
    """The per-object format points averaged over the answer's items (at most ``sum(weights)``).

    ``weights`` maps ``bbox_2d`` / ``point_2d`` / ``label`` to the points for a list of 4, a list
    of 2, a non-blank string. Kept from the published loop: it runs over whatever the JSON is
    (a dict's keys, a string's characters); an item it cannot index ends the loop and keeps the
    points gathered so far; a non-sized answer scores 0."""
    try:
        count = len(data)
    except TypeError:
        return 0.0
    total = 0.0
    for item in data:
        if not isinstance(item, dict):
            try:  # membership on a string or list item, as the published loop tests it
                hit = any(key in item for key in weights)
            except TypeError:
                return total
            if hit:  # the published code then indexes the item with the key: TypeError ends the loop
                return total
            continue
        points = 0.0
        box = item.get("bbox_2d", None) if "bbox_2d" in weights else None
        if isinstance(box, list) and len(box) == 4:
            points += weights["bbox_2d"]
        point = item.get("point_2d", None) if "point_2d" in weights else None
        if isinstance(point, list) and len(point) == 2:
            points += weights["point_2d"]
        label = item.get("label", None) if "label" in weights else None
        if isinstance(label, str) and label.strip() != "":
            points += weights["label"]
        total += points / count
    return total


def non_repeat(text: str) -> float:
    """1 unless two of the text's sentences (split on ".", stripped, empties dropped) repeat an
    earlier one; then 0."""
    seen: set[str] = set()
    repeats = 0
    for sentence in (s.strip() for s in text.split(".")):
        if not sentence:
            continue
        if sentence in seen:
            repeats += 1
            if repeats >= 2:
                return 0.0
        seen.add(sentence)
    return 1.0


def box_iou_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU ``[M, N]`` of ``x1, y1, x2, y2`` boxes with the inclusive-pixel ``+1`` convention; the
    intersection's sides are clipped at 0, the boxes are used as given (not reordered)."""
    p, g = pred[:, None, :], gt[None, :, :]
    with np.errstate(all="ignore"):
        iw = np.maximum(0, np.minimum(p[..., 2], g[..., 2]) - np.maximum(p[..., 0], g[..., 0]) + 1)
        ih = np.maximum(0, np.minimum(p[..., 3], g[..., 3]) - np.maximum(p[..., 1], g[..., 1]) + 1)
        inter = iw * ih
        area_p = (p[..., 2] - p[..., 0] + 1) * (p[..., 3] - p[..., 1] + 1)
        area_g = (g[..., 2] - g[..., 0] + 1) * (g[..., 3] - g[..., 1] + 1)
        return inter / (area_p + area_g - inter)


def box_l1_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean absolute difference of the four box numbers, ``[M, N]``."""
    with np.errstate(all="ignore"):
        return np.abs(pred[:, None, :] - gt[None, :, :]).mean(axis=2)


def point_distance_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance between predicted and ground-truth points, ``[M, N]``."""
    with np.errstate(all="ignore"):
        return np.sqrt(((pred[:, None, :] - gt[None, :, :]) ** 2).sum(axis=2))


def points_in_own_box(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Whether each predicted point lies in its own predicted box (edges included), ``[M]``."""
    return ((points[:, 0] >= boxes[:, 0]) & (points[:, 0] <= boxes[:, 2])
            & (points[:, 1] >= boxes[:, 1]) & (points[:, 1] <= boxes[:, 3]))


def grade_mask_iou(iou: np.ndarray) -> np.ndarray:
    """0..5 points: 1 above 0.3, 2 above 0.5, 3 above 0.7, 4 above 0.8, 5 above 0.9 (upper bounds inclusive)."""
    iou = np.asarray(iou, dtype=np.float64)
    out = np.zeros(iou.shape, dtype=np.float64)
    for points, low in ((1, 0.3), (2, 0.5), (3, 0.7), (4, 0.8), (5, 0.9)):
        out[iou > low] = points
    return out


def _popcount(packed: np.ndarray) -> np.ndarray:
    return np.bitwise_count(packed).sum(axis=-1, dtype=np.int64)


def mask_iou_matrix(pred_packed: np.ndarray, gt_packed: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``I / (U + eps)`` between bit-packed masks ``[M, B]`` and ``[N, B]`` (``np.packbits`` rows).

    Popcounts on packed bits: 8 pixels a byte, ~50x less work than boolean arrays at 840 x 840."""
    if pred_packed.shape[0] == 0 or gt_packed.shape[0] == 0:
        return np.zeros((pred_packed.shape[0], gt_packed.shape[0]))
    area_p, area_g = _popcount(pred_packed), _popcount(gt_packed)
    inter = np.stack([_popcount(pred_packed & row) for row in gt_packed], axis=1)
    union = area_p[:, None] + area_g[None, :] - inter
    return inter / (union + eps)


def hungarian_total(matrix: np.ndarray, ceiling: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Maximum-sum one-to-one matching of a reward matrix, as ``linear_sum_assignment(ceiling - matrix)``.

    Returns (matched sum, rows, cols). Any optimal matching has the same sum; the rows and columns
    (used only for logged sub-terms) are scipy's."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError as exc:  # pragma: no cover - scipy is a dependency of the rewards extra
        raise ImportError("reasonseg_x.rewards needs scipy for Hungarian matching: "
                          "pip install 'reasonseg-x[rewards]'") from exc
    rows, cols = linear_sum_assignment(ceiling - matrix)
    return float(matrix[rows, cols].sum()), rows, cols


def segzero_box_iou(a: list[float], b: list[float]) -> float:
    """Seg-Zero v1's box IoU: ``+1`` areas, and no overlap unless the corners cross strictly."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = (x2 - x1 + 1) * (y2 - y1 + 1) if x1 < x2 and y1 < y2 else 0
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return float(inter) / union


def segzero_points_distance(pred: list[list[float]], gt: list[list[float]]) -> float:
    """Half the smaller summed distance of the two ways to pair two points with two points."""
    d = math.dist
    return min(d(pred[0], gt[0]) + d(pred[1], gt[1]), d(pred[0], gt[1]) + d(pred[1], gt[0])) / 2
