"""The run record: the one reader and writer of a run folder's ``run.json``, and the one rule for
which samples a run covers.

Every command that takes a run folder (``eval`` resuming it, ``score -p RUN``, ``show``,
``submit``, ``merge``, the torchrun barrier) reads it here, so they all agree on what the run was
and on which samples its numbers are over. The rule (:class:`Coverage`): the split's ids in source
order, the first ``--limit`` of them, of those the shard's (``runner/shards.py``), less the rows
``--skip-invalid`` left out because the source could not read them. Declared-missing samples and
errors (retried or not) stay covered: they score as failures. ``tests/test_architecture.py``
checks that no other module opens ``run.json``.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.atomic import write_text_atomic, writing
from reasonseg_x.data.source import SkippedRow
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import loads_user_json, require_regular_file
from reasonseg_x.predictions import RUN_PREDICTIONS
from reasonseg_x.redaction import scrub_urls
from reasonseg_x.runner.shards import Shard, select_shard
from reasonseg_x.runner.subset import SubsetSource, subset_label

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.data.source import Source

__all__ = ["RUN_FILE", "Coverage", "RunRecord", "read_record", "write_record", "run_folder_of", "recorded_run",
           "run_status", "is_run_folder", "open_run_data", "remove_record", "skipped_detail"]

RUN_FILE = "run.json"
#: bad rows listed (where, why) in run.json; the ids are all kept
MAX_LISTED_ROWS = 50


@dataclass(frozen=True)
class Coverage:
    """Which samples of a split a run covers (see the module docstring for the rule).

    ``skipped``: ids of rows the source could not read under ``--skip-invalid`` (left out of the
    run and of its scores); ``skipped_rows``: where and why, as the reports list them.
    """

    limit: int | None = None
    shard: Shard = field(default_factory=lambda: Shard(0, 1))
    skipped: frozenset[str] = frozenset()
    skipped_rows: tuple[SkippedRow, ...] = ()

    def select(self, source: Source, split: str) -> tuple[int | None, list[str], list[str]]:
        """(split size, the ``--limit`` prefix of the ids in source order, this shard's ids); refuses
        repeated ids. With a limit only the first rows are read; the split size is then None unless
        the split turned out smaller. Skipped rows are not taken out here (eval learns them late)."""
        if self.limit is not None and self.limit < 1:
            raise InvalidInputError(f"--limit must be >= 1, got {self.limit}")
        records = source.ground_truth(split)
        ids: list[str] = []
        seen: set[str] = set()
        for gt in records if self.limit is None else itertools.islice(records, self.limit):
            if gt.id in seen:
                raise InvalidInputError(f"split {split!r} of {source.spec!r} has the id {gt.id!r} twice; a run needs "
                                        "unique ids")
            seen.add(gt.id)
            ids.append(gt.id)
        n_split = len(ids) if self.limit is None or len(ids) < self.limit else None
        return n_split, ids, select_shard(ids, self.shard)

    def label(self) -> str:
        """How reports name the subset: ``first 20, shard-0-of-4, 2 bad rows skipped``."""
        return subset_label(self.limit, self.shard, len(self.skipped))

    def restrict(self, source: Source, split: str, *, selected: tuple[int | None, list[str]] | None = None) -> Source:
        """The source to score the run against: ``source`` itself when the run covers the whole split,
        else the view of exactly its samples (a partial run scored on the whole split would count
        every other sample as missing). ``selected``: (split size, shard ids) of :meth:`select`,
        when the caller has them already (a pass over the data saved)."""
        if selected is None:
            n_split, _, mine = self.select(source, split)
        else:
            n_split, mine = selected
        covered = [i for i in mine if i not in self.skipped] if self.skipped else mine
        if len(covered) == n_split:
            return source
        subset = SubsetSource(source, split, covered, label=self.label())
        if self.skipped_rows and not subset.skipped:  # rows met when the run read images: say so again
            subset.skipped = list(self.skipped_rows)
        return subset


@dataclass(frozen=True)
class RunRecord:
    """A parsed ``run.json``: typed views of what the commands reuse, and ``info`` (the whole object)
    for the writers that extend it."""

    folder: Path
    info: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.folder / RUN_FILE

    @property
    def predictions(self) -> Path:
        return self.folder / RUN_PREDICTIONS

    def _data(self) -> dict[str, Any]:
        data = self.info.get("data")
        return data if isinstance(data, dict) else {}

    @property
    def kind(self) -> str | None:
        return _text(self.info.get("kind"))

    @property
    def status(self) -> str | None:
        return _text(self.info.get("status"))

    @property
    def data(self) -> str | None:
        """The data spec the run read."""
        return _text(self._data().get("spec"))

    @property
    def split(self) -> str | None:
        return _text(self._data().get("split"))

    @property
    def protocol(self) -> str | None:
        return _text(self.info.get("protocol"))

    @property
    def open_taxonomy(self) -> bool:
        return bool(self._data().get("open_taxonomy", False))

    @property
    def skip_invalid(self) -> bool:
        """Whether the run left bad data rows out (``--skip-invalid``): reading its data again must too."""
        return bool(self._data().get("skip_invalid", False)) or bool(self.coverage.skipped)

    @property
    def limit(self) -> int | None:
        limit = self._data().get("limit")
        return limit if isinstance(limit, int) and not isinstance(limit, bool) else None

    @property
    def model(self) -> dict[str, Any]:
        """``{"name", "factory", "args", "origin"}`` of the model that ran (empty when unknown)."""
        model = self.info.get("model")
        return model if isinstance(model, dict) else {}

    @property
    def not_written(self) -> dict[str, list[str]]:
        """Ids absent from predictions.jsonl on purpose: ``declared_missing`` and ``skipped_rows``."""
        raw = self.info.get("not_written")
        raw = raw if isinstance(raw, dict) else {}
        return {key: [str(i) for i in raw.get(key) or []] for key in ("declared_missing", "skipped_rows")}

    @property
    def coverage(self) -> Coverage:
        shard = self._data().get("shard") if isinstance(self._data().get("shard"), dict) else {}
        try:
            index, count = int(shard.get("index", 0) or 0), int(shard.get("count", 1) or 1)
            chosen = Shard(index, count)
        except (TypeError, ValueError, InvalidInputError):
            raise InvalidInputError(f"run.json has no valid shard ({shard!r})", str(self.path)) from None
        raw = self.info.get("not_written")
        rows = raw.get("skipped_where") if isinstance(raw, dict) else None
        listed = tuple(SkippedRow(str(r.get("where", "")), str(r.get("reason", ""))) for r in rows
                       if isinstance(r, dict)) if isinstance(rows, list) else ()
        return Coverage(limit=self.limit, shard=chosen, skipped=frozenset(self.not_written["skipped_rows"]),
                        skipped_rows=listed)

    def partial(self) -> bool:
        """Whether the run covered only part of its split (``--limit``, a shard, skipped rows)."""
        cov = self.coverage
        return cov.limit is not None or cov.shard.count > 1 or bool(cov.skipped)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_record(directory: str | os.PathLike[str], *, lenient: bool = False) -> RunRecord | None:
    """The run record of a folder, or None when it has none.

    A damaged ``run.json`` raises :class:`InvalidInputError` naming it (``eval`` must not guess),
    or gives None with ``lenient`` (commands that only take defaults from it)."""
    folder = Path(directory)
    path = folder / RUN_FILE
    try:
        text = require_regular_file(path, "run.json").read_text(encoding="utf-8")  # a FIFO would block
    except FileNotFoundError:
        return None
    except InvalidInputError:
        if lenient:
            return None
        raise
    except (OSError, UnicodeDecodeError) as exc:
        if lenient:
            return None
        raise InvalidInputError(f"run.json cannot be read ({exc}); pass --fresh to start over", str(path)) from None
    try:
        obj = loads_user_json(text, None)  # nesting bounded: a named error, not a RecursionError
    except ValueError as exc:
        if lenient:
            return None
        raise InvalidInputError(f"run.json is not valid JSON ({exc}); pass --fresh to start over", str(path)) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("identity"), dict):
        if lenient:
            return RunRecord(folder, obj) if isinstance(obj, dict) else None
        raise InvalidInputError("run.json has no 'identity' object", str(path))
    return RunRecord(folder, obj)


def write_record(directory: str | os.PathLike[str], info: dict[str, Any]) -> None:
    """Replace ``run.json`` atomically (readers see the old record or the new one, never half); no URL in
    it keeps its ``user:password@`` (an endpoint's ``base_url``)."""
    info = scrub_urls(json.loads(json.dumps(info, default=str)))
    write_text_atomic(Path(directory) / RUN_FILE, json.dumps(info, indent=2, sort_keys=False) + "\n")


def remove_record(directory: str | os.PathLike[str]) -> None:
    """Delete a folder's ``run.json`` (``eval --fresh``)."""
    with writing(Path(directory) / RUN_FILE):
        (Path(directory) / RUN_FILE).unlink(missing_ok=True)


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / RUN_FILE).is_file()


def run_folder_of(path: str | os.PathLike[str]) -> Path | None:
    """The run folder ``path`` names: the folder itself, or the folder of its ``predictions.jsonl``."""
    path = Path(path)
    if path.is_dir() and is_run_folder(path):
        return path
    if path.name == RUN_PREDICTIONS and is_run_folder(path.parent):
        return path.parent
    return None


def recorded_run(path: str | os.PathLike[str]) -> RunRecord | None:
    """What the run at ``path`` (a run folder or its predictions file) recorded; None when it is not
    one or its run.json is unreadable (the commands that ask only take defaults from it)."""
    folder = run_folder_of(path)
    return None if folder is None else read_record(folder, lenient=True)


def run_status(directory: str | os.PathLike[str]) -> str | None:
    """The ``status`` a run folder's record says (``running``, ``complete``, ``failed``...), None if unreadable."""
    record = read_record(directory, lenient=True)
    return None if record is None else record.status


def skipped_detail(rows: Sequence[SkippedRow]) -> list[dict[str, str]]:
    """The first bad rows as run.json lists them (where, why)."""
    return [{"where": row.where, "reason": row.reason} for row in rows[:MAX_LISTED_ROWS]]


def open_run_data(record: RunRecord, *, data: str | None = None, split: str | None = None, skip_invalid: bool = False,
                  open_taxonomy: bool = False) -> tuple[Source, str]:
    """The data a run's numbers are over: its source opened as the run read it (bad rows skipped when
    the run skipped them, its taxonomy), restricted to the samples it covers.

    ``data`` / ``split`` given and different from the run's: that source whole (the user asks for
    other data, so the run's subset says nothing about it)."""
    from reasonseg_x.data.resolve import open_source

    spec = data or record.data
    if not spec:
        raise InvalidInputError("which data was this run made on? run.json does not say: pass --data", str(record.path))
    same_data = spec == record.data
    source = open_source(spec, skip_invalid=skip_invalid or (same_data and record.skip_invalid),
                         open_taxonomy=open_taxonomy or record.open_taxonomy)
    chosen = source.resolve_split(split or (record.split if same_data else None))
    if same_data and chosen == (record.split or chosen):
        return record.coverage.restrict(source, chosen), chosen
    return source, chosen
