"""Human-facing views of metrics.json: a Markdown report, a rich terminal table, a bar chart.

All three read only the metrics dict, so a run folder can be re-rendered without re-scoring.
The chart is drawn with Pillow (matplotlib is not a dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["table_rows", "render_markdown", "print_table", "draw_chart", "pct", "group_title"]

_GROUP_SECTIONS = (("by_reasoning_type", "Reasoning type"), ("by_query_kind", "Query kind"), ("by_source", "Source"))


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100.0 * value:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{pct(ci[0])}, {pct(ci[1])}]"


def group_title(section: str, key: str, *, short: bool = False) -> str:
    """``function_purpose`` -> ``P/F function_purpose`` (the code the paper's tables use; the code
    alone when ``short``)."""
    if section == "by_reasoning_type":
        from reasonseg_x.taxonomy import reasoning_types

        cat = reasoning_types(open=True).category(key)
        if cat.code == key:
            return key
        return cat.code if short else f"{cat.code} {key}"
    return key


def table_rows(metrics: dict[str, Any], *, short: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """(title, group metrics) for the overall row and every group, in report order."""
    rows = [("Overall", metrics["overall"])]
    for section, _ in _GROUP_SECTIONS:
        for key, group in (metrics.get(section) or {}).items():
            rows.append((group_title(section, key, short=short), group))
    return rows


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


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
    if metrics.get("note"):
        lines.append(f"- note: {metrics['note']}")
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
    if metrics.get("problems"):
        lines += ["", f"## Problems ({metrics.get('problems_total', len(metrics['problems']))})", ""]
        lines += [f"- `{p['where']}`: {p['reason']}" for p in metrics["problems"]]
    return "\n".join(lines) + "\n"


def print_table(result: Any, console: Any = None) -> None:
    """Print the gIoU/cIoU table (with CIs) and the counts with rich."""
    from rich.console import Console
    from rich.table import Table

    metrics = result.metrics if hasattr(result, "metrics") else result
    console = console or Console()
    data = metrics.get("data", {})
    table = Table(title=f"ReasonSeg-X [{metrics['protocol']}] {data.get('spec', '')} {data.get('split', '')}".strip())
    for name, justify in (("group", "left"), ("n", "right"), ("gIoU", "right"), ("95% CI", "left"),
                          ("cIoU", "right"), ("95% CI ", "left"), ("P@0.5", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    for n, (title, g) in enumerate(table_rows(metrics, short=console.width < 100)):
        table.add_row(title, str(g["n"]), pct(g["giou"]), _ci(g.get("giou_ci")), pct(g["ciou"]),
                      _ci(g.get("ciou_ci")), pct((g.get("precision") or {}).get("0.5")),
                      end_section=(n == 0))
    console.print(table)
    console.print("counts: " + _counts_line(metrics.get("counts", {})))
    if "gres" in metrics:
        g = metrics["gres"]
        console.print(f"N-acc {pct(g['n_acc'])}  T-acc {pct(g['t_acc'])}")
    if metrics.get("problems_total"):
        console.print(f"[yellow]{metrics['problems_total']} problem(s) in the predictions; see metrics.json[/yellow]")


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
    draw.text((left, 10), f"gIoU / cIoU (%) - {metrics['protocol']} protocol", fill="black", font=font)
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
    out = Path(path)
    img.save(out, format="PNG")
    return out
