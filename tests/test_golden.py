"""evaluators/golden: every protocol scores the golden cases to the expected numbers, exactly."""

from __future__ import annotations

import json

import pytest

from make_golden import CASES, UNSTABLE, ground_truth_lines, predictions
from reasonseg_x._resources import shipped_dir
from reasonseg_x.evaluators.evaluator import Evaluator
from reasonseg_x.predictions import prediction_to_json, read_predictions

GOLDEN = shipped_dir("evaluators") / "golden"


def _read_jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (GOLDEN / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("protocol", ["star", "visionreasoner", "lisa", "gres"])
def test_golden_predictions_score_to_the_expected_metrics(protocol):
    truths = _read_jsonl("ground_truth.jsonl")
    preds = read_predictions(GOLDEN / "predictions.jsonl")
    assert not preds.problems and len(preds) == len(truths) - 1  # one sample is missing on purpose
    ev = Evaluator(protocol)
    ev.update(truths, preds.by_id)
    got = {k: v for k, v in ev.compute().items() if k not in UNSTABLE}
    got["per_sample"] = [r.to_json() for r in ev.records]
    expected = json.loads((GOLDEN / "expected" / f"{protocol}.json").read_text(encoding="utf-8"))
    assert got == expected


def test_golden_files_are_the_cases_of_make_golden():
    """The shipped inputs are what tests/make_golden.py builds (the table in golden/README.md)."""
    assert _read_jsonl("ground_truth.jsonl") == json.loads(json.dumps(ground_truth_lines()))
    assert _read_jsonl("predictions.jsonl") == [prediction_to_json(p) for p in predictions()]
    assert len(CASES) == 12
