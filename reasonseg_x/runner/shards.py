"""Deterministic, disjoint shards that cover a split.

Rule: sort the selected sample ids (Python string order), then sample number ``j`` of the sorted
list goes to shard ``j % num_shards``. Shards differ in size by at most one, do not depend on the
source's row order, and every shard process computes the same assignment from the ids alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reasonseg_x.errors import InvalidInputError

__all__ = ["Shard", "select_shard", "shard_dirname", "parse_shard_dirname"]


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise InvalidInputError(f"--num-shards must be >= 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise InvalidInputError(f"--shard-id must be in 0..{self.count - 1}, got {self.index}")

    @property
    def dirname(self) -> str:
        return shard_dirname(self.index, self.count)


def select_shard(ids: Sequence[str], shard: Shard) -> list[str]:
    """The ids of ``shard``, in the input order of ``ids``."""
    if shard.count == 1:
        return list(ids)
    mine = set(sorted(ids)[shard.index :: shard.count])
    return [i for i in ids if i in mine]


def shard_dirname(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


def parse_shard_dirname(name: str) -> tuple[int, int] | None:
    parts = name.split("-")
    if len(parts) == 4 and parts[0] == "shard" and parts[2] == "of" and parts[1].isdigit() and parts[3].isdigit():
        return int(parts[1]), int(parts[3])
    return None
