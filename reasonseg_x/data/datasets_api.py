"""``reasonseg_x.load_dataset``: any source spec as a typed ``datasets.Dataset``.

Why: people who already work with ``datasets`` get the benchmark with proper features (Image,
RLE struct masks, ClassLabel reasoning type and query kind) whatever form it was published in.
Rows are generated from the source's samples (images stay encoded bytes, masks stay RLE strings:
no nested lists of pixels), and ``datasets`` caches the result keyed by the split's content
fingerprint, so a changed folder is never served from a stale cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import datasets

__all__ = ["load_dataset", "features"]


def features(*, open_taxonomy: bool = False) -> datasets.Features:
    """The features of every split this function returns (the compact format's columns)."""
    from reasonseg_x.data.compact import datasets_features

    return datasets_features(open_taxonomy)


def _generate(spec: str, split: str, skip_invalid: bool, open_taxonomy: bool, content: str) -> Iterator[dict[str, Any]]:
    """Rows of one split; ``content`` (the split's fingerprint) only keys the datasets cache."""
    from pathlib import Path

    from reasonseg_x.data.compact import json_safe
    from reasonseg_x.data.resolve import open_source

    source = open_source(spec, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
    for s in source.samples(split):
        meta = {k: v for k, v in s.meta.items() if k != "where"}
        yield {
            "id": s.id,
            "image": {"bytes": s.image.read_bytes(), "path": Path(s.image.path).name if s.image.path else None},
            "text": s.query,
            "queries": list(s.queries) or [s.query],
            "query_kind": s.query_kind,
            "reasoning_type": s.reasoning_type,
            "target": {"size": [int(v) for v in s.target["size"]], "counts": s.target["counts"]},
            "ignore": None if s.ignore is None else {"size": [int(v) for v in s.ignore["size"]],
                                                     "counts": s.ignore["counts"]},
            "height": s.height,
            "width": s.width,
            "source": s.source,
            "split": s.split or split,
            "meta": json.dumps(json_safe(meta), sort_keys=True) if meta else None,
        }


def load_dataset(name_or_spec: str, split: str | None = None, *, skip_invalid: bool = False,
                 open_taxonomy: bool = False, cache_dir: str | None = None
                 ) -> datasets.Dataset | datasets.DatasetDict:
    """Open ``name_or_spec`` (any spec :func:`~reasonseg_x.data.resolve.open_source` takes) as ``datasets``.

    With ``split`` (or when the source has a single split) a ``Dataset``; otherwise a
    ``DatasetDict`` of all splits.
    """
    import datasets

    from reasonseg_x.data.resolve import open_source

    source = open_source(name_or_spec, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
    feats = features(open_taxonomy=open_taxonomy)
    names = [source.resolve_split(split)] if split is not None else source.splits()

    def build(name: str) -> datasets.Dataset:
        content = source.fingerprint(name)
        return datasets.Dataset.from_generator(
            _generate, features=feats, cache_dir=cache_dir, split=datasets.NamedSplit(name),
            gen_kwargs={"spec": str(name_or_spec), "split": name, "skip_invalid": skip_invalid,
                        "open_taxonomy": open_taxonomy, "content": content})

    if len(names) == 1:
        return build(names[0])
    return datasets.DatasetDict({name: build(name) for name in names})
