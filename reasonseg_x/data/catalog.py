"""Known benchmark names (``reasonseg-x``, ``reasonseg``, ``reasonseg-r``, ``muse``, ``mmr``) and their Hub repos.

The table lives in ``annotations/catalog.yaml`` (shipped in the wheel) so adding a copy of a
benchmark is a data change, not a code change.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reasonseg_x._resources import shipped_file
from reasonseg_x.data.record import GroundTruth, Sample
from reasonseg_x.data.source import Source
from reasonseg_x.errors import InvalidInputError

__all__ = ["CatalogSplit", "CatalogEntry", "CatalogSource", "catalog", "lookup"]


@dataclass(frozen=True)
class CatalogSplit:
    """One split of a known benchmark: the Hub repo holding it and the split name inside the repo."""

    name: str
    repo: str
    repo_split: str
    source: str
    local: str | None = None
    #: the repo's schema: ``hf`` (the published evaluation schema) or ``lmms-refcoco`` (lmms-lab's)
    format: str = "hf"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    title: str
    splits: tuple[CatalogSplit, ...]
    #: the split used without --split (YAML ``default``); else ``test``, else the last one
    default: str | None = None

    def split(self, name: str) -> CatalogSplit:
        for s in self.splits:
            if s.name == name:
                return s
        raise InvalidInputError(f"{self.name} has no split {name!r}; splits: {', '.join(s.name for s in self.splits)}")


@lru_cache(maxsize=1)
def catalog() -> dict[str, CatalogEntry]:
    """All known names, in file order."""
    import yaml

    path = shipped_file("annotations", "catalog.yaml")
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    entries: dict[str, CatalogEntry] = {}
    try:
        for name, body in data.items():
            splits = tuple(
                CatalogSplit(name=str(split), repo=str(spec["repo"]), repo_split=str(spec.get("split", "test")),
                             source=str(spec.get("source", name)), local=spec.get("local"),
                             format=str(spec.get("format", "hf")))
                for split, spec in body["splits"].items())
            default = body.get("default")
            if default is not None and str(default) not in {s.name for s in splits}:
                raise KeyError(f"{name}: default split {default!r} is not one of its splits")
            entries[str(name)] = CatalogEntry(str(name), str(body.get("title", name)), splits,
                                              None if default is None else str(default))
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidInputError(f"malformed catalog entry: {exc}", str(path)) from None
    return entries


def lookup(name: str) -> CatalogEntry | None:
    """The entry for a known name (case-insensitive; ``_`` and ``-`` are interchangeable)."""
    key = name.strip().lower().replace("_", "-")
    table = catalog()
    if key in table:
        return table[key]
    aliases = {"reasonsegx": "reasonseg-x", "reasonseg-refine": "reasonseg-r", "refcocoplus": "refcoco+",
               "refcoco-plus": "refcoco+"}
    return table.get(aliases.get(key.replace("-", ""), aliases.get(key, "")))


# --- a known name as a source: one Hub repo (or local folder) per split, opened on first use --------


class CatalogSource(Source):
    """The splits of a known name; each split's repo is fetched (or found locally) only when used.

    A split's local copy is looked up first under ``$REASONSEG_X_DATA`` (the ``data/`` root of the
    reference download script: ``ReasonSegX_test``, ``MUSE/test_few``, ...), then in the Hub cache,
    then downloaded.
    """

    def __init__(self, entry: CatalogEntry, *, spec: str = "", skip_invalid: bool = False,
                 open_taxonomy: bool = False) -> None:
        super().__init__(skip_invalid=skip_invalid)
        self.entry = entry
        self.spec = spec or entry.name
        self.open_taxonomy = open_taxonomy
        self.id_rule = "ann_id"
        self._opened: dict[str, Source] = {}

    def splits(self) -> list[str]:
        return [s.name for s in self.entry.splits]

    def default_split(self) -> str:
        names = self.splits()
        if self.entry.default:
            return self.entry.default
        return "test" if "test" in names else names[-1]

    def split_source(self, split: str | None = None) -> Source:
        """The source serving ``split`` (opened, and downloaded if needed, on first call)."""
        split = self.resolve_split(split)
        if split not in self._opened:
            self._opened[split] = self._open(self.entry.split(split))
        source = self._opened[split]
        self.id_rule = source.id_rule
        return source

    def _open(self, item: CatalogSplit) -> Source:
        from reasonseg_x.data.compact import CompactSource
        from reasonseg_x.data.hf import HFSource
        from reasonseg_x.data.hub import fetch_dataset_repo
        from reasonseg_x.data.layout import detect_layout

        folder = None
        root = os.environ.get("REASONSEG_X_DATA")
        if root and item.local and Path(root, item.local).exists():
            folder = Path(root, item.local)
        if folder is None:
            folder = fetch_dataset_repo(item.repo, spec=f"{self.spec} ({item.name})")
        layout = detect_layout(folder)
        if layout is None or layout.kind == "lisa" or not layout.files:
            raise InvalidInputError(f"{item.repo}: no parquet or arrow data in {folder}", str(folder))
        files = layout.files.get(item.repo_split) or (next(iter(layout.files.values())) if len(layout.files) == 1
                                                      else None)
        if files is None:
            raise InvalidInputError(f"{item.repo} has no split {item.repo_split!r} (it has "
                                    f"{', '.join(layout.files)})", str(folder))
        spec = f"{self.spec}:{item.name}"
        source: Source
        if item.format == "lmms-refcoco":
            from reasonseg_x.data.refcoco_lmms import LmmsRefcocoSource

            source = LmmsRefcocoSource({item.name: files}, spec=spec, skip_invalid=self.skip_invalid,
                                       source_tag=item.source)
        elif layout.kind == "compact":
            source = CompactSource(layout.root, spec=spec, skip_invalid=self.skip_invalid,
                                   open_taxonomy=self.open_taxonomy, default_source=item.source,
                                   files_by_split={item.name: files})
        else:
            source = HFSource({item.name: files}, spec=spec, skip_invalid=self.skip_invalid,
                              open_taxonomy=self.open_taxonomy, source_tags=item.source)
        source.skipped = self.skipped  # one list: rows skipped by any split are reported here
        return source

    @property
    def id_rule_notes(self) -> dict[str, str]:
        """Why a split's ids do not come from its first id column (from the opened split sources)."""
        return {name: note for name, src in self._opened.items()
                for note in [getattr(src, "id_rule_notes", {}).get(name)] if note}

    def files(self, split: str | None = None) -> list[Path] | None:
        """The data files behind ``split`` (opening, and downloading, it if needed)."""
        split = self.resolve_split(split)
        return self.split_source(split).files(split)

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        split = self.resolve_split(split)
        return self.split_source(split).samples(split)

    def samples_of(self, split: str | None, ids: Iterable[str]) -> Iterator[Sample]:
        split = self.resolve_split(split)
        return self.split_source(split).samples_of(split, ids)

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        split = self.resolve_split(split)
        return self.split_source(split).ground_truth(split)

    def num_samples(self, split: str | None = None) -> int:
        split = self.resolve_split(split)
        return self.split_source(split).num_samples(split)
