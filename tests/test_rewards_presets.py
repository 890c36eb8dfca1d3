"""Parity of the reward presets with the published formulas (docs/rewards.md section 2).

Every expected value below is worked out by hand from the formulas (box IoU with the +1 pixel
convention, mean box L1, point distance, graded mask IoU, Hungarian matching / max(M, N)), not
taken from our own output. The segmenter is ``box`` (an object's mask is its filled box, inclusive
pixels), so each mask IoU is a ratio of rectangle areas that can be checked on paper.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from reasonseg_x import rewards
from reasonseg_x.errors import InvalidInputError

pytest.importorskip("scipy")


def _rect(y0: int, y1: int, x0: int, x1: int, size: int = 100) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


A = _rect(10, 30, 20, 50)  # box (20, 10, 49, 29): 30 x 20 = 600 px
B = _rect(60, 90, 60, 80)  # box (60, 60, 79, 89): 20 x 30 = 600 px
TRUTH_A = {"masks": [A], "boxes": [[20, 10, 49, 29]], "points": [[32, 18]]}
TRUTH_AB = {"masks": [A, B], "boxes": [[20, 10, 49, 29], [60, 60, 79, 89]], "points": [[32, 18], [70, 75]]}
NO_TARGET = {"masks": [], "size": [100, 100]}


def _obj(box, point, label="thing"):
    out = {"bbox_2d": box, "point_2d": point}
    if label is not None:
        out["label"] = label
    return out


def _answer(*objects, think="look") -> str:
    return f"<think>{think}</think> <answer>{json.dumps(list(objects))}</answer>"


OBJ_A = _obj([20, 10, 49, 29], [30, 20])
OBJ_B = _obj([60, 60, 79, 89], [70, 75])
FAR = _obj([0, 0, 5, 5], [2, 2])


def _score(preset: str, completion, truth, **options):
    return rewards.load(preset, segmenter="box", **options).score(completion, truth)


# ----------------------------------------------------------------------------- StAR stage 1

def test_stage1_one_object_exact() -> None:
    # format 1 + 3 x 2/3; non-repeat 1; accuracy: IoU 1 (1) + L1 0 (1) + point 2.8 px in box (1) + mask IoU 1
    # (5) = 8 / max(1, 1) + count match 1 = 9
    r = _score("star-stage1", _answer(OBJ_A), TRUTH_A)
    assert r.terms["format"] == pytest.approx(3.0)
    assert r.terms["accuracy"] == pytest.approx(9.0)
    assert r.total == pytest.approx(13.0)
    assert r.reason is None


def test_stage1_taller_box() -> None:
    # box (20, 10, 49, 39): +1 areas 900 and 600, intersection 600 -> IoU 2/3 > 0.5 (1); L1 = 10 / 4 = 2.5 (1);
    # point (1); mask IoU 600 / 900 = 0.667 -> grade 2; accuracy 5 + 1, total 3 + 1 + 6
    r = _score("star-stage1", _answer(_obj([20, 10, 49, 39], [30, 20])), TRUTH_A)
    assert r.terms["mask"] == pytest.approx(2.0)
    assert r.terms["accuracy"] == pytest.approx(6.0)
    assert r.total == pytest.approx(10.0)


def test_stage1_two_objects_in_swapped_order() -> None:
    # Hungarian pairs B->B and A->A: (8 + 8) / 2 + 1 = 9
    r = _score("star-stage1", _answer(OBJ_B, OBJ_A), TRUTH_AB)
    assert r.terms["accuracy"] == pytest.approx(9.0)
    assert r.total == pytest.approx(13.0)


def test_stage1_more_predictions_than_targets() -> None:
    # A matched (8), the far object unmatched: 8 / max(2, 1) = 4, counts differ: no +1
    r = _score("star-stage1", _answer(OBJ_A, FAR), TRUTH_A)
    assert r.terms["count_match"] == 0.0
    assert r.terms["accuracy"] == pytest.approx(4.0)
    assert r.total == pytest.approx(3 + 1 + 4)


def test_stage1_fewer_predictions_than_targets() -> None:
    # 8 / max(1, 2) = 4; format: one object of one, full 2 -> 3
    r = _score("star-stage1", _answer(OBJ_A), TRUTH_AB)
    assert r.terms["accuracy"] == pytest.approx(4.0)


def test_stage1_point_outside_its_box() -> None:
    # point (60, 20) is 28.1 px from (32, 18) but outside its own box -> 0; mask 5 + IoU 1 + L1 1 = 7 + 1
    r = _score("star-stage1", _answer(_obj([20, 10, 49, 29], [60, 20])), TRUTH_A)
    assert r.terms["point"] == 0.0
    assert r.terms["accuracy"] == pytest.approx(8.0)


def test_stage1_empty_answer_and_no_target_policies() -> None:
    empty = "<think>nothing</think> <answer>[]</answer>"
    # an empty answer: accuracy 0 (the published arrays cannot be built); format 1 + 0; non-repeat 1
    assert _score("star-stage1", empty, TRUTH_A).total == pytest.approx(2.0)
    assert _score("star-stage1", empty, NO_TARGET).total == pytest.approx(2.0)  # reference: 0 even here
    assert _score("star-stage1", empty, NO_TARGET, no_target="reward-empty").total == pytest.approx(11.0)
    assert _score("star-stage1", _answer(OBJ_A), NO_TARGET, no_target="reward-empty").terms["accuracy"] == 0.0


def test_stage1_malformed() -> None:
    # the think layout holds (1); the object has a 3-number box, no point, no label: 0 format points; accuracy 0
    r = _score("star-stage1", '<think>a</think><answer>[{"bbox_2d": [1, 2, 3]}]</answer>', TRUTH_A)
    assert (r.terms["format"], r.terms["accuracy"], r.total) == (1.0, 0.0, 2.0)
    assert "point_2d" in r.reason or "bbox_2d" in r.reason
    r = _score("star-stage1", "no tags at all", TRUTH_A)
    assert (r.terms["format"], r.total) == (0.0, 1.0)
    assert r.reason


def test_stage1_format_points() -> None:
    # blank label: 2/3 + 2/3 for the box and point only
    r = _score("star-stage1", _answer(_obj([20, 10, 49, 29], [30, 20], label="  ")), TRUTH_A)
    assert r.terms["format"] == pytest.approx(1 + 4 / 3)
    # two objects, one complete and one with a box only: (2 + 2/3) / 2
    r = _score("star-stage1", "<think>a</think><answer>" + json.dumps([OBJ_A, {"bbox_2d": [1, 2, 3, 4]}])
               + "</answer>", TRUTH_A)
    assert r.terms["format"] == pytest.approx(1 + (2 + 2 / 3) / 2)


def test_non_repeat() -> None:
    # sentences: "<think>Look", "It is red" x 3 (two repeats), then the rest of the text
    three = _answer(OBJ_A, think="Look. It is red. It is red. It is red.")
    two = _answer(OBJ_A, think="Look. It is red. It is red. It is blue.")
    assert _score("star-stage1", three, TRUTH_A).terms["non_repeat"] == 0.0
    assert _score("star-stage1", two, TRUTH_A).terms["non_repeat"] == 1.0  # one repeat


def test_stage1_without_masks_uses_three_terms() -> None:
    # a SAM segmenter and no image: the published code's three-term accuracy (box, L1, point) / max + count
    reward = rewards.load("star-stage1", segmenter="sam2.1-hiera-large")
    r = reward.score(_answer(OBJ_A), TRUTH_A)
    assert r.terms["accuracy"] == pytest.approx(3.0 + 1.0)
    assert "no masks" in r.reason


def test_stage1_qwen3_reference_grid() -> None:
    # 0-999 grid (max 494 <= 999.5) on a 100 px image: round(v * 99 / 999) -> (20, 10, 49, 29), point (30, 20)
    answer = _answer(_obj([202, 101, 494, 292], [303, 202]))
    assert _score("star-stage1", answer, TRUTH_A, coords="qwen3-reference").total == pytest.approx(13.0)
    assert _score("star-stage1", answer, TRUTH_A).terms["accuracy"] == 1.0  # as pixels: far off, count only


# ----------------------------------------------------------------------------- StAR stage 2

def test_stage2() -> None:
    assert _score("star-stage2", _answer(OBJ_A), TRUTH_A).total == pytest.approx(3 + 1 + 10)
    # mask grade 2 (IoU 0.667): 2 x 2 / 1
    r = _score("star-stage2", _answer(_obj([20, 10, 49, 39], [30, 20])), TRUTH_A)
    assert (r.terms["mask"], r.terms["accuracy"]) == (pytest.approx(2.0), pytest.approx(4.0))
    # one of two targets found: 2 x 5 / max(1, 2)
    assert _score("star-stage2", _answer(OBJ_A), TRUTH_AB).terms["accuracy"] == pytest.approx(5.0)
    # swapped order: 2 x (5 + 5) / 2
    assert _score("star-stage2", _answer(OBJ_B, OBJ_A), TRUTH_AB).terms["accuracy"] == pytest.approx(10.0)
    # more predictions than targets: 2 x 5 / 2
    assert _score("star-stage2", _answer(OBJ_A, FAR), TRUTH_A).terms["accuracy"] == pytest.approx(5.0)
    # every object must carry both bbox_2d and point_2d
    r = _score("star-stage2", '<think>a</think><answer>[{"bbox_2d": [20, 10, 49, 29]}]</answer>', TRUTH_A)
    assert r.terms["accuracy"] == 0.0 and "point_2d" in r.reason


# ----------------------------------------------------------------------------- VisionReasoner

def test_visionreasoner() -> None:
    plain_a = _obj([20, 10, 49, 29], [30, 20], label=None)
    # format 1 + (1 + 1) / 1; accuracy 3 / 1; non-repeat 1
    assert _score("visionreasoner", _answer(plain_a), TRUTH_A).total == pytest.approx(7.0)
    # point outside its box: (1 + 1 + 0) / 1
    assert _score("visionreasoner", _answer(_obj([20, 10, 49, 29], [60, 20])), TRUTH_A).terms["accuracy"] == 2.0
    # more predictions than targets: 3 / 2, no count term
    r = _score("visionreasoner", _answer(plain_a, FAR), TRUTH_A)
    assert r.terms["accuracy"] == pytest.approx(1.5)
    assert r.total == pytest.approx(3 + 1.5 + 1)
    # swapped order of two
    assert _score("visionreasoner", _answer(OBJ_B, OBJ_A), TRUTH_AB).terms["accuracy"] == pytest.approx(3.0)
    # none: format 1, accuracy 0
    assert _score("visionreasoner", "<think>a</think><answer>[]</answer>", TRUTH_A).total == pytest.approx(2.0)
    assert _score("visionreasoner", "<answer>[{]</answer>", TRUTH_A).total == pytest.approx(1.0)


# ----------------------------------------------------------------------------- Seg-Zero v1

SEG_TRUTH = {"masks": [A], "boxes": [[20, 10, 49, 29]], "points": [[[25, 15], [45, 25]]]}


def _seg(box, p1, p2) -> str:
    return f'<think>t</think><answer>{json.dumps({"bbox": box, "points_1": p1, "points_2": p2})}</answer>'


def test_segzero() -> None:
    assert _score("segzero", _seg([20, 10, 49, 29], [25, 15], [45, 25]), SEG_TRUTH).total == 5.0
    # the points are matched in either order; 25.9 truncates to 25
    assert _score("segzero", _seg([20, 10, 49, 29], [45.9, 25], [25, 15]), SEG_TRUTH).total == 5.0
    # taller box: IoU 2/3 (1), L1 2.5 (1)
    assert _score("segzero", _seg([20, 10, 49, 39], [25, 15], [45, 25]), SEG_TRUTH).total == 5.0
    # corners touching at x = 20 do not overlap (strict); L1 = (20 + 10 + 29 + 19) / 4 = 19.5; points outside
    r = _score("segzero", _seg([0, 0, 20, 10], [25, 15], [45, 25]), SEG_TRUTH)
    assert r.terms == {"think_format": 1.0, "segmentation_format": 1.0, "box_iou": 0.0, "box_l1": 0.0, "points": 0.0}
    # one point missing: format 0 and no points term, but the box terms stand
    r = _score("segzero", '<think>t</think><answer>{"bbox": [20, 10, 49, 29], "points_1": [25, 15]}</answer>',
               SEG_TRUTH)
    assert (r.terms["segmentation_format"], r.terms["box_iou"], r.terms["points"]) == (0.0, 1.0, 0.0)
    assert _score("segzero", "nothing", SEG_TRUTH).total == 0.0


def test_segzero_points_derived_from_the_mask() -> None:
    # A split at its centroid column 34.5: halves x 20..34 and 35..49, centres (27, 19) and (42, 19)
    truth = rewards.as_truth({"masks": [A]})
    assert truth.boxes == ((20.0, 10.0, 49.0, 29.0),)
    assert truth.segzero[1] == ((27.0, 19.0), (42.0, 19.0))


# ----------------------------------------------------------------------------- metric

def test_metric_is_the_benchmark_iou() -> None:
    assert _score("metric", _answer(OBJ_A), TRUTH_A).total == pytest.approx(1.0)
    assert _score("metric", _answer(_obj([20, 10, 49, 39], [30, 20])), TRUTH_A).total == pytest.approx(600 / 900)
    # the union of both objects against the union of both targets
    assert _score("metric", _answer(OBJ_A, OBJ_B), TRUTH_AB).total == pytest.approx(1.0)
    assert _score("metric", _answer(OBJ_A), TRUTH_AB).total == pytest.approx(0.5)
    assert _score("metric", "<answer>[]</answer>", TRUTH_A).total == 0.0
    assert _score("metric", "garbage", TRUTH_A).total == 0.0


def test_metric_no_target_rows() -> None:
    # star protocol: U = 0 scores 1, and a failed answer counts as an empty mask (so 1 as well)
    assert _score("metric", "<answer>[]</answer>", NO_TARGET).total == 1.0
    assert _score("metric", "garbage", NO_TARGET).total == 1.0
    assert _score("metric", _answer(OBJ_A), NO_TARGET).total == 0.0
    # visionreasoner protocol: U = 0 scores 0
    assert _score("metric", "<answer>[]</answer>", NO_TARGET, protocol="visionreasoner").total == 0.0
    # reward-empty: only an explicit empty answer earns it
    assert _score("metric", "garbage", NO_TARGET, no_target="reward-empty").total == 0.0
    assert _score("metric", "<answer>[]</answer>", NO_TARGET, no_target="reward-empty").total == 1.0


# ----------------------------------------------------------------------------- contract

def test_truth_as_text_round_trips() -> None:
    text = rewards.encode_truth([A, B], boxes=TRUTH_AB["boxes"], points=TRUTH_AB["points"], id="row-1")
    assert _score("star-stage1", _answer(OBJ_B, OBJ_A), text).total == pytest.approx(13.0)
    truth = rewards.as_truth(text)
    assert np.array_equal(truth.masks[1], B) and truth.extra["id"] == "row-1"


def test_bad_options_and_truth_raise() -> None:
    with pytest.raises(InvalidInputError, match="unknown reward preset"):
        rewards.load("star-stage3")
    with pytest.raises(InvalidInputError, match="no_target"):
        rewards.load("star-stage1", no_target="protocol")
    with pytest.raises(InvalidInputError, match="coordinate rule"):
        rewards.load("star-stage1", coords="degrees")
    with pytest.raises(InvalidInputError, match="unknown segmenter"):
        rewards.load("star-stage1", segmenter="sam-9000")
    with pytest.raises(InvalidInputError, match="truth"):
        rewards.load("star-stage1", segmenter="box").score(_answer(OBJ_A), "not json")
    with pytest.raises(InvalidInputError, match="4 finite numbers"):
        rewards.as_truth({"masks": [A], "boxes": [[1, 2, 3]]})


def test_image_of_another_size_is_refused() -> None:
    from PIL import Image

    with pytest.raises(InvalidInputError, match="frame of the image"):
        rewards.load("star-stage1", segmenter="box").score(_answer(OBJ_A), TRUTH_A, Image.new("RGB", (50, 100)))


def test_describe_records_the_rules() -> None:
    info = rewards.load("star-stage2", segmenter="box", coords="qwen3-reference").describe()
    assert info["coords"] == "qwen3-reference" and info["no_target"] == "reference" and info["bounds"] == [0.0, 14.0]
    assert "sam_worker.py" in info["source"]
