"""What a run folder's ``run.json`` records, for the commands that take a run folder (``score``, ``submit``).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import loads_user_json
from reasonseg_x.predictions import RUN_PREDICTIONS as PREDICTIONS_FILE
from reasonseg_x.runner.runinfo import RUN_FILE

__all__ = ["RecordedRun", "recorded_run", "choose_option", "check_scores_target"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class RecordedRun:
    """The parts of ``run.json`` that another command reuses."""

    folder: Path
    data: str | None
    split: str | None
    protocol: str | None
    limit: int | None
    shard_index: int
    shard_count: int
    open_taxonomy: bool

    @property
    def predictions(self) -> Path:
        return self.folder / PREDICTIONS_FILE

    def partial(self) -> bool:
        """Whether the run covered only part of its split (``--limit`` or a shard)."""
        return self.limit is not None or self.shard_count > 1


def run_folder_of(path: str | Path) -> Path | None:
    """The run folder ``path`` names: the folder itself, or the folder of its ``predictions.jsonl``."""
    path = Path(path)
    if path.is_dir() and (path / RUN_FILE).is_file():
        return path
    if path.name == PREDICTIONS_FILE and (path.parent / RUN_FILE).is_file():
        return path.parent
    return None


def recorded_run(path: str | Path) -> RecordedRun | None:
    """What the run at ``path`` (a run folder or its predictions file) recorded; None when it is not one."""
    folder = run_folder_of(path)
    if folder is None:
        return None
    try:
        info = loads_user_json((folder / RUN_FILE).read_text(encoding="utf-8"), None)
    except (OSError, ValueError, UnicodeDecodeError):  # eval's business; here it only supplies defaults
        return None
    if not isinstance(info, dict):
        return None
    data = info.get("data") if isinstance(info.get("data"), dict) else {}
    shard = data.get("shard") if isinstance(data.get("shard"), dict) else {}

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    limit = data.get("limit")
    return RecordedRun(folder=folder, data=text(data.get("spec")), split=text(data.get("split")),
                       protocol=text(info.get("protocol")),
                       limit=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
                       shard_index=int(shard.get("index", 0) or 0), shard_count=int(shard.get("count", 1) or 1),
                       open_taxonomy=bool(data.get("open_taxonomy", False)))


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
    if (out / RUN_FILE).is_file():
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
