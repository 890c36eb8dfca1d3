"""The ground truth a reward compares answers with: per-object masks, boxes and points.

Why its own type: trainers hand the truth over in different shapes (a dataset column holding a
mapping, or a string for trainers that only pass text), and every preset needs the same few
views of it (boxes in pixels, one or two points per object, packed masks for fast IoU). A
:class:`Truth` is built once per prompt and reused by every rollout of its group.

Accepted input (:func:`as_truth`): a :class:`Truth`; a mapping with ``masks`` (per object: a 2-D
array or a COCO RLE), optional ``boxes`` (``[x1, y1, x2, y2]`` inclusive pixels) and ``points``
(per object ``[x, y]`` or ``[[x, y], ...]``), and ``size`` (``[height, width]``, needed only when
there are no masks); or the JSON string :func:`encode_truth` writes. Missing boxes and points are
derived from the masks (docs/rewards.md section 4): the box is the mask's tight inclusive
box; the point is the mask pixel nearest to the mask's centroid; the two Seg-Zero points are the
same rule applied to the two halves of the mask split at the centroid across its longer side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from reasonseg_x import masks as rle
from reasonseg_x.errors import InvalidInputError

__all__ = ["Truth", "as_truth", "encode_truth", "centre_point", "two_points"]

_WHERE = "reward truth"
#: the published code scores at most this many objects per side
MAX_OBJECTS = 120


def centre_point(mask: np.ndarray) -> tuple[float, float] | None:
    """The foreground pixel nearest to the mask's centroid (inside the mask even for a ring)."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    cx, cy = xs.mean(), ys.mean()
    k = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
    return float(xs[k]), float(ys[k])


def two_points(mask: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Two interior points: :func:`centre_point` of each half of the mask, split at the centroid
    across its longer side (one half empty: the centre point twice)."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    wide = xs.max() - xs.min() >= ys.max() - ys.min()
    coord = xs if wide else ys
    cut = coord.mean()
    halves = []
    for keep in (coord <= cut, coord > cut):
        if keep.any():
            part = np.zeros_like(mask, dtype=bool)
            part[ys[keep], xs[keep]] = True
            halves.append(centre_point(part))
    first = halves[0]
    return (first, halves[1] if len(halves) > 1 else first)  # type: ignore[return-value]


def _number_list(value: Any, n: int, where: str) -> list[float]:
    if (not isinstance(value, (list, tuple, np.ndarray)) or len(value) != n
            or not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                       and math.isfinite(float(v)) for v in value)):
        raise InvalidInputError(f"{where} must be {n} finite numbers, got {value!r}"[:200], _WHERE)
    return [float(v) for v in value]


def _points(value: Any, where: str) -> tuple[tuple[float, float], ...]:
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) and isinstance(value[0], (list, tuple, np.ndarray)):
        return tuple(tuple(_number_list(p, 2, f"{where}[{i}]")) for i, p in enumerate(value))  # type: ignore[misc]
    return (tuple(_number_list(value, 2, where)),)  # type: ignore[return-value]


def _mask(value: Any, where: str) -> np.ndarray:
    if rle.is_rle(value):
        return rle.decode(rle.validate_rle(value, where=where))
    array = np.asarray(value)
    if array.ndim != 2:
        raise InvalidInputError(f"{where} must be a 2-D mask or a COCO RLE, got shape {array.shape}", _WHERE)
    return array.astype(bool, copy=False)


