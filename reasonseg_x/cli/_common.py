"""Helpers shared by CLI commands: turn toolkit errors into clean one-line messages."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import typer

from reasonseg_x.errors import ReasonSegXError, WriteError, is_write_fault


@contextlib.contextmanager
def user_errors(output: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Print a :class:`ReasonSegXError` as ``error: ...`` on stderr and exit 2, no traceback.

    An OS refusal to write that no layer below put in words (a read-only folder, ``ulimit -f``, a
    full disk) is printed the same way, naming the file the OS named, else ``output`` (the
    command's output folder).
    """
    try:
        yield
    except ReasonSegXError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(code=2) from None
    except OSError as exc:
        if not is_write_fault(exc):
            raise
        print(f"error: {WriteError(exc.filename or output or 'the output', exc)}", file=sys.stderr)
        raise typer.Exit(code=2) from None


def require_predictions_path(path: str | os.PathLike[str]) -> None:
    """Refuse a predictions path that does not exist before anything else is asked of the user: a
    typo in ``-p`` must not read as "--data is required" or end in a download attempt."""
    if not os.path.exists(path):
        from reasonseg_x.errors import InvalidInputError

        raise InvalidInputError("no such predictions file or run folder", os.fspath(path))


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


_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def explain_switch_values() -> None:
    """``--strict true`` fails with "unexpected extra argument (true)"; say that a switch takes no value."""
    from typer import core

    usage_error = core._click.exceptions.UsageError  # typer's click (vendored by recent typer), not necessarily ``click``
    original = core.TyperCommand.parse_args
    if getattr(original, "_switches", False):
        return

    def parse_args(self: core.TyperCommand, ctx: object, args: list[str]) -> list[str]:
        given = list(args)
        try:
            return original(self, ctx, args)
        except usage_error:
            flags = {name for p in self.params if getattr(p, "is_flag", False) for name in p.opts}
            for before, value in zip(given, given[1:]):
                if before in flags and value.lower() in _BOOL_WORDS:
                    raise usage_error(f"{before} is a switch and takes no value: write {before} alone "
                                      f"(not {before} {value}), or leave it out", ctx) from None
            raise

    parse_args._switches = True  # type: ignore[attr-defined]
    core.TyperCommand.parse_args = parse_args  # type: ignore[method-assign]
