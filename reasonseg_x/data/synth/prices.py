"""Shop shelves with price tags and a sale banner: read prices, apply the discount, compare with
a budget (compositional: reading + arithmetic + comparison)."""

from __future__ import annotations

import math

import numpy as np

from reasonseg_x.data.synth.canvas import BACKGROUND, COLOURS, Canvas
from reasonseg_x.data.synth.scene import Scene, choose_variant, grid_boxes, pick

__all__ = ["price_tags", "VARIANTS"]

VARIANTS = {"afford_one": 1.0, "most_expensive": 1.0, "all_affordable": 0.8, "absent": 0.3}
_DISCOUNTS = (10, 20, 25, 50)
_PRODUCTS = ("box", "bottle", "can", "ball", "jar")
_PRODUCT_COLOURS = ("red", "green", "blue", "orange", "purple", "yellow")


def _draw_product(canvas: Canvas, kind: str, box: tuple[float, float, float, float], colour: str, obj: int) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    fill = COLOURS[colour]
    dark = tuple(int(v * 0.6) for v in fill)
    if kind == "box":
        canvas.rectangle((x0 + 0.1 * w, y0 + 0.2 * h, x1 - 0.1 * w, y1), fill, obj)
        canvas.rectangle((x0 + 0.1 * w, y0 + 0.5 * h, x1 - 0.1 * w, y0 + 0.6 * h), dark, obj)
    elif kind == "bottle":
        canvas.rectangle((x0 + 0.42 * w, y0, x1 - 0.42 * w, y0 + 0.1 * h), dark, obj)
        canvas.rectangle((x0 + 0.38 * w, y0 + 0.1 * h, x1 - 0.38 * w, y0 + 0.35 * h), fill, obj)
        canvas.rectangle((x0 + 0.25 * w, y0 + 0.35 * h, x1 - 0.25 * w, y1), fill, obj)
    elif kind == "can":
        canvas.rectangle((x0 + 0.2 * w, y0 + 0.15 * h, x1 - 0.2 * w, y1 - 0.08 * h), fill, obj)
        canvas.ellipse((x0 + 0.2 * w, y0 + 0.05 * h, x1 - 0.2 * w, y0 + 0.25 * h), dark, obj)
        canvas.ellipse((x0 + 0.2 * w, y1 - 0.18 * h, x1 - 0.2 * w, y1), fill, obj)
    elif kind == "ball":
        r = min(w, h) * 0.45
        cx, cy = (x0 + x1) / 2, y1 - r
        canvas.ellipse((cx - r, cy - r, cx + r, cy + r), fill, obj)
        canvas.line([(cx - r * 0.7, cy), (cx + r * 0.7, cy)], dark, obj, width=2)
    else:  # jar
        canvas.rectangle((x0 + 0.22 * w, y0 + 0.1 * h, x1 - 0.22 * w, y0 + 0.22 * h), dark, obj)
        canvas.rectangle((x0 + 0.15 * w, y0 + 0.22 * h, x1 - 0.15 * w, y1), fill, obj)


def _prices(rng: np.random.Generator, n: int, variant: str, discount: int) -> tuple[list[int], int] | None:
    """Prices and a whole-dollar budget that make the variant's answer unambiguous.

    The budget is always below the cheapest *undiscounted* price, so the discount must be applied;
    no discounted price equals the budget (no "just affordable" edge case).
    """
    keep = 1 - discount / 100
    for _ in range(30):
        prices = sorted(int(v) for v in rng.choice(np.arange(4, 60), size=n, replace=False))
        sale = [p * keep for p in prices]
        if variant == "absent":
            budget = math.ceil(sale[0]) - int(rng.integers(1, 4))
            if budget >= 1 and budget < sale[0]:
                return prices, budget
            continue
        affordable = 1 if variant == "afford_one" else int(rng.integers(2, n))
        low, high = sale[affordable - 1], sale[affordable]  # budget in [low, high) and below prices[0]
        options = [b for b in range(math.ceil(low), math.ceil(high))
                   if b < prices[0] and b not in sale and b > low]
        if options:
            return prices, int(options[int(rng.integers(len(options)))])
    return None


