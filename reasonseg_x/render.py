"""Draw a sample's evidence on its picture: masks, the ignore hatch, answer boxes and points.

One small numpy + Pillow module (no matplotlib, no torch) shared by the report's worst-case grid
and the case viewer, so both show a prediction the same way. Everything draws in place on an
``(h, w, 3)`` uint8 array; :func:`compose` does the whole stack on a picture scaled to a target size
(the picture is shrunk first and the masks sampled to it, so a thumbnail of a 4000 x 3000 image
costs a thumbnail's work).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["GT_COLOUR", "PRED_COLOUR", "IGNORE_COLOUR", "BOX_COLOUR", "POINT_COLOUR", "DROPPED_COLOUR",
           "HALO_COLOUR", "MASK_ALPHA", "draw_mask", "draw_outline", "draw_hatch", "draw_box", "draw_point", "fit_size",
           "decode_picture", "scaled_mask", "mask_of", "AnswerGeometry", "split_geometry", "answer_geometry", "compose"]

GT_COLOUR = (40, 200, 80)
PRED_COLOUR = (235, 40, 130)
IGNORE_COLOUR = (255, 170, 0)
BOX_COLOUR = (255, 230, 0)
POINT_COLOUR = (0, 220, 255)
#: boxes and points of sampled answers the vote did not use (drawn dashed, on demand)
DROPPED_COLOUR = (235, 235, 235)
#: the dark line beside the ground-truth outline and around points: visible on light and dark pictures
HALO_COLOUR = (20, 20, 20)
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


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` shrunk by ``steps`` pixels (4-neighbour; the image border counts as outside)."""
    for _ in range(steps):
        mask = mask & ~_edges(mask)
    return mask


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


def draw_outline(rgb: np.ndarray, mask: np.ndarray, colour: Sequence[int], *, width: int = 2,
                 halo: Sequence[int] | None = HALO_COLOUR) -> None:
    """A ``width``-pixel band just inside the edge of ``mask`` in ``colour``, and with ``halo`` a one-pixel
    dark line just outside it. The inside is left as it is: drawn over a prediction's tint, the ground
    truth stays visible, and it never blends into the picture's own colours."""
    _check_fits(rgb, mask)
    window = _bbox(mask)
    if window is None:
        return
    h, w = mask.shape
    rows, cols = window  # one pixel more on each side for the halo
    rows = slice(max(rows.start - 1, 0), min(rows.stop + 1, h))
    cols = slice(max(cols.start - 1, 0), min(cols.stop + 1, w))
    sub, inside = rgb[rows, cols], mask[rows, cols]
    if halo is not None:
        padded = np.pad(inside, 1, constant_values=False)
        grown = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
        sub[grown & ~inside] = np.asarray(halo, dtype=np.uint8)
    sub[inside & ~_erode(inside, max(1, width))] = np.asarray(colour, dtype=np.uint8)


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


