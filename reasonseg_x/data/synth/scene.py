"""What a scene family returns, and layout helpers shared by the families.

A scene family paints onto a :class:`~reasonseg_x.data.synth.canvas.Canvas` and reports which
object ids answer the query (``targets``), which are ambiguous (``ignores``: the LISA "ignore"
convention, e.g. a heavily occluded instance), and its query phrasings: ``long`` full sentences
and ``short`` phrases. The reasoning type is the one the query genuinely needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Scene", "grid_boxes", "pick", "regular_polygon"]


@dataclass
class Scene:
    family: str
    variant: str
    reasoning_type: str
    long: list[str]
    short: list[str]
    targets: list[int] = field(default_factory=list)
    ignores: list[int] = field(default_factory=list)
    answer: str = ""

    def phrasings(self, kind: str) -> list[str]:
        return list(self.long if kind == "long" else self.short)


def pick(rng: np.random.Generator, items: Sequence, k: int | None = None):
    """One item (``k`` None) or ``k`` distinct items, chosen by ``rng``."""
    if k is None:
        return items[int(rng.integers(len(items)))]
    order = rng.permutation(len(items))[:k]
    return [items[int(i)] for i in order]


def grid_boxes(rng: np.random.Generator, count: int, box: tuple[int, int, int, int], *,
               cols: int | None = None, shuffle: bool = True) -> list[tuple[int, int, int, int]]:
    """``count`` non-overlapping cells inside ``box`` (x0, y0, x1, y1), in random cell order.

    Objects are placed one per cell, so no two ever overlap unless a family overlaps them on
    purpose (occlusion).
    """
    x0, y0, x1, y1 = box
    if cols is None:
        cols = int(np.ceil(np.sqrt(count * (x1 - x0) / max(y1 - y0, 1))))
    cols = max(1, min(cols, count))
    rows = int(np.ceil(count / cols))
    cells = [(c, r) for r in range(rows) for c in range(cols)]
    if shuffle and len(cells) > count:
        cells = [cells[int(i)] for i in sorted(rng.permutation(len(cells))[:count])]
    cells = cells[:count]
    cw, ch = (x1 - x0) / cols, (y1 - y0) / rows
    return [(round(x0 + c * cw), round(y0 + r * ch), round(x0 + (c + 1) * cw), round(y0 + (r + 1) * ch))
            for c, r in cells]


def regular_polygon(cx: float, cy: float, radius: float, sides: int,
                    rotation: float = 0.0) -> list[tuple[float, float]]:
    """Vertices of a regular polygon (rotation in degrees; 0 puts a vertex at the top)."""
    angles = np.deg2rad(rotation - 90 + 360.0 * np.arange(sides) / sides)
    return [(cx + radius * float(np.cos(a)), cy + radius * float(np.sin(a))) for a in angles]


def choose_variant(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """A variant drawn with the given relative weights (no-target variants are kept rare)."""
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]
