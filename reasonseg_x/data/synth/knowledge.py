"""Scenes that need world knowledge the picture does not spell out (commonsense /
knowledge-intensive): what traffic-light colours mean, which flag belongs to which country,
what road signs tell drivers."""

from __future__ import annotations

import numpy as np

from reasonseg_x.data.synth.canvas import BACKGROUND, COLOURS, Canvas
from reasonseg_x.data.synth.scene import Scene, choose_variant, grid_boxes, pick, regular_polygon

__all__ = ["traffic_light", "flags", "road_signs", "FLAGS", "SIGNS"]

_SKY = (200, 225, 245)
_ROAD = (110, 110, 115)
_POLE = (95, 95, 100)

# --- traffic lights -----------------------------------------------------------------------------

_LAMPS = {
    "red": ((220, 30, 30), ["Which light tells the cars that they must stop?",
                            "Which lamp means drivers have to wait at the line?"],
            ["the light that means stop", "the signal that makes cars halt"]),
    "amber": ((245, 175, 20), ["Which light warns drivers that the signal is about to change to stop?",
                               "Which lamp means prepare to stop?"],
              ["the warning light", "the light that means get ready to stop"]),
    "green": ((30, 170, 70), ["Which light tells the cars that they may drive on?",
                              "Which lamp means it is safe to go?"],
              ["the light that means go", "the signal that lets cars pass"]),
}


def traffic_light(rng: np.random.Generator, canvas: Canvas, variant: str | None = None) -> Scene:
    variant = variant or pick(rng, tuple(_LAMPS))
    horizon = int(canvas.height * float(rng.uniform(0.6, 0.75)))
    canvas.rectangle((0, 0, canvas.width - 1, horizon), _SKY, BACKGROUND)
    canvas.rectangle((0, horizon, canvas.width - 1, canvas.height - 1), _ROAD, BACKGROUND)
    middle = horizon + (canvas.height - horizon) // 2
    for k in range(0, canvas.width, 60):  # lane markings
        canvas.rectangle((k, middle - 2, k + 30, middle + 2), COLOURS["white"], BACKGROUND)
    r = min(canvas.width, canvas.height) * float(rng.uniform(0.06, 0.09))
    cx = float(rng.uniform(0.25, 0.75)) * canvas.width
    top = float(rng.uniform(0.05, 0.12)) * canvas.height
    housing_h = 6.6 * r
    pole = canvas.new_object("pole")
    canvas.rectangle((cx - r * 0.25, top + housing_h, cx + r * 0.25, canvas.height - 10), _POLE, pole)
    housing = canvas.new_object("traffic light housing")
    canvas.rectangle((cx - 1.5 * r, top, cx + 1.5 * r, top + housing_h), COLOURS["black"], housing)
    lamps = {}
    for k, name in enumerate(("red", "amber", "green")):
        cy = top + 1.1 * r + k * 2.2 * r
        obj = canvas.new_object(f"{name} lamp")
        canvas.ellipse((cx - r, cy - r, cx + r, cy + r), _LAMPS[name][0], obj)
        lamps[name] = obj
    _, long, short = _LAMPS[variant]
    return Scene("traffic_light", variant, "commonsense", long=list(long), short=list(short),
                 targets=[lamps[variant]], answer=f"the {variant} lamp")


# --- flags --------------------------------------------------------------------------------------

#: country -> (stripes orientation, stripe colours, capital, an extra clue or None)
FLAGS: dict[str, tuple[str, tuple[tuple[int, int, int], ...], str, str | None]] = {
    "France": ("v", ((0, 85, 164), (255, 255, 255), (239, 65, 53)), "Paris", "the Eiffel Tower stands"),
    "Italy": ("v", ((0, 146, 70), (255, 255, 255), (206, 43, 55)), "Rome", "the Colosseum stands"),
    "Ireland": ("v", ((22, 155, 98), (255, 255, 255), (255, 136, 62)), "Dublin", None),
    "Belgium": ("v", ((0, 0, 0), (253, 218, 36), (239, 51, 64)), "Brussels", None),
    "Germany": ("h", ((0, 0, 0), (221, 0, 0), (255, 206, 0)), "Berlin", "the Brandenburg Gate stands"),
    "the Netherlands": ("h", ((174, 28, 40), (255, 255, 255), (33, 70, 139)), "Amsterdam", None),
    "Ukraine": ("h", ((0, 87, 183), (255, 215, 0)), "Kyiv", None),
    "Poland": ("h", ((255, 255, 255), (220, 20, 60)), "Warsaw", None),
    "Austria": ("h", ((200, 16, 46), (255, 255, 255), (200, 16, 46)), "Vienna", None),
    "Hungary": ("h", ((206, 41, 57), (255, 255, 255), (71, 112, 80)), "Budapest", None),
    "Japan": ("disc", ((255, 255, 255), (188, 0, 45)), "Tokyo", "Mount Fuji rises"),
}


