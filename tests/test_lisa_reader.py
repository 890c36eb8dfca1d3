"""The LISA ReasonSeg folder reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _lisa_helpers import square, write_annotation, write_image, write_pair
from reasonseg_x import masks
from reasonseg_x.data import polygons
from reasonseg_x.data.lisa import LisaSource, decode_json_bytes, is_lisa_folder
from reasonseg_x.errors import InvalidInputError, SourceNotFoundError, UnknownLabelError


def _only(source, split=None):
    (sample,) = list(source.samples(split))
    return sample


def test_split_folders_and_fields(tmp_path):
    write_pair(tmp_path / "val", "b_img", text=["Where can I sit?", "somewhere to sit"], is_sentence=True)
    write_pair(tmp_path / "val", "a_img", text=["the red cup"], is_sentence=False)
    write_pair(tmp_path / "test", "c_img")
    src = LisaSource(tmp_path)
    assert src.splits() == ["val", "test"] and src.default_split() == "test"
    assert is_lisa_folder(tmp_path)
    samples = list(src.samples("val"))
    assert [s.id for s in samples] == ["a_img", "b_img"]
    a, b = samples
    assert a.query_kind == "short" and b.query_kind == "long"
    assert b.query == "Where can I sit?" and b.queries == ("Where can I sit?", "somewhere to sit")
    assert (b.height, b.width) == (40, 50) and b.split == "val"
    assert b.image.open().size == (50, 40)
    expected = np.zeros((40, 50), bool)
    expected[5:16, 5:21] = True  # inclusive outline: x 5..20, y 5..15
    assert np.array_equal(masks.decode(b.target), expected)
    assert b.ignore is None
    assert src.num_samples("val") == 2
    assert [g.id for g in src.ground_truth("val")] == ["a_img", "b_img"]
    assert list(src.ground_truth("val"))[1] == b.ground_truth()


def test_single_folder_is_one_split_named_after_it(tmp_path):
    folder = tmp_path / "ReasonSeg_val"
    write_pair(folder, "x")
    src = LisaSource(folder)
    assert src.splits() == ["ReasonSeg_val"]
    assert _only(src).split == "ReasonSeg_val"


def test_cp1252_annotation_is_read(tmp_path):
    write_pair(tmp_path / "val", "cafe", text=["the café sign – left"], encoding="cp1252")
    assert _only(LisaSource(tmp_path)).query == "the café sign – left"


def test_undecodable_annotation_names_the_file(tmp_path):
    write_image(tmp_path / "val" / "bad.jpg", 20, 20)
    write_annotation(tmp_path / "val" / "bad.json", shapes=[], raw=b'{"text": ["\x81\x8d"], "shapes": []}')
    write_pair(tmp_path / "val", "good")
    with pytest.raises(InvalidInputError, match=r"bad\.json.*neither UTF-8 nor cp1252"):
        list(LisaSource(tmp_path).samples())
    src = LisaSource(tmp_path, skip_invalid=True)
    assert [s.id for s in src.samples()] == ["good"]
    assert len(src.skipped) == 1 and src.skipped[0].where.endswith("bad.json")


def test_invalid_json_names_file_and_line(tmp_path):
    write_image(tmp_path / "val" / "broken.jpg", 20, 20)
    write_annotation(tmp_path / "val" / "broken.json", shapes=[], raw=b'{"text": ["a"],\n "shapes": [}')
    with pytest.raises(InvalidInputError, match=r"broken\.json: invalid JSON at line 2"):
        list(LisaSource(tmp_path).samples())


def test_flag_shapes_are_skipped_even_when_degenerate(tmp_path):
    shapes = [square(0, 0, 30, 30, "flag"), {"label": "Flag", "points": [[1, 1], [2, 2]]}, square(5, 5, 9, 9)]
    write_pair(tmp_path / "val", "f", shapes=shapes)
    sample = _only(LisaSource(tmp_path))
    assert masks.area(sample.target) == 25 and sample.meta["flag_shapes"] == 2


def test_ignore_regions_are_kept_apart_and_smaller_polygons_win(tmp_path):
    shapes = [square(0, 0, 39, 29, "ignore"), square(10, 10, 14, 14, "target"), square(30, 30, 45, 38, "target_2")]
    write_pair(tmp_path / "val", "o", shapes=shapes)
    sample = _only(LisaSource(tmp_path))
    target, ignore = masks.decode(sample.target), masks.decode(sample.ignore)
    assert target[10:15, 10:15].all()  # painted after the larger ignore region
    assert target[30:39, 30:46].all()
    assert ignore.sum() == 40 * 30 - 25 - (30 - 30) and not (target & ignore).any()
    assert sample.ground_truth().ignore == sample.ignore


def test_overlapping_targets_and_ignores_follow_the_painting_order(tmp_path):
    """A large target under a smaller ignore: the overlap is ignore, not target."""
    shapes = [square(12, 8, 30, 20, "ignore_part"), square(0, 0, 40, 30, "target")]
    write_pair(tmp_path / "val", "p", shapes=shapes)
    sample = _only(LisaSource(tmp_path))
    canvas = polygons.rasterize([polygons.Polygon(np.array(s["points"], dtype=np.int64),
                                                  255 if "ignore" in s["label"] else 1) for s in shapes], 40, 50)
    assert np.array_equal(masks.decode(sample.target), canvas == 1)
    assert np.array_equal(masks.decode(sample.ignore), canvas == 255)
    assert masks.decode(sample.ignore)[8:21, 12:31].all()


def test_no_polygons_means_an_empty_target(tmp_path):
    write_pair(tmp_path / "test", "empty", shapes=[])
    sample = _only(LisaSource(tmp_path))
    assert masks.area(sample.target) == 0 and sample.ignore is None
    assert sample.target["size"] == [40, 50]


def test_two_point_polygon_names_file_and_shape(tmp_path):
    write_pair(tmp_path / "val", "line", shapes=[square(1, 1, 5, 5), {"label": "target", "points": [[1, 1], [9, 9]]}])
    write_pair(tmp_path / "val", "ok")
    with pytest.raises(InvalidInputError, match=r"line\.json: shape 1 \('target'\) has 2 point\(s\)"):
        list(LisaSource(tmp_path).samples())
    src = LisaSource(tmp_path, skip_invalid=True)
    assert [s.id for s in src.samples()] == ["ok"]
    assert "shape 1" in src.skipped[0].reason


def test_corrupt_image_names_the_file(tmp_path):
    write_pair(tmp_path / "val", "junk", image="corrupt")
    with pytest.raises(InvalidInputError, match=r"junk\.jpg: corrupt or unreadable image"):
        list(LisaSource(tmp_path).samples())
    assert list(LisaSource(tmp_path, skip_invalid=True).samples()) == []


def test_truncated_image_is_caught_without_decoding_good_ones(tmp_path):
    write_pair(tmp_path / "val", "half", image="truncated", height=64, width=64)
    write_pair(tmp_path / "val", "whole", height=64, width=64)
    with pytest.raises(InvalidInputError, match=r"half\.jpg: truncated image"):
        list(LisaSource(tmp_path).ground_truth())  # the header is intact: the end marker is not
    src = LisaSource(tmp_path, skip_invalid=True)
    assert [gt.id for gt in src.ground_truth()] == ["whole"]
    list(src.ground_truth())  # a second pass (data info reads twice) does not count the row again
    assert [(Path(s.where).name, s.reason.split(":")[0]) for s in src.skipped] == [("half.jpg", "truncated image")]


def test_exif_rotation_swaps_the_size_like_opencv(tmp_path):
    write_image(tmp_path / "val" / "rot.jpg", 30, 60, orientation=6)
    write_annotation(tmp_path / "val" / "rot.json", shapes=[square(2, 2, 10, 50)])
    sample = _only(LisaSource(tmp_path))
    assert (sample.height, sample.width) == (60, 30)
    assert sample.image.open().size == (30, 60)
    assert masks.area(sample.target) == 9 * 49


def test_reasoning_type_aliases_and_unknown_labels(tmp_path):
    write_pair(tmp_path / "a", "x", reasoning_type="C/MH")
    assert _only(LisaSource(tmp_path / "a")).reasoning_type == "compositional"
    write_pair(tmp_path / "b", "y", reasoning_type="astrology")
    with pytest.raises(UnknownLabelError, match=r"y\.json.*astrology"):
        list(LisaSource(tmp_path / "b").samples())
    assert _only(LisaSource(tmp_path / "b", open_taxonomy=True)).reasoning_type == "astrology"


@pytest.mark.parametrize("annotation, message", [
    ({"text": []}, "'text' must be a non-empty list"),
    ({"text": [3]}, "'text' must be a non-empty list"),
    ({"is_sentence": "maybe"}, "'is_sentence' must be true or false"),
    ({"shapes": {"label": "x"}}, "'shapes' must be a list"),
    ({"shapes": [{"label": "t", "points": [[1, "a"], [2, 2], [3, 1]]}]}, r"shape 0 \('t'\)"),
    ({"shapes": [{"points": [[1, 1], [2, 2], [3, 1]]}]}, "shape 0 must be an object with a string 'label'"),
    ({"imageHeight": 99, "imageWidth": 50}, "declares image size"),
])
def test_malformed_annotations_name_the_file(tmp_path, annotation, message):
    folder = tmp_path / "val"
    write_image(folder / "m.jpg", 40, 50)
    data = {"text": ["q"], "is_sentence": False, "shapes": [], **annotation}
    (folder / "m.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message) as info:
        list(LisaSource(tmp_path).samples())
    assert "m.json" in str(info.value)


def test_unpaired_files_and_missing_folders(tmp_path):
    write_pair(tmp_path / "val", "paired")
    write_annotation(tmp_path / "val" / "lonely.json", shapes=[])
    write_annotation(tmp_path / "explanatory" / "train.json", shapes=[])  # LISA ships JSON-only folders
    assert LisaSource(tmp_path).splits() == ["val"]
    with pytest.raises(InvalidInputError, match=r"lonely\.json: annotation has no image"):
        list(LisaSource(tmp_path).samples())
    write_image(tmp_path / "val2" / "alone.jpg", 10, 10)
    write_pair(tmp_path / "val2", "paired")
    with pytest.raises(InvalidInputError, match=r"alone\.jpg: image has no annotation"):
        list(LisaSource(tmp_path / "val2").samples())
    with pytest.raises(SourceNotFoundError):
        LisaSource(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InvalidInputError, match=r"no LISA annotation \+ image pairs"):
        LisaSource(tmp_path / "plain")
    assert not is_lisa_folder(tmp_path / "plain")


def test_duplicate_image_stems_are_reported(tmp_path):
    write_pair(tmp_path / "val", "twin")
    write_image(tmp_path / "val" / "twin.png", 40, 50)
    with pytest.raises(InvalidInputError, match="several images share the stem 'twin'"):
        list(LisaSource(tmp_path).samples())


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(st.lists(st.text(min_size=1, max_size=20).filter(lambda t: t.strip()), min_size=1, max_size=3),
       st.booleans(), st.sampled_from(["utf-8", "cp1252"]))
def test_json_decoding_round_trips(texts, is_sentence, encoding):
    data = {"text": texts, "is_sentence": is_sentence, "shapes": []}
    try:
        raw = json.dumps(data, ensure_ascii=False).encode(encoding)
    except UnicodeEncodeError:
        raw = json.dumps(data).encode(encoding)  # \\u escapes: plain ASCII
    try:  # like the reference: UTF-8 first, so cp1252 bytes that happen to be valid UTF-8 read as UTF-8
        expected = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        expected = data
    assert decode_json_bytes(raw, "x.json") == expected
