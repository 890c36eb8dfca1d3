"""A view of one split restricted to some ids (``--limit``, a shard): what such a run is scored on.

Scoring a partial run against the whole split would count every other sample as missing; the
subset's fingerprint covers exactly the samples it holds. Reading stops at the last wanted id,
so a ``--limit 10`` run of a huge split touches only its first rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from reasonseg_x.data.record import GroundTruth, Sample
from reasonseg_x.data.source import Source, take_ids

__all__ = ["SubsetSource", "subset_label", "take_ids"]

def subset_label(limit: int | None, shard: Any, skipped: int = 0) -> str:
    """How reports name a run's subset: ``first 20, shard-0-of-4, 2 bad rows skipped``."""
    parts = []
    if limit is not None:
        parts.append(f"first {limit}")
    if shard.count > 1:
        parts.append(shard.dirname)
    if skipped:
        parts.append(f"{skipped} bad rows skipped")
    return ", ".join(parts) or "subset"


class SubsetSource(Source):
    """Only the samples of ``split`` whose id is in ``ids`` (the base source's order is kept)."""

    def __init__(self, base: Source, split: str, ids: Iterable[str], *, label: str = "subset") -> None:
        super().__init__(skip_invalid=base.skip_invalid)
        self.base = base
        self.split = split
        self.ids = frozenset(ids)
        self.skipped = base.skipped  # the bad rows met while reading are the base's, and reports list them
        self.spec = f"{base.spec} ({label}: {len(self.ids)} samples)"
        self.id_rule = base.id_rule

    def splits(self) -> list[str]:
        return [self.split]

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        split = self.resolve_split(split)
        return take_ids(self.base.samples(split), self.ids)

    def samples_of(self, split: str | None, ids: Iterable[str]) -> Iterator[Sample]:
        split = self.resolve_split(split)
        return self.base.samples_of(split, self.ids & set(ids))

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        split = self.resolve_split(split)
        return take_ids(self.base.ground_truth(split), self.ids)

    def num_samples(self, split: str | None = None) -> int:
        return len(self.ids)
