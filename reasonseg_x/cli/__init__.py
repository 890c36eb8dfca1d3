"""The ``reasonseg-x`` command line: a thin typer layer over the library.

Each command group lives in its own module and imports heavy libraries inside the command
functions, so ``reasonseg-x --help`` and ``reasonseg-x score`` start fast.
"""

from __future__ import annotations

import importlib

import typer

from reasonseg_x._version import __version__
from reasonseg_x.cli._common import explain_switch_values, show_flags_as_switches

app = typer.Typer(
    name="reasonseg-x",
    help="ReasonSeg-X: load the benchmark, run models, score predictions, host a leaderboard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

show_flags_as_switches()
explain_switch_values()

#: modules that attach their commands to ``app`` (each owns one command group)
_COMMAND_MODULES = ("data", "score", "eval", "leaderboard", "star", "show", "reward")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"reasonseg-x {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """ReasonSeg-X benchmark toolkit."""


for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"reasonseg_x.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command group not written yet
        if exc.name != f"reasonseg_x.cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    app()