def price_tags(rng: np.random.Generator, canvas: Canvas, variant: str | None = None) -> Scene:
    variant = variant or choose_variant(rng, VARIANTS)
    n = int(rng.integers(3, 6))
    discount = pick(rng, _DISCOUNTS)
    made = _prices(rng, n, variant, discount)
    while made is None:  # very rare: retry with the plainest variant and discount
        variant, discount = "afford_one", 50
        made = _prices(rng, n, variant, discount)
    prices, budget = made
    order = [int(i) for i in rng.permutation(n)]  # shelf order differs from price order
    size = max(11, canvas.height // 24)

    banner = f"SALE: {discount}% OFF EVERYTHING"
    canvas.rectangle((0, 0, canvas.width - 1, 2 * size + 8), COLOURS["red"], BACKGROUND)
    canvas.text((canvas.width / 2, size + 4), banner, COLOURS["white"], size + 2, anchor="mm")
    shelf_top = 2 * size + 20
    cells = grid_boxes(rng, n, (8, shelf_top, canvas.width - 8, canvas.height - 8), cols=n, shuffle=False)
    items: list[int] = [0] * n
    kinds = pick(rng, _PRODUCTS, min(n, len(_PRODUCTS)))
    for slot, (x0, y0, x1, y1) in enumerate(cells):
        i = order[slot]
        kind = kinds[slot % len(kinds)]
        tag_h = size + 10
        product = (x0 + 6, y0 + 6, x1 - 6, y1 - tag_h - 10)
        obj = canvas.new_object(f"{kind} ${prices[i]}")
        _draw_product(canvas, kind, product, pick(rng, _PRODUCT_COLOURS), obj)
        tag = canvas.new_object(f"price tag ${prices[i]}")
        cx = (x0 + x1) / 2
        tw = Canvas.text_size(f"${prices[i]}", size)[0] + 12
        canvas.rectangle((cx - tw / 2, y1 - tag_h - 4, cx + tw / 2, y1 - 4), COLOURS["white"], tag,
                         outline=COLOURS["black"])
        canvas.text((cx, y1 - 4 - tag_h / 2), f"${prices[i]}", COLOURS["black"], size, owner=tag, anchor="mm")
        items[i] = obj

    keep = 1 - discount / 100
    affordable = [i for i in range(n) if prices[i] * keep <= budget]
    base = f"with ${budget} after the {discount}% discount"
    if variant == "absent" or not affordable:
        return Scene("price_tags", "absent", "compositional",
                     long=[f"I have ${budget}. Which item can I afford once the {discount}% discount is applied?",
                           f"Which product could I buy {base}?"],
                     short=[f"the item I can afford {base}", f"what ${budget} buys after the discount"],
                     targets=[], answer=f"none: the cheapest costs ${prices[0] * keep:g} after the discount")
    if variant == "all_affordable":
        return Scene("price_tags", variant, "compositional",
                     long=[f"I have ${budget}. Which items could I afford on their own once the "
                           f"{discount}% discount is taken off?",
                           f"Which products cost at most ${budget} after the {discount}% discount?"],
                     short=[f"every item I can afford {base}", f"items within ${budget} after the discount"],
                     targets=[items[i] for i in affordable],
                     answer=", ".join(f"${prices[i]} -> ${prices[i] * keep:g}" for i in affordable))
    t = max(affordable, key=lambda i: prices[i])
    if variant == "most_expensive":
        return Scene("price_tags", variant, "compositional",
                     long=[f"I have ${budget}. What is the most expensive item I can still buy after the "
                           f"{discount}% discount?",
                           f"With ${budget} and {discount}% off, which is the priciest product I can afford?"],
                     short=[f"the priciest item affordable {base}", f"the most expensive thing ${budget} buys on sale"],
                     targets=[items[t]], answer=f"${prices[t]} -> ${prices[t] * keep:g}")
    return Scene("price_tags", "afford_one", "compositional",
                 long=[f"I only have ${budget}. Which item can I afford once the {discount}% discount is applied?",
                       f"Which product could I buy {base}?"],
                 short=[f"the item I can afford {base}", f"what ${budget} buys after the discount"],
                 targets=[items[t]], answer=f"${prices[t]} -> ${prices[t] * keep:g}")