def _paint_flag(canvas: Canvas, box: tuple[float, float, float, float], country: str, obj: int) -> None:
    kind, colours, _, _ = FLAGS[country]
    x0, y0, x1, y1 = box
    if kind == "disc":
        canvas.rectangle(box, colours[0], obj, outline=(160, 160, 160))
        r = (y1 - y0) * 0.3
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        canvas.ellipse((cx - r, cy - r, cx + r, cy + r), colours[1], obj)
        return
    n = len(colours)
    for k, colour in enumerate(colours):
        if kind == "v":
            canvas.rectangle((x0 + (x1 - x0) * k / n, y0, x0 + (x1 - x0) * (k + 1) / n, y1), colour, obj)
        else:
            canvas.rectangle((x0, y0 + (y1 - y0) * k / n, x1, y0 + (y1 - y0) * (k + 1) / n), colour, obj)


def flags(rng: np.random.Generator, canvas: Canvas, variant: str | None = None) -> Scene:
    variant = variant or choose_variant(rng, {"capital": 1.0, "landmark": 0.8, "absent": 0.2})
    count = int(rng.integers(3, 6))
    countries = pick(rng, list(FLAGS), count + 1)
    shown, spare = countries[:count], countries[count]
    if variant == "landmark":
        with_clue = [c for c in shown if FLAGS[c][3]]
        if not with_clue:
            variant = "capital"
    wanted = spare if variant == "absent" else pick(rng, with_clue if variant == "landmark" else shown)

    canvas.rectangle((0, 0, canvas.width - 1, canvas.height - 1), _SKY, BACKGROUND)
    canvas.rectangle((0, int(canvas.height * 0.85), canvas.width - 1, canvas.height - 1), (120, 170, 90), BACKGROUND)
    cells = grid_boxes(rng, count, (10, 10, canvas.width - 10, int(canvas.height * 0.85)), cols=count, shuffle=False)
    target = None
    for country, (x0, y0, x1, y1) in zip(shown, cells):
        w = (x1 - x0) * 0.75
        h = min(w * 2 / 3, (y1 - y0) * 0.4)
        w = h * 1.5
        px = x0 + (x1 - x0 - w) / 2
        py = y0 + float(rng.uniform(0.05, 0.25)) * (y1 - y0)
        pole = canvas.new_object("flag pole")
        canvas.rectangle((px - 4, py - 4, px - 1, int(canvas.height * 0.9)), _POLE, pole)
        obj = canvas.new_object(f"flag of {country}")
        _paint_flag(canvas, (px, py, px + w, py + h), country, obj)
        if country == wanted:
            target = obj
    capital, clue = FLAGS[wanted][2], FLAGS[wanted][3]
    if variant == "landmark":
        long = [f"Which flag belongs to the country where {clue}?"]
        short = [f"the flag of the country where {clue}"]
    else:
        long = [f"Which flag belongs to the country whose capital is {capital}?",
                f"Someone from {capital} is looking for their national flag; which one is it?"]
        short = [f"the flag of the country whose capital is {capital}", f"the flag of {capital}'s country"]
    return Scene("flags", variant, "commonsense", long=long, short=short,
                 targets=[target] if target is not None else [],
                 answer=f"the flag of {wanted}" if target is not None else f"none: no flag of {wanted}")


# --- road signs ---------------------------------------------------------------------------------


def _sign_stop(c: Canvas, cx: float, cy: float, r: float, obj: int) -> None:
    c.polygon(regular_polygon(cx, cy, r, 8, 22.5), COLOURS["white"], obj)
    c.polygon(regular_polygon(cx, cy, r * 0.88, 8, 22.5), (200, 20, 30), obj)


def _sign_give_way(c: Canvas, cx: float, cy: float, r: float, obj: int) -> None:
    c.polygon(regular_polygon(cx, cy, r, 3, 180), (200, 20, 30), obj)
    c.polygon(regular_polygon(cx, cy - r * 0.08, r * 0.6, 3, 180), COLOURS["white"], obj)


def _sign_no_entry(c: Canvas, cx: float, cy: float, r: float, obj: int) -> None:
    c.ellipse((cx - r, cy - r, cx + r, cy + r), (200, 20, 30), obj)
    c.rectangle((cx - r * 0.7, cy - r * 0.18, cx + r * 0.7, cy + r * 0.18), COLOURS["white"], obj)


