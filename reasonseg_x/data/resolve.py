"""One spec string -> one :class:`~reasonseg_x.data.source.Source`.

Accepted specs, tried in this order:

- ``mini``: the embedded default split (compact, shipped in the wheel);
- ``synth:N[:SEED]``: N procedurally rendered samples;
- an existing local file or folder: our compact export, a Hub-style parquet folder, a plain
  parquet/arrow file, a ``save_to_disk`` folder (``Dataset`` or ``DatasetDict``), a LISA folder;
- a known name: ``reasonseg-x``, ``reasonseg``, ``reasonseg-r``, ``muse``, ``mmr``;
- a Hub dataset id ``owner/name`` (downloaded once into the Hub cache).
"""

from __future__ import annotations

import re
from pathlib import Path

from reasonseg_x.data.source import Source
from reasonseg_x.errors import InvalidInputError, SourceNotFoundError

__all__ = ["open_source", "open_local", "ACCEPTED_FORMS"]

ACCEPTED_FORMS = (
    "accepted data specs: 'mini' (embedded default split); 'synth:N[:SEED]' (procedural samples); "
    "a local folder or file (compact export, Hub-style data/<split>-*.parquet folder, plain .parquet/.arrow file, "
    "datasets save_to_disk folder, LISA <split>/*.jpg + *.json folder); a known name ({names}); "
    "or a Hub dataset id 'owner/name'")
_SYNTH = re.compile(r"^synth:(?P<n>\d+)(?::(?P<seed>-?\d+))?$")
_HUB_ID = re.compile(r"^(?:hf://datasets/)?(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)$")


def _accepted() -> str:
    from reasonseg_x.data.catalog import catalog

    return ACCEPTED_FORMS.format(names=", ".join(catalog()))


def open_source(spec: str, *, skip_invalid: bool = False, open_taxonomy: bool = False) -> Source:
    """Open the source a spec names; unknown specs raise an error listing the accepted forms."""
    text = str(spec).strip()
    if not text:
        raise InvalidInputError(f"empty data spec; {_accepted()}")
    if text == "mini":
        return _open_mini(skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
    if text.startswith("synth"):
        return _open_synth(text, skip_invalid=skip_invalid)
    path = Path(text).expanduser()
    if path.exists():
        return open_local(path, spec=text, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
    from reasonseg_x.data.catalog import CatalogSource, lookup

    entry = lookup(text)
    if entry is not None:
        return CatalogSource(entry, spec=text, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
    looks_like_path = text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1
    match = _HUB_ID.match(text)
    if match and not looks_like_path:
        from reasonseg_x.data.hub import fetch_dataset_repo

        repo = match.group("repo")
        folder = fetch_dataset_repo(repo, spec=text)
        return open_local(folder, spec=text, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy,
                          default_source=_known_repo_source(repo))
    if looks_like_path:
        raise SourceNotFoundError(f"{text}: no such file or folder; {_accepted()}")
    raise InvalidInputError(f"unknown data spec {text!r}; {_accepted()}")


def open_local(path: str | Path, *, spec: str | None = None, skip_invalid: bool = False,
               open_taxonomy: bool = False, default_source: str | None = None) -> Source:
    """Open a local file or folder by recognising its layout."""
    from reasonseg_x.data.layout import detect_layout

    path = Path(path)
    spec = spec or str(path)
    layout = detect_layout(path)
    if layout is None:
        raise InvalidInputError(f"not a dataset folder or file this toolkit reads; {_accepted()}", str(path))
    if layout.kind == "compact":
        from reasonseg_x.data.compact import CompactSource

        return CompactSource(layout.root, spec=spec, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy,
                             default_source=default_source, files_by_split=layout.files)
    if layout.kind == "lisa":
        return _open_lisa(path, spec=spec, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
    from reasonseg_x.data.refcoco_lmms import LmmsRefcocoSource, is_lmms_refcoco

    first = next(iter(layout.files.values()))[0]
    if is_lmms_refcoco(first):
        return LmmsRefcocoSource(layout.files, spec=spec, skip_invalid=skip_invalid,
                                 source_tag=default_source or _known_local_source(path))
    from reasonseg_x.data.hf import HFSource

    return HFSource(layout.files, spec=spec, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy,
                    source_tags=default_source or _known_local_source(path))


def _known_repo_source(repo: str) -> str | None:
    """The ``source`` tag of a published repo the catalog knows (same groups as opening it by name)."""
    from reasonseg_x.data.catalog import catalog

    for entry in catalog().values():
        for item in entry.splits:
            if item.repo.lower() == repo.lower():
                return item.source
    return None


def _known_local_source(path: Path) -> str | None:
    """The ``source`` tag of a folder laid out by the reference download script (``data/MUSE/test_few``)."""
    from reasonseg_x.data.catalog import catalog

    parts = path.resolve().parts
    for entry in catalog().values():
        for item in entry.splits:
            if item.local:
                tail = tuple(Path(item.local).parts)
                if parts[-len(tail):] == tail:
                    return item.source
    return None


def _open_mini(*, skip_invalid: bool, open_taxonomy: bool) -> Source:
    from reasonseg_x._resources import shipped_dir
    from reasonseg_x.data.compact import CompactSource

    folder = shipped_dir("annotations") / "mini"
    if not folder.is_dir():
        raise SourceNotFoundError(f"the embedded 'mini' split is missing from this install (expected {folder})")
    return CompactSource(folder, spec="mini", skip_invalid=skip_invalid, open_taxonomy=open_taxonomy,
                         default_source="synth")


def _open_synth(text: str, *, skip_invalid: bool) -> Source:
    match = _SYNTH.match(text)
    if not match:
        raise InvalidInputError(f"bad synth spec {text!r}: expected synth:N or synth:N:SEED with integers, "
                                "e.g. synth:200:7")
    from reasonseg_x.data.synth import SynthSource
    from reasonseg_x.data.synth.source import MAX_SAMPLES

    n, seed = int(match.group("n")), int(match.group("seed") or 0)
    if not 1 <= n <= MAX_SAMPLES:
        raise InvalidInputError(f"synth:N needs 1 <= N <= {MAX_SAMPLES:,}, got {n:,}")

    source = SynthSource(n, seed, skip_invalid=skip_invalid)
    source.spec = text
    return source


def _open_lisa(path: Path, *, spec: str, skip_invalid: bool, open_taxonomy: bool) -> Source:
    import inspect

    from reasonseg_x.data.lisa import LisaSource

    params = inspect.signature(LisaSource).parameters
    kwargs = {"skip_invalid": skip_invalid}
    if "open_taxonomy" in params:
        kwargs["open_taxonomy"] = open_taxonomy
    source = LisaSource(path, **kwargs)
    source.spec = spec
    return source
