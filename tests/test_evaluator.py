"""The in-memory Evaluator: batches fed through ``update`` give exactly what ``reasonseg-x score`` writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import reasonseg_x
from reasonseg_x import masks
from reasonseg_x.cli import app
from reasonseg_x.data.resolve import open_source
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators.evaluator import Evaluator
from reasonseg_x.predictions import Prediction, prediction_to_json

PROVENANCE = ("data", "predictions")


def _mini_predictions(seed: int = 7) -> tuple[list, dict[str, Prediction]]:
    """Mini's ground truth and a mixed set of predictions: shifted targets, empty masks, failures,
    'no target' answers and missing samples."""
    rng = np.random.default_rng(seed)
    truths = list(open_source("mini").ground_truth())
    preds: dict[str, Prediction] = {}
    for n, gt in enumerate(truths):
        kind = n % 8
        if kind == 5:
            continue  # missing
        if kind == 6:
            preds[gt.id] = Prediction(gt.id, None, "parse_error", raw_text="<answer>[{</answer>")
            continue
        if kind == 7:
            preds[gt.id] = Prediction(gt.id, None, "no_target")
            continue
        target = masks.decode(gt.target)
        shifted = np.roll(target, (int(rng.integers(-9, 10)), int(rng.integers(-9, 10))), axis=(0, 1))
        if kind == 4:
            shifted[:] = False
        preds[gt.id] = Prediction(gt.id, masks.encode(shifted))
    return truths, preds


def _metric_part(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in PROVENANCE}


@pytest.mark.parametrize("protocol", ["star", "lisa", "gres"])
def test_random_batches_through_update_equal_reasonseg_x_score(tmp_path, protocol):
    truths, preds = _mini_predictions()
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(prediction_to_json(p)) + "\n" for p in preds.values()), encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["score", "--data", "mini", "--predictions", str(path), "--out", str(out),
                                      "--protocol", protocol, "--bootstrap", "200", "--quiet"])
    assert result.exit_code == 0, result.output
    expected = json.loads((out / "metrics.json").read_text(encoding="utf-8"))

    rng = np.random.default_rng(3)
    order = rng.permutation(len(truths))
    ev = reasonseg_x.Evaluator(protocol=protocol, n_resamples=200)
    start, batch_no = 0, 0
    while start < len(order):
        size = int(rng.integers(1, 9))
        chosen = [truths[i] for i in order[start:start + size]]
        start += size
        style = batch_no % 4
        batch_no += 1
        if style == 0:  # Prediction objects (None for missing)
            ev.update(chosen, [preds.get(gt.id) for gt in chosen])
        elif style == 1:  # a mapping id -> prediction; absent ids are missing
            ev.update(chosen, {gt.id: preds[gt.id] for gt in chosen if gt.id in preds})
        elif style == 2:  # ground truth as mappings of arrays, predictions as file objects
            gts = [{"id": gt.id, "target": masks.decode(gt.target),
                    "ignore": None if gt.ignore is None else masks.decode(gt.ignore), **gt.groups} for gt in chosen]
            ev.update(gts, [prediction_to_json(preds[gt.id]) if gt.id in preds else None for gt in chosen])
        else:  # one pair at a time, masks as bool arrays where the answer is ok
            for gt in chosen:
                pred = preds.get(gt.id)
                ev.update(gt, masks.decode(pred.mask) if pred is not None and pred.status == "ok" else pred)
    got = ev.compute()
    expected["counts"].pop("unknown_id")  # the file-level count the CLI adds (0 here)
    assert _metric_part(got) == _metric_part(expected)
    assert len(ev.records) == len(truths)


def test_merge_of_disjoint_evaluators_equals_one_evaluator():
    truths, preds = _mini_predictions(seed=2)
    whole = Evaluator("visionreasoner", n_resamples=100)
    whole.update(truths, [preds.get(gt.id) for gt in truths])
    parts = [Evaluator("segzero", n_resamples=100) for _ in range(3)]
    for k, part in enumerate(parts):
        chosen = truths[k::3]
        part.update(chosen, [preds.get(gt.id) for gt in chosen])
    merged = parts[2].merge(parts[0]).merge(parts[1])
    assert merged.compute() == whole.compute()
    with pytest.raises(InvalidInputError, match="part 0 and part 1"):
        merged.merge(parts[0])
    with pytest.raises(InvalidInputError, match="protocol 'lisa'"):
        merged.merge(Evaluator("lisa"))


def test_bad_input_is_a_clear_error():
    gt = {"id": "a", "target": np.zeros((4, 5), dtype=bool), "reasoning_type": "C/R"}
    ev = Evaluator()
    with pytest.raises(InvalidInputError, match=r"prediction \[0\] \(id 'a'\).*size \[5, 4\]"):
        ev.update(gt, np.zeros((5, 4), dtype=bool))
    with pytest.raises(InvalidInputError, match="prediction id 'b' is paired with ground truth 'a'"):
        ev.update(gt, Prediction("b", None))
    with pytest.raises(InvalidInputError, match=r"prediction \[1\]"):  # the first pair was fine
        ev.update([dict(gt, id="ok"), gt], [None, np.zeros((5, 4), dtype=bool)])
    assert len(ev) == 0  # the batch counts whole or not at all
    with pytest.raises(InvalidInputError, match="2 ground truths but 1 predictions"):
        ev.update([gt, dict(gt, id="c")], [None])
    with pytest.raises(InvalidInputError, match="not a single prediction"):
        ev.update([gt], masks.encode(np.zeros((4, 5), dtype=bool)))
    with pytest.raises(InvalidInputError, match="3-D array"):
        ev.update([gt], np.zeros((4, 5), dtype=bool))
    with pytest.raises(InvalidInputError, match="needs a non-empty string 'id'"):
        ev.update({"target": np.zeros((2, 2))}, None)
    stacked = Evaluator()
    stacked.update([gt, dict(gt, id="c")], np.stack([np.ones((4, 5), dtype=bool), np.zeros((4, 5), dtype=bool)]))
    assert [(r.id, r.I, r.U) for r in stacked.records] == [("a", 0, 20), ("c", 0, 0)]
    ev.update(gt, np.ones((4, 5), dtype=bool))
    with pytest.raises(InvalidInputError, match="already scored"):
        ev.update(gt, None)
    assert ev.records[0].groups == {"reasoning_type": "comparative_relational"}  # resolved by the taxonomy
    skipping = Evaluator(skip_invalid=True)
    skipping.update(gt, np.zeros((3, 3), dtype=bool))
    assert skipping.records[0].status == "invalid" and "has size [3, 3]" in skipping.problems[0].reason
    assert skipping.compute()["counts"]["invalid"] == 1 and skipping.compute()["problems_total"] == 1


def test_a_taxonomy_resolves_labels_and_orders_the_groups(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ncategories:\n  - {id: zeta, code: Z, aliases: [last]}\n  - {id: alpha, code: A}\n",
                    encoding="utf-8")
    ev = Evaluator(taxonomy=str(path), n_resamples=0)
    full = np.ones((2, 2), dtype=bool)
    ev.update([{"id": "1", "target": full, "reasoning_type": "A"}, {"id": "2", "target": full, "reasoning_type": "last"}],
              [full, full])
    assert list(ev.compute()["by_reasoning_type"]) == ["zeta", "alpha"]  # the taxonomy's order, not alphabetical
    with pytest.raises(InvalidInputError, match="unknown mine label 'other'"):
        ev.update({"id": "3", "target": full, "reasoning_type": "other"}, full)