def draw_box(rgb: np.ndarray, box: Sequence[float], colour: Sequence[int] = BOX_COLOUR, *, width: int = 2,
             dash: int = 0) -> None:
    """The outline of ``box`` = (x1, y1, x2, y2) in pixels (inclusive corners), clipped to the picture;
    ``dash`` > 0 draws it dashed (strokes and gaps of ``dash`` pixels), as the viewer marks boxes that
    did not make the mask."""
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
    along_x = np.arange(cx1, cx2 + 1)
    along_y = np.arange(cy1, cy2 + 1)
    if dash > 0:  # dashes counted from the box's own corner, so clipping does not shift them
        along_x = along_x[((along_x - x1) // dash) % 2 == 0]
        along_y = along_y[((along_y - y1) // dash) % 2 == 0]
    for y in (y1, y2 - width + 1):  # top and bottom strokes, inside the box
        lo, hi = max(y, 0), min(y + width, h)
        if lo < hi:
            rgb[lo:hi, along_x] = c
    for x in (x1, x2 - width + 1):
        lo, hi = max(x, 0), min(x + width, w)
        if lo < hi:
            rgb[along_y, lo:hi] = c


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
    patch[d2 <= ring * ring] = HALO_COLOUR
    patch[d2 <= radius * radius] = np.asarray(colour, dtype=np.uint8)


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) scaled so the longer side is at most ``max_side`` (never enlarged)."""
    scale = min(1.0, max_side / max(width, height, 1))
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def decode_picture(raw: bytes, width: int, height: int, max_side: int) -> Image.Image:
    """The RGB picture encoded in ``raw``, decoded at about the size it will be shown (longer side near
    ``max_side``): a JPEG straight at a reduced scale (``draft``), other formats reduced by a whole
    factor after decoding, so a thumbnail of a big photo costs a fraction of a full decode. Answers
    keep referring to ``width`` x ``height``: pass that as :func:`compose`'s ``frame``. Raises what
    Pillow raises on a corrupt picture."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(raw))
    wanted = fit_size(width, height, max_side)
    if img.format == "JPEG":
        img.draft("RGB", wanted)
    img = img if img.mode == "RGB" else img.convert("RGB")  # before reduce, which refuses palette images
    factor = min(img.width // max(wanted[0], 1), img.height // max(wanted[1], 1))
    if factor >= 2:
        img = img.reduce(factor)
    if img.size != (width, height):
        img = img.resize(fit_size(width, height, max_side), Image.Resampling.BILINEAR)
    return img


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
    return masks.decode(rle, c_order=False)  # drawing samples it to the picture: no C-ordered copy


@dataclass(frozen=True)
class AnswerGeometry:
    """An answer's boxes and points, split into those that made the mask (``boxes``, ``points``: drawn
    by default) and the rest of the sampled answers (``dropped_*``: outvoted clusters, the other
    members of a kept cluster, answers of an unrecorded vote; drawn dashed, on demand)."""

    boxes: list[Any]
    points: list[Any]
    dropped_boxes: list[Any]
    dropped_points: list[Any]


def _kept_clusters(meta: dict[str, Any]) -> set[int] | None:
    """Numbers of the clusters the vote kept (``meta.vote``), or None when no vote was recorded."""
    vote = meta.get("vote")
    clusters = vote.get("clusters") if isinstance(vote, dict) else None
    if not isinstance(clusters, list):
        return None
    return {n for n, c in enumerate(clusters) if isinstance(c, dict) and c.get("kept") is True}


def _score(obj: dict[str, Any]) -> float:
    value = obj.get("score")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("-inf")


def split_geometry(meta: dict[str, Any]) -> AnswerGeometry:
    """Which boxes and points made the mask. A single answer's own (``meta.boxes`` / ``points``) did.
    Of sampled answers (``meta.candidates``), each cluster the vote kept is drawn once, by its
    best-scoring member (the one whose mask the default "best" mode used; first wins ties); every
    other object is the rest. Without per-object clusters (older runs) the objects of answers
    marked ``kept`` made the mask."""
    boxes, points = meta.get("boxes"), meta.get("points")
    candidates = meta.get("candidates")
    objects = [(cand, obj) for cand in (candidates if isinstance(candidates, list) else [])
               if isinstance(cand, dict) and isinstance(cand.get("objects"), list)
               for obj in cand["objects"] if isinstance(obj, dict)]
    if boxes or points:
        return AnswerGeometry(boxes if isinstance(boxes, list) else [], points if isinstance(points, list) else [],
                              [], [])
    kept = _kept_clusters(meta)
    best: dict[int, int] = {}  # kept cluster -> index of its best member in ``objects``
    for index, (_, obj) in enumerate(objects):
        number = obj.get("cluster")
        if kept is not None and isinstance(number, int) and number in kept:
            if number not in best or _score(obj) > _score(objects[best[number]][1]):
                best[number] = index
    used = set(best.values())
    if kept is None:  # no vote recorded: trust the answers' own "kept" marks
        used = {i for i, (cand, _) in enumerate(objects) if cand.get("kept") is True}
    out = AnswerGeometry([], [], [], [])
    for index, (_, obj) in enumerate(objects):
        box_list, point_list = (out.boxes, out.points) if index in used else (out.dropped_boxes, out.dropped_points)
        if obj.get("bbox"):
            box_list.append(obj["bbox"])
        if isinstance(obj.get("points"), list):
            point_list.extend(obj["points"])
    return out


def answer_geometry(meta: dict[str, Any]) -> tuple[Any, Any]:
    """Boxes and points that made the mask (see :func:`split_geometry`)."""
    geometry = split_geometry(meta)
    return geometry.boxes, geometry.points


def compose(image: Image.Image, *, max_side: int | None = None, target: np.ndarray | None = None,
            ignore: np.ndarray | None = None, pred: np.ndarray | None = None, boxes: Any = None,
            points: Any = None, frame: tuple[int, int] | None = None, dropped_boxes: Any = None,
            dropped_points: Any = None) -> Image.Image:
    """The picture (shrunk to ``max_side``) with the prediction (pink tint and edge), the ignore region
    (orange hatch), the ground truth (a green outline with a dark rim, drawn over the prediction so it
    never vanishes under it), answer boxes (yellow) and points (cyan) drawn on it; ``dropped_*``
    (boxes and points that did not make the mask) are drawn beneath them, boxes dashed light on dark.

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
    if pred is not None:
        draw_mask(rgb, scaled_mask(np.asarray(pred, bool), out_w, out_h), PRED_COLOUR)
    if ignore is not None:
        spacing = HATCH_SPACING if stroke > 1 else 6
        draw_hatch(rgb, scaled_mask(np.asarray(ignore, bool), out_w, out_h), spacing=spacing, width=stroke)
    if target is not None:
        draw_outline(rgb, scaled_mask(np.asarray(target, bool), out_w, out_h), GT_COLOUR, width=stroke + 1)
    for box in _boxes(dropped_boxes):  # light dashes on a dark line: seen on any picture, unlike a kept box
        scaled = [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy]
        draw_box(rgb, scaled, HALO_COLOUR, width=stroke)
        draw_box(rgb, scaled, DROPPED_COLOUR, width=stroke, dash=3 * stroke + 1)
    for point in _points(dropped_points):
        draw_point(rgb, [point[0] * sx, point[1] * sy], DROPPED_COLOUR, radius=1 + stroke)
    for box in _boxes(boxes):
        draw_box(rgb, [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy], width=stroke)
    for point in _points(points):
        draw_point(rgb, [point[0] * sx, point[1] * sy], radius=2 + 2 * stroke)
    return Image.fromarray(rgb)
