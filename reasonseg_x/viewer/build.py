"""Build the static case viewer of one run, or of two runs side by side.

``DIR/index.html`` holds the page, its script, its style and the cases as JSON (escaped: answers
are untrusted text); ``DIR/thumbs/`` and ``DIR/full/`` hold the pictures, named by a hash of the
sample id. The page opens from the file system: no server, no network (a Content-Security-Policy
forbids any other origin and any script but its own, by hash).
"""

from __future__ import annotations

import hashlib
import os
import re
from importlib import resources
from pathlib import Path
from collections.abc import Callable
from typing import Any

from reasonseg_x.atomic import write_text_atomic
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.viewer.cases import (RunView, case_entry, check_ids, finish_scoring, load_scores, open_data,
                                      open_run, start_scoring)
from reasonseg_x.viewer.images import FULL_SIDE, THUMB_SIDE, RunLayer, file_key, iter_jobs, write_images

__all__ = ["build_viewer", "render_page", "summary_rows"]


def _template(name: str) -> str:
    return resources.files("reasonseg_x.viewer").joinpath("templates", name).read_text(encoding="utf-8")


def summary_rows(runs: list[RunView]) -> list[dict[str, Any]]:
    """The rows the CLI's table prints (overall, reasoning types, query kinds, sources), each run's
    gIoU / cIoU in percent, taken from the run's metrics (its metrics.json or the Evaluator's).

    ``key`` is ``""`` for Overall, the type id for a reasoning type and ``SECTION:KEY`` otherwise."""
    from reasonseg_x.evaluators.report import group_rows

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r, view in enumerate(runs):
        for section, key, title, group in group_rows(view.metrics or {"overall": {}}):
            row = rows.setdefault((section, key), {
                "key": key if section in ("", "by_reasoning_type") else f"{section.removeprefix('by_')}:{key}",
                "section": section, "title": title, "n": group.get("n", 0),
                "runs": [{"giou": None, "ciou": None, "n": 0} for _ in runs]})
            row["runs"][r] = {"giou": _percent(group.get("giou")), "ciou": _percent(group.get("ciou")),
                              "n": group.get("n", 0)}
    return list(rows.values())


def _percent(value: Any) -> float | None:
    return round(100 * float(value), 2) if isinstance(value, (int, float)) else None


def _types(cases: list[dict[str, Any]]) -> list[dict[str, str]]:
    from reasonseg_x.taxonomy import reasoning_types

    taxonomy = reasoning_types(open=True)
    seen = list(dict.fromkeys(c["type"] for c in cases if "type" in c))
    ordered = [t for t in taxonomy.ids if t in seen] + [t for t in seen if t not in taxonomy.ids]
    out = []
    for tid in ordered:
        cat = taxonomy.category(tid)
        out.append({"id": tid, "code": cat.code, "name": cat.name})
    return out


def _count(source: Any, split: str) -> int | None:
    """The split's size for the progress bar: a generated source knows it; a file-backed one counts
    its cached ground truth (no pixels); a run's subset knows its ids; otherwise the bar shows the count only."""
    from reasonseg_x.runner.subset import SubsetSource

    if isinstance(source, SubsetSource):
        return source.num_samples(split)
    n = getattr(source, "n", None)
    if isinstance(n, int):
        return n
    return source.num_samples(split) if source.files(split) is not None else None


#: the file marking a folder as a viewer and naming (by digest) the runs it shows
MARKER = "viewer.json"
_IMAGE_FILE = re.compile(r"[0-9a-f]{24}\.[ab](\.all)?\.jpg")


def _claim(out: str | Path, runs: list[str | Path], overwrite: bool) -> Path:
    """The viewer folder: refused when it holds another run's viewer or other files (unless
    ``overwrite``); the pictures of an earlier build are removed, so none outlives its page."""
    from reasonseg_x.output_paths import claim_folder

    owner = "sha256:" + hashlib.sha256("\0".join(str(Path(r).resolve()) for r in runs).encode("utf-8")).hexdigest()
    folder = claim_folder(out, "the viewer folder (--out)", marker=MARKER, owner=owner,
                          other="the viewer of other runs", overwrite=overwrite)
    from reasonseg_x.atomic import writing

    for sub in ("thumbs", "full"):
        if (folder / sub).is_dir():
            with writing(folder / sub):
                for old in (folder / sub).iterdir():
                    if _IMAGE_FILE.fullmatch(old.name):
                        old.unlink(missing_ok=True)
    return folder


def render_page(data: dict[str, Any]) -> str:
    """The self-contained HTML page for ``data``; its script is allowed by hash, nothing else runs."""
    from reasonseg_x._html import html_text, script_hash, script_json

    script = _template("viewer.js")
    values = {"TITLE": html_text(str(data.get("title", "Cases"))), "STYLE": _template("viewer.css"),
              "SCRIPT": script, "SCRIPT_HASH": script_hash(script), "DATA": script_json(data)}
    # one pass: a substituted value (a run name, an answer) is never scanned for placeholders again
    return re.sub(r"\{\{([A-Z_]+)\}\}", lambda m: values.get(m.group(1), m.group(0)), _template("index.html"))


