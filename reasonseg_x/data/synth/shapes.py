"""Shape scenes: comparisons of size, position and count (comparative / relational).

Every query compares objects with each other: the answer cannot be found by looking at one shape
alone. Sizes and positions are separated by clear margins so the answer is never a near-tie; an
instance whose size cannot be judged (mostly hidden behind a panel) is marked *ignore*.
"""

from __future__ import annotations

import numpy as np

from reasonseg_x.data.synth.canvas import COLOURS, Canvas
from reasonseg_x.data.synth.scene import Scene, choose_variant, grid_boxes, pick, regular_polygon

__all__ = ["shape_scene", "VARIANTS"]

KINDS = ("circle", "square", "triangle")
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles"}
SHAPE_COLOURS = ("red", "green", "blue", "yellow", "orange", "purple")
VARIANTS = {"largest": 1.0, "smallest": 1.0, "extreme": 1.2, "twice": 1.0, "absent": 0.4, "occluded": 0.6}
_PANEL = (205, 200, 188)

#: how far each kind reaches from its centre, in units of r: (left/right, up, down)
_REACH = {"circle": (1.0, 1.0, 1.0), "square": (0.9, 0.9, 0.9), "triangle": (0.87, 1.0, 0.5)}


def _edge(shape: dict, direction: str) -> float:
    """The shape's extreme coordinate towards ``direction`` (its outermost painted point)."""
    side, up, down = _REACH[shape["kind"]]
    r = shape["r"]
    return {"left": shape["cx"] - side * r, "right": shape["cx"] + side * r,
            "top": shape["cy"] - up * r, "bottom": shape["cy"] + down * r}[direction]


def _centre(shape: dict, direction: str) -> float:
    return shape["cx"] if direction in ("left", "right") else shape["cy"]


_DIRECTIONS = {  # label, sentence, +1 when larger coordinates win
    "left": ("left-most", "furthest to the left", -1),
    "right": ("right-most", "furthest to the right", 1),
    "top": ("top-most", "closest to the top edge", -1),
    "bottom": ("bottom-most", "closest to the bottom edge", 1),
}


def _layout(rng: np.random.Generator, canvas: Canvas, kinds: list[str]) -> list[dict]:
    margin = 12
    cells = grid_boxes(rng, len(kinds), (margin, margin, canvas.width - margin, canvas.height - margin))
    shapes = []
    for kind, (x0, y0, x1, y1) in zip(kinds, cells):
        half = min(x1 - x0, y1 - y0) / 2
        r = float(rng.uniform(0.35, 0.85)) * half
        cx = float(rng.uniform(x0 + r, x1 - r)) if x1 - x0 > 2 * r else (x0 + x1) / 2
        cy = float(rng.uniform(y0 + r, y1 - r)) if y1 - y0 > 2 * r else (y0 + y1) / 2
        shapes.append({"kind": kind, "colour": pick(rng, SHAPE_COLOURS), "r": r, "cx": cx, "cy": cy,
                       "cell": (x0, y0, x1, y1)})
    return shapes


def _paint(canvas: Canvas, shape: dict) -> int:
    obj = canvas.new_object(f"{shape['colour']} {shape['kind']}")
    shape["obj"] = obj
    cx, cy, r = shape["cx"], shape["cy"], shape["r"]
    fill = COLOURS[shape["colour"]]
    if shape["kind"] == "circle":
        canvas.ellipse((cx - r, cy - r, cx + r, cy + r), fill, obj)
    elif shape["kind"] == "square":
        side = r * 0.9
        canvas.rectangle((cx - side, cy - side, cx + side, cy + side), fill, obj)
    else:
        canvas.polygon(regular_polygon(cx, cy, r, 3), fill, obj)
    return obj


def _separate_sizes(shapes: list[dict], chosen: dict, *, largest: bool) -> None:
    """Make ``chosen`` clearly the largest (or smallest) of its kind: >= 25 % apart in radius."""
    others = [s for s in shapes if s is not chosen and s["kind"] == chosen["kind"]]
    if largest:
        for s in others:
            s["r"] = min(s["r"], chosen["r"] / 1.25)
    elif others:
        chosen["r"] = min(chosen["r"], min(s["r"] for s in others) / 1.25)


