"""reasonseg-x: the benchmark and dataset toolkit for ReasonSeg-X reasoning segmentation.

The package imports nothing heavy at start-up: ``reasonseg-x score`` must start fast, and the
core install has no torch. Public entry points are resolved lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reasonseg_x._version import __version__

__all__ = ["__version__", "Evaluator", "load_dataset", "open_source"]

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.data.datasets_api import load_dataset
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.evaluators.evaluator import Evaluator


def __getattr__(name: str) -> Any:
    if name == "load_dataset":
        from reasonseg_x.data.datasets_api import load_dataset

        return load_dataset
    if name == "open_source":
        from reasonseg_x.data.resolve import open_source

        return open_source
    if name == "Evaluator":
        from reasonseg_x.evaluators.evaluator import Evaluator

        return Evaluator
    raise AttributeError(f"module 'reasonseg_x' has no attribute {name!r}")
