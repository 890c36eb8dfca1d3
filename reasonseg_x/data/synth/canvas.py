"""A drawing surface that paints every primitive twice: once in colour, once as an object id.

Why: the target mask must be *exactly* the pixels the object occupies in the picture, including
what later objects cover up. Painting the same Pillow primitive with the same coordinates into an
``L`` label image gives the same coverage as the RGB paint (Pillow rasterises without
anti-aliasing, and text is drawn with ``fontmode = "1"``), so a mask is ``labels == id``.

With ``pixels=False`` only the label image is painted (ground truth without the picture); the
geometry is the same because layout never depends on painted pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["Canvas", "COLOURS", "font", "BACKGROUND"]

RGB = tuple[int, int, int]

#: Named colours the queries may mention; each name is unambiguous to a human eye.
COLOURS: dict[str, RGB] = {
    "red": (215, 38, 38),
    "green": (40, 150, 60),
    "blue": (40, 80, 210),
    "yellow": (240, 200, 30),
    "orange": (245, 130, 20),
    "purple": (130, 55, 170),
    "black": (25, 25, 25),
    "white": (250, 250, 250),
    "grey": (140, 140, 140),
    "brown": (130, 80, 40),
}

#: Object id of everything that is not an object (background, captions drawn on it).
BACKGROUND = 0
_MAX_OBJECTS = 255


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled default font at ``size`` pixels (no font files needed)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no size argument
        return ImageFont.load_default()


class Canvas:
    """RGB picture + object-id label image, painted in lock-step."""

    def __init__(self, width: int, height: int, background: RGB, *, pixels: bool = True) -> None:
        self.width = int(width)
        self.height = int(height)
        self.labels = Image.new("L", (self.width, self.height), BACKGROUND)
        self._labels_draw = ImageDraw.Draw(self.labels)
        self._labels_draw.fontmode = "1"
        self.image: Image.Image | None = None
        self._draw: ImageDraw.ImageDraw | None = None
        if pixels:
            self.image = Image.new("RGB", (self.width, self.height), background)
            self._draw = ImageDraw.Draw(self.image)
            self._draw.fontmode = "1"
        #: every colour painted under each object id (for checks that masks match the picture)
        self.colours: dict[int, set[RGB]] = {BACKGROUND: {tuple(background)}}
        self.names: dict[int, str] = {BACKGROUND: "background"}
        self._next_id = 1

    # --- objects -------------------------------------------------------------------------------

    def new_object(self, name: str) -> int:
        """Reserve an object id; everything painted with it forms that object's mask."""
        if self._next_id >= _MAX_OBJECTS:
            raise RuntimeError("a synthetic scene may hold at most 254 objects")
        obj = self._next_id
        self._next_id += 1
        self.names[obj] = name
        self.colours[obj] = set()
        return obj

    def mask(self, objects: Iterable[int]) -> np.ndarray:
        """Boolean mask of the pixels that show any of ``objects`` (after all occlusion)."""
        ids = sorted(set(objects))
        labels = np.asarray(self.labels)
        if not ids:
            return np.zeros(labels.shape, dtype=bool)
        return np.isin(labels, ids)

    def _note(self, obj: int, *colours: RGB | None) -> None:
        self.colours.setdefault(obj, set()).update(tuple(c) for c in colours if c is not None)

    # --- primitives (same call on both images) -------------------------------------------------

    def rectangle(self, box: Sequence[float], fill: RGB | None, obj: int, *,
                  outline: RGB | None = None, width: int = 1) -> None:
        box = [round(v) for v in box]
        if self._draw is not None:
            self._draw.rectangle(box, fill=fill, outline=outline, width=width)
        self._labels_draw.rectangle(box, fill=None if fill is None else obj,
                                    outline=None if outline is None else obj, width=width)
        self._note(obj, fill, outline)

    def ellipse(self, box: Sequence[float], fill: RGB | None, obj: int, *,
                outline: RGB | None = None, width: int = 1) -> None:
        box = [round(v) for v in box]
        if self._draw is not None:
            self._draw.ellipse(box, fill=fill, outline=outline, width=width)
        self._labels_draw.ellipse(box, fill=None if fill is None else obj,
                                  outline=None if outline is None else obj, width=width)
        self._note(obj, fill, outline)

    def polygon(self, points: Sequence[tuple[float, float]], fill: RGB | None, obj: int, *,
                outline: RGB | None = None) -> None:
        pts = [(round(x), round(y)) for x, y in points]
        if self._draw is not None:
            self._draw.polygon(pts, fill=fill, outline=outline)
        self._labels_draw.polygon(pts, fill=None if fill is None else obj,
                                  outline=None if outline is None else obj)
        self._note(obj, fill, outline)

    def pieslice(self, box: Sequence[float], start: float, end: float, fill: RGB, obj: int) -> None:
        box = [round(v) for v in box]
        if self._draw is not None:
            self._draw.pieslice(box, start, end, fill=fill)
        self._labels_draw.pieslice(box, start, end, fill=obj)
        self._note(obj, fill)

    def line(self, points: Sequence[tuple[float, float]], fill: RGB, obj: int, *, width: int = 1) -> None:
        pts = [(round(x), round(y)) for x, y in points]
        if self._draw is not None:
            self._draw.line(pts, fill=fill, width=width)
        self._labels_draw.line(pts, fill=obj, width=width)
        self._note(obj, fill)

    def text(self, xy: tuple[float, float], text: str, fill: RGB, size: int, *, owner: int = BACKGROUND,
             anchor: str = "la") -> None:
        """Write ``text``; its pixels belong to ``owner`` (the object or background it is written on)."""
        xy = (round(xy[0]), round(xy[1]))
        if self._draw is not None:
            self._draw.text(xy, text, fill=fill, font=font(size), anchor=anchor)
        self._labels_draw.text(xy, text, fill=owner, font=font(size), anchor=anchor)
        self._note(owner, fill)

    @staticmethod
    def text_size(text: str, size: int) -> tuple[int, int]:
        """Width and height of ``text`` at ``size`` (for layout; needs no painting)."""
        left, top, right, bottom = font(size).getbbox(text)
        return int(right - left), int(bottom - top)
