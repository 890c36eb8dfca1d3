"""``reasonseg_x.load_dataset``: any source spec as a typed ``datasets.Dataset``.

Why: people who already work with ``datasets`` get the benchmark with proper features (Image,
RLE struct masks, ClassLabel reasoning type and query kind) whatever form it was published in.
Rows are generated from the source's samples (images stay encoded bytes, masks stay RLE strings:
no nested lists of pixels), and ``datasets`` caches the result keyed by the split's content
(:meth:`Source.input_fingerprint`: queries, images and masks), so a changed folder is never served
from a stale cache.
"""

from __future__ import annotations

import warnings
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
    """Rows of one split; ``content`` (the split's input fingerprint) only keys the datasets cache."""
    from reasonseg_x.data.compact import sample_row
    from reasonseg_x.data.resolve import open_source

    source = open_source(spec, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
    for sample in source.samples(split):
        yield sample_row(sample, split=split)
    if source.skipped:  # the rows are left out as asked; say so, since nothing else will
        first = source.skipped[0]
        warnings.warn(f"{spec} ({split}): skipped {len(source.skipped)} invalid row(s), e.g. {first.where}: "
                      f"{first.reason}", stacklevel=2)


def load_dataset(name_or_spec: str, split: str | None = None, *, skip_invalid: bool = False,
                 open_taxonomy: bool = False, cache_dir: str | None = None
                 ) -> datasets.Dataset | datasets.DatasetDict:
    """Open ``name_or_spec`` (any spec :func:`~reasonseg_x.data.resolve.open_source` takes) as ``datasets``.

    With ``split`` (or when the source has a single split) a ``Dataset``; otherwise a
    ``DatasetDict`` of all splits.
    """
    import datasets
    from datasets.exceptions import DatasetGenerationError

    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.errors import ReasonSegXError

    source = open_source(name_or_spec, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
    feats = features(open_taxonomy=open_taxonomy)
    names = [source.resolve_split(split)] if split is not None else source.splits()

    def build(name: str) -> datasets.Dataset:
        content = source.input_fingerprint(name)
        try:
            return datasets.Dataset.from_generator(
                _generate, features=feats, cache_dir=cache_dir, split=datasets.NamedSplit(name),
                gen_kwargs={"spec": str(name_or_spec), "split": name, "skip_invalid": skip_invalid,
                            "open_taxonomy": open_taxonomy, "content": content})
        except DatasetGenerationError as exc:
            # datasets wraps our error in a generic one; the file and row are in the cause
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ReasonSegXError):
                raise cause.with_traceback(None) from None
            raise

    if len(names) == 1:
        return build(names[0])
    return datasets.DatasetDict({name: build(name) for name in names})
