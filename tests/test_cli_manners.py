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


def test_merge_takes_quiet_like_the_other_commands(tmp_path):
    for shard in range(2):
        done = _cli("eval", "-m", "oracle", "-n", "6", "-q", "-o", tmp_path / "run", "--num-shards", "2",
                    "--shard-id", shard)
        assert done.exit_code == 0, done.output
    loud = _cli("merge", tmp_path / "run")
    assert loud.exit_code == 0 and "Overall" in loud.output, loud.output
    quiet = _cli("merge", tmp_path / "run", "-q")
    assert quiet.exit_code == 0 and "Overall" not in quiet.output and "merged 2 shards" in quiet.output


def test_data_export_refusal_names_the_overwrite_flag(tmp_path):
    assert _cli("data", "export", "mini", "--out", tmp_path / "x").exit_code == 0
    again = _cli("data", "export", "mini", "--out", tmp_path / "x")
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_models_suggests_the_close_name_as_eval_does():
    listed = _cli("models", "stra")
    assert listed.exit_code == 2 and "Did you mean 'star'?" in listed.output
    run = _cli("eval", "-m", "stra")
    assert run.exit_code == 2 and "Did you mean 'star'?" in run.output


def test_a_manifest_folder_is_refused_with_what_is_wanted(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"id": "a", "mask": null}\n')
    done = _cli("submit", tmp_path / "p.jsonl", "--model-name", "x", "--out", tmp_path / "b", "--manifest", tmp_path)
    assert done.exit_code == 2 and "is a folder; --manifest wants the manifest JSON file" in done.output


@pytest.mark.parametrize("argv", [["eval", "--model", "star", "--help"], ["eval", "--help", "-m", "star"],
                                  ["eval", "--model=star", "--help"]])
def test_eval_help_with_a_model_shows_that_models_arguments(argv):
    done = _cli(*argv)
    assert done.exit_code == 0, done.output
    assert "--model-arg" in done.output  # the command's own help comes first
    assert "checkpoint: str = 'sj9909/StAR-7B'" in done.output and "tts: int" in done.output
    models = _cli("models", "star")
    assert models.output.strip() in done.output  # one formatter for both


def test_eval_help_with_an_unknown_model_suggests_the_close_name():
    done = _cli("eval", "-m", "stra", "--help")
    assert done.exit_code == 0 and "Did you mean 'star'?" in done.output


def test_models_name_lists_every_argument_the_constructor_accepts():
    import dataclasses

    from reasonseg_x.predictors.catalog import builtin_models
    from reasonseg_x.predictors.registry import _import_path

    for entry in builtin_models():
        factory = _import_path(entry.factory)
        options = getattr(factory, "Options", None)
        if options is None:
            continue
        shown = _cli("models", entry.name).output
        for field in dataclasses.fields(options):
            if field.name not in (entry.pinned or {}):
                assert f"    {field.name}: " in shown, (entry.name, field.name)


def test_compare_fits_80_columns_without_cutting_a_number(tmp_path):
    import io

    from rich.console import Console

    from reasonseg_x.evaluators.compare import compare_runs, load_run, print_comparison

    for name, model in (("a", "oracle"), ("b", "empty")):
        assert _cli("eval", "-m", model, "-q", "-o", tmp_path / name).exit_code == 0
    result = compare_runs(load_run(tmp_path / "a"), load_run(tmp_path / "b"), n_resamples=200, seed=0)
    buf = io.StringIO()
    print_comparison(result, console=Console(file=buf, width=80, force_terminal=False))
    lines = buf.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in buf.getvalue()
    text = buf.getvalue()
    assert "-100.0 [-100.0, -100.0]" in text and "100.0 -> 0.0" in text


def test_a_value_after_a_switch_is_explained():
    done = _cli("eval", "-m", "oracle", "--strict", "true")
    assert done.exit_code == 2
    assert "--strict is a switch and takes no value" in " ".join(done.output.split())
    other = _cli("score", "-p", "x", "surplus")
    assert other.exit_code == 2 and "unexpected extra argument" in other.output


def test_models_takes_a_name_in_other_case():
    listed = _cli("models", "StAR")
    assert listed.exit_code == 0 and "checkpoint: str = 'sj9909/StAR-7B'" in listed.output
