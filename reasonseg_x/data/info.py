"""What a source holds: per-split counts by reasoning type, query kind and source, image sizes,
empty targets, ignore regions and skipped rows. Reads ground truth only (no pixels).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from reasonseg_x import masks
from reasonseg_x.data.source import Source
from reasonseg_x.errors import SourceNotFoundError
from reasonseg_x.taxonomy import query_kinds, reasoning_types, sources

__all__ = ["SplitSummary", "SourceSummary", "describe"]


@dataclass
class SplitSummary:
    name: str
    samples: int
    reasoning_type: dict[str, int] = field(default_factory=dict)
    query_kind: dict[str, int] = field(default_factory=dict)
    source: dict[str, int] = field(default_factory=dict)
    #: min / median / max of image heights and widths
    height: dict[str, float] = field(default_factory=dict)
    width: dict[str, float] = field(default_factory=dict)
    no_target: int = 0
    with_ignore: int = 0
    #: content hash of the ground truth (:meth:`Source.fingerprint`)
    fingerprint: str = ""
    #: content hash of everything a model is given as well (:meth:`Source.input_fingerprint`)
    input_fingerprint: str = ""


@dataclass
class SourceSummary:
    spec: str
    kind: str
    id_rule: str
    splits: list[SplitSummary]
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: splits that could not be opened (a known name whose other splits are not downloaded)
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {"min": int(arr.min()), "median": float(np.median(arr)), "max": int(arr.max())}


def _ordered(counter: Counter, order: list[str]) -> dict[str, int]:
    known = [k for k in order if k in counter]
    rest = sorted(k for k in counter if k not in order)
    return {k: int(counter[k]) for k in known + rest}


def describe(source: Source, splits: list[str] | None = None, *, check_images: bool = True) -> SourceSummary:
    """Summarise ``splits`` (default: all) of an opened source.

    With ``check_images`` every stored image is checked (header and completeness, no decoding),
    so a corrupt one is reported here rather than by the first model that opens it; samples
    skipped for their image are not counted.
    """
    names = [source.resolve_split(s) for s in splits] if splits else source.splits()
    summaries = []
    id_rules = []
    unavailable: dict[str, str] = {}
    for name in names:
        try:
            summaries.append(_describe_split(source, name, check_images))
        except SourceNotFoundError as exc:
            if splits or len(names) == 1:
                raise
            unavailable[name] = str(exc)
            continue
        note = getattr(source, "id_rule_notes", {}).get(name)
        id_rules.append(getattr(source, "id_rule", "id") + (f" ({note})" if note else ""))
    if not summaries and unavailable:
        raise SourceNotFoundError(next(iter(unavailable.values())))
    rules = sorted(set(id_rules))
    return SourceSummary(spec=source.spec, kind=type(source).__name__, id_rule=", ".join(rules) or source.id_rule,
                         splits=summaries, skipped=[{"where": s.where, "reason": s.reason} for s in source.skipped],
                         unavailable=unavailable)


def _describe_split(source: Source, name: str, check_images: bool) -> SplitSummary:
    """Counts, sizes and fingerprint of one split, from its ground truth."""
    good = source.ids_with_good_images(name) if check_images else None
    by_type: Counter = Counter()
    by_kind: Counter = Counter()
    by_source: Counter = Counter()
    heights: list[int] = []
    widths: list[int] = []
    targets: list[masks.RLE] = []
    ignores: list[masks.RLE] = []
    records = list(source.ground_truth(name))
    fingerprint = source.fingerprint(name, records=records)  # one pass over the ground truth, not two
    for gt in records:
        if good is not None and gt.id not in good:
            continue
        heights.append(gt.height)
        widths.append(gt.width)
        targets.append(gt.target)
        if gt.ignore is not None:
            ignores.append(gt.ignore)
        by_type[gt.groups.get("reasoning_type", "(none)")] += 1
        by_kind[gt.groups.get("query_kind", "(none)")] += 1
        by_source[gt.groups.get("source", "(none)")] += 1
    return SplitSummary(
        name=name, samples=len(targets),
        reasoning_type=_ordered(by_type, reasoning_types().ids),
        query_kind=_ordered(by_kind, query_kinds().ids),
        source=_ordered(by_source, sources().ids),
        height=_stats(heights), width=_stats(widths),
        no_target=int((masks.areas(targets) == 0).sum()) if targets else 0,
        with_ignore=int((masks.areas(ignores) > 0).sum()) if ignores else 0,
        fingerprint=fingerprint,
        input_fingerprint=source.input_fingerprint(name),
    )
