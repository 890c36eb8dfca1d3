"""Tables of numbers: locate a row and a column, or compare within a located column (compositional)."""

from __future__ import annotations

import numpy as np

from reasonseg_x.data.synth.canvas import BACKGROUND, COLOURS, Canvas
from reasonseg_x.data.synth.scene import Scene, choose_variant, pick

__all__ = ["table", "VARIANTS"]

VARIANTS = {"lookup": 1.0, "column_max": 1.0, "row_min": 1.0, "absent": 0.3}
_ROW_SETS = (("Apples", "Pears", "Plums", "Grapes", "Kiwis", "Limes"),
             ("Oslo", "Lima", "Cairo", "Delhi", "Quito", "Perth"),
             ("Ann", "Ben", "Cleo", "Dev", "Eva", "Finn"))
_COLUMN_SETS = (("Mon", "Tue", "Wed", "Thu", "Fri"), ("2021", "2022", "2023", "2024"),
                ("Q1", "Q2", "Q3", "Q4"))
_HEADER = (222, 226, 236)
_CELL = (252, 252, 248)
_GRID = (90, 90, 90)


def _fit(text: str, size: int, room: float) -> int:
    """The largest font size <= ``size`` at which ``text`` fits in ``room`` pixels (at least 8)."""
    while size > 8 and Canvas.text_size(text, size)[0] > room:
        size -= 1
    return size


def table(rng: np.random.Generator, canvas: Canvas, variant: str | None = None) -> Scene:
    variant = variant or choose_variant(rng, VARIANTS)
    rows = list(pick(rng, _ROW_SETS, 1)[0][: int(rng.integers(3, 6))])
    columns_all = pick(rng, _COLUMN_SETS)
    ncol = int(rng.integers(3, len(columns_all) + 1))
    columns = list(columns_all[:ncol])
    nrow = len(rows)
    values = rng.choice(np.arange(10, 100), size=(nrow, ncol), replace=False).astype(int)

    margin = 14
    x0, y0 = margin, margin
    width, height = canvas.width - 2 * margin, canvas.height - 2 * margin
    cw, ch = width / (ncol + 1), height / (nrow + 1)
    size = int(max(10, min(ch * 0.45, cw * 0.28)))
    cells: dict[tuple[int, int], int] = {}
    for r in range(nrow + 1):
        for c in range(ncol + 1):
            box = (x0 + c * cw, y0 + r * ch, x0 + (c + 1) * cw, y0 + (r + 1) * ch)
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            if r == 0 or c == 0:
                # headers and the grid lines belong to the background: only data cells are answers
                canvas.rectangle(box, _HEADER, BACKGROUND, outline=_GRID)
                label = "" if r == c == 0 else (columns[c - 1] if r == 0 else rows[r - 1])
                if label:
                    canvas.text(centre, label, COLOURS["black"], _fit(label, size, cw - 6), anchor="mm")
                continue
            obj = canvas.new_object(f"cell {rows[r - 1]}/{columns[c - 1]}")
            canvas.rectangle(box, _GRID, BACKGROUND)  # grid line colour under the cell's 1-px frame
            canvas.rectangle((box[0] + 1, box[1] + 1, box[2] - 1, box[3] - 1), _CELL, obj)
            canvas.text(centre, str(values[r - 1, c - 1]), COLOURS["black"], size, owner=obj, anchor="mm")
            cells[(r - 1, c - 1)] = obj

    if variant == "lookup":
        r, c = int(rng.integers(nrow)), int(rng.integers(ncol))
        return Scene("table", variant, "compositional",
                     long=[f"In this table, which cell is in the {rows[r]} row under the {columns[c]} column?",
                           f"Find the row for {rows[r]} and follow it to the {columns[c]} column: which cell is that?"],
                     short=[f"the cell in row {rows[r]}, column {columns[c]}", f"the {rows[r]} value for {columns[c]}"],
                     targets=[cells[(r, c)]], answer=str(values[r, c]))
    if variant == "column_max":
        c = int(rng.integers(ncol))
        r = int(np.argmax(values[:, c]))
        return Scene("table", variant, "compositional",
                     long=[f"Which cell holds the largest number in the {columns[c]} column?",
                           f"Look only at the {columns[c]} column: which cell has the highest value?"],
                     short=[f"the largest value in column {columns[c]}", f"the top {columns[c]} cell"],
                     targets=[cells[(r, c)]], answer=f"{rows[r]}: {values[r, c]}")
    if variant == "row_min":
        r = int(rng.integers(nrow))
        c = int(np.argmin(values[r]))
        return Scene("table", variant, "compositional",
                     long=[f"In the row for {rows[r]}, which cell has the smallest number?",
                           f"Which of {rows[r]}'s cells shows the lowest value?"],
                     short=[f"the smallest value in the {rows[r]} row", f"the lowest {rows[r]} cell"],
                     targets=[cells[(r, c)]], answer=f"{columns[c]}: {values[r, c]}")
    # absent: a threshold no cell of the named column exceeds
    c = int(rng.integers(ncol))
    bound = int(values[:, c].max()) + int(rng.integers(1, 10))
    return Scene("table", "absent", "compositional",
                 long=[f"Which cell in the {columns[c]} column holds a number greater than {bound}?",
                       f"In the {columns[c]} column, find the cells above {bound}."],
                 short=[f"the {columns[c]} cells above {bound}", f"cells over {bound} in column {columns[c]}"],
                 targets=[], answer=f"none: the {columns[c]} maximum is {values[:, c].max()}")
