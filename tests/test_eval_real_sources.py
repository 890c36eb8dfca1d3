"""The evaluator on the data layer's real sources (skipped while a source is not available)."""

from __future__ import annotations

import json

import pytest

from reasonseg_x.errors import ReasonSegXError
from reasonseg_x.evaluators.api import score_predictions, write_outputs
from reasonseg_x.predictions import Prediction, prediction_to_json


def _open(spec):
    resolve = pytest.importorskip("reasonseg_x.data.resolve")
    try:
        return resolve.open_source(spec)
    except (ReasonSegXError, FileNotFoundError, ImportError) as exc:
        pytest.skip(f"source {spec!r} not available yet: {exc}")


@pytest.mark.parametrize("spec", ["synth:24", "mini"])
def test_oracle_scores_one_and_empty_scores_failures(tmp_path, spec):
    source = _open(spec)
    truths = list(source.ground_truth())
    from reasonseg_x import masks

    # under star the ignore region counts as target (the HF copies merged it)
    oracle = [Prediction(gt.id, masks.merge([gt.target, gt.ignore]) if gt.ignore else gt.target) for gt in truths]
    path = tmp_path / "oracle.jsonl"
    path.write_text("".join(json.dumps(prediction_to_json(p)) + "\n" for p in oracle))
    result = score_predictions(source, None, path, n_resamples=100)
    assert result.metrics["overall"]["giou"] == pytest.approx(1.0)
    assert result.metrics["counts"]["missing"] == 0
    assert result.metrics["data"]["fingerprint"] == source.fingerprint(None)
    assert set(result.metrics["by_reasoning_type"]) <= {"function_purpose", "commonsense",
                                                         "comparative_relational", "compositional"}
    write_outputs(result, tmp_path / "run")
    empty = score_predictions(source, None, [Prediction(gt.id, None, status="no_target") for gt in truths],
                              n_resamples=0)
    assert empty.metrics["counts"]["no_target"] == len(truths)
    assert all(r.I == 0 for r in empty.records)


@pytest.mark.parametrize("layout", ["disk", "parquet"])
def test_published_schema_equals_reference_way(tmp_path, monkeypatch, layout):
    """The benchmark's split builder + the reference scripts' arithmetic vs our scorer (cold and warm)."""
    import sys
    from pathlib import Path

    _open("synth:1")  # the data layer is importable
    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    bench = __import__("bench_scoring")
    data_dir, pred_path = bench.build_split(tmp_path, 12, 30, 40, seed=2, layout=layout)
    _, ref_giou, ref_ciou = bench.reference_way(data_dir, pred_path, layout)
    for _ in range(2):  # cold, then warm cache
        _, giou, ciou = bench.ours(data_dir, pred_path)
        assert giou == pytest.approx(ref_giou, abs=1e-9) and ciou == pytest.approx(ref_ciou, abs=1e-9)
    sys.modules.pop("bench_scoring", None)


def test_lisa_oracle_on_mini_ignores_the_ignore_region():
    source = _open("mini")
    truths = list(source.ground_truth())
    result = score_predictions(source, None, [Prediction(gt.id, gt.target) for gt in truths], protocol="lisa",
                               n_resamples=0)
    assert result.metrics["overall"]["giou"] == pytest.approx(1.0, abs=1e-6)
    assert result.metrics["overall"]["ciou"] == pytest.approx(1.0, abs=1e-9)
