"""CLI manners a new user meets: switches shown as switches, the same short options everywhere,
refusals that name their way out, suggestions for a mistyped model name."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from reasonseg_x.cli import app


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "120"})


@pytest.mark.parametrize("command", [["eval"], ["score"], ["merge"], ["data", "export"], ["submit"]])
def test_help_shows_boolean_flags_as_switches(command):
    done = _cli(*command, "--help")
    assert done.exit_code == 0, done.output
    assert "<bool>" not in done.output
    assert "--help" in done.output
