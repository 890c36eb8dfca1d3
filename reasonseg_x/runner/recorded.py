"""Defaults a command takes from a run folder's record (``runner/record.py``), for ``score`` and ``submit``.

A user who ran ``eval -d mini -n 20`` and then types ``score -p runs/oracle-mini`` or ``submit
runs/oracle-mini`` means that run's data, split and samples: asking them again is a trap (and a
default of the full Hub dataset fails offline). An explicit flag still wins, with a warning when
it differs from what the run used.

Also the other direction: ``score -o DIR`` must not write one run's numbers beside another run's
predictions (:func:`check_scores_target`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import loads_user_json
from reasonseg_x.predictions import RUN_PREDICTIONS as PREDICTIONS_FILE
from reasonseg_x.runner.record import RUN_FILE, is_run_folder

__all__ = ["choose_option", "check_scores_target"]

_T = TypeVar("_T")


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def choose_option(flag: str, given: _T | None, recorded: _T | None, default: _T, *, run: Path,
                  warn: Callable[[str], None] = _warn) -> _T:
    """``given`` if the user passed it (warning when the run used another value), else the run's, else ``default``."""
    if given is None:
        return recorded if recorded is not None else default
    if recorded is not None and given != recorded:
        warn(f"warning: {flag} {given} differs from the {recorded} that {run / RUN_FILE} records; using {given}")
    return given


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


def check_scores_target(out: str | Path, predictions: str | Path | None) -> None:
    """Refuse to write scores of ``predictions`` into ``out`` when ``out`` belongs to other predictions.

    ``out`` belongs to other predictions when it is a run folder (``run.json``) and ``predictions``
    are not its ``predictions.jsonl``, or when its ``metrics.json`` scored another file. Rescoring
    a folder's own predictions (another protocol, fixed data) is allowed.
    """
    out = Path(out)
    hint = "pass --overwrite to replace them, or choose another --out"
    if is_run_folder(out):
        own = out / PREDICTIONS_FILE
        if predictions is None or not _same_file(predictions, own):
            raise InvalidInputError(f"{out} is the folder of another run: writing these scores there would pair its "
                                    f"predictions ({own}) with the numbers of {predictions}; {hint}")
        return
    metrics = out / "metrics.json"
    if not metrics.is_file():
        return
    try:
        scored = (loads_user_json(metrics.read_text(encoding="utf-8"), None).get("predictions") or {}).get("path")
    except (ValueError, UnicodeDecodeError, AttributeError, OSError):
        scored = None
    if not scored or predictions is None or not _same_file(scored, predictions):
        raise InvalidInputError(f"{out} holds the scores of other predictions ({scored or 'unknown'}); {hint}")
