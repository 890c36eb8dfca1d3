"""Human-facing views of metrics.json: a Markdown report, a rich terminal table, a bar chart.

All three read only the metrics dict, so a run folder can be re-rendered without re-scoring.
The chart is drawn with Pillow (matplotlib is not a dependency). The worst-case grid also needs the
data and the predictions; its tiles are drawn by :mod:`reasonseg_x.render`, as in the case viewer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonseg_x._html import md_code, md_text
from reasonseg_x.atomic import save_image_atomic

__all__ = ["table_rows", "group_sections", "render_markdown", "print_table", "draw_chart", "pct", "group_title",
           "draw_worst_grid", "worst_ids"]

#: problems printed in the terminal (metrics.json lists up to 50, the result object all)
_PRINTED_PROBLEMS = 5
_GROUP_SECTIONS = (("by_reasoning_type", "Reasoning type"), ("by_query_kind", "Query kind"), ("by_source", "Source"))


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100.0 * value:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{pct(ci[0])}, {pct(ci[1])}]"


def group_title(section: str, key: str, *, short: bool = False) -> str:
    """A row title a reader can place: ``function_purpose`` -> ``P/F function_purpose`` (the code the
    paper's tables use; the code alone when ``short``), ``long`` -> ``long query``, a source ->
    ``source: NAME``."""
    if section == "by_reasoning_type":
        from reasonseg_x.taxonomy import reasoning_types

        cat = reasoning_types(open=True).category(key)
        if cat.code == key:
            return key
        return cat.code if short else f"{cat.code} {key}"
    if section == "by_query_kind":
        return f"{key} query"
    if section == "by_source":
        return f"source: {key}"
    return key


def group_rows(metrics: dict[str, Any], *, short: bool = False) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(section, key, title, group metrics) of every row the tables print: overall (section and key
    empty), then each grouping present (a single source is left out: its row would repeat Overall)."""
    rows: list[tuple[str, str, str, dict[str, Any]]] = [("", "", "Overall", metrics["overall"])]
    for section, _ in _GROUP_SECTIONS:
        groups = metrics.get(section) or {}
        if section == "by_source" and len(groups) < 2:
            continue
        rows += [(section, key, group_title(section, key, short=short), group) for key, group in groups.items()]
    return rows


def group_sections(metrics: dict[str, Any], *, short: bool = False) -> list[list[tuple[str, dict[str, Any]]]]:
    """Rows grouped as the tables show them: overall, then one block per grouping present (also
    fits a comparison, which has the same sections)."""
    blocks: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for section, _, title, group in group_rows(metrics, short=short):
        blocks.setdefault(section, []).append((title, group))
    return list(blocks.values())


def table_rows(metrics: dict[str, Any], *, short: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """(title, group metrics) for the overall row and every group, in report order."""
    return [row for block in group_sections(metrics, short=short) for row in block]


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _notes(metrics: dict[str, Any]) -> list[str]:
    """What a reader must know before trusting the table: reference outputs, resized masks, statuses
    that contradict their mask, samples in no group row, skipped source rows."""
    notes = [metrics["note"]] if metrics.get("note") else []
    resized = (metrics.get("predictions") or {}).get("resized", 0)
    if resized:
        notes.append(f"{resized} prediction mask(s) of another size were resized (nearest) to their image")
    ignored = (metrics.get("counts") or {}).get("mask_ignored", 0)
    if ignored:
        notes.append(f"{ignored} line(s) with status no_target/parse_error/error carried a non-empty mask: the "
                     "status decides, the mask was not scored")
    for key, count in (metrics.get("unlabelled") or {}).items():
        what = key.replace("_", " ")
        notes.append(f"{count} sample(s) have no {what}: they are in Overall but in no {what} row")
    skipped = (metrics.get("data") or {}).get("skipped_rows", 0)
    if skipped:
        notes.append(f"{skipped} invalid source row(s) were skipped (--skip-invalid): they are not scored and not in n")
    return notes


def _listed(metrics: dict[str, Any], limit: int | None = None) -> list[tuple[str, list[dict[str, Any]], int]]:
    """(heading, first entries, total) of the problem lists: prediction problems, skipped source rows."""
    data = metrics.get("data") or {}
    lists = [("problem(s) in the predictions", metrics.get("problems") or [], metrics.get("problems_total", 0)),
             ("skipped source row(s)", data.get("skipped") or [], data.get("skipped_rows", 0))]
    return [(heading, entries[:limit], total) for heading, entries, total in lists if total]


def render_markdown(metrics: dict[str, Any], *, worst_grid: str | None = None) -> str:
    """The report.md of a run: provenance, the gIoU/cIoU table with 95% CIs, precision, counts, and
    the worst-case grid when one was drawn (``worst_grid``: its file name beside report.md).

    Every string from the data or the user (type and source names, paths, descriptions, problem
    reasons) goes through :func:`md_text` or :func:`md_code`: shown as written, never as HTML."""
    data = metrics.get("data", {})
    boot = metrics.get("bootstrap", {})
    level = int(round(100 * boot.get("level", 0.95)))
    protocol = metrics["protocol"]
    lines = [f"# ReasonSeg-X evaluation ({md_text(protocol)} protocol)", ""]
    lines.append(f"- data: {md_code(data.get('spec', ''))} split {md_code(data.get('split', ''))}, "
                 f"fingerprint {md_code(data.get('fingerprint', ''))}")
    lines.append(f"- protocol {md_code(protocol)}: {md_text(metrics.get('protocol_description', ''))}")
    lines.append(f"- toolkit reasonseg-x {md_text(metrics.get('version', ''))}; bootstrap {boot.get('n_resamples', 0)} "
                 f"resamples, seed {boot.get('seed', 0)}, {level}% percentile intervals")
    lines += [f"- note: {md_text(note)}" for note in _notes(metrics)]
    lines += ["", "Values in percent.", ""]
    lines.append(f"| group | n | gIoU | gIoU {level}% CI | cIoU | cIoU {level}% CI |")
    lines.append("|---|---:|---:|---|---:|---|")
    for title, g in table_rows(metrics):
        lines.append(f"| {md_text(title)} | {g['n']} | {pct(g['giou'])} | {_ci(g.get('giou_ci'))} | {pct(g['ciou'])} | "
                     f"{_ci(g.get('ciou_ci'))} |")
    overall_prec = metrics["overall"].get("precision") or {}
    if overall_prec:
        thresholds = list(overall_prec)
        lines += ["", "## Precision at IoU thresholds", ""]
        lines.append("| group | " + " | ".join(f"P@{md_text(t)}" for t in thresholds) + " |")
        lines.append("|---|" + "---:|" * len(thresholds))
        for title, g in table_rows(metrics):
            prec = g.get("precision") or {}
            lines.append(f"| {md_text(title)} | " + " | ".join(pct(prec.get(t)) for t in thresholds) + " |")
    if "gres" in metrics:
        g = metrics["gres"]
        lines += ["", "## No-target rows (GRES)", "",
                  f"N-acc {pct(g['n_acc'])} (TP {g['TP']}, FN {g['FN']}); T-acc {pct(g['t_acc'])} "
                  f"(TN {g['TN']}, FP {g['FP']})"]
    if worst_grid:
        lines += ["", "## Worst cases per reasoning type", "",
                  f"![the {WORST_K} lowest-IoU samples of each reasoning type]({worst_grid})", "",
                  "Every sample, with its answer: `reasonseg-x show RUN --out DIR` (a static viewer)."]
    lines += ["", "## Counts", "", md_text(_counts_line(metrics.get("counts", {})))]
    for heading, entries, total in _listed(metrics):
        lines += ["", f"## {total} {heading}", ""]
        lines += [f"- {md_code(p['where'])}: {md_text(p['reason'])}" for p in entries]
        if total > len(entries):
            lines.append(f"- ... {total - len(entries)} more")
    return "\n".join(lines) + "\n"


def print_table(result: Any, console: Any = None) -> None:
    """Print the gIoU/cIoU table (with CIs) and the counts with rich."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    metrics = result.metrics if hasattr(result, "metrics") else result
    console = console or Console()
    data = metrics.get("data", {})
    title = f"ReasonSeg-X, {metrics['protocol']} protocol: {data.get('spec', '')} {data.get('split', '')}".strip()
    table = Table(title=escape(title.rstrip(":")))
    for name, justify in (("group", "left"), ("n", "right"), ("gIoU", "right"), ("95% CI", "left"),
                          ("cIoU", "right"), ("95% CI ", "left"), ("P@0.5", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    for block in group_sections(metrics, short=console.width < 100):
        for n, (title, g) in enumerate(block):
            table.add_row(escape(title), str(g["n"]), pct(g["giou"]), _ci(g.get("giou_ci")), pct(g["ciou"]),
                          _ci(g.get("ciou_ci")), pct((g.get("precision") or {}).get("0.5")),
                          end_section=(n == len(block) - 1))
    console.print(table)
    console.print("counts: " + escape(_counts_line(metrics.get("counts", {}))), soft_wrap=True)
    for note in _notes(metrics):
        console.print("note: " + escape(note), soft_wrap=True)
    if "gres" in metrics:
        g = metrics["gres"]
        console.print(f"N-acc {pct(g['n_acc'])}  T-acc {pct(g['t_acc'])}")
    for heading, entries, total in _listed(metrics, _PRINTED_PROBLEMS):
        console.print(f"[yellow]{total} {heading}:[/yellow]")
        for entry in entries:
            console.print(escape(f"  {entry['where']}: {entry['reason']}"), soft_wrap=True)
        if total > len(entries):
            console.print(f"  ... {total - len(entries)} more (listed in metrics.json and report.md)")


def _font(size: int) -> Any:
    """Pillow's bundled scalable font at ``size`` px (the bitmap default on Pillow < 10.1)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def draw_chart(metrics: dict[str, Any], path: str | Path, *, width: int = 1000, height: int = 460) -> Path:
    """Bar chart PNG of gIoU and cIoU (percent, with CI whiskers) overall, per reasoning type and per
    query kind; each value is written beside its whisker, where no bar or whisker covers it."""
    from PIL import Image, ImageDraw

    groups = [("Overall", metrics["overall"])]
    for section in ("by_reasoning_type", "by_query_kind"):
        for key, g in (metrics.get(section) or {}).items():
            title = group_title(section, key, short=True)
            groups.append((title if len(title) <= 16 else title[:15] + "~", g))
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(14), _font(12)
    left, right, top, bottom = 50, 20, 48, 54
    plot_w, plot_h = width - left - right, height - top - bottom
    data = metrics.get("data") or {}
    where = " ".join(str(v) for v in (data.get("spec"), data.get("split")) if v)
    draw.text((left, 8), f"gIoU / cIoU (%), {metrics['protocol']} protocol" + (f" - {where}" if where else ""),
              fill="black", font=font)
    for tick in range(0, 101, 20):
        y = top + plot_h - tick * plot_h / 100
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((left - 6, y), f"{tick}", fill="black", font=small, anchor="rm")
    draw.line([(left, top), (left, top + plot_h), (left + plot_w, top + plot_h)], fill="black")
    colours = {"giou": (66, 114, 196), "ciou": (237, 125, 49)}
    slot = plot_w / max(len(groups), 1)
    bar_w = min(slot * 0.2, 44)
    for n, (title, g) in enumerate(groups):
        centre = left + (n + 0.5) * slot
        for k, key in enumerate(("giou", "ciou")):
            value = max(0.0, min(1.0, float(g[key])))
            bx = centre - bar_w - 2 if k == 0 else centre + 2
            y = top + plot_h - value * plot_h
            draw.rectangle([bx, y, bx + bar_w - 1, top + plot_h], fill=colours[key])
            cx = bx + bar_w / 2
            ci = g.get(f"{key}_ci")
            if ci:
                y_lo = top + plot_h - max(0.0, min(1.0, ci[0])) * plot_h
                y_hi = top + plot_h - max(0.0, min(1.0, ci[1])) * plot_h
                draw.line([(cx, y_lo), (cx, y_hi)], fill="black", width=2)
                draw.line([(cx - 4, y_lo), (cx + 4, y_lo)], fill="black", width=2)
                draw.line([(cx - 4, y_hi), (cx + 4, y_hi)], fill="black", width=2)
            # beside the bar at its value, on the outer side (gIoU left, cIoU right): clear of both
            # whiskers and of the other bar
            label_y = min(max(y, top + 6), top + plot_h - 7)
            if k == 0:
                draw.text((bx - 3, label_y), pct(value), fill="black", font=small, anchor="rm")
            else:
                draw.text((bx + bar_w + 3, label_y), pct(value), fill="black", font=small, anchor="lm")
        draw.text((centre, top + plot_h + 6), title, fill="black", font=small, anchor="ma")
        draw.text((centre, top + plot_h + 24), f"n={g['n']}", fill=(90, 90, 90), font=small, anchor="ma")
    lx = left + plot_w - 150
    for k, (key, label) in enumerate((("giou", "gIoU"), ("ciou", "cIoU"))):
        draw.rectangle([lx + k * 70, 30, lx + k * 70 + 12, 42], fill=colours[key])
        draw.text((lx + k * 70 + 16, 29), label, fill="black", font=small)
    level = int(round(100 * (metrics.get("bootstrap") or {}).get("level", 0.95)))
    draw.text((lx - 12, 29), f"whiskers: {level}% bootstrap CI", fill="black", font=small, anchor="ra")
    return save_image_atomic(path, img, format="PNG")


#: samples per reasoning type in the report's worst-case grid, and the tile size in pixels
WORST_K = 6
WORST_TILE = 200


def worst_ids(records: Any, k: int = WORST_K) -> dict[str, list[Any]]:
    """Per reasoning type, its ``k`` lowest-IoU records (failures before empty answers at equal IoU)."""
    from reasonseg_x.evaluators.records import FAILED

    by_type: dict[str, list[Any]] = {}
    for record in records:
        key = record.groups.get("reasoning_type")
        if key is not None:
            by_type.setdefault(key, []).append(record)
    return {key: sorted(rows, key=lambda r: (r.iou, r.status not in FAILED, r.id))[:k]
            for key, rows in by_type.items()}


def _wrap(text: str, font: Any, width: float, max_lines: int) -> list[str]:
    """``text`` (whitespace runs made one space) broken into at most ``max_lines`` lines no wider than
    ``width`` pixels: at a space, after ``_`` or ``-``, else inside a word; the last line ends in ``~``
    when text is left over."""
    words = " ".join(str(text).split())
    lines: list[str] = []
    while words and len(lines) < max_lines:
        end = len(words)
        if font.getlength(words) > width:  # the longest prefix that fits, then back to a break
            lo, hi = 1, len(words)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if font.getlength(words[:mid]) <= width else (lo, mid - 1)
            end = lo
            breaks = [i + 1 for i, ch in enumerate(words[:end]) if ch in " _-"]
            if breaks and words[end:end + 1] != " ":
                end = breaks[-1]
        lines.append(words[:end].rstrip())
        words = words[end:].lstrip()
    if words and lines:
        last = lines[-1]
        while last and font.getlength(last + "~") > width:
            last = last[:-1]
        lines[-1] = last + "~"
    return lines


#: lines of query text under each tile of the worst-case grid
WORST_QUERY_LINES = 3


#: the PNG text key holding the digest of what a worst.png shows (bump GRID_STYLE when drawing changes)
GRID_KEY = "reasonseg-x-grid"
GRID_STYLE = "2"


def _grid_digest(rows: dict[str, list[Any]], samples: list[Any], predictions: Any, k: int, tile: int) -> str:
    """A digest of everything the grid would show: the rows' records and each shown sample's picture
    bytes, masks, query and prediction (no picture is decoded)."""
    import hashlib
    import json

    from reasonseg_x._version import __version__
    from reasonseg_x.render import answer_geometry

    digest = hashlib.sha256(f"{GRID_STYLE}\0{__version__}\0{k}\0{tile}\n".encode("utf-8"))
    for key, members in rows.items():
        digest.update(json.dumps([key, [[r.id, repr(float(r.iou)), r.status] for r in members]]).encode("utf-8"))
    for sample in samples:
        try:
            picture = hashlib.sha256(sample.image.read_bytes()).hexdigest()
        except Exception:  # noqa: BLE001 - drawn as a grey tile; the digest says so
            picture = "unreadable"
        pred = predictions.get(sample.id) if predictions is not None else None
        shown = None if pred is None else [pred.status, (pred.mask or {}).get("counts"), (pred.mask or {}).get("size"),
                                           answer_geometry(pred.meta or {})]
        digest.update(json.dumps([sample.id, sample.query, sample.width, sample.height, sample.target,
                                  sample.ignore, picture, shown], default=str).encode("utf-8"))
    return digest.hexdigest()


def _drawn_digest(path: Path) -> str | None:
    """The digest an existing worst.png was drawn for (None when absent or unreadable)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            value = img.info.get(GRID_KEY)  # a text chunk before the pixels: read without decoding
    except Exception:  # noqa: BLE001 - anything unreadable is drawn again
        return None
    return value if isinstance(value, str) else None


def _grid_tiles(samples: list[Any], predictions: Any, tile: int) -> dict[str, Any]:
    """The tiles of the shown ``samples``, each picture decoded at about tile size (JPEG draft,
    whole-factor reduce), so the grid costs little next to scoring."""
    from PIL import Image

    from reasonseg_x.render import compose, decode_picture, mask_of, split_geometry

    tiles: dict[str, Image.Image] = {}
    for sample in samples:
        pred = predictions.get(sample.id) if predictions is not None else None
        geometry = split_geometry(pred.meta or {}) if pred is not None else None
        try:
            picture = decode_picture(sample.image.read_bytes(), sample.width, sample.height, tile)
            tiles[sample.id] = compose(
                picture, max_side=tile, target=mask_of(sample.target, sample.height, sample.width),
                ignore=mask_of(sample.ignore, sample.height, sample.width),
                pred=mask_of(pred.mask, sample.height, sample.width) if pred is not None and pred.status == "ok"
                else None, boxes=geometry.boxes if geometry else None, points=geometry.points if geometry else None,
                frame=(sample.width, sample.height))
        except Exception:  # noqa: BLE001 - a bad picture must not stop the report
            tiles[sample.id] = Image.new("RGB", (tile, tile * 3 // 4), (150, 150, 150))
    return tiles


def draw_worst_grid(records: Any, source: Any, split: str, predictions: Any, path: str | Path, *,
                    k: int = WORST_K, tile: int = WORST_TILE) -> Path | None:
    """One PNG: a row per reasoning type (its code and whole name) holding its ``k`` worst samples, drawn
    by :mod:`reasonseg_x.render` (ground truth outlined green, prediction pink, ignore hatched, the
    boxes and points that made the mask), each captioned with its IoU, status, id and query. None when
    no sample has a reasoning type.

    Reads only the samples it shows (once; at most ``k`` per type are held) and decodes their pictures
    at tile size; an unreadable picture is a grey tile. A ``path`` already drawn for the same content
    (a repeated ``score``: its digest is kept in the PNG) is left as it is, so a warm score pays for
    reading the shown samples only.
    """
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    rows = worst_ids(records, k)
    if not rows:
        return None
    wanted = {r.id for members in rows.values() for r in members}
    out = Path(path)
    samples = list(source.samples_of(split, wanted))
    digest = _grid_digest(rows, samples, predictions, k, tile)
    if _drawn_digest(out) == digest:
        return out
    tiles = _grid_tiles(samples, predictions, tile)
    queries = {sample.id: sample.query for sample in samples}
    font, small = _font(14), _font(12)
    label_w, line_h, pad = 150, 15, 8
    caption_h = 2 * line_h + WORST_QUERY_LINES * line_h + 6
    width = label_w + k * (tile + pad) + pad
    row_h = tile + caption_h + pad
    img = Image.new("RGB", (width, 30 + len(rows) * row_h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((pad, 8), f"Worst {k} per reasoning type (lowest IoU first); green outline: ground truth, pink: "
                        "prediction, hatched: ignore, yellow: answer boxes", fill="black", font=small)
    for n, (key, members) in enumerate(rows.items()):
        y0 = 30 + n * row_h
        code = group_title("by_reasoning_type", key, short=True)
        top = y0 + 4
        if code != key:  # a taxonomy type: its code as the paper's tables print it, then its name
            draw.text((pad, top), _wrap(code, font, label_w - 2 * pad, 1)[0], fill="black", font=font)
            top += 20
        # the whole name, wrapped in its column (cut only past the row's height)
        for j, line in enumerate(_wrap(key, small, label_w - 2 * pad, (y0 + row_h - top) // line_h)):
            draw.text((pad, top + j * line_h), line, fill=(90, 90, 90), font=small)
        for j, record in enumerate(members):
            x0 = label_w + pad + j * (tile + pad)
            picture = tiles.get(record.id)
            if picture is not None:
                img.paste(picture, (x0 + (tile - picture.width) // 2, y0 + tile - picture.height))
            else:
                draw.rectangle([x0, y0, x0 + tile - 1, y0 + tile - 1], outline=(180, 180, 180))
            y = y0 + tile + 2
            draw.text((x0, y), f"IoU {pct(record.iou)}  {record.status}", fill="black", font=small)
            draw.text((x0, y + line_h), _wrap(record.id, small, tile, 1)[0], fill=(90, 90, 90), font=small)
            for m, line in enumerate(_wrap(queries.get(record.id, ""), small, tile, WORST_QUERY_LINES)):
                draw.text((x0, y + (2 + m) * line_h), line, fill=(40, 40, 120), font=small)
    info = PngInfo()
    info.add_text(GRID_KEY, digest)
    # fast to write; the file stays small enough
    return save_image_atomic(out, img, format="PNG", compress_level=1, pnginfo=info)
