"""Metric conventions, read from the shipped ``evaluators/protocols.yaml`` (docs/protocols.md section 3).

The published pipelines disagree on what ignore (255) pixels mean, what a sample with an empty
union scores, how a failed answer counts and how pooled sums are guarded. A :class:`Protocol`
names each choice, so every number the toolkit prints says which convention produced it. The
YAML file is the single source: it is validated when first read, and a bad entry raises naming
the file and the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_x.errors import InvalidInputError

__all__ = ["Protocol", "PROTOCOLS", "ALIASES", "get_protocol", "protocol_names", "load_protocols",
           "IGNORE_RULES", "FAILED_ANSWER_RULES"]

IGNORE_RULES = ("merge", "exclude")
FAILED_ANSWER_RULES = ("as_empty", "zero")
_FORMAT = 1


@dataclass(frozen=True)
class Protocol:
    """One metric convention.

    ``ignore``: ``"merge"`` (ignore pixels are target) or ``"exclude"`` (neither TP nor FP).
    ``empty_union_iou``: the IoU of a sample with U = 0. ``failed_answer``: ``"as_empty"`` (a
    failure scores like an empty mask) or ``"zero"`` (IoU 0 even on an empty target).
    ``iou_eps`` / ``ciou_eps``: the denominators' epsilons (LISA adds 1e-5 per sample and 1e-10
    pooled). ``empty_pool_ciou``: cIoU of a group whose pooled union is 0. ``no_target_rows``:
    GRES-style rows without a target, with correct rejection and N-acc/T-acc.
    """

    name: str
    ignore: str
    empty_union_iou: float
    iou_eps: float = 0.0
    ciou_eps: float = 0.0
    empty_pool_ciou: float = 0.0
    no_target_rows: bool = False
    description: str = ""
    used_by: str = ""
    failed_answer: str = "as_empty"
    aliases: tuple[str, ...] = ()
    follows: str = ""

    def iou_of(self, intersection: int, union: int) -> float:
        """Per-sample IoU of one sample."""
        if union == 0:
            return float(self.empty_union_iou)
        return float(intersection) / (float(union) + self.iou_eps)

    def failed_iou(self, target_area: int) -> float:
        """The IoU of a failed answer on a target of ``target_area`` pixels."""
        return 0.0 if self.failed_answer == "zero" else self.iou_of(0, target_area)

    def pooled_iou(self, intersection_sum: np.ndarray | float, union_sum: np.ndarray | float) -> np.ndarray:
        """cIoU from pooled sums (vectorised over bootstrap resamples)."""
        i = np.asarray(intersection_sum, dtype=np.float64)
        u = np.asarray(union_sum, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            c = i / (u + self.ciou_eps)
        return np.where(u == 0, self.empty_pool_ciou, c)


# --- reading protocols.yaml ---------------------------------------------------------------------

#: YAML key -> (Protocol field, expected kind)
_FIELDS: dict[str, tuple[str, str]] = {
    "aliases": ("aliases", "names"),
    "ignore_region": ("ignore", "ignore"),
    "empty_union_iou": ("empty_union_iou", "unit"),
    "failed_answer": ("failed_answer", "failed"),
    "iou_eps": ("iou_eps", "eps"),
    "ciou_eps": ("ciou_eps", "eps"),
    "empty_pool_ciou": ("empty_pool_ciou", "unit"),
    "no_target_rows": ("no_target_rows", "bool"),
    "used_by": ("used_by", "text"),
    "follows": ("follows", "text"),
    "description": ("description", "text"),
}


def _value(kind: str, value: Any, where: str) -> Any:
    def bad(expected: str) -> InvalidInputError:
        return InvalidInputError(f"expected {expected}, got {value!r}", where)

    if kind in ("unit", "eps"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a number (write 1.0e-5, not 1e-5: YAML 1.1 reads the latter as text)")
        if kind == "unit" and not 0.0 <= value <= 1.0:
            raise bad("a number in [0, 1]")
        if kind == "eps" and not 0.0 <= value < 1.0:
            raise bad("a small non-negative number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind == "text":
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            raise bad("a one-line text")
        return value
    if kind == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise bad("a list of names")
        return tuple(v.strip().lower() for v in value)
    allowed = IGNORE_RULES if kind == "ignore" else FAILED_ANSWER_RULES
    if value not in allowed:
        raise bad(" or ".join(allowed))
    return value


def _parse(doc: Any, where: str) -> dict[str, Protocol]:
    if not isinstance(doc, dict) or set(doc) != {"format", "protocols"}:
        raise InvalidInputError("expected the keys 'format' and 'protocols' at the top level", where)
    if doc["format"] != _FORMAT:
        raise InvalidInputError(f"format {doc['format']!r} is not supported (this toolkit reads format {_FORMAT})",
                                where)
    entries = doc["protocols"]
    if not isinstance(entries, dict) or not entries:
        raise InvalidInputError("'protocols' must map protocol names to their rules", where)
    out: dict[str, Protocol] = {}
    for name, entry in entries.items():
        at = f"{where}: protocols.{name}"
        if not isinstance(name, str) or name != name.strip().lower() or not name:
            raise InvalidInputError("a protocol name must be a lower-case string", at)
        if not isinstance(entry, dict):
            raise InvalidInputError("expected a mapping of rules", at)
        unknown = sorted(set(map(str, entry)) - set(_FIELDS))
        missing = [key for key in _FIELDS if key not in entry]
        if unknown:
            raise InvalidInputError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}", at)
        if missing:
            raise InvalidInputError(f"missing key(s) {', '.join(missing)}", at)
        values = {field: _value(kind, entry[key], f"{at}.{key}") for key, (field, kind) in _FIELDS.items()}
        out[name] = Protocol(name=name, **values)
    return out


def _aliases(protocols: dict[str, Protocol], where: str) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for proto in protocols.values():
        for alias in proto.aliases:
            taken = aliases.get(alias) or (alias if alias in protocols else None)
            if taken is not None:
                raise InvalidInputError(f"alias {alias!r} of {proto.name!r} is already the name or an alias of "
                                        f"{taken!r}", f"{where}: protocols.{proto.name}.aliases")
            aliases[alias] = proto.name
    return aliases


def load_protocols(path: str | Path | None = None) -> tuple[dict[str, Protocol], dict[str, str]]:
    """``(protocols by name, alias -> name)`` from ``path`` (default: the shipped protocols.yaml)."""
    if path is None:
        return _shipped()
    return _load(Path(path))


def _load(path: Path) -> tuple[dict[str, Protocol], dict[str, str]]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the protocols file: {exc}", str(path)) from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"malformed YAML: {exc}", str(path)) from None
    protocols = _parse(doc, str(path))
    return protocols, _aliases(protocols, str(path))


@lru_cache(maxsize=1)
def _shipped() -> tuple[dict[str, Protocol], dict[str, str]]:
    from reasonseg_x._resources import shipped_file

    return _load(shipped_file("evaluators", "protocols.yaml"))


def __getattr__(name: str) -> Any:
    # PROTOCOLS and ALIASES are read on first use, not at import (CLI start-up stays fast)
    if name == "PROTOCOLS":
        return _shipped()[0]
    if name == "ALIASES":
        return _shipped()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def protocol_names() -> list[str]:
    return list(_shipped()[0])


def get_protocol(name: str | Protocol) -> Protocol:
    """Resolve a protocol name or alias (case-insensitive)."""
    if isinstance(name, Protocol):
        return name
    protocols, aliases = _shipped()
    key = str(name).strip().lower()
    key = aliases.get(key, key)
    if key not in protocols:
        known = ", ".join(f"{p.name} (= {', '.join(p.aliases)})" if p.aliases else p.name
                          for p in protocols.values())
        raise InvalidInputError(f"unknown protocol {name!r}; known: {known}")
    return protocols[key]
