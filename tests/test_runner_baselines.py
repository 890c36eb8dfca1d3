"""Sanity baselines through the whole pipeline: source -> runner -> predictions file -> scorer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _runner_helpers import FakeSource, prediction_lines
from reasonseg_x import masks
from reasonseg_x.predictors.protocol import Query
from reasonseg_x.runner.evaluate import EvalConfig, run_eval

pytest.importorskip("reasonseg_x.evaluators.api")
PROTOCOLS = ("star", "visionreasoner", "lisa", "gres")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oracle_scores_one_under_every_protocol(tmp_path, protocol):
    outcome = run_eval(EvalConfig(model="oracle", out=tmp_path, protocol=protocol, batch_size=7), source=FakeSource(24))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["protocol"] == protocol
    assert metrics["overall"]["n"] == 24
    assert metrics["overall"]["giou"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["overall"]["ciou"] == pytest.approx(1.0, abs=1e-6)
    for group in metrics["by_reasoning_type"].values():
        assert group["giou"] == pytest.approx(1.0, abs=1e-6) and group["ciou"] == pytest.approx(1.0, abs=1e-6)
    assert outcome.result.metrics["counts"]["missing"] == 0


def test_oracle_merges_ignore_into_its_mask(tmp_path):
    source = FakeSource(6)
    run_eval(EvalConfig(model="oracle", out=tmp_path), source=source)
    lines = prediction_lines(tmp_path / "predictions.jsonl")
    with_ignore = 0
    for sample in source.samples():
        expected = sample.target if sample.ignore is None else masks.merge([sample.target, sample.ignore])
        with_ignore += sample.ignore is not None and masks.area(sample.ignore) > 0
        np.testing.assert_array_equal(masks.decode(lines[sample.id]["mask"]), masks.decode(expected))
    assert with_ignore  # the case the test is about occurs


def test_oracle_refuses_queries_without_ground_truth():
    from reasonseg_x.baselines.oracle import OraclePredictor
    from reasonseg_x.errors import InvalidInputError

    sample = next(FakeSource(1).samples())
    with pytest.raises(InvalidInputError, match="needs the ground truth"):
        OraclePredictor().predict([Query.from_sample(sample)])


def test_empty_and_full_bracket_the_range(tmp_path):
    empty = run_eval(EvalConfig(model="empty", out=tmp_path / "e"), source=FakeSource(12)).result.metrics
    full = run_eval(EvalConfig(model="full", out=tmp_path / "f"), source=FakeSource(12)).result.metrics
    assert empty["overall"]["giou"] == 0.0 and empty["counts"]["empty_prediction"] == 12
    assert 0.0 < full["overall"]["giou"] < 1.0
    no_target = run_eval(EvalConfig(model="empty", model_args={"status": "no_target"}, out=tmp_path / "n"),
                         source=FakeSource(12)).result.metrics
    assert no_target["counts"]["no_target"] == 12


def test_replay_reproduces_a_run(tmp_path):
    first = run_eval(EvalConfig(model="_runner_helpers:HashPredictor", out=tmp_path / "a"), source=FakeSource(10))
    replay = run_eval(EvalConfig(model=f"predictions:{tmp_path / 'a' / 'predictions.jsonl'}", out=tmp_path / "b"),
                      source=FakeSource(10))
    a, b = prediction_lines(tmp_path / "a" / "predictions.jsonl"), prediction_lines(tmp_path / "b" / "predictions.jsonl")
    assert {k: v["mask"] for k, v in a.items()} == {k: v["mask"] for k, v in b.items()}
    assert b["r000"]["meta"]["boxes"] == [[1.0, 2.0, 3.0, 4.0]]  # meta travels through the replay
    assert replay.result.metrics["overall"] == first.result.metrics["overall"]


def test_replay_of_a_partial_file_counts_the_ids_it_lacks_as_missing(tmp_path):
    run_eval(EvalConfig(model="_runner_helpers:HashPredictor", out=tmp_path / "a", limit=4), source=FakeSource(10))
    outcome = run_eval(EvalConfig(model=f"predictions:{tmp_path / 'a' / 'predictions.jsonl'}", out=tmp_path / "b"),
                       source=FakeSource(10))
    assert list(prediction_lines(tmp_path / "b" / "predictions.jsonl")) == ["r000", "r001", "r002", "r003"]
    assert outcome.result.metrics["counts"]["missing"] == 6 and outcome.result.metrics["counts"]["error"] == 0
    assert outcome.stats.declared_missing == [f"r{i:03d}" for i in range(4, 10)]
    assert outcome.run_info["counts"]["declared_missing"] == 6 and outcome.run_info["status"] == "complete"


def test_replay_of_an_empty_file_is_refused(tmp_path):
    from reasonseg_x.errors import InvalidInputError

    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(InvalidInputError, match=r"e\.jsonl: holds no predictions"):
        run_eval(EvalConfig(model=f"predictions:{tmp_path / 'e.jsonl'}", out=tmp_path / "b"), source=FakeSource(4))


@pytest.mark.parametrize("spec", ["mini", "synth:16"])
def test_oracle_on_real_sources(tmp_path, spec):
    try:
        from reasonseg_x.data.resolve import open_source

        source = open_source(spec)
    except Exception as exc:  # noqa: BLE001 - the data layer is another part; skip until it lands
        pytest.skip(f"{spec} unavailable: {exc}")
    empty_targets = sum(1 for gt in source.ground_truth() if masks.area(gt.target) == 0)
    for protocol in PROTOCOLS:
        if protocol == "visionreasoner" and empty_targets:
            continue  # U = 0 scores 0 there by definition
        metrics = run_eval(EvalConfig(model="oracle", out=tmp_path / protocol, data=spec, protocol=protocol,
                                      batch_size=16), source=source).result.metrics
        assert metrics["overall"]["giou"] == pytest.approx(1.0, abs=1e-6), protocol
        assert metrics["overall"]["ciou"] == pytest.approx(1.0, abs=1e-6), protocol
