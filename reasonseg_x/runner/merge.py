"""Merge shard outputs into one run, refusing every way a merge can lie.

Refused: shards of different models, arguments, seeds or data (fingerprints); a shard folder
given twice or missing; an id written by two shards; ids outside the split; incomplete coverage
(the message names how many ids are missing and which shard folders to resume). Only then are the
lines concatenated (in the split's order) and scored. Nothing is globbed: the inputs are exactly
the folders given (a folder holding ``shard-<i>-of-<k>/`` subfolders stands for those).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonseg_x.data.source import Source
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.runner.evaluate import (PREDICTIONS_FILE, data_fingerprint, lock_run_dir, make_run_dir, open_data,
                                         score_run)
from reasonseg_x.runner.record import Coverage, RunRecord, read_record, skipped_detail, write_record
from reasonseg_x.runner.runinfo import RunIdentity, environment, utc_now
from reasonseg_x.runner.shards import Shard, parse_shard_dirname, select_shard
from reasonseg_x.runner.store import read_stored_lines, write_text_atomic

__all__ = ["MergeOutcome", "merge_runs", "expand_run_dirs", "default_merge_out"]


@dataclass
class MergeOutcome:
    out_dir: Path
    predictions_path: Path
    run_info: dict[str, Any]
    parts: list[Path] = field(default_factory=list)
    result: Any = None
    source: Source | None = None
    split: str = ""


def _shard_subdirs(directory: Path) -> list[Path]:
    found = []
    if directory.is_dir():
        for child in directory.iterdir():
            parsed = parse_shard_dirname(child.name)
            if parsed and child.is_dir():
                found.append((parsed[1], parsed[0], child))
    return [p for _, _, p in sorted(found)]


def expand_run_dirs(dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The run folders named: each folder itself, or its ``shard-*-of-*`` subfolders when it is a
    parent of shards (or a previous merge of them)."""
    out: list[Path] = []
    for raw in dirs:
        directory = Path(raw)
        if not directory.is_dir():
            raise InvalidInputError(f"no such run folder: {directory}")
        record = read_record(directory)
        subdirs = _shard_subdirs(directory)
        if record is not None and (record.kind != "merged" or not subdirs):
            out.append(directory)
        elif subdirs:
            out.extend(subdirs)
        else:
            raise InvalidInputError(f"{directory} has no run.json and no shard-<i>-of-<k> folders: not a run folder")
    resolved: dict[Path, Path] = {}
    for directory in out:
        key = directory.resolve()
        if key in resolved:
            raise InvalidInputError(f"run folder {directory} is given twice")
        resolved[key] = directory
    return out


def default_merge_out(dirs: Sequence[str | os.PathLike[str]]) -> Path:
    """Where ``merge`` writes without ``--out``: the one folder all the given shard folders sit in."""
    run_dirs = expand_run_dirs(dirs)
    if len({d.parent.resolve() for d in run_dirs}) != 1 or not all(parse_shard_dirname(d.name) for d in run_dirs):
        raise InvalidInputError("the folders given are not shard-<i>-of-<k> folders of one parent folder; "
                                "pass --out to say where the merged run goes")
    return run_dirs[0].parent