def _sign_speed(c: Canvas, cx: float, cy: float, r: float, obj: int) -> None:
    c.ellipse((cx - r, cy - r, cx + r, cy + r), (200, 20, 30), obj)
    c.ellipse((cx - r * 0.78, cy - r * 0.78, cx + r * 0.78, cy + r * 0.78), COLOURS["white"], obj)
    c.text((cx, cy), "50", COLOURS["black"], max(10, int(r * 0.8)), owner=obj, anchor="mm")


def _sign_no_parking(c: Canvas, cx: float, cy: float, r: float, obj: int) -> None:
    c.ellipse((cx - r, cy - r, cx + r, cy + r), (200, 20, 30), obj)
    c.ellipse((cx - r * 0.78, cy - r * 0.78, cx + r * 0.78, cy + r * 0.78), (20, 70, 170), obj)
    d = r * 0.55
    c.line([(cx - d, cy - d), (cx + d, cy + d)], (200, 20, 30), obj, width=max(3, int(r * 0.2)))


def _sign_hospital(c: Canvas, cx: float, cy: float, r: float, obj: int) -> None:
    c.rectangle((cx - r, cy - r, cx + r, cy + r), (20, 70, 170), obj)
    c.text((cx, cy), "H", COLOURS["white"], max(10, int(r * 1.3)), owner=obj, anchor="mm")


SIGNS = {
    "stop": (_sign_stop, ["Which sign tells drivers to come to a complete halt?",
                          "Which sign means I must stop my car fully?"],
             ["the sign that orders a full stop", "the sign meaning halt"]),
    "give way": (_sign_give_way, ["Which sign tells me to let the other traffic go first?",
                                  "Which sign means I have to yield at the junction?"],
                 ["the sign meaning yield to others", "the give-way sign"]),
    "no entry": (_sign_no_entry, ["Which sign forbids cars from driving into this street?",
                                  "Which sign says that no vehicle may enter here?"],
                 ["the sign that forbids entry", "the do-not-enter sign"]),
    "speed limit": (_sign_speed, ["Which sign tells me how fast I am allowed to drive?",
                                  "Which sign sets the maximum speed?"],
                    ["the sign about the maximum speed", "the speed sign"]),
    "no parking": (_sign_no_parking, ["Which sign says I must not leave my car here?", "Which sign forbids parking?"],
                   ["the sign that forbids parking", "the no-parking sign"]),
    "hospital": (_sign_hospital, ["Which sign shows the way to medical help?",
                                  "Which sign would an ambulance driver follow?"],
                 ["the sign for the hospital", "the sign pointing to medical care"]),
}


def road_signs(rng: np.random.Generator, canvas: Canvas, variant: str | None = None) -> Scene:
    names = list(SIGNS)
    variant = variant or choose_variant(rng, {"present": 1.0, "absent": 0.12})
    forced = None
    if ":" in variant:  # "present:stop" fixes the sign asked for
        variant, forced = variant.split(":", 1)
    count = int(rng.integers(3, 5))
    chosen = pick(rng, names, count + 1)
    if forced is not None and forced in chosen:
        chosen.remove(forced)
        chosen.insert(0 if variant != "absent" else count, forced)
    elif forced is not None:
        chosen[0 if variant != "absent" else count] = forced
    shown, wanted = chosen[:count], (chosen[count] if variant == "absent" else (forced or pick(rng, chosen[:count])))
    if forced is not None:
        shown = [shown[int(i)] for i in rng.permutation(len(shown))]
    horizon = int(canvas.height * 0.7)
    canvas.rectangle((0, 0, canvas.width - 1, horizon), _SKY, BACKGROUND)
    canvas.rectangle((0, horizon, canvas.width - 1, canvas.height - 1), _ROAD, BACKGROUND)
    cells = grid_boxes(rng, count, (10, 10, canvas.width - 10, horizon), cols=count, shuffle=False)
    target = None
    for name, (x0, y0, x1, y1) in zip(shown, cells):
        r = min(x1 - x0, y1 - y0) * float(rng.uniform(0.28, 0.4))
        cx = (x0 + x1) / 2
        cy = y0 + r + 4 + float(rng.uniform(0, 0.2)) * (y1 - y0)
        pole = canvas.new_object("sign pole")
        canvas.rectangle((cx - 3, cy, cx + 3, canvas.height - 12), _POLE, pole)
        obj = canvas.new_object(f"{name} sign")
        SIGNS[name][0](canvas, cx, cy, r, obj)
        if name == wanted:
            target = obj
    _, long, short = SIGNS[wanted]
    return Scene("road_signs", variant, "commonsense", long=list(long), short=list(short),
                 targets=[target] if target is not None else [],
                 answer=f"the {wanted} sign" if target is not None else f"none: no {wanted} sign")
