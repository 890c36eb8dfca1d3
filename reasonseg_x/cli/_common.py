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


def show_flags_as_switches() -> None:
    """Help lists boolean flags as switches, without a ``<bool>`` type that invites ``--strict true``.

    typer's rich help shows every option's type, flags included; a flag takes no value, so its
    type column stays empty (the plain-text help already leaves it out).
    """
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "_switches", False):
        return

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._switches = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
