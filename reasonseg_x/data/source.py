"""The source protocol: what every loader (HF schema, LISA folder, compact, mini, synth) provides."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from reasonseg_x.data.record import GroundTruth, Sample
from reasonseg_x.errors import InvalidInputError

__all__ = ["Source", "SkippedRow", "fingerprint_ground_truth", "check_unique_ids", "query_texts", "take_ids"]


_R = TypeVar("_R", GroundTruth, Sample)


def take_ids(records: Iterable[_R], ids: Iterable[str]) -> Iterator[_R]:
    """The records whose id is in ``ids``, in stream order; stops reading once all were seen."""
    todo = set(ids)
    if not todo:
        return
    for record in records:
        if record.id in todo:
            todo.discard(record.id)
            yield record
            if not todo:
                return


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
    #: whether :meth:`ground_truth` already rejects corrupt, truncated or wrong-size images (LISA
    #: reads each header; synth renders its own); when False, :meth:`samples` is where they show
    ground_truth_checks_images: bool = False

    def __init__(self, *, skip_invalid: bool = False) -> None:
        self.skip_invalid = skip_invalid
        self.skipped: list[SkippedRow] = []
        self._skipped_where: set[str] = set()
        self._fingerprints: dict[str, str] = {}

    @abstractmethod
    def splits(self) -> list[str]:
        """Split names, in publication order."""

    @abstractmethod
    def samples(self, split: str | None = None) -> Iterator[Sample]:
        """Stream the samples of ``split`` (default: :meth:`default_split`)."""

    def samples_of(self, split: str | None, ids: Iterable[str]) -> Iterator[Sample]:
        """The samples of ``split`` whose id is in ``ids``, in split order (a report's few pictures).
        Sources that can find rows without reading the others' images override it."""
        return take_ids(self.samples(split), ids)

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

    def ids_with_good_images(self, split: str | None = None) -> set[str] | None:
        """Ids of the samples whose image passes the header and completeness check.

        ``None`` when :meth:`ground_truth` checks images itself. Reads every image's bytes, never
        decodes pixels; a bad image raises, or is recorded in :attr:`skipped` under ``skip_invalid``.
        """
        if self.ground_truth_checks_images:
            return None
        return {sample.id for sample in self.samples(split)}

    def files(self, split: str | None = None) -> list[Path] | None:
        """The files ``split`` is read from; ``None`` for a generated source."""
        return None

    def input_fingerprint(self, split: str | None = None) -> str:
        """A content hash of everything a model is given (ids, query texts, images) and of the masks.

        Unlike :meth:`fingerprint` it changes when only a query or an image changes, so a run or a
        ``datasets`` cache keyed by it is never reused for different inputs. Cheap: the content
        digests of the split's files (memoised in the cache until a file changes); a generated
        source hashes its spec; anything else hashes its samples.
        """
        from reasonseg_x._version import __version__

        split = self.resolve_split(split)
        digest = hashlib.sha256(f"{type(self).__name__}\0{split}\0{__version__}\n".encode("utf-8"))
        files = self.files(split)
        if files is not None:
            from reasonseg_x.data.cache import file_digest

            for path in files:
                digest.update(f"{Path(path).name}\0{file_digest(path)}\n".encode("utf-8"))
        else:
            for sample in self.samples(split):
                digest.update("\0".join((sample.id, *sample.queries, sample.query)).encode("utf-8"))
                digest.update(hashlib.sha256(sample.image.read_bytes()).digest())
                digest.update(sample.target["counts"].encode("utf-8"))
        return "sha256:" + digest.hexdigest()[:32]

    def fingerprint(self, split: str | None = None, *, records: Iterable[GroundTruth] | None = None) -> str:
        """A content hash of the split's ground truth (ids, sizes, masks, groups); cached.

        ``records``: the split's ground truth, already read by the caller (saves a second pass).
        """
        split = self.resolve_split(split)
        if split not in self._fingerprints:
            self._fingerprints[split] = fingerprint_ground_truth(
                self.ground_truth(split) if records is None else records)
        return self._fingerprints[split]

    def empty_split_error(self, split: str) -> InvalidInputError:
        """What to say when ``split`` holds no sample: empty on disk, or every row skipped as invalid."""
        name = f"split {split!r} of {self.spec or type(self).__name__}"
        if self.skipped:
            first = self.skipped[0]
            return InvalidInputError(f"{name} has no valid sample: all {len(self.skipped)} row(s) were skipped as "
                                     f"invalid (--skip-invalid); first: {first.where}: {first.reason}")
        return InvalidInputError(f"{name} is empty: it holds no sample, so there is nothing to run or score; "
                                 f"splits: {', '.join(self.splits())}")

    def reject(self, reason: str, where: str) -> None:
        """Raise for a bad row, or record it and go on under ``skip_invalid``.

        A row is recorded once however often the split is read (``data info`` reads its images,
        then its ground truth; a run reads it again), so ``skipped`` counts rows, not passes.
        """
        if not self.skip_invalid:
            raise InvalidInputError(reason, where)
        if where in self._skipped_where:
            return
        self._skipped_where.add(where)
        self.skipped.append(SkippedRow(where, reason))

    def image_ok(self, raw: bytes, gt: GroundTruth, where: str) -> bool:
        """Header and completeness check of a stored image (no pixel decoding); a corrupt, truncated
        or wrong-size image is a bad row (raised, or recorded under ``skip_invalid``)."""
        from reasonseg_x.data.images import check_image

        try:
            check_image(raw, gt.height, gt.width, where)
        except InvalidInputError as exc:
            self.reject(exc.reason, where)
            return False
        return True


def fingerprint_ground_truth(records: Iterable[GroundTruth]) -> str:
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


def query_texts(value: Any, column: str, where: str) -> tuple[str, ...]:
    """The query phrasings a data column holds (one string, or a list of them), as text.

    A binary column is decoded as UTF-8, never turned into its Python repr (``"b'caf\\xe9'"``);
    undecodable bytes, a number or an empty value raise :class:`InvalidInputError` naming the
    row and the column, since a model would otherwise be asked a query nobody wrote.
    """
    items = value if isinstance(value, (list, tuple)) else [value]
    texts = []
    for item in items:
        if isinstance(item, (bytes, bytearray)):
            try:
                item = bytes(item).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInputError(f"column {column!r} holds bytes that are not UTF-8 text ({exc.reason} at "
                                        f"byte {exc.start})", where) from None
        if item is None:
            continue
        if not isinstance(item, str):
            raise InvalidInputError(f"column {column!r} holds a {type(item).__name__}, not query text", where)
        texts.append(item)
    if not texts or not texts[0].strip():
        raise InvalidInputError(f"column {column!r} holds no query text", where)
    return tuple(texts)