def build_viewer(run: str | Path, out: str | Path, *, run2: str | Path | None = None, data: str | None = None,
                 split: str | None = None, protocol: str | None = None, workers: int | None = None,
                 thumb_side: int = THUMB_SIDE, full_side: int = FULL_SIDE, progress: bool = True,
                 on_note: Callable[[str], None] | None = None, name: str | None = None,
                 overwrite: bool = False) -> Path:
    """Write the viewer of ``run`` (and ``run2`` beside it) into ``out``; returns ``out/index.html``.
    ``on_note`` hears what the page's notes say (malformed lines, unknown ids, unreadable images);
    ``name`` names the first run on the page (default: its folder or file name). An ``out`` holding
    anything but a viewer of these runs is refused unless ``overwrite``."""

    if thumb_side < 32 or full_side < thumb_side:
        raise InvalidInputError(f"picture sizes must satisfy 32 <= thumb ({thumb_side}) <= full ({full_side})")
    runs = [open_run(run, data=data, split=split, protocol=protocol)]
    if run2 is not None:
        second = open_run(run2, data=data, split=split, protocol=protocol, default_data=runs[0].data_spec,
                          default_split=runs[0].split)
        first = runs[0]
        if first.fingerprint and second.fingerprint and first.fingerprint != second.fingerprint:
            raise InvalidInputError(f"the two runs were scored on different data ({first.fingerprint} vs "
                                    f"{second.fingerprint}): nothing to put side by side", str(run2))
        if second.protocol != first.protocol:  # deltas only mean something under one protocol
            second.protocol, second.fingerprint = first.protocol, None
        if second.name == first.name:
            second.name = f"{second.name} (2)"
        runs.append(second)
    if name:
        runs[0].name = name
    source, chosen_split = open_data(runs[0])
    to_score = [(view, start_scoring(view)) for view in runs if not load_scores(view)]
    # runs with per_sample.jsonl show the samples they scored; runs scored here the samples they cover (the
    # source is already restricted to them: a shard, a --limit) or, for a bare predictions file, the split
    listed = None if to_score else set().union(*(set(v.records) for v in runs))
    folder = _claim(out, [run] if run2 is None else [run, run2], overwrite)
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()

    def layers(sample: Any) -> tuple[RunLayer, ...]:
        out_layers = []
        for view, entry in zip(runs, cases[-1]["runs"]):
            pred = view.predictions.get(sample.id)
            mask = pred.mask if pred is not None and pred.status == "ok" else None
            out_layers.append(RunLayer(mask=mask, boxes=entry.get("boxes"), points=entry.get("points"),
                                       dropped_boxes=entry.get("dropped_boxes"),
                                       dropped_points=entry.get("dropped_points")))
        return tuple(out_layers)

    def selected() -> Any:
        for sample in source.samples(chosen_split):
            seen.add(sample.id)
            if listed is not None and sample.id not in listed:
                continue
            for view, evaluator in to_score:
                view.records[sample.id] = evaluator.add_from(sample.ground_truth(), view.predictions)
            cases.append(case_entry(sample, file_key(sample.id), runs))
            yield sample

    total = len(listed) if listed is not None else _count(source, chosen_split)
    problems = write_images(iter_jobs(selected(), layers, thumb_side=thumb_side, full_side=full_side), folder,
                            total=total, workers=workers, progress=progress)
    for view, evaluator in to_score:
        finish_scoring(view, evaluator)
    for view in runs:
        check_ids(view, seen, f"{runs[0].data_spec}:{chosen_split}")
    if not cases:
        raise InvalidInputError(f"no scored sample of the run is in {runs[0].data_spec}:{chosen_split}: wrong --data?",
                                runs[0].path)
    notes = [f"{v.name}: {v.unknown} prediction id(s) are no sample of the data" for v in runs if v.unknown]
    if listed is not None and len(cases) < len(listed):
        notes.append(f"{len(listed) - len(cases)} scored sample(s) are not in the data any more")
    notes += [f"{case['id']}: {problems[case['key']]}" for case in cases if case["key"] in problems][:20]
    for view in runs:  # malformed lines: their samples show as invalid (or missing, without a readable id)
        bad = [p for p in view.predictions.problems if p.kind in ("invalid", "torn_tail")]
        if bad:
            notes.insert(0, f"{view.name}: {len(bad)} malformed prediction line(s) (first: {bad[0].where}: "
                            f"{bad[0].reason})")
    for note in notes if on_note is not None else ():
        on_note(note)
    for case in cases:
        if case["key"] in problems:
            case["image_problem"] = problems[case["key"]]
    spec = runs[0].data_spec or ""
    title = "Cases: " + " vs ".join(v.name for v in runs)
    page_data = {
        "title": title, "data": f"{os.path.basename(spec.rstrip('/')) or spec}:{chosen_split}",
        "runs": [{"name": v.name, "model": v.model, "protocol": v.protocol} for v in runs],
        "notes": notes, "types": _types(cases), "summary": summary_rows(runs), "cases": cases,
    }
    page = folder / "index.html"
    write_text_atomic(page, render_page(page_data))
    return page