def shape_scene(rng: np.random.Generator, canvas: Canvas, variant: str | None = None) -> Scene:
    variant = variant or choose_variant(rng, VARIANTS)
    count = int(rng.integers(5, 9))
    if variant == "twice":
        twice, other, rest = pick(rng, KINDS, 3)
        kinds = [twice] * 2 + [other] * 3 + [rest] * (count - 5 if count - 5 != 2 else 1)
        kinds = [kinds[int(i)] for i in rng.permutation(len(kinds))]
    else:
        kinds = [pick(rng, KINDS) for _ in range(count)]
    shapes = _layout(rng, canvas, kinds)
    rtype = "comparative_relational"

    if variant == "twice":
        kind = next(k for k in KINDS if kinds.count(k) == 2)
        for s in shapes:
            _paint(canvas, s)
        targets = [s["obj"] for s in shapes if s["kind"] == kind]
        return Scene("shapes", variant, rtype,
                     long=["Some kinds of shape occur several times here; which shapes belong to the kind "
                           "that occurs exactly twice?",
                           "Which shapes are of the only kind that appears exactly two times in this picture?"],
                     short=["the shapes whose kind appears exactly twice", "the only two shapes of their kind"],
                     targets=targets, answer=f"the two {PLURAL[kind]}")

    if variant == "absent":
        present = {(s["colour"], s["kind"]) for s in shapes}
        missing = [(c, k) for c in SHAPE_COLOURS for k in KINDS if (c, k) not in present and k in kinds]
        colour, kind = pick(rng, missing)
        for s in shapes:
            _paint(canvas, s)
        return Scene("shapes", variant, rtype,
                     long=[f"Which is the largest {colour} {kind} in this picture?",
                           f"If you compare all the {colour} {PLURAL[kind]} here, which one is the biggest?"],
                     short=[f"the largest {colour} {kind}", f"the biggest {colour} {kind}"],
                     targets=[], answer=f"none: there is no {colour} {kind}")

    if variant == "extreme":
        direction = pick(rng, tuple(_DIRECTIONS))
        label, sentence, sign = _DIRECTIONS[direction]
        colour = pick(rng, [c for c in SHAPE_COLOURS if sum(s["colour"] == c for s in shapes) >= 1])
        group = [s for s in shapes if s["colour"] == colour]
        if len(group) < 2:  # recolour a second shape so the comparison is real
            other = pick(rng, [s for s in shapes if s["colour"] != colour])
            other["colour"] = colour
            group = [s for s in shapes if s["colour"] == colour]
        chosen = max(group, key=lambda s: sign * _centre(s, direction))
        # unambiguous only if it wins by centre *and* by outermost point, with a margin
        clear = all(sign * (_centre(chosen, direction) - _centre(s, direction)) >= 8
                    and sign * (_edge(chosen, direction) - _edge(s, direction)) >= 6
                    for s in group if s is not chosen)
        if clear:
            for s in shapes:
                _paint(canvas, s)
            return Scene("shapes", variant, rtype,
                         long=[f"Among the {colour} shapes, which one is {sentence}?",
                               f"Which {colour} shape lies {sentence} of all the {colour} shapes?"],
                         short=[f"the {label} {colour} shape", f"the {colour} shape {sentence}"],
                         targets=[chosen["obj"]], answer=f"the {colour} {chosen['kind']}")
        variant = "largest"  # positions too close to call: ask about size instead

    # largest / smallest / occluded (largest with an instance hidden behind a panel)
    largest = variant != "smallest"
    kind = pick(rng, KINDS)
    same = [s for s in shapes if s["kind"] == kind]
    needed = 3 if variant == "occluded" else 2
    for s in shapes:
        if len(same) >= needed:
            break
        if s["kind"] != kind:
            s["kind"] = kind
            same.append(s)
    chosen = max(same, key=lambda s: s["r"]) if largest else min(same, key=lambda s: s["r"])
    _separate_sizes(shapes, chosen, largest=largest)
    for s in shapes:
        _paint(canvas, s)
    ignores: list[int] = []
    if variant == "occluded":
        hidden = pick(rng, [s for s in same if s is not chosen])
        x0, y0, x1, y1 = hidden["cell"]
        cy = hidden["cy"]
        panel = canvas.new_object("panel")
        # hides the lower two thirds of the shape; stays inside the shape's own cell
        canvas.rectangle((x0 + 1, cy - hidden["r"] * 0.25, x1 - 1, y1 - 1), _PANEL, panel, outline=(120, 115, 105))
        ignores = [hidden["obj"]]
    word, adverb = ("largest", "biggest") if largest else ("smallest", "tiniest")
    return Scene("shapes", variant, rtype,
                 long=[f"Which {kind} in this picture is the {word} one?",
                       f"Compare the sizes of the {PLURAL[kind]}: which one is the {adverb}?"],
                 short=[f"the {word} {kind}", f"the {adverb} {kind}"],
                 targets=[chosen["obj"]], ignores=ignores,
                 answer=f"the {chosen['colour']} {kind}")
