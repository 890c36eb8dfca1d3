"""What a new user reads: help texts as written (no help string loses a bracketed part to rich markup, which left a
stray space before the period: "Accept unknown reasoning types ."), and the README's set-up steps."""

from __future__ import annotations

import re

import typer.main
from typer.testing import CliRunner

from reasonseg_x.cli import app


def _command_paths(command, path=()):
    yield list(path)
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _command_paths(sub, (*path, name))


def _helps():
    """``(command path, its --help)`` for every command and group, unwrapped (400 columns)."""
    runner = CliRunner()
    for path in _command_paths(typer.main.get_command(app)):
        done = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
        assert done.exit_code == 0, (path, done.output)
        yield path, done.output


def test_no_help_text_has_a_space_before_its_punctuation():
    stray = [(path, line.strip()) for path, output in _helps() for line in output.splitlines()
             if re.search(r"\S +[.,;:](\s|$)", line)]
    assert stray == []


def test_no_usage_line_says_a_repeated_argument_twice():
    """``merge [OPTIONS] {DIR...}...`` read as a list of lists: the "..." is typer's to add."""
    doubled = [(path, line.strip()) for path, output in _helps() for line in output.splitlines()
               if "Usage:" in line and "...}..." in line]
    assert doubled == []


def test_every_command_listed_in_one_line():
    """A group's list of commands shows each command's first paragraph: a docstring whose first
    paragraph spans several lines showed them broken mid-sentence (``star --help``)."""
    broken = [(path, row.strip()) for path, output in _helps() if "Commands" in output
              for row in output.split("Commands", 1)[1].splitlines()[1:] if re.match(r"│\s{3,}\S", row)]
    assert broken == []


def test_defaults_in_help_are_shown():
    done = CliRunner().invoke(app, ["merge", "--help"], env={"COLUMNS": "400"})
    assert "(default: the shards' parent folder)." in done.output and "(default: as the shards were run)." in done.output


def test_readme_tells_how_to_install_the_cpu_torch_and_try_star_tiny():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    cpu = readme.index("pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu")
    assert cpu < readme.index('pip install ".[models]"', cpu)  # the CPU build first, then the extra
    assert "reasonseg-x star tiny-checkpoint --out" in readme
