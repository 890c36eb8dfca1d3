"""Coordinate frames: Qwen2.5 840-frame pixels, Qwen2 0-1000 grid, Qwen3 grid detection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.answer.coords import answer_values, detect_frame, to_image_frame
from reasonseg_x.star.answer.parser import AnswerObject


def obj(bbox, point=None, label="x", extra=()):
    return AnswerObject(label, tuple(bbox), tuple(point) if point is not None else None, tuple(extra))


@pytest.mark.parametrize("values, frame", [
    ([], "grid999"),
    ([0.0, 0.5, 1.0], "unit"),
    ([0.1, 1.2], "unit"),
    ([0.1, 1.21], "grid999"),
    ([-1.0, 0.5], "unit"),
    ([3, 999, 1000], "grid999"),
    ([1000.5], "grid999"),
    ([1000.51], "pixels"),
    ([10, 2000], "pixels"),
    ([float("nan"), "x", None, 0.5], "unit"),
    ([float("nan")], "unit"),
])
def test_detect_frame(values, frame) -> None:
    assert detect_frame(values) == frame


def test_qwen25_maps_the_840_frame_with_half_up_rounding() -> None:
    # W = 1000: factor 1000/840; 420 -> 500, 0 -> 0, 840 -> 1000
    out = to_image_frame([obj((0, 0, 840, 840), (420, 420))], 1000, 500)
    assert out == [obj((0, 0, 1000, 500), (500, 250))]
    # exact .5 goes up: W = 84 -> factor 0.1; 5 * 0.1 + 0.5 = 1.0 -> 1; 15 -> 2.0 -> 2
    out = to_image_frame([obj((5, 15, 25, 35), (45, 55))], 84, 84)
    assert out[0].bbox == (int(5 * (84 / 840) + 0.5), int(15 * 0.1 + 0.5), int(25 * 0.1 + 0.5), int(35 * 0.1 + 0.5))
    # W = 1680 (factor 2): 10.25 -> 21.0 -> 21; 10.2 -> 20.9 -> 20
    assert to_image_frame([obj((10.25, 10.2, 11, 11))], 1680, 1680)[0].bbox == (21, 20, 22, 22)


def test_qwen25_uses_the_factor_first_like_the_reference() -> None:
    width = 1023
    for v in range(0, 841):
        got = to_image_frame([obj((v, v, v, v), (v, v))], width, width)[0]
        assert got.point[0] == min(int(v * (width / 840) + 0.5), width)


def test_qwen25_clips_out_of_frame_answers_to_the_image() -> None:
    out = to_image_frame([obj((-20, -5, 900, 845), (-3, 2000))], 420, 840)
    assert out[0].bbox == (0, 0, 420, 840) and out[0].point == (0, 840)
    raw = to_image_frame([obj((-20, -5, 900, 845))], 420, 840, clip=False)
    assert raw[0].bbox == (int(-20 * 0.5 + 0.5), int(-5 * 1.0 + 0.5), 450, 845)


def test_qwen25_custom_frame_and_extra_points() -> None:
    out = to_image_frame([obj((0, 0, 100, 50), (50, 25), extra=[(100, 50)])], 200, 200, frame=(100, 50))
    assert out == [obj((0, 0, 200, 200), (100, 100), extra=[(200, 200)])]


def test_segzero_rounding_truncates_then_rounds_half_even() -> None:
    # W = 1260 (factor 1.5): 10.9 -> int 10 -> 15.0 -> 15; 11 -> 16.5 -> round half even 16; 13 -> 19.5 -> 20
    out = to_image_frame([obj((10.9, 11, 13, 13), (11, 13))], 1260, 1260, rounding="segzero")
    assert out[0].bbox == (15, 16, 20, 20) and out[0].point == (16, 20)
    half_up = to_image_frame([obj((10.9, 11, 13, 13))], 1260, 1260)
    assert half_up[0].bbox == (int(10.9 * 1.5 + 0.5), 17, 20, 20)
    with pytest.raises(InvalidInputError, match="rounding"):
        to_image_frame([], 10, 10, rounding="floor")


def test_qwen2_uses_a_1000_grid() -> None:
    out = to_image_frame([obj((0, 0, 1000, 500), (500, 250))], 640, 480, model_family="qwen2")
    assert out == [obj((0, 0, 640, 240), (320, 120))]


def test_qwen3_grid999() -> None:
    # round(v * (size - 1) / 999), Python rounding (ties to even), clipped to size - 1
    out = to_image_frame([obj((0, 0, 999, 1000), (500, 250))], 1000, 500, model_family="qwen3")
    assert out[0].bbox == (0, 0, 999, 499)
    assert out[0].point == (round(500 * 999 / 999), round(250 * 499 / 999))


def test_qwen3_grid999_ties_round_to_even_like_python() -> None:
    # size 3: v * 2 / 999 -> exactly .5 when v = 249.75 (1/2 * 999 / 2): Python round(0.5) = 0
    out = to_image_frame([obj((249.75, 749.25, 999, 999), (749.25, 249.75))], 3, 3, model_family="qwen3")
    assert out[0].bbox[0] == round(249.75 * 2 / 999.0) == 0
    assert out[0].point == (round(749.25 * 2 / 999.0), round(249.75 * 2 / 999.0)) == (2, 0)  # 1.5 -> 2, 0.5 -> 0
    # the box's y1 = 2 meets y2 = 2: widened downwards to (1, 2) as StAR does
    assert out[0].bbox[1::2] == (1, 2)


def test_qwen3_unit_frame_uses_size_minus_one() -> None:
    out = to_image_frame([obj((0.0, 0.0, 1.0, 0.5), (0.5, 0.5))], 101, 201, model_family="qwen3")
    assert out[0].bbox == (0, 0, 100, 100) and out[0].point == (50, 100)


def test_qwen3_pixels_are_kept_as_original_image_pixels() -> None:
    out = to_image_frame([obj((10.4, 20.6, 1500, 900), (1200.5, 30))], 2000, 1000, model_family="qwen3")
    assert out[0].bbox == (10, 21, 1500, 900) and out[0].point == (1200, 30)  # round(1200.5) == 1200


def test_qwen3_detects_the_frame_over_the_whole_answer() -> None:
    # one object alone would look like a unit box; the other forces grid999 for both
    objs = [obj((0.2, 0.2, 1.0, 1.0), (0.5, 0.5)), obj((10, 10, 500, 500), (20, 20))]
    out = to_image_frame(objs, 1000, 1000, model_family="qwen3")
    assert out[0].point == (round(0.5 * 999 / 999), round(0.5 * 999 / 999))
    assert out[1].bbox == (10, 10, 500, 500)
    forced = to_image_frame(objs[:1], 1000, 1000, model_family="qwen3", grid="grid999")
    assert forced[0].bbox[2] == 1


def test_qwen3_reorders_and_widens_degenerate_boxes() -> None:
    out = to_image_frame([obj((500, 600, 400, 600))], 1000, 1000, model_family="qwen3")
    x1, y1, x2, y2 = out[0].bbox
    assert x1 < x2 and y1 < y2 and y2 == y1 + 1
    edge = to_image_frame([obj((999, 999, 999, 999))], 1000, 1000, model_family="qwen3")
    assert edge[0].bbox == (998, 998, 999, 999)


def test_missing_point_and_labels_are_kept() -> None:
    for family in ("qwen2.5", "qwen3", "qwen2"):
        out = to_image_frame([AnswerObject("cup", (1, 2, 3, 4), None)], 100, 100, model_family=family)
        assert out[0].label == "cup" and out[0].point is None


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(InvalidInputError, match="model family"):
        to_image_frame([], 10, 10, model_family="llava")
    with pytest.raises(InvalidInputError, match="grid"):
        to_image_frame([], 10, 10, model_family="qwen3", grid="percent")
    with pytest.raises(InvalidInputError, match="positive"):
        to_image_frame([], 0, 10)


def test_answer_values_collects_everything() -> None:
    assert answer_values([obj((1, 2, 3, 4), (5, 6), extra=[(7, 8)])]) == [1, 2, 3, 4, 5, 6, 7, 8]


coords = st.floats(min_value=-2000, max_value=3000, allow_nan=False)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(coords, coords, coords, coords, coords, coords), min_size=1, max_size=4),
       st.integers(1, 4000), st.integers(1, 4000), st.sampled_from(["qwen2.5", "qwen3", "qwen2"]))
def test_results_are_integer_pixels_inside_the_image(rows, width, height, family) -> None:
    objs = [obj((min(a, c), min(b, d), max(a, c), max(b, d)), (e, f)) for a, b, c, d, e, f in rows]
    for o in to_image_frame(objs, width, height, model_family=family):
        limit_x, limit_y = (width - 1, height - 1) if family == "qwen3" else (width, height)
        x1, y1, x2, y2 = o.bbox
        assert all(isinstance(v, int) for v in (*o.bbox, *o.point))
        assert 0 <= x1 <= x2 <= limit_x and 0 <= y1 <= y2 <= limit_y
        assert 0 <= o.point[0] <= limit_x and 0 <= o.point[1] <= limit_y
