"""Render the leaderboard as a static site: one self-contained ``index.html`` plus ``data.json``.

The page embeds its data as JSON and draws the sortable table, the gIoU/cIoU toggle and the
per-type chart (inline SVG) with vanilla JavaScript: no CDN, no server, it works from ``file://``.
Model names come from strangers, so the data is embedded with ``<``, ``>`` and ``&`` escaped and
the script only ever sets ``textContent``; a Content-Security-Policy forbids loading anything and
runs only the page's own script (allowed by its hash, as in the case viewer).
The URL hash (``#metric=ciou&sort=compositional&dir=asc``) sets the view, so a link (or a
headless browser) can open the page already sorted.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from reasonseg_x.atomic import write_text_atomic
from reasonseg_x._html import html_text as _html_text
from reasonseg_x._html import script_hash as _script_hash
from reasonseg_x._html import script_json as _script_json
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.output_paths import prepare_folder
from reasonseg_x.leaderboard.store import LeaderboardStore, StoredEntry
from reasonseg_x.leaderboard.viewers import viewer_link

__all__ = ["load_reported", "board_data", "render_html", "render_site", "public_data_name"]

_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


def _metric(g: float | None, c: float | None, g_ci: list[float] | None = None,
            c_ci: list[float] | None = None, n: int | None = None) -> dict[str, Any]:
    return {"giou": g, "ciou": c, "giou_ci": g_ci, "ciou_ci": c_ci, "n": n}


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * float(value), 2)


def _pct_ci(lo: float | None, hi: float | None) -> list[float] | None:
    return None if lo is None or hi is None else [_pct(lo), _pct(hi)]  # type: ignore[list-item]


def load_reported(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The paper's Table 1 rows (``annotations/reported_results.yaml``) as board entries."""
    import yaml

    from reasonseg_x._resources import shipped_file

    file = Path(path) if path is not None else shipped_file("annotations", "reported_results.yaml")
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"cannot read reported results: {exc}", str(file)) from None
    benchmark = doc.get("per_type_of", "reasonseg_x_test")
    label = doc.get("benchmarks", {}).get(benchmark, benchmark)
    entries = []
    for i, row in enumerate(doc.get("entries", [])):
        results = row.get("results", {})
        try:
            g, c = results[benchmark]
        except (KeyError, TypeError, ValueError):
            raise InvalidInputError(f"entry {row.get('model')!r} has no [gIoU, cIoU] for {benchmark}",
                                    f"{file}: entries[{i}]") from None
        types = {}
        for key, pair in results.items():
            if key in doc.get("benchmarks", {}):
                continue
            types[key] = _metric(float(pair[0]), float(pair[1]))
        other = {doc["benchmarks"][k]: {"giou": v[0], "ciou": v[1]} for k, v in results.items()
                 if k in doc.get("benchmarks", {}) and k != benchmark}
        entries.append({
            "kind": "reported", "model": str(row["model"]), "base_model": row.get("base_model"),
            "params": row.get("parameter_count"), "tts": _tts_label(row.get("tts")),
            "protocol": doc.get("protocol", "star"), "date": None,
            "data": label,
            "source": doc.get("source", "paper"), "overall": _metric(float(g), float(c)), "types": types,
            "other": other,
        })
    return entries


def _tts_label(tts: dict[str, Any] | None) -> str | None:
    if not tts:
        return None
    method = str(tts.get("method", "tts"))
    short = {"majority_vote": "MV"}.get(method, method)
    n = tts.get("n")
    return f"{short}@{n}" if n is not None else short


def format_label(meta: dict[str, Any]) -> str | None:
    """The answer format a submission was asked in, ``zero-shot`` first when it was (docs/harness.md)."""
    fmt = meta.get("answer_format")
    fmt = str(fmt)[:40] if isinstance(fmt, (str, int, float)) and not isinstance(fmt, bool) else None
    if meta.get("zero_shot") is True:
        return f"zero-shot, {fmt}" if fmt else "zero-shot"
    return fmt


def public_data_name(spec: str, split: str) -> str:
    """The data as the page shows it and groups rows by.

    ReasonSeg-X itself (the catalog name, the Hub id, or a local copy named like it) becomes
    ``ReasonSeg-X <split>``, the label of the paper's rows, so verified entries rank beside them.
    Anything else is ``spec:split``, with a local path cut to its last folder name so the host's
    private layout (``/srv/private/...``) never reaches the public site.
    """
    text = spec.rstrip("/\\") or spec
    last = re.split(r"[\\/]", text)[-1] or text
    squeezed = re.sub(r"[^a-z0-9]", "", last.lower())
    if squeezed.startswith("reasonsegx") and squeezed[len("reasonsegx"):] in ("", split.lower()):
        return f"ReasonSeg-X {split}"
    if text.startswith(("/", "~", ".")) or re.match(r"^[A-Za-z]:[\\/]", text):
        text = last
    return f"{text}:{split}"


