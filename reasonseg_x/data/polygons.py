"""Polygon rasterisation exactly as LISA's ReasonSeg loader paints its ground truth, in numpy.

The reference (LISA ``get_mask_from_json``) casts vertices to int32 (truncation), draws each
polygon with OpenCV as a closed 1-px ``polylines`` outline plus ``fillPoly`` (8-connected lines,
no sub-pixel shift), sorts the polygons by their painted pixel count and paints the largest first
(smaller ones overwrite larger), with value 255 for labels containing "ignore", nothing for the
label "flag" and 1 otherwise. OpenCV is not a runtime dependency, so this module re-implements
the two OpenCV routines it needs, following their integer arithmetic step by step:

* lines: Cohen-Sutherland clipping to the image, then Bresenham walked from the left end point
  (``cv::LineIterator`` with connectivity 8, ``left_to_right``);
* fill: edges in 16.16 fixed point (``CollectPolyEdges``; edges crossing the border are re-anchored
  on their clipped end points), then an even-odd scanline fill whose spans run from
  ``ceil(x_left)`` to ``floor(x_right)`` (``FillEdgeCollection``). Each polygon's outline is part
  of ``fillPoly`` too.

Parity with ``cv2`` is tested pixel for pixel on random, self-intersecting, tiny and partly
outside polygons (``tests/test_polygons_parity.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "IGNORE_VALUE",
    "TARGET_VALUE",
    "MAX_COORDINATE",
    "Polygon",
    "to_int_vertices",
    "line_pixels",
    "draw_polyline",
    "fill_polygon",
    "polygon_mask",
    "painted_area",
    "paint_order",
    "rasterize",
]

IGNORE_VALUE = 255
TARGET_VALUE = 1
#: Larger coordinates are refused: the fixed-point arithmetic below would leave int64 territory.
MAX_COORDINATE = 1 << 24

_SHIFT = 16
_ONE = 1 << _SHIFT
_ROW_CHUNK = 512


@dataclass(frozen=True)
class Polygon:
    """One LISA shape after validation: integer vertices and the value it paints (1 or 255)."""

    vertices: np.ndarray  # (n, 2) int64, x then y, already truncated like int32
    value: int
    label: str = ""
    index: int = -1


def to_int_vertices(points: Sequence[Sequence[float]]) -> np.ndarray:
    """Vertices as OpenCV sees them after ``np.array(points, dtype=np.int32)``: truncated toward zero.

    Raises ``ValueError`` for anything that is not a list of finite ``[x, y]`` numbers within
    ``MAX_COORDINATE``.
    """
    if isinstance(points, np.ndarray) and points.dtype.kind in "iuf":
        points = points.tolist()
    if isinstance(points, (str, bytes)) or not all(
            isinstance(p, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
            for p in points):
        raise ValueError("points must be a list of [x, y] numbers")
    arr = np.asarray(points, dtype=np.float64) if len(points) else np.zeros((0, 2))
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"points must be a list of [x, y] pairs, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("points contain a non-finite coordinate")
    if np.any(np.abs(arr) >= MAX_COORDINATE):
        raise ValueError(f"points contain a coordinate beyond +-{MAX_COORDINATE}")
    return np.trunc(arr).astype(np.int64)


# --- lines ---------------------------------------------------------------------------------------


def _clip_line(width: int, height: int, x1: int, y1: int, x2: int, y2: int) -> tuple[bool, int, int, int, int]:
    """``cv::clipLine``: Cohen-Sutherland against [0, w-1] x [0, h-1], with OpenCV's roundings.

    Returns (inside, x1, y1, x2, y2); like OpenCV it may move the end points even when the line
    turns out to miss the image.
    """
    if width <= 0 or height <= 0:
        return False, x1, y1, x2, y2
    right, bottom = width - 1, height - 1
    c1 = (x1 < 0) + (x1 > right) * 2 + (y1 < 0) * 4 + (y1 > bottom) * 8
    c2 = (x2 < 0) + (x2 > right) * 2 + (y2 < 0) * 4 + (y2 > bottom) * 8
    if (c1 & c2) == 0 and (c1 | c2) != 0:
        if c1 & 12:
            a = 0 if c1 < 8 else bottom
            x1 += int(float(a - y1) * (x2 - x1) / (y2 - y1))
            y1 = a
            c1 = (x1 < 0) + (x1 > right) * 2
        if c2 & 12:
            a = 0 if c2 < 8 else bottom
            x2 += int(float(a - y2) * (x2 - x1) / (y2 - y1))
            y2 = a
            c2 = (x2 < 0) + (x2 > right) * 2
        if (c1 & c2) == 0 and (c1 | c2) != 0:
            if c1:
                a = 0 if c1 == 1 else right
                y1 += int(float(a - x1) * (y2 - y1) / (x2 - x1))
                x1 = a
                c1 = 0
            if c2:
                a = 0 if c2 == 1 else right
                y2 += int(float(a - x2) * (y2 - y1) / (x2 - x1))
                x2 = a
                c2 = 0
    return (c1 | c2) == 0, x1, y1, x2, y2


def _outside(width: int, height: int, *xy: int) -> bool:
    xs, ys = xy[0::2], xy[1::2]
    return any(not 0 <= x < width for x in xs) or any(not 0 <= y < height for y in ys)


def line_pixels(x1: int, y1: int, x2: int, y2: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) of an 8-connected 1-px line, as ``cv2.line(..., 1, cv2.LINE_8)`` paints it."""
    if _outside(width, height, x1, y1, x2, y2):
        inside, x1, y1, x2, y2 = _clip_line(width, height, x1, y1, x2, y2)
        if not inside:
            return np.empty(0, np.int64), np.empty(0, np.int64)
    if x2 < x1:  # walked from the left end point
        x1, y1, x2, y2 = x2, y2, x1, y1
    dx, dy = x2 - x1, y2 - y1
    sy = -1 if dy < 0 else 1
    dy = abs(dy)
    steps = np.arange(max(dx, dy) + 1, dtype=np.int64)
    if dy > dx:  # y is the major axis
        major, minor = dy, dx
    else:
        major, minor = dx, dy
    if major == 0:
        minor_steps = np.zeros(1, dtype=np.int64)
    else:
        # Bresenham with err0 = major - 2*minor, stepping the minor axis while err < 0:
        # before pixel j the minor axis has moved ceil((2*minor*j - major) / (2*major)) times.
        minor_steps = -((major - 2 * minor * steps) // (2 * major))
    if dy > dx:
        return y1 + sy * steps, x1 + minor_steps
    return y1 + sy * minor_steps, x1 + steps


def draw_polyline(canvas: np.ndarray, vertices: np.ndarray, value: int, *, closed: bool = True) -> None:
    """``cv2.polylines(canvas, [vertices], closed, value, 1)`` (LINE_8, no shift), in place."""
    h, w = canvas.shape
    n = len(vertices)
    if n == 0:
        return
    pairs = range(n) if closed else range(1, n)
    for i in pairs:
        x0, y0 = (int(v) for v in vertices[i - 1])
        x1, y1 = (int(v) for v in vertices[i])
        ys, xs = line_pixels(x0, y0, x1, y1, w, h)
        canvas[ys, xs] = value


# --- fill ----------------------------------------------------------------------------------------


def _trunc_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _collect_edges(vertices: np.ndarray, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """``CollectPolyEdges`` for integer vertices: (y0, y1, x at y0 in 16.16, dx per row in 16.16)."""
    edges = []
    n = len(vertices)
    for i in range(n):
        x0, y0 = (int(v) for v in vertices[i - 1])
        x1, y1 = (int(v) for v in vertices[i])
        c0y, c1y = y0, y1
        t0x, t0y, t1x, t1y = x0, y0, x1, y1
        if _outside(width, height, x0, y0, x1, y1):
            # OpenCV re-anchors edges that cross the border on the clipped segment's end points
            _, t0x, t0y, t1x, t1y = _clip_line(width, height, x0, y0, x1, y1)
            if t0y != t1y:
                c0y, c1y = t0y, t1y
        c0x, c1x = t0x << _SHIFT, t1x << _SHIFT
        if y0 == y1:
            continue
        dx = _trunc_div(c1x - c0x, c1y - c0y)
        if y0 < y1:
            edges.append((y0, y1, c0x + (y0 - c0y) * dx, dx))
        else:
            edges.append((y1, y0, c1x + (y1 - c1y) * dx, dx))
    return edges


def _fill_rows(canvas: np.ndarray, edges: np.ndarray, y_start: int, y_stop: int, value: int) -> None:
    h, w = canvas.shape
    y0, y1, x, dx = edges[:, 0], edges[:, 1], edges[:, 2], edges[:, 3]
    never = np.iinfo(np.int64).max
    for lo in range(y_start, y_stop, _ROW_CHUNK):
        rows = np.arange(lo, min(lo + _ROW_CHUNK, y_stop), dtype=np.int64)[:, None]
        active = (rows >= y0) & (rows < y1)
        xs = np.where(active, x + (rows - y0) * dx, never)
        xs.sort(axis=1)
        counts = active.sum(axis=1)
        spans_r, spans_l, spans_h = [], [], []
        for p in range(int(counts.max(initial=0)) // 2):
            r = np.nonzero(counts >= 2 * p + 2)[0]
            left = (xs[r, 2 * p] + (_ONE - 1)) >> _SHIFT   # ceil
            right = xs[r, 2 * p + 1] >> _SHIFT             # floor
            ok = (left < w) & (right >= 0)
            left, right = np.maximum(left[ok], 0), np.minimum(right[ok], w - 1)
            r = r[ok]
            ok = left <= right
            spans_r.append(r[ok])
            spans_l.append(left[ok])
            spans_h.append(right[ok])
        if not spans_r:
            continue
        r, left, right = np.concatenate(spans_r), np.concatenate(spans_l), np.concatenate(spans_h)
        if len(r) == 0:
            continue
        # paint all spans of the chunk through one per-row difference array over their columns
        c0, c1 = int(left.min()), int(right.max()) + 2
        diff = np.zeros((len(rows), c1 - c0), dtype=np.int32)
        np.add.at(diff, (r, left - c0), 1)
        np.add.at(diff, (r, right + 1 - c0), -1)
        covered = np.cumsum(diff, axis=1)[:, :-1] > 0
        block = canvas[lo:lo + len(rows), c0:c1 - 1]
        block[covered] = value


def fill_polygon(canvas: np.ndarray, vertices: np.ndarray, value: int) -> None:
    """``cv2.fillPoly(canvas, [vertices], value)`` (LINE_8, no shift), in place: outline included."""
    h, w = canvas.shape
    if len(vertices) == 0:
        return
    draw_polyline(canvas, vertices, value, closed=True)  # CollectPolyEdges draws every edge
    edges = _collect_edges(vertices, w, h)
    if len(edges) < 2:
        return
    arr = np.array(edges, dtype=np.int64)
    y_start = max(int(arr[:, 0].min()), 0)
    y_stop = min(int(arr[:, 1].max()), h)
    if y_start < y_stop:
        _fill_rows(canvas, arr, y_start, y_stop, value)


def polygon_mask(vertices: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean mask of one polygon drawn as LISA does: 1-px closed outline plus fill."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    fill_polygon(canvas, np.asarray(vertices, dtype=np.int64), 1)
    return canvas.astype(bool)


# --- LISA painting -------------------------------------------------------------------------------


def painted_area(vertices: np.ndarray, height: int, width: int) -> int:
    """The polygon's pixel count inside the image: LISA's sort key (``tmp_mask.sum()``)."""
    return int(np.count_nonzero(polygon_mask(vertices, height, width)))


def paint_order(areas: Sequence[int]) -> list[int]:
    """Indices in painting order: ``np.argsort(areas)[::-1]`` on uint64, as the reference does
    (largest first; ties follow numpy's default sort, reversed)."""
    if len(areas) == 0:
        return []
    return [int(i) for i in np.argsort(np.asarray(areas, dtype=np.uint64))[::-1]]


def rasterize(polygons: Sequence[Polygon], height: int, width: int) -> np.ndarray:
    """The LISA label canvas (uint8: 0 background, 1 target, 255 ignore) of validated polygons."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    # painting a polygon sets exactly the pixels of its own mask, so each is rasterised once
    shapes = [polygon_mask(p.vertices, height, width) for p in polygons]
    areas = [int(np.count_nonzero(m)) for m in shapes]
    for i in paint_order(areas):
        canvas[shapes[i]] = polygons[i].value
    return canvas
