"""``reasonseg-x eval --model star`` end to end on the tiny checkpoints (registry, runner, scoring)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

# third-party deprecation noise (peft/transformers/torch.jit), not ours
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
pytest.importorskip("peft")
typer_testing = pytest.importorskip("typer.testing")

from _star_tiny import tiny_checkpoints  # noqa: E402


def _data_spec() -> str:
    """The embedded mini split when it is installed, else a procedural one."""
    try:
        from reasonseg_x._resources import shipped_dir

        if (shipped_dir("annotations") / "mini").is_dir():
            return "mini"
    except Exception:  # noqa: BLE001 - older trees
        pass
    return "synth:6"


def _eval(tmp_path, *args: str):
    from reasonseg_x.cli import app

    out = tmp_path / "run"
    result = typer_testing.CliRunner().invoke(app, ["eval", *args, "-d", _data_spec(), "-n", "6", "-o", str(out),
                                                    "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return out, lines


def test_eval_star_with_a_local_tiny_checkpoint(tmp_path):
    ckpt = tiny_checkpoints()
    out, lines = _eval(tmp_path, "-m", "star", "-a", f"checkpoint={ckpt.lora_old}", "-a", f"segmenter={ckpt.sam2}",
                       "-a", "max_new_tokens=8", "-a", "device=cpu")
    assert len(lines) == 6
    assert {line["status"] for line in lines} == {"parse_error"}  # random weights never answer
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 6


def test_eval_scripted_star_scores_masks(tmp_path):
    out, lines = _eval(tmp_path, "-m", "_star_tiny:ScriptedStarPredictor", "-b", "3")
    assert [line["status"] for line in lines] == ["ok", "no_target", "parse_error"] * 2
    assert all(line["mask"]["size"] for line in lines if line["status"] == "ok")
    assert all("timings" in line["meta"] for line in lines)
    assert json.loads((out / "metrics.json").read_text())["overall"]["n"] == 6


def test_eval_scripted_star_with_majority_vote(tmp_path):
    _, lines = _eval(tmp_path, "-m", "_star_tiny:ScriptedStarPredictor", "-a", "tts=3")
    # one ok, one no-target, one unparseable answer per query: 1 of 2 valid runs votes "no object"
    assert {line["status"] for line in lines} == {"no_target"}
    assert all(len(line["meta"]["candidates"]) == 3 for line in lines)


def test_eval_gt_box_sam_upper_bound(tmp_path):
    ckpt = tiny_checkpoints()
    out, lines = _eval(tmp_path, "-m", "gt-box-sam", "-a", f"segmenter={ckpt.sam2}", "-a", "device=cpu")
    assert len(lines) == 6 and {line["status"] for line in lines} <= {"ok", "no_target"}
    assert json.loads((out / "metrics.json").read_text())["overall"]["n"] == 6


def test_star_tiny_checkpoint_prints_an_eval_command_that_runs_on_mini(tmp_path):
    """`reasonseg-x star tiny-checkpoint` (the documented dry run before GPU hours): the command it
    prints runs the whole star pipeline on two mini samples."""
    import shlex

    from reasonseg_x.cli import app

    runner = typer_testing.CliRunner()
    made = runner.invoke(app, ["star", "tiny-checkpoint", "--out", str(tmp_path / "tiny")])
    assert made.exit_code == 0, made.output + repr(made.exception)
    [command] = [line.strip() for line in made.output.splitlines() if line.strip().startswith("reasonseg-x eval")]
    argv = shlex.split(command)
    assert argv[:4] == ["reasonseg-x", "eval", "--model", "star"] and "--limit" in argv and "mini" in argv
    ran = runner.invoke(app, [*argv[1:], "--quiet"])
    assert ran.exit_code == 0, ran.output + repr(ran.exception)
    out = tmp_path / "tiny" / "run"
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and {line["status"] for line in lines} == {"parse_error"}  # random weights
    assert json.loads((out / "metrics.json").read_text())["overall"]["n"] == 2
    again = runner.invoke(app, ["star", "tiny-checkpoint", "--out", str(tmp_path / "tiny")])
    assert again.exit_code == 2 and "not empty" in again.output
