"""Draw a sample's evidence on its picture: masks, the ignore hatch, answer boxes and points.

One small numpy + Pillow module (no matplotlib, no torch) shared by the report's worst-case grid
and the case viewer, so both show a prediction the same way. Everything draws in place on an
``(h, w, 3)`` uint8 array; :func:`compose` does the whole stack on a picture scaled to a target size
(the picture is shrunk first and the masks sampled to it, so a thumbnail of a 4000 x 3000 image
costs a thumbnail's work).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["GT_COLOUR", "PRED_COLOUR", "IGNORE_COLOUR", "BOX_COLOUR", "POINT_COLOUR", "MASK_ALPHA", "draw_mask",
           "draw_hatch", "draw_box", "draw_point", "fit_size", "scaled_mask", "mask_of", "answer_geometry", "compose"]

GT_COLOUR = (40, 200, 80)
PRED_COLOUR = (235, 40, 130)
IGNORE_COLOUR = (255, 170, 0)
BOX_COLOUR = (255, 230, 0)
POINT_COLOUR = (0, 220, 255)
MASK_ALPHA = 0.45
#: hatch period and stroke width in pixels
HATCH_SPACING = 8
HATCH_WIDTH = 2


def _bbox(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The smallest window holding every pixel of ``mask`` (None when empty): work stays local."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _edges(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _check_fits(rgb: np.ndarray, mask: np.ndarray) -> None:
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not fit the picture {rgb.shape[:2]}")


def draw_mask(rgb: np.ndarray, mask: np.ndarray, colour: Sequence[int], *, alpha: float = MASK_ALPHA,
              outline: bool = True) -> None:
    """Tint the pixels of ``mask`` towards ``colour`` (weight ``alpha``, rounded to 1/256) and, with
    ``outline``, paint its edge pixels in the plain colour."""
    _check_fits(rgb, mask)
    window = _bbox(mask)
    if window is None:
        return
    sub, inside = rgb[window], mask[window]
    weight = int(round(alpha * 256))
    tint = np.asarray(colour, dtype=np.uint16) * weight + 128
    blended = ((sub.astype(np.uint16) * (256 - weight) + tint) >> 8).astype(np.uint8)
    np.copyto(sub, blended, where=inside[:, :, None])
    if outline:
        sub[_edges(inside)] = np.asarray(colour, dtype=np.uint8)


def draw_hatch(rgb: np.ndarray, mask: np.ndarray, colour: Sequence[int] = IGNORE_COLOUR, *,
               spacing: int = HATCH_SPACING, width: int = HATCH_WIDTH) -> None:
    """Diagonal stripes over ``mask`` only: the region the protocol treats specially stays readable."""
    _check_fits(rgb, mask)
    window = _bbox(mask)
    if window is None:
        return
    rows, cols = window
    stripes = ((np.arange(rows.start, rows.stop)[:, None] + np.arange(cols.start, cols.stop)[None, :])
               % spacing) < width
    rgb[window][mask[window] & stripes] = np.asarray(colour, dtype=np.uint8)


def draw_box(rgb: np.ndarray, box: Sequence[float], colour: Sequence[int] = BOX_COLOUR, *, width: int = 2) -> None:
    """The outline of ``box`` = (x1, y1, x2, y2) in pixels (inclusive corners), clipped to the picture."""
    h, w = rgb.shape[:2]
    values = [float(v) for v in box]
    if len(values) != 4 or not all(np.isfinite(values)):
        return
    x1, x2 = sorted((int(round(values[0])), int(round(values[2]))))
    y1, y2 = sorted((int(round(values[1])), int(round(values[3]))))
    if x2 < 0 or y2 < 0 or x1 >= w or y1 >= h:
        return
    c = np.asarray(colour, dtype=np.uint8)
    cx1, cx2, cy1, cy2 = max(x1, 0), min(x2, w - 1), max(y1, 0), min(y2, h - 1)
    for y in (y1, y2 - width + 1):  # top and bottom strokes, inside the box
        lo, hi = max(y, 0), min(y + width, h)
        if lo < hi:
            rgb[lo:hi, cx1:cx2 + 1] = c
    for x in (x1, x2 - width + 1):
        lo, hi = max(x, 0), min(x + width, w)
        if lo < hi:
            rgb[cy1:cy2 + 1, lo:hi] = c


def draw_point(rgb: np.ndarray, point: Sequence[float], colour: Sequence[int] = POINT_COLOUR, *,
               radius: int = 4) -> None:
    """A filled disc with a dark ring at ``point`` = (x, y): visible on light and dark pictures."""
    h, w = rgb.shape[:2]
    values = [float(v) for v in point][:2]
    if len(values) != 2 or not all(np.isfinite(values)):
        return
    x, y = int(round(values[0])), int(round(values[1]))
    ring = radius + 1
    y0, y1, x0, x1 = max(y - ring, 0), min(y + ring + 1, h), max(x - ring, 0), min(x + ring + 1, w)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    d2 = (yy - y) ** 2 + (xx - x) ** 2
    patch = rgb[y0:y1, x0:x1]
    patch[d2 <= ring * ring] = (20, 20, 20)
    patch[d2 <= radius * radius] = np.asarray(colour, dtype=np.uint8)


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) scaled so the longer side is at most ``max_side`` (never enlarged)."""
    scale = min(1.0, max_side / max(width, height, 1))
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def scaled_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour sample of ``mask`` at ``width`` x ``height`` (pixel centres)."""
    h, w = mask.shape
    if (w, h) == (width, height):
        return mask
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return mask[rows[:, None], cols[None, :]]


def _boxes(value: Any) -> list[list[float]]:
    if not isinstance(value, (list, tuple)):
        return []
    return [list(b) for b in value if isinstance(b, (list, tuple)) and len(b) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)]


def _points(value: Any) -> list[list[float]]:
    if not isinstance(value, (list, tuple)):
        return []
    return [list(p[:2]) for p in value if isinstance(p, (list, tuple)) and len(p) >= 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p[:2])]


def mask_of(rle: dict[str, Any] | None, height: int, width: int) -> np.ndarray | None:
    """The boolean mask of ``rle`` at ``height`` x ``width`` (a mask of another size is resized, nearest,
    for display); None when there is none."""
    if rle is None:
        return None
    from reasonseg_x import masks

    if [int(v) for v in rle.get("size", [])] != [height, width]:
        rle = masks.resize_nearest(rle, height, width)
    return masks.decode(rle)


def answer_geometry(meta: dict[str, Any]) -> tuple[Any, Any]:
    """Boxes and points to draw: the answer's own, else those of the sampled answers the vote kept."""
    boxes, points = meta.get("boxes"), meta.get("points")
    if boxes or points:
        return boxes, points
    kept_boxes: list[Any] = []
    kept_points: list[Any] = []
    candidates = meta.get("candidates")
    for cand in candidates if isinstance(candidates, list) else []:
        if isinstance(cand, dict) and cand.get("kept") is True and isinstance(cand.get("objects"), list):
            for obj in cand["objects"]:
                if isinstance(obj, dict):
                    if obj.get("bbox"):
                        kept_boxes.append(obj["bbox"])
                    kept_points.extend(obj.get("points") or [])
    return kept_boxes, kept_points


