"""Re-aggregating the reference scripts' output_*.json files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _eval_helpers import MemorySource, make_case, predictions_for
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


# --- the scripts' real files -------------------------------------------------------------------
# StAR's evaluation_star.py and VisionReasoner's evaluation_segmentation.py json.dump (indent=2) one
# list per shard into output_{idx}.json: image_id, ann_id, think, label, response_length,
# intersection, union, bbox_iou, reasoning_type (ReasonSeg-X only) and self-correction fields.
# The two functions below redo the arithmetic of their calculate_iou*.py over such a folder (read in
# ysj9909/StAR evaluation_scripts/calculate_iou.py @5499659 and JIA-Lab-research/VisionReasoner
# evaluation/calculate_iou_with_bbox.py @ceeae3d; written anew here, not copied).

def star_calculate_iou(folder):
    """StAR calculate_iou.py: U = 0 -> 1.0; overall cIoU = sum I / sum U; per raw reasoning_type
    string gIoU and cIoU (0 when the type's union sum is 0)."""
    ious, ti, tu, types = [], 0, 0, {}
    for path in sorted(folder.glob("output_*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")):
            i, u = item["intersection"], item["union"]
            iou = i / u if u > 0 else 1.0
            ious.append(iou)
            ti, tu = ti + i, tu + u
            if item.get("reasoning_type") is not None:
                t = types.setdefault(item["reasoning_type"], [0.0, 0.0, 0.0, 0])
                t[0], t[1], t[2], t[3] = t[0] + iou, t[1] + float(i), t[2] + float(u), t[3] + 1
    per_type = {k: (s / c, si / su if su > 0 else 0.0) for k, (s, si, su, c) in types.items()}
    return sum(ious) / len(ious), ti / tu, per_type


def visionreasoner_calculate_iou(folder):
    """VisionReasoner calculate_iou_with_bbox.py: U = 0 -> 0; cIoU 0 when the union sum is 0."""
    ious, ti, tu = [], 0, 0
    for path in sorted(folder.glob("output_*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")):
            i, u = item["intersection"], item["union"]
            ious.append(i / u if u > 0 else 0)
            ti, tu = ti + i, tu + u
    return sum(ious) / len(ious), ti / tu if tu > 0 else 0


def _script_row(rng, k, reasoning_types):
    area = int(rng.integers(0, 5000)) if rng.random() > 0.1 else 0
    if rng.random() < 0.1:  # "Reasoning error": the script writes I = 0, U = gt.sum()
        i, u = 0, area
    else:
        i = int(rng.integers(0, area + 1))
        # U >= area(GT) >= I; U = 0 when both masks are empty
        u = 0 if area == 0 and rng.random() < 0.5 else area + int(rng.integers(0, 3000))
    row = {"image_id": f"img_{k // 2}", "ann_id": f"{k}", "think": "the red sign ...", "label": "sign",
           "response_length": int(rng.integers(10, 500)), "intersection": i, "union": u, "bbox_iou": 0.0}
    if reasoning_types:
        row["reasoning_type"] = str(rng.choice(["function_purpose", "commonsense", "comparative_relational",
                                                "compositional"]))
    if rng.random() < 0.2:
        row.update(sc_intersection=i, sc_union=u, sc_intersection_2=i, sc_union_2=u)
    return row


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), shards=st.integers(1, 4), typed=st.booleans())
def test_parity_with_the_scripts_calculate_iou(tmp_path_factory, seed, n, shards, typed):
    rng = np.random.default_rng(seed)
    folder = tmp_path_factory.mktemp("outputs")
    rows = [_script_row(rng, k, typed) for k in range(n)]
    for s in range(shards):
        part = rows[s * n // shards:(s + 1) * n // shards]
        (folder / f"output_{s}.json").write_text(json.dumps(part, indent=2, ensure_ascii=False), encoding="utf-8")
    star = score_reference_outputs(folder, protocol="star", n_resamples=0).metrics
    giou, ciou, per_type = star_calculate_iou(folder) if sum(r["union"] for r in rows) else (None, None, None)
    if giou is not None:  # the script divides by zero when every union is 0; we report cIoU 0
        assert star["overall"]["giou"] == pytest.approx(giou, abs=1e-9)
        assert star["overall"]["ciou"] == pytest.approx(ciou, abs=1e-9)
        for rtype, (g, c) in per_type.items():
            assert star["by_reasoning_type"][rtype]["giou"] == pytest.approx(g, abs=1e-9)
            assert star["by_reasoning_type"][rtype]["ciou"] == pytest.approx(c, abs=1e-9)
    assert star["overall"]["n"] == n and star["counts"]["duplicate"] == 0
    vr = score_reference_outputs(folder, protocol="visionreasoner", n_resamples=0).metrics
    g, c = visionreasoner_calculate_iou(folder)
    assert vr["overall"]["giou"] == pytest.approx(g, abs=1e-9)
    assert vr["overall"]["ciou"] == pytest.approx(c, abs=1e-9)


class _ImageIdSource(MemorySource):
    id_rule = "image_id"


def test_rows_match_the_sources_id_column(tmp_path):
    """The scripts write image_id and ann_id; a source keyed by image_id matches on image_id."""
    source, arrays = make_case(4, p_empty=0.0)
    direct = score_predictions(source, None, predictions_for(arrays), n_resamples=0)
    by_image = _ImageIdSource(source._samples)
    rows = [{"image_id": r.id, "ann_id": str(n), "intersection": r.I, "union": r.U} for n, r in enumerate(direct.records)]
    _dump(tmp_path / "run", "output_0.json", rows)
    again = score_reference_outputs(tmp_path / "run", source=by_image, n_resamples=0).metrics
    assert again["overall"] == direct.metrics["overall"] and again["counts"]["missing"] == 0


def test_outputs_from_other_ground_truth_are_refused(tmp_path):
    source, arrays = make_case(3, p_empty=0.0)
    target_area = int(arrays["s001"][0].sum())
    _dump(tmp_path / "run", "output_0.json", [{"ann_id": "s001", "intersection": 0, "union": target_area - 1}])
    with pytest.raises(InvalidInputError, match=r"output_0.json\[0\].*'s001'.*other ground truth"):
        score_reference_outputs(tmp_path / "run", source=source)
    m = score_reference_outputs(tmp_path / "run", source=source, skip_invalid=True, n_resamples=0).metrics
    assert m["counts"]["invalid"] == 1 and m["counts"]["missing"] == 2


def test_a_json_list_of_predictions_gets_a_clear_message(tmp_path):
    path = tmp_path / "preds.json"
    path.write_text(json.dumps([{"id": "a", "mask": None, "status": "ok"}]))
    with pytest.raises(InvalidInputError, match=r"preds.json\[0\].*JSON Lines"):
        score_reference_outputs(path)


def test_skipped_rows_are_counted_never_silently_gone(tmp_path):
    rows = [{"ann_id": "s000", "intersection": 1, "union": 2}, {"ann_id": "s001", "intersection": float("nan"),
            "union": 3}, {"ann_id": "s002", "intersection": 5, "union": 1}, {"union": 4}]
    _dump(tmp_path / "run", "output_0.json", rows)
    alone = score_reference_outputs(tmp_path / "run", skip_invalid=True, n_resamples=0).metrics
    assert alone["overall"]["n"] == 1 and alone["counts"]["invalid"] == 2
    assert alone["counts"]["invalid_lines_without_id"] == 1 and "not in n" in alone["note"]
    source, arrays = make_case(4, p_empty=0.0)
    rows[0]["union"] = int(arrays["s000"][0].sum()) + 1
    rows[0]["intersection"] = 0
    _dump(tmp_path / "run", "output_0.json", rows)
    m = score_reference_outputs(tmp_path / "run", source=source, skip_invalid=True, n_resamples=0)
    assert {r.id: r.status for r in m.records} == {"s000": "ok", "s001": "invalid", "s002": "invalid",
                                                   "s003": "missing"}


def test_a_conflicting_duplicate_invalidates_the_id(tmp_path):
    row = {"ann_id": "s000", "intersection": 0, "union": 7}
    _dump(tmp_path / "run", "output_0.json", [row, dict(row, intersection=1), row])
    m = score_reference_outputs(tmp_path / "run", skip_invalid=True, n_resamples=0).metrics
    assert m["overall"]["n"] == 0 and m["counts"]["invalid"] == 1 and m["problems_total"] == 2
