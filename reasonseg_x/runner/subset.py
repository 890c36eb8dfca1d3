"""A view of one split restricted to some ids (``--limit``, a shard): what such a run is scored on.

Scoring a partial run against the whole split would count every other sample as missing; the
subset's fingerprint covers exactly the samples it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from reasonseg_x.data.record import GroundTruth, Sample
from reasonseg_x.data.source import Source

__all__ = ["SubsetSource"]


class SubsetSource(Source):
    """Only the samples of ``split`` whose id is in ``ids`` (the base source's order is kept)."""

    def __init__(self, base: Source, split: str, ids: Iterable[str], *, label: str = "subset") -> None:
        super().__init__(skip_invalid=base.skip_invalid)
        self.base = base
        self.split = split
        self.ids = frozenset(ids)
        self.spec = f"{base.spec} ({label}: {len(self.ids)} samples)"
        self.id_rule = base.id_rule

    def splits(self) -> list[str]:
        return [self.split]

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        split = self.resolve_split(split)
        return (s for s in self.base.samples(split) if s.id in self.ids)

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        split = self.resolve_split(split)
        return (g for g in self.base.ground_truth(split) if g.id in self.ids)

    def num_samples(self, split: str | None = None) -> int:
        return len(self.ids)
