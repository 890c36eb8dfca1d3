"""The answer parser: statuses, repairs of common JSON mistakes, fuzzing (never raises)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasonseg_x.star.answer.parser import AnswerObject, ParsedAnswer, parse_answer, vote_kind

OK_TEXT = ('<think>The cup on the left holds coffee.</think>'
           '<answer>[{"label": "cup", "bbox_2d": [10, 20, 110, 220], "point_2d": [60, 120]}, '
           '{"label": "mug", "bbox_2d": [300.5, 40, 400, 90], "point_2d": [350, 65]}]</answer>')


def test_clean_answer() -> None:
    parsed = parse_answer(OK_TEXT)
    assert parsed == ParsedAnswer("ok", [AnswerObject("cup", (10.0, 20.0, 110.0, 220.0), (60.0, 120.0)),
                                         AnswerObject("mug", (300.5, 40.0, 400.0, 90.0), (350.0, 65.0))],
                                  None, "The cup on the left holds coffee.", (), True)
    assert parsed.ok


@pytest.mark.parametrize("text", ["<answer>[]</answer>", "<think>none</think><answer> [ ] </answer>",
                                  "<answer>[{}]</answer>", "<answer>{}</answer>"])
def test_empty_list_means_no_target(text) -> None:
    parsed = parse_answer(text)
    assert parsed.status == "no_target" and parsed.objects == [] and parsed.error is None


@pytest.mark.parametrize("text, reason", [
    (None, "no output"),
    ("", "no <answer> block"),
    ("I think it is the cup.", "no <answer> block"),
    ("<answer></answer>", "empty"),
    ("<answer>the red cup</answer>", "not a JSON list"),
    ('<answer>[{"label": "cup"}]</answer>', "no bbox"),
    ('<answer>[{"bbox_2d": [1, 2, 3]}]</answer>', "4 numbers"),
    ('<answer>[{"bbox_2d": [1, 2, 3, "x"]}]</answer>', "not a number"),
    ('<answer>[{"bbox_2d": [1, 2, 3, Infinity]}]</answer>', "not finite"),
    ('<answer>[{"bbox_2d": [1, 2, 3, 4], "point_2d": [1]}]</answer>', "2 numbers"),
    ('<answer>[{"bbox_2d": [1, 2, 3, true]}]</answer>', "boolean"),
    ('<answer>[1, 2, 3, 4]</answer>', "not a JSON object"),
    ('<answer>"cup"</answer>', "list of objects"),
])
def test_failures_have_a_reason(text, reason) -> None:
    parsed = parse_answer(text)
    assert parsed.status == "parse_error" and parsed.objects == []
    assert reason in parsed.error


BOX = (10.0, 20.0, 30.0, 40.0)
POINT = (15.0, 25.0)


@pytest.mark.parametrize("answer, repair", [
    ('[{"bbox_2d": [10,20,30,40], "point_2d": [15,25}}]', "'}' closing an array"),
    ('[{"bbox_2d": [10,20,30,40], "point_2d": [15,25}]', "'}' closing an array"),
    ('[{"bbox_2d": [10,20,30,40], "point_2d": [15,25]}}]', "stray '}'"),
    ('[{"bbox_2d": [10,20,30,40], "point_2d": [15,25]}]}', "extra closing bracket"),
    ('[{"bbox_2d": [10,20,30,40], "point_2d": [15,25]', "unclosed array"),
    ('[{"bbox_2d": [10,20,30,40], "point_2d": [15,25]]', "missing '}'"),
    ('[{"bbox_2d": [10,20,30,40], "point_2d": [15,25],},]', "trailing comma"),
    ("[{'bbox_2d': [10,20,30,40], 'point_2d': [15,25]}]", None),
    ('[{"bbox_2d": ["10","20","30","40"], "point_2d": ["15", "25"]}]', "quoted number"),
    ('[{"bbox_2d": "[10,20,30,40]", "point_2d": [15,25]}]', "quoted array"),
    ('{"bbox_2d": [10,20,30,40], "point_2d": [15,25]}', "bare object instead of a list"),
    ('{"bbox_2d": [10,20,30,40], "point_2d": [15,25]}, ', "extra comma"),
    ('[{"bbox": [10,20,30,40], "point": [15,25]}]', "bbox key variant"),
    ('[{"box_2d": [10,20,30,40], "point_2d": [[15,25]]}]', "bbox key variant"),
    ('[{"bbox_2d": [10,20,30,40], "point_2d": [15,25], "label": None, "ok": True}]', "python/js literal"),
    ('[{bbox_2d: [10,20,30,40], point_2d: [15,25]}]', "unquoted key"),
    ('[{"bbox_2d": [10,20,30,40], "point_2d": [15,25], "label": cup}]', "unquoted word"),
    ('[{"bbox_2d": [30,40,10,20], "point_2d": [15,25]}]', "unordered bbox"),
    ('```json\n[{"bbox_2d": [10,20,30,40], "point_2d": [15,25]}]\n```', None),
    ('Here: [{"bbox_2d": [10,20,30,40], "point_2d": [15,25]}] done.', "text after the JSON"),
    ('[{"bbox_2d": [10,20,30,40] "point_2d": [15,25]}]', None),
    ('[[{"bbox_2d": [10,20,30,40], "point_2d": [15,25]}]]', "nested list"),
])
def test_common_mistakes_are_repaired(answer, repair) -> None:
    for text in (f"<think>t</think><answer>{answer}</answer>", f"<answer>{answer}"):
        parsed = parse_answer(text)
        assert parsed.status == "ok", (text, parsed.error)
        assert [(o.bbox, o.point) for o in parsed.objects] == [(BOX, POINT)]
        if repair is not None:
            assert repair in parsed.repairs


def test_missing_comma_between_keys() -> None:
    parsed = parse_answer('<answer>[{"bbox_2d": [10,20,30,40], "point_2d": [15,25] "label": "cup"}]</answer>')
    assert parsed.status == "ok" and parsed.objects[0].label == "cup"


def test_stray_brace_between_objects_keeps_both() -> None:
    parsed = parse_answer('<answer>[{"bbox_2d": [1,2,3,4], "point_2d": [2,3]}}, '
                          '{"bbox_2d": [5,6,7,8], "point_2d": [6,7]}]</answer>')
    assert [o.bbox for o in parsed.objects] == [(1, 2, 3, 4), (5, 6, 7, 8)]


def test_last_complete_answer_block_wins() -> None:
    text = ('<think>The format is <answer>[]</answer>, so ...</think>'
            '<answer>[{"bbox_2d": [1,2,3,4], "point_2d": [2,3]}]</answer>')
    parsed = parse_answer(text)
    assert parsed.status == "ok" and len(parsed.objects) == 1


def test_point_outside_the_box_is_kept_and_point_is_optional() -> None:
    parsed = parse_answer('<answer>[{"bbox_2d": [1,2,3,4], "point_2d": [100, 200]}, {"bbox_2d": [1,2,3,4]}]</answer>')
    assert parsed.objects[0].point == (100.0, 200.0)
    assert parsed.objects[1].point is None


def test_thinking_without_think_tags_is_the_text_before_the_answer() -> None:
    parsed = parse_answer('The target is the mug.\n<answer>[]</answer>')
    assert parsed.thinking == "The target is the mug."
    assert parse_answer("<answer>[]</answer>").thinking is None


def test_special_tokens_and_case_are_tolerated() -> None:
    parsed = parse_answer('<ANSWER>[{"bbox_2d": [1,2,3,4], "point_2d": [2,3]}]<|im_end|>')
    assert parsed.status == "ok"


def test_non_string_labels_are_serialised() -> None:
    parsed = parse_answer('<answer>[{"label": 7, "bbox_2d": [1,2,3,4]}]</answer>')
    assert parsed.objects[0].label == "7"


@pytest.mark.parametrize("text, reference, lenient", [
    (OK_TEXT, "objects", "objects"),
    ("<answer>[]</answer>", "no_object", "no_object"),
    ("<answer>[{}]</answer>", "no_object", "no_object"),
    # no complete block: StAR's reference reads "no object"
    ("I cannot tell.", "no_object", "abstain"),
    ('<think>long...</think><answer>[{"label": "cu', "no_object", "abstain"),
    # a block it cannot read: abstains
    ("<answer>the cup</answer>", "abstain", "abstain"),
    ("<answer></answer>", "abstain", "abstain"),
    (None, "abstain", "abstain"),  # no generation at all is not an answer
])
def test_vote_kind(text, reference, lenient) -> None:
    parsed = parse_answer(text)
    assert vote_kind(parsed) == reference
    assert vote_kind(parsed, missing_answer_votes_no_object=False) == lenient


# --- styles --------------------------------------------------------------------------------------


def test_visionreasoner_style_without_labels() -> None:
    parsed = parse_answer('<think>x</think><answer>[{"bbox_2d": [1,2,3,4], "point_2d": [2,3]}]</answer>',
                          style="visionreasoner")
    assert parsed.objects == [AnswerObject(None, (1, 2, 3, 4), (2, 3))]


def test_segzero_style_two_points() -> None:
    text = "<think>x</think><answer>{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}</answer>"
    parsed = parse_answer(text, style="segzero")
    assert parsed.status == "ok"
    assert parsed.objects == [AnswerObject(None, (10, 100, 200, 210), (30, 110), ((35, 180),))]
    # the reference reads the first {...} even without answer tags
    untagged = parse_answer('<think>x</think> {"bbox": [1,2,3,4], "points_1": [2,3], "points_2": [3,3]}',
                            style="seg-zero")
    assert untagged.status == "ok" and untagged.objects[0].extra_points == ((3.0, 3.0),)
    assert parse_answer('<answer>{"bbox": [1,2,3,4], "points_1": [2,3]}</answer>', style="segzero").status == "parse_error"


def test_unknown_style_is_a_parse_error_not_an_exception() -> None:
    parsed = parse_answer(OK_TEXT, style="llava")
    assert parsed.status == "parse_error" and "unknown answer style" in parsed.error


# --- fuzzing -------------------------------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def answer_objects(draw):
    x1, x2 = sorted([draw(finite), draw(finite)])
    y1, y2 = sorted([draw(finite), draw(finite)])
    point = draw(st.one_of(st.none(), st.tuples(finite, finite)))
    label = draw(st.one_of(st.none(), st.text(max_size=20)))
    return AnswerObject(label, (x1, y1, x2, y2), point)


def _render(objects, style):
    items = []
    for o in objects:
        item = {"bbox_2d": list(o.bbox)}
        if o.point is not None:
            item["point_2d"] = list(o.point)
        if o.label is not None and style == "star":
            item["label"] = o.label
        items.append(item)
    return json.dumps(items)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.lists(answer_objects(), max_size=5), st.text(max_size=40), st.sampled_from(["star", "visionreasoner"]))
def test_valid_answers_round_trip(objects, thinking, style) -> None:
    thinking = thinking.replace("<", "(")
    text = f"<think>{thinking}</think><answer>{_render(objects, style)}</answer>"
    parsed = parse_answer(text, style=style)
    if not objects:
        assert parsed.status == "no_target"
        return
    assert parsed.status == "ok", parsed.error
    assert parsed.repairs == ()
    expected = [AnswerObject(o.label if style == "star" else None, o.bbox, o.point) for o in objects]
    assert parsed.objects == expected


def _check_invariants(parsed: ParsedAnswer) -> None:
    assert isinstance(parsed, ParsedAnswer)
    assert parsed.status in ("ok", "no_target", "parse_error")
    if parsed.status == "parse_error":
        assert parsed.error and parsed.objects == []
    if parsed.status == "no_target":
        assert parsed.objects == []
    if parsed.status == "ok":
        assert parsed.objects
    for obj in parsed.objects:
        assert obj.bbox is not None and len(obj.bbox) == 4
        assert all(math.isfinite(v) for v in obj.bbox)
        assert obj.bbox[0] <= obj.bbox[2] and obj.bbox[1] <= obj.bbox[3]
        if obj.point is not None:
            assert len(obj.point) == 2 and all(math.isfinite(v) for v in obj.point)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.sampled_from(["star", "visionreasoner", "segzero"]))
def test_arbitrary_text_never_raises(text, style) -> None:
    _check_invariants(parse_answer(text, style=style))
    _check_invariants(parse_answer(f"<answer>{text}</answer>", style=style))


JSONISH = st.sampled_from(list('[]{}:,"\' 0123456789.-eE') + ["bbox_2d", "point_2d", "label", "None", "true",
                                                               "null", "NaN", "points_1", "<answer>", "</answer>"])


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(JSONISH, max_size=60), st.sampled_from(["star", "segzero"]))
def test_json_like_garbage_never_raises(parts, style) -> None:
    _check_invariants(parse_answer("<answer>" + "".join(parts), style=style))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.integers(0, len(OK_TEXT) - 1), st.integers(1, 6), st.text(alphabet='[]{},:"\' x', max_size=3))
def test_mutated_answers_never_raise(at, cut, insert) -> None:
    _check_invariants(parse_answer(OK_TEXT[:at] + insert + OK_TEXT[at + cut:]))


def test_pathological_inputs() -> None:
    _check_invariants(parse_answer("<answer>" + "[" * 20000 + "</answer>"))
    _check_invariants(parse_answer("<answer>" + "{" * 20000 + "</answer>"))
    _check_invariants(parse_answer("<answer>" + "[1," * 50000))
    _check_invariants(parse_answer(b"<answer>[]</answer>"))  # type: ignore[arg-type]
