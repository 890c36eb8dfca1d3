"""Mergeable per-sample state: shards merged give exactly the single run's numbers."""

from __future__ import annotations

import pytest

from _eval_helpers import make_case, predictions_for
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators.api import build_metrics, score_predictions, score_records
from reasonseg_x.evaluators.records import RecordSet, merge_records, read_records, write_records


@pytest.mark.parametrize("protocol", ["star", "lisa", "gres"])
def test_merged_shards_equal_single_run(protocol):
    source, arrays = make_case(37, seed=3, with_ignore=True, p_empty=0.3)
    preds = predictions_for(arrays, drop=("s004",))
    full = score_predictions(source, None, preds, protocol=protocol, n_resamples=200, seed=5)
    ids = source.ground_truth("test")
    all_ids = [gt.id for gt in ids]
    shards = [set(all_ids[k::3]) for k in range(3)]
    parts = [score_records(source, None, preds, protocol=protocol, ids=shard)[0] for shard in shards]
    for parts_in_order in (parts, parts[::-1]):
        merged = merge_records(parts_in_order)  # not the source order: the numbers must not care
        again = build_metrics(merged, data=full.metrics["data"], predictions=full.metrics["predictions"],
                              n_resamples=200, seed=5, extra_counts={"duplicate": 0, "unknown_id": 0})
        for key in ("overall", "by_reasoning_type", "by_query_kind", "counts"):
            assert again[key] == full.metrics[key]  # exactly, bootstrap intervals included
    order = {sid: n for n, sid in enumerate(all_ids)}
    merged.records.sort(key=lambda r: order[r.id])
    assert [r.to_json() for r in merged] == [r.to_json() for r in full.records]


def test_point_estimates_do_not_depend_on_order():
    source, arrays = make_case(20, seed=1)
    result = score_predictions(source, None, predictions_for(arrays), n_resamples=0)
    shuffled = RecordSet(result.records.protocol, reversed(result.records.records))
    again = build_metrics(shuffled, n_resamples=0)
    assert again["overall"] == result.metrics["overall"]


def test_overlap_and_protocol_mix_are_refused():
    source, arrays = make_case(6)
    preds = predictions_for(arrays)
    a = score_records(source, None, preds, ids={"s000", "s001"})[0]
    b = score_records(source, None, preds, ids={"s001", "s002"})[0]
    with pytest.raises(InvalidInputError, match="'s001' is in part 0 and part 1"):
        merge_records([a, b])
    c = score_records(source, None, preds, protocol="lisa", ids={"s003"})[0]
    with pytest.raises(InvalidInputError, match="protocol"):
        merge_records([a, c])


def test_per_sample_jsonl_round_trip(tmp_path):
    source, arrays = make_case(12, p_empty=0.4)
    records = score_predictions(source, None, predictions_for(arrays, drop=("s002",)), n_resamples=0).records
    write_records(records, tmp_path / "per_sample.jsonl")
    back = read_records(tmp_path / "per_sample.jsonl", records.protocol)
    assert [r.to_json() for r in back] == [r.to_json() for r in records]
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "I": 5, "U": 2, "iou": 0.1, "status": "ok"}\n')
    with pytest.raises(InvalidInputError, match="bad.jsonl:1"):
        read_records(tmp_path / "bad.jsonl", "star")
