"""The built-in model catalog, read from ``baselines/models.yaml`` (shipped in the wheel).

Why data: which models exist, which extra each needs, their default checkpoints and the values a
model pins are facts a user or a leaderboard host reads and edits without reading Python. The
arguments themselves stay with each model's ``Options`` class (see :mod:`.arguments`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from reasonseg_x._resources import shipped_file
from reasonseg_x.errors import InvalidInputError

__all__ = ["CatalogEntry", "builtin_models", "catalog_entry", "catalog_options"]

_KEYS = {"name", "factory", "description", "extra", "defaults", "pinned", "path_arg"}


@dataclass(frozen=True)
class CatalogEntry:
    """One built-in model as the catalog describes it."""

    name: str
    factory: str
    description: str
    extra: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    pinned: Mapping[str, Any] = field(default_factory=dict)
    path_arg: str | None = None

    @property
    def default_checkpoint(self) -> str | None:
        return self.defaults.get("checkpoint")


@lru_cache(maxsize=None)
def builtin_models() -> tuple[CatalogEntry, ...]:
    """Every entry of ``baselines/models.yaml``, in file order (checked: a broken catalog is an error
    naming the entry, not a model that silently disappears)."""
    import yaml

    path = shipped_file("baselines", "models.yaml")
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = []
    for i, raw in enumerate(doc.get("models") or []):
        where = f"{path}: models[{i}]"
        if not isinstance(raw, dict) or not {"name", "factory", "description"} <= set(raw):
            raise InvalidInputError("a model needs name, factory and description", where)
        unknown = set(raw) - _KEYS
        if unknown:
            raise InvalidInputError(f"unknown key(s) {', '.join(sorted(unknown))}", where)
        if ":" not in str(raw["factory"]):
            raise InvalidInputError(f"factory must be 'module:attr', got {raw['factory']!r}", where)
        entries.append(CatalogEntry(str(raw["name"]), str(raw["factory"]), str(raw["description"]),
                                    str(raw.get("extra") or ""), dict(raw.get("defaults") or {}),
                                    dict(raw.get("pinned") or {}), raw.get("path_arg")))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise InvalidInputError("a model name is listed twice", str(path))
    return tuple(entries)


def catalog_entry(name: str) -> CatalogEntry:
    for entry in builtin_models():
        if entry.name == name:
            return entry
    raise KeyError(name)


def catalog_options(name: str, options: type, given: Mapping[str, Any]) -> Any:
    """The ``Options`` of the built-in model ``name`` from keyword values, with the catalog's
    defaults and pins: how every built-in model's constructor binds its arguments (the registry
    binds ``-a`` strings by the same rule, :func:`reasonseg_x.predictors.arguments.bind_values`)."""
    from reasonseg_x.predictors.arguments import build_options

    entry = catalog_entry(name)
    return build_options(options, given, model=entry.name, defaults=entry.defaults, pinned=entry.pinned)
