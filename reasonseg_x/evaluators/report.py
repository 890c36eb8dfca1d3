"""Human-facing views of metrics.json: a Markdown report, a rich terminal table, a bar chart.

All three read only the metrics dict, so a run folder can be re-rendered without re-scoring.
The chart is drawn with Pillow (matplotlib is not a dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["table_rows", "group_sections", "render_markdown", "print_table", "draw_chart", "pct", "group_title"]

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


def group_sections(metrics: dict[str, Any], *, short: bool = False) -> list[list[tuple[str, dict[str, Any]]]]:
    """Rows grouped as the tables show them: overall, then one block per grouping present (also
    fits a comparison, which has the same sections)."""
    blocks = [[("Overall", metrics["overall"])]]
    for section, _ in _GROUP_SECTIONS:
        rows = [(group_title(section, key, short=short), group) for key, group in (metrics.get(section) or {}).items()]
        if section == "by_source" and len(rows) < 2:  # one source: its row would repeat Overall
            continue
        if rows:
            blocks.append(rows)
    return blocks


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


def render_markdown(metrics: dict[str, Any]) -> str:
    """The report.md of a run: provenance, the gIoU/cIoU table with 95% CIs, precision, counts."""
    data = metrics.get("data", {})
    boot = metrics.get("bootstrap", {})
    level = int(round(100 * boot.get("level", 0.95)))
    lines = [f"# ReasonSeg-X evaluation ({metrics['protocol']} protocol)", ""]
    lines.append(f"- data: `{data.get('spec', '')}` split `{data.get('split', '')}`, "
                 f"fingerprint `{data.get('fingerprint', '')}`")
    lines.append(f"- protocol `{metrics['protocol']}`: {metrics.get('protocol_description', '')}")
    lines.append(f"- toolkit reasonseg-x {metrics.get('version', '')}; bootstrap {boot.get('n_resamples', 0)} "
                 f"resamples, seed {boot.get('seed', 0)}, {level}% percentile intervals")
    lines += [f"- note: {note}" for note in _notes(metrics)]
    lines += ["", "Values in percent.", ""]
    lines.append(f"| group | n | gIoU | gIoU {level}% CI | cIoU | cIoU {level}% CI |")
    lines.append("|---|---:|---:|---|---:|---|")
    for title, g in table_rows(metrics):
        lines.append(f"| {title} | {g['n']} | {pct(g['giou'])} | {_ci(g.get('giou_ci'))} | {pct(g['ciou'])} | "
                     f"{_ci(g.get('ciou_ci'))} |")
    overall_prec = metrics["overall"].get("precision") or {}
    if overall_prec:
        thresholds = list(overall_prec)
        lines += ["", "## Precision at IoU thresholds", ""]
        lines.append("| group | " + " | ".join(f"P@{t}" for t in thresholds) + " |")
        lines.append("|---|" + "---:|" * len(thresholds))
        for title, g in table_rows(metrics):
            prec = g.get("precision") or {}
            lines.append(f"| {title} | " + " | ".join(pct(prec.get(t)) for t in thresholds) + " |")
    if "gres" in metrics:
        g = metrics["gres"]
        lines += ["", "## No-target rows (GRES)", "",
                  f"N-acc {pct(g['n_acc'])} (TP {g['TP']}, FN {g['FN']}); T-acc {pct(g['t_acc'])} "
                  f"(TN {g['TN']}, FP {g['FP']})"]
    lines += ["", "## Counts", "", _counts_line(metrics.get("counts", {}))]
    for heading, entries, total in _listed(metrics):
        lines += ["", f"## {total} {heading}", ""]
        lines += [f"- `{p['where']}`: {p['reason']}" for p in entries]
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


def draw_chart(metrics: dict[str, Any], path: str | Path, *, width: int = 900, height: int = 420) -> Path:
    """Bar chart PNG of gIoU and cIoU (percent, with CI whiskers) overall and per reasoning type."""
    from PIL import Image, ImageDraw, ImageFont

    groups = [("Overall", metrics["overall"])]
    for key, g in (metrics.get("by_reasoning_type") or {}).items():
        title = group_title("by_reasoning_type", key, short=True)
        groups.append((title if len(title) <= 16 else title[:15] + "~", g))
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, right, top, bottom = 50, 20, 40, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    data = metrics.get("data") or {}
    where = " ".join(str(v) for v in (data.get("spec"), data.get("split")) if v)
    draw.text((left, 10), f"gIoU / cIoU (%), {metrics['protocol']} protocol" + (f" - {where}" if where else ""),
              fill="black", font=font)
    for tick in range(0, 101, 20):
        y = top + plot_h - tick * plot_h / 100
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((8, y - 6), f"{tick:3d}", fill="black", font=font)
    draw.line([(left, top), (left, top + plot_h), (left + plot_w, top + plot_h)], fill="black")
    colours = {"giou": (66, 114, 196), "ciou": (237, 125, 49)}
    slot = plot_w / max(len(groups), 1)
    bar_w = slot * 0.3
    for n, (title, g) in enumerate(groups):
        x0 = left + n * slot + slot * 0.2
        for k, key in enumerate(("giou", "ciou")):
            value = max(0.0, min(1.0, float(g[key])))
            bx = x0 + k * bar_w
            y = top + plot_h - value * plot_h
            draw.rectangle([bx, y, bx + bar_w - 2, top + plot_h], fill=colours[key])
            draw.text((bx, y - 12), pct(value), fill="black", font=font)
            ci = g.get(f"{key}_ci")
            if ci:
                cx = bx + bar_w / 2 - 1
                y_lo = top + plot_h - max(0.0, min(1.0, ci[0])) * plot_h
                y_hi = top + plot_h - max(0.0, min(1.0, ci[1])) * plot_h
                draw.line([(cx, y_lo), (cx, y_hi)], fill="black")
                draw.line([(cx - 3, y_lo), (cx + 3, y_lo)], fill="black")
                draw.line([(cx - 3, y_hi), (cx + 3, y_hi)], fill="black")
        draw.text((x0, top + plot_h + 8), f"{title} (n={g['n']})", fill="black", font=font)
    lx = left + plot_w - 150
    for k, (key, label) in enumerate((("giou", "gIoU"), ("ciou", "cIoU"))):
        draw.rectangle([lx + k * 70, 12, lx + k * 70 + 12, 24], fill=colours[key])
        draw.text((lx + k * 70 + 16, 12), label, fill="black", font=font)
    level = int(round(100 * (metrics.get("bootstrap") or {}).get("level", 0.95)))
    draw.text((lx - 190, 12), f"whiskers: {level}% bootstrap CI", fill="black", font=font)
    out = Path(path)
    img.save(out, format="PNG")
    return out
