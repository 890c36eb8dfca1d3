"""Everyday objects drawn as simple icons; the query names a goal, never the object
(purpose / functional). A second instance hidden behind a curtain is marked *ignore*."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reasonseg_x.data.synth.canvas import BACKGROUND, COLOURS, Canvas
from reasonseg_x.data.synth.scene import Scene, choose_variant, grid_boxes, pick

__all__ = ["functional_scene", "VARIANTS", "ICONS"]

VARIANTS = {"plain": 1.0, "occluded": 0.35, "absent": 0.12}
Box = tuple[float, float, float, float]


def _umbrella(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    cx, w, h = (x0 + x1) / 2, x1 - x0, y1 - y0
    c.pieslice((x0, y0, x1, y0 + h * 0.7), 180, 360, COLOURS[colour], obj)
    c.line([(cx, y0 + h * 0.35), (cx, y1 - 6), (cx - w * 0.12, y1 - 6), (cx - w * 0.12, y1 - h * 0.12)],
           COLOURS["black"], obj, width=3)


def _mug(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    c.ellipse((x1 - w * 0.38, y0 + h * 0.35, x1 - w * 0.05, y0 + h * 0.7), None, obj,
              outline=COLOURS[colour], width=max(3, int(w * 0.06)))
    c.rectangle((x0 + w * 0.1, y0 + h * 0.25, x1 - w * 0.25, y1 - h * 0.1), COLOURS[colour], obj)
    c.rectangle((x0 + w * 0.14, y0 + h * 0.28, x1 - w * 0.29, y0 + h * 0.34), COLOURS["brown"], obj)


def _lamp(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    cx, w, h = (x0 + x1) / 2, x1 - x0, y1 - y0
    c.rectangle((cx - w * 0.04, y0 + h * 0.35, cx + w * 0.04, y1 - h * 0.1), COLOURS["grey"], obj)
    c.rectangle((cx - w * 0.3, y1 - h * 0.1, cx + w * 0.3, y1), COLOURS["black"], obj)
    c.polygon([(cx - w * 0.2, y0), (cx + w * 0.2, y0), (cx + w * 0.4, y0 + h * 0.38), (cx - w * 0.4, y0 + h * 0.38)],
              COLOURS[colour], obj)


def _door(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    c.rectangle((x0 + w * 0.15, y0, x1 - w * 0.15, y1), COLOURS["brown"], obj)
    c.rectangle((x0 + w * 0.25, y0 + h * 0.08, x1 - w * 0.25, y0 + h * 0.45), (160, 105, 60), obj)
    c.rectangle((x0 + w * 0.25, y0 + h * 0.52, x1 - w * 0.25, y1 - h * 0.08), (160, 105, 60), obj)
    r = max(2, w * 0.05)
    c.ellipse((x1 - w * 0.3 - r, y0 + h * 0.48 - r, x1 - w * 0.3 + r, y0 + h * 0.48 + r), COLOURS["yellow"], obj)


def _extinguisher(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    cx, w, h = (x0 + x1) / 2, x1 - x0, y1 - y0
    c.ellipse((cx - w * 0.22, y0 + h * 0.15, cx + w * 0.22, y0 + h * 0.35), COLOURS["red"], obj)
    c.rectangle((cx - w * 0.22, y0 + h * 0.25, cx + w * 0.22, y1), COLOURS["red"], obj)
    c.rectangle((cx - w * 0.06, y0 + h * 0.05, cx + w * 0.06, y0 + h * 0.17), COLOURS["black"], obj)
    c.line([(cx + w * 0.06, y0 + h * 0.08), (cx + w * 0.35, y0 + h * 0.12), (cx + w * 0.38, y0 + h * 0.5)],
           COLOURS["black"], obj, width=3)
    c.rectangle((cx - w * 0.22, y0 + h * 0.55, cx + w * 0.22, y0 + h * 0.68), COLOURS["white"], obj)


def _clock(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    r = min(x1 - x0, y1 - y0) * 0.45
    c.ellipse((cx - r, cy - r, cx + r, cy + r), COLOURS["white"], obj,
              outline=COLOURS[colour], width=max(3, int(r * 0.12)))
    c.line([(cx, cy), (cx, cy - r * 0.7)], COLOURS["black"], obj, width=3)
    c.line([(cx, cy), (cx + r * 0.5, cy + r * 0.1)], COLOURS["black"], obj, width=3)


def _ladder(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    left, right = x0 + w * 0.25, x1 - w * 0.25
    c.line([(left, y0), (left, y1)], COLOURS[colour], obj, width=4)
    c.line([(right, y0), (right, y1)], COLOURS[colour], obj, width=4)
    for k in range(1, 6):
        y = y0 + h * k / 6
        c.line([(left, y), (right, y)], COLOURS[colour], obj, width=3)


def _bin(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    c.rectangle((x0 + w * 0.12, y0 + h * 0.15, x1 - w * 0.12, y0 + h * 0.24), COLOURS["black"], obj)
    body = [(x0 + w * 0.18, y0 + h * 0.26), (x1 - w * 0.18, y0 + h * 0.26), (x1 - w * 0.26, y1), (x0 + w * 0.26, y1)]
    c.polygon(body, COLOURS["grey"], obj)
    for k in (0.38, 0.5, 0.62):
        c.line([(x0 + w * k, y0 + h * 0.35), (x0 + w * k, y1 - h * 0.1)], (90, 90, 90), obj, width=2)


def _chair(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    c.rectangle((x0 + w * 0.2, y0, x0 + w * 0.3, y1), COLOURS[colour], obj)
    c.rectangle((x0 + w * 0.2, y0 + h * 0.5, x1 - w * 0.2, y0 + h * 0.6), COLOURS[colour], obj)
    c.rectangle((x1 - w * 0.3, y0 + h * 0.5, x1 - w * 0.2, y1), COLOURS[colour], obj)


def _key(c: Canvas, b: Box, obj: int, colour: str) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    cy = (y0 + y1) / 2
    c.ellipse((x0 + w * 0.05, cy - h * 0.2, x0 + w * 0.4, cy + h * 0.2), None, obj,
              outline=COLOURS["yellow"], width=max(3, int(w * 0.07)))
    c.rectangle((x0 + w * 0.38, cy - h * 0.04, x1 - w * 0.05, cy + h * 0.04), COLOURS["yellow"], obj)
    c.rectangle((x1 - w * 0.2, cy, x1 - w * 0.14, cy + h * 0.16), COLOURS["yellow"], obj)
    c.rectangle((x1 - w * 0.1, cy, x1 - w * 0.05, cy + h * 0.12), COLOURS["yellow"], obj)


#: icon name -> (painter, long queries, short queries); no two icons serve the same goal.
ICONS: dict[str, tuple[Callable[[Canvas, Box, int, str], None], list[str], list[str]]] = {
    "umbrella": (_umbrella, ["What could keep me dry if it starts to rain?",
                             "It is pouring outside; what should I take with me?"],
                 ["something to stay dry in the rain", "protection from the rain"]),
    "mug": (_mug, ["What could I drink my hot coffee from?", "I just made tea; what should I pour it into?"],
            ["something to drink coffee from", "a container for a hot drink"]),
    "lamp": (_lamp, ["What would I switch on to read when the room gets dark?",
                     "What gives light at night in this room?"],
             ["something to light up a dark room", "a light source for reading"]),
    "door": (_door, ["How can I get out of this room?", "Where would I walk through to leave?"],
             ["the way out of the room", "where to exit"]),
    "extinguisher": (_extinguisher, ["What should I grab if a small fire breaks out?",
                                     "What helps put out flames in an emergency?"],
                     ["something to put out a fire", "fire-fighting equipment"]),
    "clock": (_clock, ["What can tell me whether I am late for my meeting?", "Where can I check what time it is?"],
              ["something that tells the time", "where to read the time"]),
    "ladder": (_ladder, ["What would help me reach the top shelf?", "What could I climb to fix the ceiling light?"],
               ["something to climb up high", "a way to reach high places"]),
    "bin": (_bin, ["Where should I throw away this banana peel?", "Where does rubbish go in this room?"],
            ["where rubbish goes", "a place for waste"]),
    "chair": (_chair, ["Where can I sit down to rest my legs?", "What could I sit on while I wait?"],
              ["somewhere to sit", "a seat for resting"]),
    "key": (_key, ["What do I need to unlock the front door?", "What opens a locked door?"],
            ["something to unlock a door", "what opens a lock"]),
}
_ICON_COLOURS = ("red", "green", "blue", "orange", "purple")
_CURTAIN = (196, 186, 160)


def functional_scene(rng: np.random.Generator, canvas: Canvas, variant: str | None = None,
                     icon: str | None = None) -> Scene:
    variant = variant or choose_variant(rng, VARIANTS)
    if ":" in variant:  # "plain:umbrella" fixes the icon (the curated mini split uses this)
        variant, icon = variant.split(":", 1)
    names = list(ICONS)
    wanted = icon or pick(rng, names)
    others = [n for n in names if n != wanted]
    count = int(rng.integers(3, 6))
    shown = pick(rng, others, count - 1 if variant != "absent" else count)
    if variant != "absent":
        shown.insert(int(rng.integers(len(shown) + 1)), wanted)
    if variant == "occluded":
        shown.insert(int(rng.integers(len(shown) + 1)), wanted + "#hidden")

    floor = int(canvas.height * 0.8)
    canvas.rectangle((0, floor, canvas.width - 1, canvas.height - 1), (200, 190, 170), BACKGROUND)
    cols = len(shown) if len(shown) <= 4 else None
    cells = grid_boxes(rng, len(shown), (10, 10, canvas.width - 10, canvas.height - 10), cols=cols)
    targets: list[int] = []
    ignores: list[int] = []
    for name, (x0, y0, x1, y1) in zip(shown, cells):
        base = name.split("#")[0]
        w, h = x1 - x0, y1 - y0
        side = min(w, h) * float(rng.uniform(0.6, 0.9))
        bx = float(rng.uniform(x0, x1 - side))
        by = float(rng.uniform(y0, y1 - side))
        obj = canvas.new_object(base)
        ICONS[base][0](canvas, (bx, by, bx + side, by + side), obj, pick(rng, _ICON_COLOURS))
        if name.endswith("#hidden"):
            curtain = canvas.new_object("curtain")
            # the curtain hides the right half: is it really one? ambiguous -> ignore
            canvas.rectangle((bx + side * 0.45, y0 + 1, x1 - 1, y1 - 1), _CURTAIN, curtain, outline=(150, 140, 110))
            ignores.append(obj)
        elif base == wanted:
            targets.append(obj)

    painter, long, short = ICONS[wanted]
    answer = f"the {wanted}" if targets else f"none: there is no {wanted}"
    return Scene("functional", variant, "function_purpose", long=list(long), short=list(short),
                 targets=targets, ignores=ignores, answer=answer)
