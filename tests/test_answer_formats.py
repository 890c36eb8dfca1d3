"""Answer formats (baselines/formats.yaml, reasonseg_x/star/answer/formats.py): each format's prompt,
parsing, coordinate mapping and masks on hand-built answers, and garbage as parse errors.

Expected pixels are computed by hand from each format's published rule: pixels of the 840x840
frame map by int(v * W / 840 + 0.5); the 0-1000 grid by int(v * W / 1000 + 0.5); the ``box``
segmenter fills x1..x2 x y1..y2 inclusive.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonseg_x.star.answer.formats import answer_formats, format_for_model, get_format, read_answer
from reasonseg_x.star.segment.box_segmenter import box_mask

W, H = 420, 1680  # 840 frame -> x / 2, y * 2; 0-1000 grid -> x * 0.42, y * 1.68


def mask_of(objects, width=W, height=H):
    out = np.zeros((height, width), bool)
    for obj in objects:
        box_mask(obj.bbox, height, width, out)
    return out


def test_registry_lists_the_four_families_and_star():
    names = set(answer_formats())
    assert {"star", "qwen2.5-native", "qwen3-native", "internvl", "plain-boxes"} <= names
    for fmt in answer_formats().values():
        assert fmt.source and "{Question}" in (fmt.prompt or "{Question}")
        assert "where is it" in fmt.build_prompt("where is it")
    assert format_for_model("qwen2.5").name == "qwen2.5-native"
    assert format_for_model("qwen3").name == "qwen3-native"
    from reasonseg_x.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="no default answer format for model family 'qwen2'"):
        format_for_model("qwen2")


def test_unknown_format_is_a_clear_error():
    from reasonseg_x.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown answer format 'nope'; known: star"):
        get_format("nope")


def test_query_is_text_not_a_template():
    fmt = get_format("qwen2.5-native")
    assert '"{Answer} {0}"' in fmt.build_prompt("{Answer} {0}")


# -- one hand-built answer per format: parse, map, mask ------------------------------------------------

def _read_ok(name: str, text: str):
    """The answer read in format ``name`` on the 420x1680 picture; it must parse."""
    parsed, objects = read_answer(get_format(name), text, W, H)
    assert parsed.status == "ok", parsed
    return parsed, objects


def test_qwen25_native_pixels_of_the_840_frame():
    text = 'Here you go:\n```json\n[\n\t{"bbox_2d": [84, 168, 421, 839], "label": "cup"}\n]\n```'
    parsed, objects = _read_ok("qwen2.5-native", text)
    assert parsed.objects[0].label == "cup"
    # x: int(84 * 0.5 + .5) = 42, int(421 * 0.5 + .5) = 211; y: 168 * 2 = 336, 839 * 2 = 1678
    assert objects[0].bbox == (42, 336, 211, 1678)
    expected = np.zeros((H, W), bool)
    expected[336:1679, 42:212] = True
    assert np.array_equal(mask_of(objects), expected)


def test_qwen3_native_grid_1000():
    text = '[{"bbox_2d": [100, 250, 500, 1000], "label": "a"}, {"bbox_2d": [0, 0, 10, 10]}]'
    _, objects = _read_ok("qwen3-native", text)
    # 100 * .42 = 42; 250 * 1.68 = 420; 500 * .42 = 210; 1000 -> clipped to W = 420 / H = 1680
    assert objects[0].bbox == (42, 420, 210, 1680)
    assert objects[1].bbox == (0, 0, int(10 * 0.42 + 0.5), int(10 * 1.68 + 0.5))  # (0, 0, 4, 17)
    expected = np.zeros((H, W), bool)
    expected[420:, 42:211] = True
    expected[0:18, 0:5] = True
    assert np.array_equal(mask_of(objects), expected)


def test_internvl_ref_box_grid_1000():
    text = "<ref>the red cup</ref><box>[[100, 250, 500, 750]]</box> and <ref>b</ref><box>[[0,0,5,5],[10,10,20,20]]</box>"
    parsed, objects = _read_ok("internvl", text)
    assert [o.label for o in parsed.objects] == ["the red cup", "b", "b"]
    assert objects[0].bbox == (42, 420, 210, 1260)
    assert objects[2].bbox == (int(10 * .42 + .5), int(10 * 1.68 + .5), int(20 * .42 + .5), int(20 * 1.68 + .5))


def test_plain_boxes_one_or_several():
    _, objects = _read_ok("plain-boxes", "The answer is [[84, 168, 420, 840], [0, 0, 2, 2]].")
    assert [o.bbox for o in objects] == [(42, 336, 210, 1680), (0, 0, 1, 4)]
    _, objects = _read_ok("plain-boxes", "[84, 168, 420, 840]")
    assert [o.bbox for o in objects] == [(42, 336, 210, 1680)]


def test_star_format_is_the_star_parser_in_the_checkpoints_frame():
    text = '<think>x</think><answer>[{"label": "a", "bbox_2d": [84, 168, 420, 840], "point_2d": [100, 200]}]</answer>'
    _, pixels = read_answer(get_format("star"), text, W, H, model_family="qwen2.5")
    assert pixels[0].bbox == (42, 336, 210, 1680) and pixels[0].point == (50, 400)
    _, grid = read_answer(get_format("star"), text, W, H, model_family="qwen3")
    # Qwen3's rule: round(v * (size - 1) / 999)
    assert grid[0].bbox == (round(84 * 419 / 999), round(168 * 1679 / 999), round(420 * 419 / 999),
                            round(840 * 1679 / 999))


@pytest.mark.parametrize("name,text", [("qwen2.5-native", "[]"), ("qwen3-native", "```json\n[]\n```"),
                                       ("plain-boxes", "[]"), ("internvl", "<box>[]</box>"),
                                       ("star", "<answer>[]</answer>")])
def test_empty_answer_is_no_target(name, text):
    parsed, objects = read_answer(get_format(name), text, W, H)
    assert parsed.status == "no_target" and objects == []


@pytest.mark.parametrize("name", sorted(answer_formats()))
@pytest.mark.parametrize("text", [None, "", "I cannot see that.", "[[1, 2, 3]]", "<box>[[1, 2]]</box>",
                                  "[[nan, 1, 2, 3]]", '{"bbox_2d": "x"}', "[" * 5000, "<box>" * 300])
def test_garbage_is_a_parse_error(name, text):
    parsed, objects = read_answer(get_format(name), text, W, H)
    assert parsed.status == "parse_error" and parsed.error and objects == []


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(answer_formats())),
       text=st.one_of(st.text(max_size=200),
                      st.text(alphabet="[]{}<>/,:\"' 0123456789.-eboxrfanswthik_", max_size=200)))
def test_any_text_reads_without_raising(name, text):
    parsed, objects = read_answer(get_format(name), text, 37, 23)
    assert parsed.status in ("ok", "no_target", "parse_error")
    for obj in objects:
        x1, y1, x2, y2 = obj.bbox
        assert 0 <= x1 <= x2 <= 37 and 0 <= y1 <= y2 <= 23