def merge_runs(dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *, source: Source | None = None,
               data: str | None = None, protocol: str | None = None, strict: bool = False, seed: int | None = None,
               score: bool = True, fresh: bool = False, open_taxonomy: bool | None = None) -> MergeOutcome:
    """Check and merge shard runs into ``out`` (predictions.jsonl, run.json, then the scoring outputs)."""
    run_dirs = expand_run_dirs(dirs)
    if not run_dirs:
        raise InvalidInputError("merge needs at least one run folder")
    records: list[RunRecord] = [read_record(d) for d in run_dirs]  # type: ignore[misc] # each has one (expand_run_dirs)
    infos = [r.info for r in records]
    identities = [RunIdentity.from_json(r.info["identity"], str(r.path)) for r in records]
    base = identities[0].unsharded()
    for directory, ident in zip(run_dirs, identities):
        if ident.unsharded() != base:
            diffs = [f"{k}: {v!r} vs {ident.unsharded().to_json()[k]!r}" for k, v in base.to_json().items()
                     if ident.unsharded().to_json()[k] != v]
            raise InvalidInputError(f"{directory} is not a shard of the same run as {run_dirs[0]} ({'; '.join(diffs)})")
    counts = {ident.num_shards for ident in identities}
    if len(counts) != 1:
        raise InvalidInputError(f"the folders come from different shardings (num_shards {sorted(counts)}); pass the "
                                "shard-<i>-of-<k> folders of one sharding explicitly")
    num_shards = counts.pop()
    by_index: dict[int, Path] = {}
    info_of: dict[int, dict[str, Any]] = {}
    for directory, ident, info in zip(run_dirs, identities, infos):
        if ident.shard_id in by_index:
            raise InvalidInputError(f"shard {ident.shard_id} of {num_shards} is given twice: {by_index[ident.shard_id]} "
                                    f"and {directory}")
        by_index[ident.shard_id] = directory
        info_of[ident.shard_id] = info
    absent = [i for i in range(num_shards) if i not in by_index]
    if absent:
        parent = run_dirs[0].parent
        names = ", ".join(str(parent / Shard(i, num_shards).dirname) for i in absent[:5])
        more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
        given = ", ".join(str(d) for d in run_dirs[:5]) + (" ..." if len(run_dirs) > 5 else "")
        raise InvalidInputError(f"{len(absent)} of {num_shards} shards are missing: {names}{more} (given: {given}). "
                                f"Run them (eval ... --num-shards {num_shards} --shard-id {absent[0]}), then merge all "
                                f"{num_shards}, or pass their parent folder")
    limits = {r.limit for r in records}
    if len(limits) != 1:
        raise InvalidInputError(f"the shards were run with different --limit values: "
                                f"{sorted(limits, key=lambda v: -1 if v is None else v)}")
    limit = limits.pop()

    first = infos[0]
    if source is None:
        if open_taxonomy is None:  # as the shards were run
            open_taxonomy = records[0].open_taxonomy
        source = open_data(data or records[0].data or "mini", open_taxonomy=open_taxonomy,
                           skip_invalid=any(r.skip_invalid for r in records))
    split = source.resolve_split(base.split)
    fingerprint = data_fingerprint(source, split)
    if fingerprint != base.fingerprint:
        ran_on = records[0].data
        raise InvalidInputError(f"the shards ran on data {ran_on!r} (fingerprint {base.fingerprint} in "
                                f"{records[0].path}) but {source.spec!r} has fingerprint {fingerprint}: "
                                "pass the --data the shards used" + (" (it changed on disk since)" if
                                                                      ran_on == source.spec else ""))
    _, selected, _ = Coverage(limit).select(source, split)

    owner: dict[str, Path] = {}
    lines: dict[str, str] = {}
    progress: list[dict[str, Any]] = []
    # ids a shard left out on purpose: the predictor had no prediction, or --skip-invalid dropped the row
    not_written: dict[str, Any] = {key: sorted({i for r in records for i in r.not_written[key]})
                                   for key in ("declared_missing", "skipped_rows")}
    skipped_where = [row for r in records for row in r.coverage.skipped_rows]
    absent_on_purpose = set(not_written["declared_missing"]) | set(not_written["skipped_rows"])
    for index in range(num_shards):
        directory = by_index[index]
        stored = read_stored_lines(directory / PREDICTIONS_FILE)
        expected = set(select_shard(selected, Shard(index, num_shards)))
        stray = [i for i in stored.lines if i not in expected]
        overlap = [i for i in stored.lines if i in owner]
        if overlap:
            raise InvalidInputError(f"{len(overlap)} ids were predicted by two shards (e.g. {overlap[0]!r} in "
                                    f"{owner[overlap[0]]} and {directory}); refusing to merge")
        if stray:
            raise InvalidInputError(f"{directory} holds {len(stray)} ids that do not belong to shard {index} of "
                                    f"{num_shards} (e.g. {stray[0]!r}); it was not produced by this sharding")
        for sample_id, text in stored.lines.items():
            owner[sample_id] = directory
            lines[sample_id] = text
        info = info_of[index]
        progress.append({"dir": str(directory), "shard_id": index, "expected": len(expected - absent_on_purpose),
                         "written": len(stored.lines), "status": info.get("status"),
                         "torn_tail_bytes": stored.torn_bytes, "sessions": info.get("sessions", [])})
    missing = [i for i in selected if i not in lines and i not in absent_on_purpose]
    if missing:
        incomplete = [f"{p['dir']} ({p['written']}/{p['expected']}, status {p['status']})"
                      for p in progress if p["written"] < p["expected"]]
        raise InvalidInputError(f"{len(missing)} of {len(selected)} ids are missing (e.g. {missing[0]!r}); incomplete "
                                f"shards: {', '.join(incomplete)}. Rerun their eval commands (they resume), then merge")

    out_dir = Path(out)
    make_run_dir(out_dir)
    lock = lock_run_dir(out_dir)
    try:
        if out_dir.resolve() in {d.resolve() for d in run_dirs}:
            raise InvalidInputError(f"--out {out_dir} is one of the shard folders; merge into their parent or a new folder")
        existing = read_record(out_dir)
        if existing is not None and not fresh:
            old = RunIdentity.from_json(existing.info["identity"], str(existing.path))
            if old != base:
                raise InvalidInputError(f"{out_dir} holds predictions of a different run ({old.model} on "
                                        f"{old.fingerprint} vs {base.model} on {base.fingerprint}); pass --fresh to "
                                        "replace them, or choose a new --out")
        predictions_path = out_dir / PREDICTIONS_FILE
        write_text_atomic(predictions_path, "".join(lines[i] + "\n" for i in selected if i in lines))
        if skipped_where:
            not_written["skipped_where"] = skipped_detail(skipped_where)
        run_info = {
            "kind": "merged",
            "status": "complete",
            "identity": base.to_json(),
            "model": first.get("model"),
            "data": {**first.get("data", {}), "spec": source.spec or first.get("data", {}).get("spec"),
                     "n_selected": len(selected), "shard": {"index": 0, "count": 1, "n": len(selected)}},
            "protocol": protocol or first.get("protocol", "star"),
            "seed": base.seed,
            "parts": progress,
            **({"not_written": not_written} if absent_on_purpose else {}),
            "environment": environment(),
            "created": utc_now(),
            "updated": utc_now(),
        }
        write_record(out_dir, run_info)
    finally:
        lock.release()
    outcome = MergeOutcome(out_dir, predictions_path, run_info, [by_index[i] for i in range(num_shards)],
                           source=source, split=split)
    if score:
        coverage = read_record(out_dir).coverage  # type: ignore[union-attr] # the rule, read back as score reads it
        outcome.result = score_run(out_dir, source, split, coverage, protocol=run_info["protocol"], strict=strict,
                                   seed=base.seed if seed is None else seed)
    return outcome
