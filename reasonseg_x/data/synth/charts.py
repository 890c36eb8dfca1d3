"""Bar charts with printed values: reading numbers and chaining steps (compositional).

The printed value above each bar is what the queries need (sum of two named bars, rank two,
neighbour of the minimum); "the tallest bar" is a single comparison and is labelled
comparative / relational.
"""

from __future__ import annotations

import numpy as np

from reasonseg_x.data.synth.canvas import BACKGROUND, COLOURS, Canvas
from reasonseg_x.data.synth.scene import Scene, choose_variant, pick

__all__ = ["bar_chart", "VARIANTS"]

VARIANTS = {"second_highest": 1.0, "sum": 1.0, "after_min": 0.8, "absent": 0.3, "tallest": 0.6}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TITLES = ("Monthly sales", "Visitors per month", "Rainfall (mm)", "Orders", "Tickets sold")
_BAR_COLOURS = ("blue", "green", "orange", "purple", "red")


def _values(rng: np.random.Generator, n: int, low: int = 2, high: int = 30) -> list[int]:
    return [int(v) for v in rng.choice(np.arange(low, high + 1), size=n, replace=False)]


def _sum_values(rng: np.random.Generator, n: int) -> tuple[list[int], int, int, int] | None:
    """Values where bar t shows exactly v[a] + v[b] and no other bar shows that sum."""
    for _ in range(20):
        a, b, t = (int(i) for i in rng.permutation(n)[:3])
        values = _values(rng, n, 1, 15)
        values[t] = values[a] + values[b]
        if values.count(values[t]) == 1 and len(set(values)) == n:
            return values, a, b, t
    return None


def bar_chart(rng: np.random.Generator, canvas: Canvas, variant: str | None = None) -> Scene:
    variant = variant or choose_variant(rng, VARIANTS)
    n = int(rng.integers(4, 8))
    start = int(rng.integers(0, 12 - n + 1))
    names = list(_MONTHS[start:start + n])
    values = _values(rng, n)
    extra: tuple[int, int, int] | None = None
    if variant == "sum":
        made = _sum_values(rng, n)
        if made is None:
            variant = "second_highest"
        else:
            values, *rest = made
            extra = (rest[0], rest[1], rest[2])
    if variant == "after_min":
        lowest = int(np.argmin(values))
        if lowest == n - 1:  # the shortest bar must have a right-hand neighbour
            values[lowest], values[0] = values[0], values[lowest]

    size = max(12, canvas.height // 22)
    title = pick(rng, _TITLES)
    canvas.text((canvas.width / 2, 6), title, COLOURS["black"], size + 2, anchor="ma")
    left, right = 20, canvas.width - 16
    top, bottom = 14 + 2 * size + 8, canvas.height - size - 14
    canvas.line([(left, bottom + 1), (right, bottom + 1)], COLOURS["black"], BACKGROUND, width=2)
    slot = (right - left) / n
    bar_w = slot * float(rng.uniform(0.45, 0.7))
    scale = (bottom - top) / max(values)
    colour = COLOURS[pick(rng, _BAR_COLOURS)]
    bars = []
    for i, (name, value) in enumerate(zip(names, values)):
        x0 = left + i * slot + (slot - bar_w) / 2
        y0 = bottom - value * scale
        obj = canvas.new_object(f"bar {name}")
        canvas.rectangle((x0, y0, x0 + bar_w, bottom), colour, obj)
        canvas.text((x0 + bar_w / 2, y0 - 3), str(value), COLOURS["black"], size, anchor="md")
        canvas.text((x0 + bar_w / 2, bottom + 5), name, COLOURS["black"], size, anchor="ma")
        bars.append(obj)

    order = sorted(range(n), key=lambda i: -values[i])
    if variant == "tallest":
        t = order[0]
        return Scene("bar_chart", variant, "comparative_relational",
                     long=["Which bar in this chart is the tallest?",
                           "Which month reached the highest value in this chart?"],
                     short=["the tallest bar", "the bar with the highest value"],
                     targets=[bars[t]], answer=f"{names[t]} ({values[t]})")
    if variant == "second_highest":
        t = order[1]
        return Scene("bar_chart", variant, "compositional",
                     long=["Which bar shows the second-highest value in this chart?",
                           "Ignoring the month with the highest value, which bar is the tallest of the rest?"],
                     short=["the second-highest bar", "the runner-up bar"],
                     targets=[bars[t]], answer=f"{names[t]} ({values[t]})")
    if variant == "sum" and extra is not None:
        a, b, t = extra
        return Scene("bar_chart", variant, "compositional",
                     long=[f"Which bar's value equals the {names[a]} and {names[b]} values added together?",
                           f"If you add up the values of {names[a]} and {names[b]}, which bar shows that total?"],
                     short=[f"the bar equal to {names[a]} plus {names[b]}",
                            f"the bar whose value is the sum of {names[a]} and {names[b]}"],
                     targets=[bars[t]], answer=f"{names[t]} ({values[t]} = {values[a]} + {values[b]})")
    if variant == "after_min":
        lowest = int(np.argmin(values))
        t = lowest + 1
        return Scene("bar_chart", variant, "compositional",
                     long=["Which bar comes right after the month with the lowest value?",
                           "Find the shortest bar; which bar stands immediately to its right?"],
                     short=["the bar right after the lowest month", "the bar just right of the shortest one"],
                     targets=[bars[t]], answer=f"{names[t]}, after {names[lowest]} ({values[lowest]})")
    # absent: a named multiple that no bar shows
    candidates = [i for i in range(n) if 2 * values[i] not in values]
    a = pick(rng, candidates)
    return Scene("bar_chart", "absent", "compositional",
                 long=[f"Which bar shows exactly twice the value of {names[a]}?",
                       f"Double the value of {names[a]}: which bar has exactly that value?"],
                 short=[f"the bar with double the value of {names[a]}", f"the bar worth twice {names[a]}"],
                 targets=[], answer=f"none: no bar shows {2 * values[a]}")