@dataclass(frozen=True, eq=False)
class Truth:
    """Objects of one prompt's ground truth in pixels of the image passed to the reward."""

    height: int
    width: int
    masks: tuple[np.ndarray, ...] | None  # bool [H, W] per object, or None (boxes and points only)
    boxes: tuple[tuple[float, float, float, float], ...]
    points: tuple[tuple[tuple[float, float], ...], ...]  # per object: one or more points
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    @cached_property
    def packed(self) -> np.ndarray:
        """Masks as packed bits ``[N, ceil(H*W/8)]`` (IoU by popcount, :mod:`.formulas`)."""
        if not self.masks:
            return np.zeros((0, (self.height * self.width + 7) // 8), dtype=np.uint8)
        return np.packbits(np.stack([m.reshape(-1) for m in self.masks]), axis=1)

    @cached_property
    def union(self) -> np.ndarray:
        """The target as the benchmark scores it: the union of the objects (empty: no target)."""
        out = np.zeros(self.size, dtype=bool)
        for m in self.masks or ():
            out |= m
        return out

    @cached_property
    def segzero(self) -> tuple[tuple[float, float, float, float], tuple[tuple[float, float], tuple[float, float]]] | None:
        """Seg-Zero v1's one object: the first object's box and two points (None: no target)."""
        if not self.boxes:
            return None
        pts = self.points[0]
        if len(pts) >= 2:
            return self.boxes[0], (pts[0], pts[1])
        if self.masks is not None:
            two = two_points(self.masks[0])
            if two is not None:
                return self.boxes[0], two
        return self.boxes[0], (pts[0], pts[0])


def _from_mapping(obj: Mapping[str, Any]) -> Truth:
    raw_masks = obj.get("masks")
    masks: list[np.ndarray] | None = None
    if raw_masks is not None:
        if isinstance(raw_masks, np.ndarray) and raw_masks.ndim == 3:
            raw_masks = list(raw_masks)
        if not isinstance(raw_masks, (list, tuple)):
            raise InvalidInputError(f"'masks' must be a list of per-object masks, got {type(raw_masks).__name__}", _WHERE)
        masks = [_mask(m, f"masks[{i}]") for i, m in enumerate(raw_masks)]
    size = obj.get("size")
    if masks:
        shapes = {m.shape for m in masks}
        if len(shapes) > 1:
            raise InvalidInputError(f"object masks differ in size: {sorted(shapes)}", _WHERE)
        height, width = masks[0].shape
    elif size is not None:
        height, width = (int(v) for v in _number_list(size, 2, "size"))
    else:
        raise InvalidInputError("the truth needs 'masks' (per object) or a 'size' [height, width]", _WHERE)
    if height <= 0 or width <= 0:
        raise InvalidInputError(f"image size must be positive, got {height}x{width}", _WHERE)
    boxes_in, points_in = obj.get("boxes"), obj.get("points")
    n = len(masks) if masks is not None else len(boxes_in or ())
    if masks is None and (boxes_in is None or points_in is None):
        raise InvalidInputError("without 'masks' the truth needs both 'boxes' and 'points'", _WHERE)
    for name, values in (("boxes", boxes_in), ("points", points_in)):
        if values is not None and len(values) != n:
            raise InvalidInputError(f"'{name}' has {len(values)} entries for {n} objects", _WHERE)
    boxes, points = [], []
    for i in range(n):
        mask = masks[i] if masks is not None else None
        if boxes_in is not None:
            boxes.append(tuple(_number_list(boxes_in[i], 4, f"boxes[{i}]")))
        else:
            box = rle.bbox(mask)
            boxes.append(tuple(float(v) for v in box) if box is not None else (0.0, 0.0, 0.0, 0.0))
        if points_in is not None:
            points.append(_points(points_in[i], f"points[{i}]"))
        else:
            point = centre_point(mask)
            points.append((point if point is not None else (0.0, 0.0),))
    if masks is not None:  # an object with an empty mask is no object
        keep = [i for i, m in enumerate(masks) if m.any()]
        masks, boxes, points = [masks[i] for i in keep], [boxes[i] for i in keep], [points[i] for i in keep]
    return Truth(int(height), int(width), tuple(masks) if masks is not None else None, tuple(boxes), tuple(points),
                 {k: v for k, v in obj.items() if k not in ("masks", "boxes", "points", "size")})


def as_truth(truth: Any) -> Truth:
    """A :class:`Truth` from any accepted input; a bad truth raises :class:`InvalidInputError`
    (it is the caller's data, not a rollout's mistake)."""
    if isinstance(truth, Truth):
        return truth
    if isinstance(truth, (str, bytes)):
        try:
            truth = json.loads(truth)
        except ValueError as exc:
            raise InvalidInputError(f"the truth string is not JSON (encode_truth writes it): {exc}", _WHERE) from None
    if not isinstance(truth, Mapping):
        raise InvalidInputError(f"the truth must be a mapping or encode_truth's string, got {type(truth).__name__}",
                                _WHERE)
    return _from_mapping(truth)


def encode_truth(masks: Sequence[Any] = (), *, boxes: Sequence[Sequence[float]] | None = None,
                 points: Sequence[Any] | None = None, size: Sequence[int] | None = None, **extra: Any) -> str:
    """The truth as one JSON string (masks as COCO RLE), for trainers that pass ground truth as text.

    ``masks`` may also be a whole truth mapping (``{"masks": ..., "boxes": ...}``, what ``score`` takes),
    whose keys then stand for the keyword arguments. ``extra`` keys (e.g. ``id``) are kept and ignored
    by the presets."""
    if isinstance(masks, Mapping):
        if boxes is not None or points is not None or size is not None or extra:
            raise InvalidInputError("encode_truth takes a truth mapping or keyword arguments, not both", _WHERE)
        fields = dict(masks)
        return encode_truth(fields.pop("masks", ()), **fields)
    obj: dict[str, Any] = dict(extra)
    obj["masks"] = [m if rle.is_rle(m) else rle.encode(np.asarray(m, dtype=bool)) for m in masks]
    if boxes is not None:
        obj["boxes"] = [[float(v) for v in b] for b in boxes]
    if points is not None:
        obj["points"] = [np.asarray(p, dtype=float).tolist() for p in points]
    if size is not None:
        obj["size"] = [int(v) for v in size]
    if not obj["masks"]:
        if size is None:
            raise InvalidInputError("a truth without objects needs size=[height, width]", _WHERE)
        if boxes is None:
            obj["boxes"], obj["points"] = [], []
    as_truth(obj)  # refuse now what the reward would refuse later
    return json.dumps(obj, separators=(",", ":"))
