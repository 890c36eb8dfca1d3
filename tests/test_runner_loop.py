"""The prediction loop: per-sample error capture, OOM halving, predictor contract checks."""

from __future__ import annotations

import numpy as np
import pytest

from _runner_helpers import BadMaskPredictor, FakeSource, FlakyPredictor, OOMPredictor, prediction_lines
from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError, InvalidMaskError
from reasonseg_x.predictors.protocol import Output, Query
from reasonseg_x.runner.convert import output_to_prediction
from reasonseg_x.runner.loop import OutOfMemory, PredictorKeepsFailing, is_out_of_memory, predict_samples
from reasonseg_x.runner.store import PredictionStore


def _run(tmp_path, predictor, n=10, batch_size=4, name="test-model"):
    store = PredictionStore(tmp_path / "predictions.jsonl")
    with store:
        stats = predict_samples(predictor, FakeSource(n).samples(), store, name=name, batch_size=batch_size)
    return stats, prediction_lines(tmp_path / "predictions.jsonl")


def test_a_sample_that_raises_is_recorded_as_error_and_the_run_goes_on(tmp_path):
    predictor = FlakyPredictor("r003,r008")
    stats, lines = _run(tmp_path, predictor)
    assert len(lines) == 10 and list(lines) == [f"r{i:03d}" for i in range(10)]
    assert lines["r003"]["status"] == "error" and lines["r003"]["mask"] is None
    assert lines["r003"]["meta"]["error"] == "ValueError: cannot handle r003"
    assert lines["r008"]["status"] == "error"
    assert all(lines[i]["status"] == "ok" for i in lines if i not in ("r003", "r008"))
    assert stats.errors == 2 and stats.statuses == {"ok": 8, "error": 2}
    # batch [0..3] failed -> retried one by one; [4..7] fine; [8, 9] failed -> one by one
    assert predictor.calls == [4, 1, 1, 1, 1, 4, 2, 1, 1]


def test_a_predictor_failing_on_every_sample_stops_the_run(tmp_path):
    store = PredictionStore(tmp_path / "predictions.jsonl")
    predictor = FlakyPredictor(",".join(f"r{i:03d}" for i in range(1, 40)))
    with store, pytest.raises(PredictorKeepsFailing, match=r"raised on 8 samples in a row \(last: r008: ValueError"):
        predict_samples(predictor, FakeSource(40).samples(), store, name="m", batch_size=4, max_error_streak=8)
    lines = prediction_lines(tmp_path / "predictions.jsonl")
    assert list(lines) == [f"r{i:03d}" for i in range(8)]  # earlier batches kept; r000 succeeded, 7 errors
    assert [v["status"] for v in lines.values()].count("error") == 7
    stats, _ = _run(tmp_path / "sparse", FlakyPredictor("r001,r003,r005,r007,r009"), n=10)  # not in a row
    assert stats.errors == 5


@pytest.mark.parametrize("kind", ["memory", "torch", "runtime"])
def test_out_of_memory_halves_the_batch_and_keeps_the_smaller_size(tmp_path, kind):
    predictor = OOMPredictor(max_batch=2, kind=kind)
    stats, lines = _run(tmp_path, predictor, n=11, batch_size=8)
    assert len(lines) == 11 and all(v["status"] == "ok" for v in lines.values())
    assert max(predictor.calls[predictor.calls.index(2):]) <= 4
    assert stats.oom_splits >= 2 and stats.batch_size <= 4


def test_out_of_memory_at_batch_size_one_stops_the_run_after_saving_earlier_batches(tmp_path):
    predictor = OOMPredictor(max_batch=0)
    with pytest.raises(OutOfMemory, match="even at batch size 1"):
        _run(tmp_path, predictor, n=4, batch_size=2)
    assert not (tmp_path / "predictions.jsonl").exists() or prediction_lines(tmp_path / "predictions.jsonl") == {}


def test_is_out_of_memory():
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError("CUDA out of memory."))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


@pytest.mark.parametrize("kind,match", [
    ("float", r"predictor 'bad', sample 'r000': mask has dtype float32, expected bool"),
    ("size", r"predictor 'bad', sample 'r000': mask shape \(24, 25\) differs from the image size \(23, 25\)"),
    ("rle-size", r"predictor 'bad', sample 'r000': mask size \[23, 27\] differs from the image size \[23, 25\]"),
    ("status", r"unknown status 'maybe'"),
    ("count", r"returned 1 outputs for 4 queries"),
])
def test_broken_predictor_output_is_a_clear_error(tmp_path, kind, match):
    with pytest.raises(InvalidInputError, match=match):
        _run(tmp_path, BadMaskPredictor(kind), name="bad")


def test_output_conversion_keeps_evidence_in_meta():
    sample = next(FakeSource(1).samples())
    query = Query.from_sample(sample)
    mask = np.zeros((sample.height, sample.width), bool)
    mask[1:3, 2:5] = True
    out = Output(mask=mask, raw_text="<answer>[]</answer>", boxes=[np.array([1.5, 2, 3, 4])],
                 points=[[np.int64(2), np.float32(3.5)]], timings={"vlm": 0.25, "nan": float("nan")},
                 candidates=[{"mask": mask, "score": np.float32(0.5), "label": "cup"}])
    pred = output_to_prediction(out, query, predictor="m")
    assert masks.area(pred.mask) == 6
    assert pred.meta["boxes"] == [[1.5, 2.0, 3.0, 4.0]] and pred.meta["points"] == [[2, 3.5]]
    assert pred.meta["timings"] == {"vlm": 0.25, "nan": None}
    assert masks.area(pred.meta["candidates"][0]["mask"]) == 6 and pred.meta["candidates"][0]["score"] == 0.5
    failed = output_to_prediction(Output(mask=mask, status="parse_error", raw_text="???"), query, predictor="m")
    assert failed.mask is None and failed.raw_text == "???"
    with pytest.raises(InvalidMaskError, match="boolean numpy array or an RLE"):
        output_to_prediction(Output(mask=[[True]]), query, predictor="m")
    with pytest.raises(InvalidInputError, match="expected an Output"):
        output_to_prediction({"mask": None}, query, predictor="m")


class _Activations:
    pass


class _HoldsMemoryWhenFailing:
    """Runs out of memory on batches > 1 while a local holds 'activations'; records whether they
    were still alive when the smaller retry came (the failed call's frame must be gone by then)."""

    needs_ground_truth = False

    def __init__(self):
        self.ref = None
        self.alive_at_retry = []

    def predict(self, queries):
        import weakref

        if self.ref is not None:
            self.alive_at_retry.append(self.ref() is not None)
        if len(queries) > 1:
            activations = _Activations()
            self.ref = weakref.ref(activations)
            raise MemoryError()
        return [Output(mask=np.zeros((q.height, q.width), bool)) for q in queries]


def test_an_out_of_memory_retry_runs_after_the_failed_call_released_its_memory(tmp_path):
    predictor = _HoldsMemoryWhenFailing()
    stats, lines = _run(tmp_path, predictor, n=4, batch_size=4)
    assert len(lines) == 4 and stats.oom_splits >= 1
    assert predictor.alive_at_retry and not any(predictor.alive_at_retry)