def compose(image: Image.Image, *, max_side: int | None = None, target: np.ndarray | None = None,
            ignore: np.ndarray | None = None, pred: np.ndarray | None = None, boxes: Any = None,
            points: Any = None, frame: tuple[int, int] | None = None) -> Image.Image:
    """The picture (shrunk to ``max_side``) with the ground truth (green), the prediction (pink), the
    ignore region (orange hatch), answer boxes (yellow) and points (cyan) drawn on it.

    Masks are full-resolution boolean arrays (any size: they are sampled to the output); boxes
    ``[[x1, y1, x2, y2], ...]`` and points ``[[x, y], ...]`` are in the pixels of ``frame`` (width,
    height; default the image's own size: pass the original size for a picture decoded smaller).
    Malformed boxes or points (untrusted answers) are skipped, never raised on.
    """
    from PIL import Image

    width, height = image.size
    out_w, out_h = fit_size(width, height, max_side) if max_side else (width, height)
    small = image if image.mode == "RGB" else image.convert("RGB")
    if (out_w, out_h) != (width, height):
        small = small.resize((out_w, out_h), Image.Resampling.BILINEAR, reducing_gap=2.0)
    rgb = np.array(small, dtype=np.uint8)
    frame_w, frame_h = frame or (width, height)
    sx, sy = out_w / frame_w, out_h / frame_h
    stroke = 1 if max(out_w, out_h) < 400 else 2
    if target is not None:
        draw_mask(rgb, scaled_mask(np.asarray(target, bool), out_w, out_h), GT_COLOUR, alpha=0.3)
    if pred is not None:
        draw_mask(rgb, scaled_mask(np.asarray(pred, bool), out_w, out_h), PRED_COLOUR)
    if ignore is not None:
        spacing = HATCH_SPACING if stroke > 1 else 6
        draw_hatch(rgb, scaled_mask(np.asarray(ignore, bool), out_w, out_h), spacing=spacing, width=stroke)
    for box in _boxes(boxes):
        draw_box(rgb, [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy], width=stroke)
    for point in _points(points):
        draw_point(rgb, [point[0] * sx, point[1] * sy], radius=2 + 2 * stroke)
    return Image.fromarray(rgb)
