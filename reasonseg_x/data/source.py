"""The source protocol: what every loader (HF schema, LISA folder, compact, mini, synth) provides."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from reasonseg_x.data.record import GroundTruth, Sample
from reasonseg_x.errors import InvalidInputError

__all__ = ["Source", "SkippedRow", "fingerprint_ground_truth", "check_unique_ids"]


@dataclass(frozen=True)
class SkippedRow:
    """A row left out under ``skip_invalid``: where it was and why."""

    where: str
    reason: str


class Source(ABC):
    """A benchmark source: named splits of :class:`Sample` records, streamed.

    Subclasses implement :meth:`splits` and :meth:`samples`; :meth:`ground_truth` may be
    overridden to skip image bytes (scoring never decodes pixels).
    With ``skip_invalid`` a loader records bad rows in :attr:`skipped` instead of raising.
    """

    #: the spec string it was opened from (``mini``, a path, a Hub id...)
    spec: str = ""
    #: how sample ids were derived (``ann_id``, ``image_id``, ``file stem``, ...)
    id_rule: str = "id"

    def __init__(self, *, skip_invalid: bool = False) -> None:
        self.skip_invalid = skip_invalid
        self.skipped: list[SkippedRow] = []
        self._fingerprints: dict[str, str] = {}

    @abstractmethod
    def splits(self) -> list[str]:
        """Split names, in publication order."""

    @abstractmethod
    def samples(self, split: str | None = None) -> Iterator[Sample]:
        """Stream the samples of ``split`` (default: :meth:`default_split`)."""

    def default_split(self) -> str:
        names = self.splits()
        for preferred in ("test", "val", "validation"):
            if preferred in names:
                return preferred
        return names[0]

    def resolve_split(self, split: str | None) -> str:
        if split is None:
            return self.default_split()
        if split not in self.splits():
            raise InvalidInputError(f"source {self.spec!r} has no split {split!r}; splits: {', '.join(self.splits())}")
        return split

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        for sample in self.samples(split):
            yield sample.ground_truth()

    def __len__(self) -> int:
        return self.num_samples()

    def num_samples(self, split: str | None = None) -> int:
        return sum(1 for _ in self.ground_truth(split))

    def fingerprint(self, split: str | None = None) -> str:
        """A content hash of the split's ground truth (ids, sizes, masks, groups); cached."""
        split = self.resolve_split(split)
        if split not in self._fingerprints:
            self._fingerprints[split] = fingerprint_ground_truth(self.ground_truth(split))
        return self._fingerprints[split]

    def reject(self, reason: str, where: str) -> None:
        """Raise for a bad row, or record it and go on under ``skip_invalid``."""
        if not self.skip_invalid:
            raise InvalidInputError(reason, where)
        self.skipped.append(SkippedRow(where, reason))


def fingerprint_ground_truth(records: Iterator[GroundTruth]) -> str:
    """Order-independent sha256 over each record's id, size, target, ignore and groups."""
    rows = []
    for gt in records:
        ignore = gt.ignore["counts"] if gt.ignore is not None else ""
        groups = ";".join(f"{k}={v}" for k, v in sorted(gt.groups.items()))
        rows.append(f"{gt.id}\t{gt.height}\t{gt.width}\t{gt.target['counts']}\t{ignore}\t{groups}")
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update(row.encode("utf-8"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()[:32]


def check_unique_ids(seen: dict[str, str], sample_id: str, where: str) -> None:
    """Raise when ``sample_id`` was already produced, naming both rows."""
    if sample_id in seen:
        raise InvalidInputError(f"duplicate sample id {sample_id!r} (first at {seen[sample_id]})", where)
    seen[sample_id] = where
