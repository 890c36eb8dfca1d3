"""Groupings of samples (reasoning type, query kind, source) loaded from ``taxonomy/*.yaml``.

One mechanism serves every grouping: a :class:`Taxonomy` is an ordered set of categories, each
with a canonical ``id`` (the raw string of the published data), a short ``code``, a ``name``, a
definition and aliases. :meth:`Taxonomy.resolve` maps any alias (case-insensitive) to the id and
rejects unknown labels, unless the taxonomy is *open*, where an unknown label stays its own group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from reasonseg_x._resources import shipped_dir
from reasonseg_x.errors import InvalidInputError, UnknownLabelError

__all__ = ["Category", "Taxonomy", "load_taxonomy", "reasoning_types", "query_kinds", "sources", "available_taxonomies"]


def _normalise(label: str) -> str:
    """Case-, space- and punctuation-insensitive key: 'Purpose / Functional' == 'purpose-functional'."""
    return re.sub(r"[\s_\-/]+", "", str(label).strip().lower())


@dataclass(frozen=True)
class Category:
    id: str
    code: str
    name: str
    definition: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    name: str
    categories: tuple[Category, ...]
    description: str = ""
    open: bool = False
    _index: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for cat in self.categories:
            for label in (cat.id, cat.code, cat.name, *cat.aliases):
                key = _normalise(label)
                owner = index.setdefault(key, cat.id)
                if owner != cat.id:
                    raise InvalidInputError(
                        f"taxonomy {self.name!r}: label {label!r} is claimed by both {owner!r} and {cat.id!r}")
        object.__setattr__(self, "_index", index)

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.categories]

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and _normalise(label) in self._index

    def __len__(self) -> int:
        return len(self.categories)

    def resolve(self, label: str | None) -> str | None:
        """Map a raw string, code, name or alias to the category id.

        ``None`` and empty strings stay ``None`` (unlabelled). An unknown label raises
        :class:`UnknownLabelError` listing the known ones, or is returned stripped when open.
        """
        if label is None:
            return None
        text = str(label).strip()
        if not text:
            return None
        hit = self._index.get(_normalise(text))
        if hit is not None:
            return hit
        if self.open:
            return text
        known = ", ".join(f"{c.id} ({c.code}, {c.name})" for c in self.categories)
        raise UnknownLabelError(f"unknown {self.name} label {text!r}; known: {known}. "
                                "To keep unknown labels as their own group, open the taxonomy "
                                "(--open-taxonomy on the command line, open_taxonomy=True in Python).")

    def category(self, label: str) -> Category:
        """The category of a label; in an open taxonomy an unknown label gets an ad-hoc category."""
        cid = self.resolve(label)
        for cat in self.categories:
            if cat.id == cid:
                return cat
        assert cid is not None
        return Category(id=cid, code=cid, name=cid)

    def sort_key(self, cid: str) -> tuple[int, str]:
        """Order of groups in reports: the taxonomy's order, then unknown labels alphabetically."""
        ids = self.ids
        return (ids.index(cid), "") if cid in ids else (len(ids), cid)

    def opened(self, value: bool = True) -> Taxonomy:
        return replace(self, open=value)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> Taxonomy:
        try:
            cats = tuple(
                Category(id=str(c["id"]), code=str(c.get("code", c["id"])), name=str(c.get("name", c["id"])),
                         definition=str(c.get("definition", "")).strip(),
                         aliases=tuple(str(a) for a in c.get("aliases", ()) or ()))
                for c in data["categories"])
            return cls(name=str(data["name"]), categories=cats, description=str(data.get("description", "")))
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"not a taxonomy file (needs name and categories with id): {exc}", source) from None


def available_taxonomies() -> list[str]:
    return sorted(p.stem for p in shipped_dir("taxonomy").glob("*.yaml"))


@lru_cache(maxsize=None)
def load_taxonomy(name_or_path: str = "reasonseg_x", *, open: bool = False) -> Taxonomy:
    """Load a shipped taxonomy by name (``reasonseg_x``, ``query_kind``, ``source``) or a YAML path."""
    import yaml

    path = Path(name_or_path)
    if not path.suffix:
        path = shipped_dir("taxonomy") / f"{name_or_path}.yaml"
    if not path.is_file():
        raise InvalidInputError(f"no taxonomy {name_or_path!r}; shipped: {', '.join(available_taxonomies())}")
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return Taxonomy.from_dict(data, source=str(path)).opened(open)


def reasoning_types(*, open: bool = False) -> Taxonomy:
    return load_taxonomy("reasonseg_x", open=open)


def query_kinds() -> Taxonomy:
    return load_taxonomy("query_kind")


def sources() -> Taxonomy:
    return load_taxonomy("source", open=True)
