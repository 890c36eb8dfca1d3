"""Locate the data folders (``taxonomy/``, ``annotations/``, ``evaluators/``) shipped with the package.

In a wheel they live under ``reasonseg_x/_shipped/``; in a source checkout (editable install or
tests) they are the top-level folders beside the package.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def shipped_dir(name: str) -> Path:
    """Return the folder ``name`` (``"taxonomy"``, ``"annotations"`` or ``"evaluators"``) wherever it was installed."""
    for candidate in (_PACKAGE_DIR / "_shipped" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"shipped data folder {name!r} not found next to {_PACKAGE_DIR}")


def shipped_file(*parts: str) -> Path:
    """Path of a file inside a shipped data folder, e.g. ``shipped_file("taxonomy", "reasonseg_x.yaml")``."""
    return shipped_dir(parts[0]).joinpath(*parts[1:])
