"""Paired comparison of two scored runs on the same data.

Why: a gain of a point or two on a 200-sample reasoning type is often noise. Both runs are
resampled with the same sample draws (paired bootstrap), which cancels the per-sample
difficulty shared by the two models and gives a tight interval and a p-value for B - A.
Runs must share the data fingerprint, the protocol and the sample ids, or the comparison is
refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators.aggregate import reported_groups
from reasonseg_x.evaluators.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, paired_bootstrap
from reasonseg_x.evaluators.protocols import get_protocol
from reasonseg_x.evaluators.records import RecordSet, read_records
from reasonseg_x.json_input import loads_user_json

__all__ = ["ScoredRun", "load_run", "compare_runs", "render_comparison_markdown", "print_comparison"]


@dataclass
class ScoredRun:
    path: str
    metrics: dict[str, Any]
    records: RecordSet


def load_run(run_dir: str | Path) -> ScoredRun:
    """Read a run folder written by ``reasonseg-x score`` (metrics.json + per_sample.jsonl)."""
    root = Path(run_dir)
    metrics_path, records_path = root / "metrics.json", root / "per_sample.jsonl"
    for p in (metrics_path, records_path):
        if not p.is_file():
            raise InvalidInputError("not a scored run folder (needs metrics.json and per_sample.jsonl)", str(p))
    try:
        metrics = loads_user_json(metrics_path.read_text(encoding="utf-8"), None)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"malformed metrics.json: {exc}", str(metrics_path)) from None
    if not isinstance(metrics, dict) or "protocol" not in metrics:
        raise InvalidInputError("metrics.json has no 'protocol'", str(metrics_path))
    protocol = get_protocol(metrics["protocol"]).name
    return ScoredRun(str(root), metrics, read_records(records_path, protocol))


def _columns(records: RecordSet, order: list[int]) -> dict[str, np.ndarray]:
    cols = records.columns()
    idx = np.asarray(order, dtype=np.int64)
    return {k: cols[k][idx] for k in ("I", "U", "iou")}


def compare_runs(a: ScoredRun, b: ScoredRun, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 level: float = DEFAULT_LEVEL) -> dict[str, Any]:
    """Deltas (B - A) overall and per group with paired bootstrap intervals and p-values."""
    fa = (a.metrics.get("data") or {}).get("fingerprint")
    fb = (b.metrics.get("data") or {}).get("fingerprint")
    for run, fingerprint in ((a, fa), (b, fb)):
        if not fingerprint:
            raise InvalidInputError("run has no data fingerprint (scored without --data?); a paired comparison "
                                    "needs both runs scored on the same split", run.path)
    if fa != fb:
        raise InvalidInputError(f"runs were scored on different data (fingerprint {fa!r} vs {fb!r}); "
                                "a paired comparison needs the same split", b.path)
    if a.records.protocol != b.records.protocol:
        raise InvalidInputError(f"runs use different protocols ({a.records.protocol} vs {b.records.protocol}); "
                                "re-score one of them", b.path)
    ids_a, ids_b = a.records.index(), b.records.index()
    if set(ids_a) != set(ids_b):
        only_a = sorted(set(ids_a) - set(ids_b))[:3]
        only_b = sorted(set(ids_b) - set(ids_a))[:3]
        raise InvalidInputError(f"runs cover different samples (only in A: {only_a}, only in B: {only_b})", b.path)
    protocol = get_protocol(a.records.protocol)
    order_ids = sorted(ids_a)  # the canonical order of the aggregates (records.canonical)
    order_a = [ids_a[i] for i in order_ids]
    order_b = [ids_b[i] for i in order_ids]
    cols_a, cols_b = _columns(a.records, order_a), _columns(b.records, order_b)
    opts = {"n_resamples": n_resamples, "seed": seed, "level": level}
    out: dict[str, Any] = {
        "protocol": protocol.name,
        "data": a.metrics.get("data"),
        "run_a": a.path, "run_b": b.path,
        "counts_a": a.metrics.get("counts") or {}, "counts_b": b.metrics.get("counts") or {},
        "overall": paired_bootstrap(cols_a, cols_b, protocol, label="overall", **opts),
    }
    for key, field_name, selections in reported_groups(a.records.canonical()):
        out[field_name] = {value: paired_bootstrap({k: v[sel] for k, v in cols_a.items()},
                                                   {k: v[sel] for k, v in cols_b.items()}, protocol,
                                                   label=f"{key}={value}", **opts)
                           for value, sel in selections}
    out["bootstrap"] = {"n_resamples": int(n_resamples), "seed": int(seed), "level": float(level),
                        "method": "paired percentile bootstrap; two-sided p = 2 * min tail at 0 (add-one)"}
    return out


def _signed(v: float | None) -> str:
    return "-" if v is None else f"{100.0 * v:+.1f}"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3f}"


def _failures(counts: dict[str, int]) -> str:
    """The non-zero failure counts of a run (what can move a score without the model changing)."""
    keys = ("missing", "invalid", "parse_error", "error", "no_target", "empty_prediction", "mask_ignored", "duplicate",
            "unknown_id")
    shown = [f"{k} {counts[k]}" for k in keys if counts.get(k)]
    return ", ".join(shown) or "none"


def _arrow(a: float, b: float) -> str:
    return f"{100 * a:.1f} -> {100 * b:.1f}"


def render_comparison_markdown(result: dict[str, Any]) -> str:
    from reasonseg_x._html import md_code, md_text
    from reasonseg_x.evaluators.report import table_rows

    level = int(round(100 * result["bootstrap"]["level"]))
    lines = [f"# Paired comparison ({md_text(result['protocol'])} protocol)", "",
             f"- A: {md_code(result['run_a'])}", f"- B: {md_code(result['run_b'])}",
             f"- data fingerprint {md_code((result.get('data') or {}).get('fingerprint', ''))}; deltas are B - A in points; "
             f"{result['bootstrap']['n_resamples']} paired resamples, seed {result['bootstrap']['seed']}",
             f"- failures and empty answers: A {_failures(result.get('counts_a') or {})}; "
             f"B {_failures(result.get('counts_b') or {})}", "",
             f"| group | n | gIoU A | gIoU B | delta gIoU | {level}% CI | p | cIoU A | cIoU B | delta cIoU | "
             f"{level}% CI | p |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|"]
    for title, g in table_rows(result):
        lines.append(f"| {md_text(title)} | {g['n']} | {100 * g['giou_a']:.1f} | {100 * g['giou_b']:.1f} | "
                     f"{_signed(g['delta_giou'])} | {_ci(g['delta_giou_ci'])} | {_p(g['p_giou'])} | "
                     f"{100 * g['ciou_a']:.1f} | {100 * g['ciou_b']:.1f} | {_signed(g['delta_ciou'])} | "
                     f"{_ci(g['delta_ciou_ci'])} | {_p(g['p_ciou'])} |")
    return "\n".join(lines) + "\n"


def print_comparison(result: dict[str, Any], console: Any = None) -> None:
    """Print the comparison with rich: one table with gIoU and cIoU side by side on a wide
    terminal, one table per metric on a narrow one (nothing truncated)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from reasonseg_x.evaluators.report import group_sections

    console = console or Console()
    level = int(round(100 * result["bootstrap"]["level"]))
    wide = console.width >= 140
    title = f"Paired comparison, {result['protocol']} protocol: A = {result['run_a']}, B = {result['run_b']}"
    for metrics in ((("gIoU", "giou"), ("cIoU", "ciou")),) if wide else ((("gIoU", "giou"),), (("cIoU", "ciou"),)):
        table = Table(title=escape(title + " (points; delta = B - A)" if metrics[0][1] == "giou" else ""))
        table.add_column("group", justify="left", overflow="fold")  # the only column that may wrap: not a number
        table.add_column("n", justify="right", no_wrap=True)
        for label, _ in metrics:
            for name in (f"{label} A -> B", f"delta [{level}% CI]", "p"):
                table.add_column(name, justify="right", no_wrap=True)
        for block in group_sections(result, short=console.width < 100):
            for n, (row_title, g) in enumerate(block):
                cells = [escape(row_title), str(g["n"])]
                for _, key in metrics:
                    cells += [_arrow(g[f"{key}_a"], g[f"{key}_b"]),
                              f"{_signed(g[f'delta_{key}'])} {_ci(g[f'delta_{key}_ci'])}", _p(g[f"p_{key}"])]
                table.add_row(*cells, end_section=(n == len(block) - 1))
        console.print(table)
    console.print(escape(f"failures and empty answers: A {_failures(result.get('counts_a') or {})}; "
                         f"B {_failures(result.get('counts_b') or {})}"))
    console.print(f"p: two-sided paired bootstrap ({result['bootstrap']['n_resamples']} resamples); a CI that "
                  "excludes 0 is a difference beyond resampling noise (per group, not corrected for multiple groups).")
