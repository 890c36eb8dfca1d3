"""Helpers shared by CLI commands: turn toolkit errors into clean one-line messages."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer

from reasonseg_x.errors import ReasonSegXError


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print a :class:`ReasonSegXError` as ``error: ...`` on stderr and exit 2, no traceback."""
    try:
        yield
    except ReasonSegXError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(code=2) from None
