"""run_eval and the `eval` command: resume, identity checks, --fresh, --limit, run.json, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from _runner_helpers import FakeSource, prediction_lines
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.runner import evaluate
from reasonseg_x.runner.evaluate import EvalConfig, run_eval

pytest.importorskip("reasonseg_x.evaluators.api")
HASH = "_runner_helpers:HashPredictor"


def _config(out, **kw):
    return EvalConfig(model=kw.pop("model", HASH), out=out, batch_size=kw.pop("batch_size", 4), **kw)


def test_resume_recomputes_nothing_and_matches_a_clean_run(tmp_path):
    clean = run_eval(_config(tmp_path / "clean"), source=FakeSource(20))
    out = tmp_path / "resumed"
    log = tmp_path / "calls.log"
    first = run_eval(_config(out, model_args={"log": str(log)}), source=FakeSource(20))
    assert first.stats.predicted == 20
    # simulate a crash: keep 9 complete lines plus half of the 10th
    raw = (out / "predictions.jsonl").read_bytes().split(b"\n")
    (out / "predictions.jsonl").write_bytes(b"\n".join(raw[:9]) + b"\n" + raw[9][:17])
    log.write_text("")
    second = run_eval(_config(out, model_args={"log": str(log)}), source=FakeSource(20))
    assert second.already_done == 9 and second.stats.predicted == 11
    assert log.read_text().split() == [f"r{i:03d}" for i in range(9, 20)]  # only the rest was predicted
    assert prediction_lines(out / "predictions.jsonl").keys() == prediction_lines(tmp_path / "clean" / "predictions.jsonl").keys()
    m1 = json.loads((tmp_path / "clean" / "metrics.json").read_text())
    m2 = json.loads((out / "metrics.json").read_text())
    for key in ("overall", "by_reasoning_type", "counts"):
        assert m1[key] == m2[key]
    third = run_eval(_config(out, model_args={"log": str(log)}), source=FakeSource(20))
    assert third.stats is None and third.already_done == 20
    info = json.loads((out / "run.json").read_text())
    assert [s["resumed_from"] for s in info["sessions"]] == [0, 9, 20]
    assert clean.result.metrics["overall"] == second.result.metrics["overall"]


def test_run_json_records_identity_environment_and_timings(tmp_path):
    run_eval(_config(tmp_path, model_args={"delay": "0"}, seed=3), source=FakeSource(8))
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "complete" and info["kind"] == "eval"
    assert info["identity"] == {"model": HASH, "model_args": {"delay": 0.0}, "input_fingerprint":
                                FakeSource(8).input_fingerprint("test"), "split": "test", "seed": 3,
                                "num_shards": 1, "shard_id": 0}
    env = info["environment"]
    assert env["toolkit_version"] and env["python"] and "numpy" in env["packages"] and env["hardware"]["cpu_count"]
    session = info["sessions"][0]
    assert {"started", "finished", "load_model_s", "predict_s", "samples_per_s", "batch_size"} <= set(session)
    assert info["counts"] == {"expected": 8, "written": 8, "statuses": {"ok": 8}}


@pytest.mark.parametrize("change", [
    {"model": "empty"},
    {"model_args": {"delay": "0.001"}},
    {"seed": 1},
    {"source": FakeSource(12, seed=1, spec="fake-other")},
])
def test_a_different_run_refuses_to_mix_and_says_how_to_start_fresh(tmp_path, change):
    run_eval(_config(tmp_path), source=FakeSource(12))
    source = change.pop("source", FakeSource(12))
    with pytest.raises(InvalidInputError, match="--fresh") as info:
        run_eval(_config(tmp_path, **change), source=source)
    assert "different run" in str(info.value)
    if source.spec == "fake-other":  # the fingerprint alone says little
        assert "data: 'fake:12:0' -> 'fake-other'" in str(info.value)
    outcome = run_eval(_config(tmp_path, fresh=True, **change), source=source)
    assert outcome.already_done == 0 and outcome.stats.predicted == 12


def test_predictions_without_run_json_are_refused(tmp_path):
    (tmp_path / "predictions.jsonl").write_text('{"id": "r000", "mask": null, "status": "ok"}\n')
    with pytest.raises(InvalidInputError, match="origin is unknown"):
        run_eval(_config(tmp_path), source=FakeSource(4))


def test_limit_scores_the_subset_and_can_grow_but_not_shrink(tmp_path):
    small = run_eval(_config(tmp_path, limit=5), source=FakeSource(12))
    assert small.result.metrics["overall"]["n"] == 5 and small.result.metrics["counts"]["missing"] == 0
    bigger = run_eval(_config(tmp_path, limit=9), source=FakeSource(12))
    assert bigger.already_done == 5 and bigger.stats.predicted == 4
    with pytest.raises(InvalidInputError, match="6 predictions outside this run's 3 samples.*run with --limit 9, "
                                                "this run asks for --limit 3"):
        run_eval(_config(tmp_path, limit=3), source=FakeSource(12))


def test_a_failed_predictor_marks_run_json_failed_and_keeps_saved_batches(tmp_path):
    with pytest.raises(InvalidInputError):
        run_eval(_config(tmp_path, model="_runner_helpers:BadMaskPredictor"), source=FakeSource(4))
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "failed" and "dtype float32" in info["error"]


def test_concurrent_runs_into_one_folder_are_refused(tmp_path):
    from filelock import FileLock

    with FileLock(str(tmp_path / evaluate.LOCK_FILE)):
        with pytest.raises(Exception, match="another reasonseg-x process"):
            run_eval(_config(tmp_path), source=FakeSource(4))


def test_eval_command_end_to_end(tmp_path, monkeypatch):
    from reasonseg_x.cli import app

    monkeypatch.setattr(evaluate, "open_data", lambda spec, **_: FakeSource(16, spec=spec))
    args = ["eval", "--model", HASH, "--model-arg", "delay=0", "--data", "fake", "--batch-size", "3", "--quiet",
            "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "predicted 16 samples" in result.output and "Overall" in result.output
    for name in ("predictions.jsonl", "run.json", "metrics.json", "per_sample.jsonl", "report.md"):
        assert (tmp_path / name).exists(), name
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "already in" in again.output
    changed = CliRunner().invoke(app, args[:4] + ["delay=0.5"] + args[5:])
    assert changed.exit_code == 2 and "--fresh" in changed.output and "Traceback" not in changed.output
    bad = CliRunner().invoke(app, ["eval", "--model", "oracle", "--model-arg", "x=1", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "no argument 'x'" in bad.output
    shards = CliRunner().invoke(app, ["eval", "--model", "oracle", "--num-shards", "2", "--out", str(tmp_path / "c")])
    assert shards.exit_code == 2 and "go together" in shards.output


def test_retry_errors_recomputes_only_the_failed_samples(tmp_path):
    first = run_eval(_config(tmp_path, model="_runner_helpers:FlakyPredictor", model_args={"fail_ids": "r002,r005"}),
                     source=FakeSource(8))
    assert first.result.metrics["counts"]["error"] == 2
    # same command: failed samples stay failed (nothing is recomputed without being asked)
    again = run_eval(_config(tmp_path, model="_runner_helpers:FlakyPredictor", model_args={"fail_ids": "r002,r005"}),
                     source=FakeSource(8))
    assert again.stats is None
    # a kill during the rewrite cannot lose lines: it is an atomic replace; the retry predicts 2 samples
    retry = run_eval(_config(tmp_path, model="_runner_helpers:FlakyPredictor", model_args={"fail_ids": "r002,r005"},
                             retry_errors=True), source=FakeSource(8))
    assert retry.stats.predicted == 2 and retry.result.metrics["counts"]["error"] == 2
    lines = prediction_lines(tmp_path / "predictions.jsonl")
    assert len(lines) == 8 and list(lines)[-2:] == ["r002", "r005"]
    assert json.loads((tmp_path / "run.json").read_text())["sessions"][-1]["retried_errors"] == 2


def test_an_unknown_protocol_stops_before_the_model_runs(tmp_path):
    with pytest.raises(InvalidInputError, match="unknown protocol 'foo'"):
        run_eval(_config(tmp_path, protocol="foo"), source=FakeSource(4))
    assert not (tmp_path / "predictions.jsonl").exists()


def test_stale_temporaries_of_a_killed_atomic_write_are_removed(tmp_path):
    run_eval(_config(tmp_path), source=FakeSource(4))
    (tmp_path / ".run.json.tmp-99999").write_text('{"half": ')
    run_eval(_config(tmp_path), source=FakeSource(4))
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_default_run_folder_names_model_data_split_and_arguments():
    from pathlib import Path

    from reasonseg_x.runner.rundir import default_run_dir

    assert default_run_dir("oracle", {}, "mini") == Path("runs/oracle-mini")
    assert default_run_dir("oracle", {}, "synth:24", "test") == Path("runs/oracle-synth24-test")
    assert default_run_dir("oracle", {}, "/data/ReasonSegX_val/") == Path("runs/oracle-ReasonSegX_val")
    assert default_run_dir("oracle", {}, "sj9909/ReasonSegX_test") == Path("runs/oracle-ReasonSegX_test")
    assert default_run_dir("pkg.mod:Cls.make", {}, "mini") == Path("runs/make-mini")
    assert default_run_dir("predictions", {"path": "runs/a/predictions.jsonl"}, "mini", path_arg="path") == \
        Path("runs/predictions-a-mini")
    star8 = default_run_dir("star", {"checkpoint": "sj9909/StAR-8B"}, "mini")
    assert star8.name.startswith("star-mini-") and star8 != default_run_dir("star", {"checkpoint": "x"}, "mini")
    assert star8 == default_run_dir("star", {"checkpoint": "sj9909/StAR-8B"}, "mini")  # rerun = resume


def test_eval_without_out_or_model_serves_a_new_user(tmp_path, monkeypatch):
    from reasonseg_x.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(evaluate, "open_data", lambda spec, **_: FakeSource(6, spec=spec))
    result = CliRunner().invoke(app, ["eval", "--model", "oracle", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "run folder: runs/oracle-mini" in result.output and (tmp_path / "runs/oracle-mini/metrics.json").exists()
    again = CliRunner().invoke(app, ["eval", "--model", "oracle", "--quiet"])
    assert again.exit_code == 0 and "already in runs/oracle-mini" in again.output
    none = CliRunner().invoke(app, ["eval"])
    assert none.exit_code == 2 and "--model oracle" in none.output and "reasonseg-x models" in none.output


def test_a_changed_query_or_image_is_different_data_even_with_the_same_masks(tmp_path):
    import dataclasses

    from reasonseg_x.data.record import ImageRef

    run_eval(_config(tmp_path), source=FakeSource(6))
    for edit in ({"query": "another question"}, {"image": ImageRef(data=b"\x89PNG other bytes", where="x")}):
        edited = FakeSource(6)
        edited._samples[3] = dataclasses.replace(edited._samples[3], **edit)
        assert edited.fingerprint("test") == FakeSource(6).fingerprint("test")  # the masks did not change
        with pytest.raises(InvalidInputError, match=r"input_fingerprint.*is not what the earlier run saw"):
            run_eval(_config(tmp_path), source=edited)


class _CountingSource(FakeSource):
    """Counts the records it yields; its input fingerprint is its spec (like synth: nothing read)."""

    def __init__(self, n):
        super().__init__(n)
        self.read = 0

    def samples(self, split=None):
        for sample in super().samples(split):
            self.read += 1
            yield sample

    def input_fingerprint(self, split=None):
        return f"spec:{self.spec}"


def test_limit_reads_only_the_first_rows_of_a_big_split(tmp_path):
    source = _CountingSource(400)
    outcome = run_eval(_config(tmp_path, limit=5, model="oracle"), source=source)
    assert outcome.result.metrics["overall"]["n"] == 5
    assert source.read <= 5 * 4, source.read  # ids, prediction and scoring passes over 5 rows, not 400
    grown = run_eval(_config(tmp_path, limit=8, model="oracle"), source=_CountingSource(400))
    assert grown.already_done == 5 and grown.stats.predicted == 3


def test_cli_refusals_and_reminders_are_one_line_messages(tmp_path, monkeypatch):
    from reasonseg_x.cli import app

    opened = {}

    def fake_open(spec, **kw):
        from reasonseg_x.data.source import SkippedRow

        opened.update(kw)
        source = FakeSource(8, spec=spec)
        source.skipped = [SkippedRow("fake:9", "corrupt image")]
        return source

    monkeypatch.setattr(evaluate, "open_data", fake_open)
    (tmp_path / "afile").write_text("")
    for args, message in ((["-o", str(tmp_path / "afile")], "is a file, not a folder"),
                          (["--num-shards", "0", "-o", str(tmp_path / "x")], "--num-shards must be >= 1"),
                          (["-b", "0", "-o", str(tmp_path / "x")], "--batch-size must be >= 1")):
        result = CliRunner().invoke(app, ["eval", "-m", "oracle", *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, args
    flaky = ["eval", "-m", "_runner_helpers:FlakyPredictor", "-a", "fail_ids=r001", "-q", "--open-taxonomy",
             "-o", str(tmp_path / "f")]
    first = CliRunner().invoke(app, flaky)
    assert first.exit_code == 0 and opened["open_taxonomy"] is True
    assert "fake:9: corrupt image" in first.output  # the skipped rows reach the user
    again = CliRunner().invoke(app, flaky)
    assert "1 sample(s) in" in again.output and "--retry-errors" in again.output  # reminded on resume too


class _BadImageSource(FakeSource):
    """Ground truth lists r002, but its image is bad: only samples() finds out (as for HF parquet rows)."""

    def samples(self, split=None):
        for sample in super().samples(split):
            if sample.id == "r002":
                self.reject("image is empty", "fake:row 2")
                continue
            yield sample

    def ground_truth(self, split=None):
        return (sample.ground_truth() for sample in super().samples(split))


def test_skip_invalid_rows_that_only_samples_detect_are_left_out_not_failed(tmp_path):
    with pytest.raises(InvalidInputError, match="fake:row 2: image is empty"):  # without --skip-invalid
        run_eval(_config(tmp_path / "strict", model="oracle"), source=_BadImageSource(6))
    source = _BadImageSource(6)
    source.skip_invalid = True
    outcome = run_eval(_config(tmp_path / "skip", model="oracle", skip_invalid=True), source=source)
    assert outcome.run_info["status"] == "complete" and outcome.run_info["counts"]["skipped_rows"] == 1
    assert outcome.result.metrics["overall"]["n"] == 5 and outcome.result.metrics["overall"]["giou"] == 1.0


def test_resume_reads_only_the_samples_left(tmp_path, monkeypatch):
    """A resumed run asks the source for the remaining ids only (``samples_of``): synth renders 5
    pictures for 5 left, not all 20 again."""
    import reasonseg_x.data.synth.source as synth_source
    from reasonseg_x.data.synth import SynthSource

    out = tmp_path / "run"
    run_eval(_config(out, score=False), source=SynthSource(20))
    lines = (out / "predictions.jsonl").read_bytes().splitlines(keepends=True)
    (out / "predictions.jsonl").write_bytes(b"".join(lines[:15]))
    rendered: list[int] = []
    real = synth_source.render_sample
    monkeypatch.setattr(synth_source, "render_sample", lambda index, seed=0: rendered.append(index) or real(index, seed))
    again = run_eval(_config(out, score=False), source=SynthSource(20))
    assert again.already_done == 15 and again.stats.predicted == 5
    assert rendered == [15, 16, 17, 18, 19]


def test_synth_samples_of_equals_filtering_every_sample():
    from reasonseg_x.data.source import take_ids
    from reasonseg_x.data.synth import SynthSource

    source = SynthSource(12, seed=2)
    ids = ["synth-2-000007", "synth-2-000001", "synth-0-000003", "synth-2-000099", "synth-2-3", "x",
           "synth-2-\u0663", "synth-2-000011"]
    assert [s.id for s in source.samples_of("test", ids)] == [s.id for s in take_ids(source.samples(), ids)] \
        == ["synth-2-000001", "synth-2-000007", "synth-2-000011"]
