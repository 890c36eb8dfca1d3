"""Progress reporting for the eval loop: a rich bar for terminals, periodic log lines for ``--quiet``."""

from __future__ import annotations

import sys
import time
from typing import Any

from reasonseg_x.runner.evaluate import Progress

__all__ = ["RichProgress", "LogProgress", "NullProgress", "make_progress_factory", "short_label"]


class NullProgress(Progress):
    def __init__(self, *_: Any) -> None:
        pass


class RichProgress(Progress):
    """Bar, done/total, samples/s, elapsed and ETA on stderr (compact: fits an 80-column terminal)."""

    def __init__(self, total: int, completed: int, description: str) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as _Bar, TaskProgressColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._bar = _Bar(TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                         TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                         TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self._task = self._bar.add_task(short_label(description), total=total, completed=completed, rate="")
        self._start = time.perf_counter()
        self._new = 0

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def advance(self, n: int) -> None:
        self._new += n
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._bar.update(self._task, advance=n, rate=f"{self._new / elapsed:.2f} samples/s")

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


def short_label(model: str, width: int = 20) -> str:
    """The model's name as the bar shows it: ``pkg.module:Factory`` -> ``Factory``, long names cut."""
    head, sep, _ = model.partition(":")
    label = head if head == "predictions" else (model.rsplit(":", 1)[-1] if sep else model)
    return label if len(label) <= width else label[: width - 1] + "\u2026"


class LogProgress(Progress):
    """One line every ``every_s`` seconds (and at the end): for cluster logs and ``--quiet``."""

    def __init__(self, total: int, completed: int, description: str, every_s: float = 30.0) -> None:
        self.total, self.done, self.description, self.every_s = total, completed, description, every_s
        self._start = self._last = time.perf_counter()
        self._new = 0

    def __enter__(self) -> LogProgress:
        self._log("start")
        return self

    def advance(self, n: int) -> None:
        self.done += n
        self._new += n
        now = time.perf_counter()
        if now - self._last >= self.every_s:
            self._last = now
            self._log("progress")

    def __exit__(self, *exc: object) -> None:
        self._log("done" if exc[0] is None else "stopped")

    def _log(self, what: str) -> None:
        elapsed = time.perf_counter() - self._start
        rate = self._new / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta_text = f"{eta:.0f}s" if eta == eta else "?"
        print(f"[reasonseg-x] {self.description} {what}: {self.done}/{self.total} samples, {rate:.2f} samples/s, "
              f"ETA {eta_text}", file=sys.stderr, flush=True)


def make_progress_factory(*, quiet: bool, enabled: bool = True) -> Any:
    """A factory for :func:`reasonseg_x.runner.evaluate.run_eval`'s ``progress`` argument."""
    if not enabled:
        return NullProgress
    if quiet or not sys.stderr.isatty():
        return LogProgress
    return RichProgress
