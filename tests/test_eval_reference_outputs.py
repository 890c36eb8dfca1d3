"""Re-aggregating the reference scripts' output_*.json files."""

from __future__ import annotations

import json

import pytest

from _eval_helpers import make_case, predictions_for
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators.api import score_predictions
from reasonseg_x.evaluators.reference_outputs import score_reference_outputs


def _dump(folder, name, rows):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(rows))


def test_star_and_visionreasoner_from_outputs(tmp_path):
    rows = [{"image_id": "i1", "ann_id": "a1", "intersection": 5, "union": 10, "reasoning_type": "commonsense"},
            {"image_id": "i2", "ann_id": "a2", "intersection": 0, "union": 0, "reasoning_type": "commonsense"},
            {"image_id": "i3", "ann_id": "a3", "intersection": 3, "union": 4, "reasoning_type": "C/MH"}]
    _dump(tmp_path / "run", "output_0.json", rows[:2])
    _dump(tmp_path / "run", "output_1.json", rows[2:])
    star = score_reference_outputs(tmp_path / "run", protocol="star", n_resamples=0).metrics
    assert star["overall"]["giou"] == pytest.approx((0.5 + 1.0 + 0.75) / 3)
    assert star["overall"]["ciou"] == pytest.approx(8 / 14)
    assert star["by_reasoning_type"]["commonsense"]["ciou"] == pytest.approx(0.5)
    assert star["by_reasoning_type"]["compositional"]["n"] == 1  # the code C/MH resolves to the id
    assert "only the star and visionreasoner" in star["note"]
    vr = score_reference_outputs(tmp_path / "run", protocol="segzero", n_resamples=0).metrics
    assert vr["overall"]["giou"] == pytest.approx((0.5 + 0.0 + 0.75) / 3)
    with pytest.raises(InvalidInputError, match="cannot be derived"):
        score_reference_outputs(tmp_path / "run", protocol="lisa")


def test_duplicates_from_a_stale_shard(tmp_path):
    row = {"image_id": "i1", "ann_id": "a1", "intersection": 5, "union": 10}
    _dump(tmp_path / "run", "output_0.json", [row])
    _dump(tmp_path / "run", "output_1.json", [row])
    m = score_reference_outputs(tmp_path / "run", n_resamples=0).metrics
    assert m["counts"]["duplicate"] == 1 and m["overall"]["n"] == 1
    _dump(tmp_path / "run", "output_2.json", [dict(row, intersection=6)])
    with pytest.raises(InvalidInputError, match="output_2.json\\[0\\].*'a1'"):
        score_reference_outputs(tmp_path / "run")


@pytest.mark.parametrize("bad", [{"ann_id": "x", "intersection": -1, "union": 3},
                                 {"ann_id": "x", "intersection": 4, "union": 3},
                                 {"ann_id": "x", "intersection": "1", "union": 3},
                                 {"intersection": 1, "union": 3}])
def test_bad_rows(tmp_path, bad):
    _dump(tmp_path / "run", "output_0.json", [bad])
    with pytest.raises(InvalidInputError, match=r"output_0.json\[0\]"):
        score_reference_outputs(tmp_path / "run")
    assert score_reference_outputs(tmp_path / "run", skip_invalid=True, n_resamples=0).metrics["problems_total"] == 1


def test_with_source_equals_scoring_masks(tmp_path):
    source, arrays = make_case(16, p_empty=0.3)
    direct = score_predictions(source, None, predictions_for(arrays, drop=("s005",)), n_resamples=0)
    rows = [{"ann_id": r.id, "intersection": r.I, "union": r.U} for r in direct.records if r.status != "missing"]
    _dump(tmp_path / "run", "output_0.json", rows)
    again = score_reference_outputs(tmp_path / "run", source=source, n_resamples=0).metrics
    assert again["overall"] == direct.metrics["overall"]
    assert again["by_reasoning_type"] == direct.metrics["by_reasoning_type"]
    assert again["counts"]["missing"] == 1
    assert again["data"]["fingerprint"] == direct.metrics["data"]["fingerprint"]