def _verified_entry(entry: StoredEntry, site: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    def block(m: dict[str, Any]) -> dict[str, Any]:
        return _metric(_pct(m.get("giou")), _pct(m.get("ciou")), _pct_ci(m.get("giou_lo"), m.get("giou_hi")),
                       _pct_ci(m.get("ciou_lo"), m.get("ciou_hi")), m.get("n"))

    overall = entry.results.get("overall", {}).get("", {})
    types = {k: block(v) for k, v in entry.results.get("reasoning_type", {}).items()}
    return {
        "kind": "verified", "model": entry.model_name, "base_model": entry.base_model,
        "params": entry.parameter_count, "tts": _tts_label(entry.tts), "protocol": entry.protocol,
        "data": public_data_name(entry.gt_spec, entry.gt_split), "date": entry.scored_at[:10],
        "source": f"bundle {entry.bundle_sha256[:12]}", "overall": block(overall), "types": types,
        "counts": entry.counts, "format": format_label(entry.meta),
        "viewer": viewer_link(site, entry.bundle_sha256) if site is not None else None,
    }


def _flag_copies(store: LeaderboardStore, stored: StoredEntry, entry: dict[str, Any]) -> dict[str, Any]:
    """Mark an entry whose predictions are byte-identical to an earlier submission under another
    name: it stays on the board (it may be a fair re-upload), but the table says whose they are."""
    earlier = [name for other_id, name in store.same_predictions(stored.submission_id)
               if other_id < stored.submission_id and name != stored.model_name]
    if earlier:
        entry["same_predictions_as"] = earlier[0]
    return entry


def board_data(store: LeaderboardStore | None, *, protocol: str | None = "star", reported: bool = True,
               reported_path: str | os.PathLike[str] | None = None,
               title: str = "ReasonSeg-X leaderboard", site: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready dict (percent values); with ``site``, verified
    entries whose case viewer the host built there link to it."""
    from reasonseg_x.taxonomy import reasoning_types

    taxonomy = reasoning_types()
    entries = [_flag_copies(store, e, _verified_entry(e, site)) for e in store.entries(protocol=protocol)] \
        if store is not None else []
    if reported:  # the paper's numbers follow its own protocol: never shown beside another one
        entries.extend(e for e in load_reported(reported_path) if protocol is None or e["protocol"] == protocol)
    seen = list(taxonomy.ids)
    for e in entries:
        for key in e["types"]:
            if key not in seen:
                seen.append(key)
    types = []
    for tid in seen:
        cat = taxonomy.opened().category(tid)
        types.append({"id": cat.id, "code": cat.code, "name": cat.name})
    return {"title": title, "protocol": protocol, "protocol_text": _protocol_text(protocol), "types": types,
            "entries": entries,
            "generated": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")}


def _protocol_text(protocol: str | None) -> str:
    """The footer's line on how the verified numbers were computed."""
    if protocol is None:
        return "Protocols: several (each entry as scored)."
    from reasonseg_x.evaluators.protocols import get_protocol

    return f"Protocol: {protocol} ({get_protocol(protocol).description})."


def _template(name: str) -> str:
    return resources.files("reasonseg_x.leaderboard").joinpath("templates", name).read_text(encoding="utf-8")


def render_html(data: dict[str, Any]) -> str:
    """The self-contained page for ``data`` (from :func:`board_data`); its script is allowed by
    hash (as the case viewer's), so nothing injected beside it would run."""
    script = _template("board.js")
    values = {
        "TITLE": _html_text(str(data.get("title", "Leaderboard"))),
        "GENERATED": _html_text(str(data.get("generated", ""))),
        "PROTOCOL": _html_text(str(data.get("protocol_text", ""))),
        "STYLE": _template("board.css"),
        "SCRIPT": script,
        "SCRIPT_HASH": _script_hash(script),
        "DATA": _script_json(data),
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), _template("index.html"))


def render_site(db: str | os.PathLike[str] | None, out: str | os.PathLike[str], *, protocol: str | None = "star",
                reported: bool = True, reported_path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``index.html`` and ``data.json`` into ``out``; returns the page's path."""
    if db is not None and not Path(db).is_file():
        raise InvalidInputError("leaderboard database not found", str(db))
    if db is not None:
        with LeaderboardStore(db) as store:
            data = board_data(store, protocol=protocol, reported=reported, reported_path=reported_path, site=out)
    else:
        data = board_data(None, protocol=protocol, reported=reported, reported_path=reported_path)
    folder = prepare_folder(out, "the site folder (--out)")
    page = folder / "index.html"
    for target, text in ((folder / "data.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n"),
                         (page, render_html(data))):
        write_text_atomic(target, text)
    return page
