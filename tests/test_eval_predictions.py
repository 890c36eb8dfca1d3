"""The predictions reader: every bad line is an error naming file:line, or a counted failure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.predictions import (Prediction, iter_prediction_lines, prediction_to_json, read_predictions)

GOOD = {"id": "a", "mask": masks.encode(np.eye(3, dtype=bool)), "status": "ok"}


def _write(tmp_path, lines, name="p.jsonl", terminate=True):
    path = tmp_path / name
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + ("\n" if terminate else ""), encoding="utf-8")
    return path


def test_reads_valid_lines(tmp_path):
    other = {"id": "b", "mask": None, "status": "no_target", "raw_text": "<answer>[]</answer>", "meta": {"k": 1}}
    preds = read_predictions(_write(tmp_path, [GOOD, "", other]))
    assert set(preds.by_id) == {"a", "b"}
    assert preds.by_id["b"].status == "no_target" and preds.by_id["b"].meta == {"k": 1}
    assert preds.location("b") == f"{tmp_path / 'p.jsonl'}:3"
    assert preds.counts["lines"] == 2


@pytest.mark.parametrize("line, message", [
    ("{not json", "malformed JSON"),
    ('{"id": "a", "mask": null, "status": "ok", "meta": {"x": NaN}}', "NaN"),
    ('[1, 2]', "expected a JSON object"),
    ('{"id": 3, "mask": null}', "'id' must be a non-empty string"),
    ('{"id": "a", "mask": null, "status": "maybe"}', "unknown status"),
    ('{"id": "a"}', "missing 'mask'"),
    ('{"id": "a", "mask": {"size": [2, 2], "counts": "3"}}', "sum to 3"),
    ('{"id": "a", "mask": {"size": [-1, 2], "counts": ""}}', "out of range"),
    ('{"id": "a", "mask": {"size": [100000, 100000], "counts": ""}}', "out of range"),
    ('{"id": "a", "mask": {"size": [2, 2], "counts": [1, -1, 4]}}', "negative"),
    ('{"id": "a", "mask": "abc"}', "RLE object"),
    ('{"id": "a", "mask": null, "raw_text": 5}', "raw_text"),
    ('{"id": "a", "mask": null, "id": "b"}', "'id' appears twice"),
    ('{"id": "a", "mask": {"size": [2.0, 2.0], "counts": "4"}}', "integers"),
    ('{"id": "a", "mask": {"size": [2, 2], "counts": "\\u00e9"}}', "invalid character"),
    ('{"id": "a", "mask": null, "meta": {"x": 1e999}}', "infinity"),
])
def test_bad_line_names_file_and_line(tmp_path, line, message):
    path = _write(tmp_path, [{"id": "z", "mask": None}, line])
    with pytest.raises(InvalidInputError, match=message) as info:
        read_predictions(path)
    assert f"{path}:2" in str(info.value)


def test_skip_invalid_counts_instead(tmp_path):
    path = _write(tmp_path, [GOOD, "{broken", '{"id": "c", "mask": {"size": [2, 2], "counts": "3"}}'])
    preds = read_predictions(path, skip_invalid=True)
    assert set(preds.by_id) == {"a"}
    assert preds.invalid_ids == {"c"}
    assert preds.counts["invalid"] == 2
    assert [p.where for p in preds.problems] == [f"{path}:2", f"{path}:3 (id 'c')"]


def test_duplicates(tmp_path):
    preds = read_predictions(_write(tmp_path, [GOOD, GOOD]))
    assert preds.counts["duplicate"] == 1 and len(preds) == 1
    conflict = dict(GOOD, status="error", mask=None)
    with pytest.raises(InvalidInputError, match="duplicate id 'a'"):
        read_predictions(_write(tmp_path, [GOOD, conflict], name="q.jsonl"))
    skipped = read_predictions(_write(tmp_path, [GOOD, conflict], name="r.jsonl"), skip_invalid=True)
    assert "a" not in skipped.by_id and skipped.invalid_ids == {"a"}


def test_torn_tail(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + '{"id": "b", "mask": nu', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=":2.*unterminated last line"):
        read_predictions(path)
    preds = read_predictions(path, allow_torn_tail=True)
    assert set(preds.by_id) == {"a"} and preds.counts["torn_tail"] == 1
    assert preds.valid_bytes == len(json.dumps(GOOD)) + 1
    assert list(iter_prediction_lines(path, allow_torn_tail=True))[-1][0] == -2


def test_png_folder(tmp_path):
    m = np.zeros((5, 6), dtype=np.uint8)
    m[1:3, 2:5] = 255
    Image.fromarray(m).save(tmp_path / "x1.png")
    rgb = np.zeros((5, 6, 3), dtype=np.uint8)
    rgb[0, 0, 2] = 1
    Image.fromarray(rgb).save(tmp_path / "x2.png")
    (tmp_path / "x3.png").write_bytes(b"not a png")
    with pytest.raises(InvalidInputError, match="x3.png"):
        read_predictions(tmp_path)
    noise = np.random.default_rng(0).integers(0, 255, (5, 6, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "x4.png")
    soft = np.linspace(0, 255, 30, dtype=np.uint8).reshape(5, 6)
    Image.fromarray(soft).save(tmp_path / "x5.png")
    preds = read_predictions(tmp_path, skip_invalid=True)
    assert masks.area(preds.by_id["x1"].mask) == 6
    assert masks.area(preds.by_id["x2"].mask) == 1  # a coloured foreground on black is binary too
    assert preds.invalid_ids == {"x3", "x4", "x5"}
    assert all("not a binary mask" in p.reason for p in preds.problems if p.id in ("x4", "x5"))


def test_prediction_to_json_round_trip():
    pred = Prediction("a", masks.encode(np.ones((2, 3), dtype=bool)), raw_text="t", meta={"m": 1})
    obj = prediction_to_json(pred)
    assert json.loads(json.dumps(obj)) == obj and isinstance(obj["mask"]["counts"], str)
    with pytest.raises(InvalidInputError):
        prediction_to_json(Prediction("a", None, status="weird"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(tmp_path, data):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    for skip in (False, True):
        try:
            read_predictions(path, skip_invalid=skip, allow_torn_tail=skip)
        except InvalidInputError:
            pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12)
prediction_like = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=4), st.integers(), st.none())},
    optional={"mask": st.one_of(st.none(), json_values, st.fixed_dictionaries(
        {"size": st.lists(st.integers(-3, 40), max_size=3), "counts": st.one_of(st.text(max_size=10),
                                                                             st.lists(st.integers(-2, 50),
                                                                                      max_size=5))})),
              "status": st.one_of(st.sampled_from(["ok", "no_target", "error", "parse_error", "x"]), json_values),
              "meta": json_values, "raw_text": json_values})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(objs=st.lists(st.one_of(prediction_like, json_values), min_size=1, max_size=4))
def test_fuzz_json_objects(tmp_path, objs):
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in objs) + "\n", encoding="utf-8")
    for skip in (False, True):
        try:
            preds = read_predictions(path, skip_invalid=skip)
        except InvalidInputError:
            assert not skip
            continue
        for p in preds.by_id.values():  # whatever was accepted is a valid prediction
            assert p.mask is None or masks.area(p.mask) >= 0


def test_bom_and_crlf_are_tolerated(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\r\n")
    assert set(read_predictions(path).by_id) == {"a"}


def test_run_folders(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _write(run, [GOOD], name="predictions.jsonl")
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(run / "chart.png")
    preds = read_predictions(run)  # an eval run folder: its predictions.jsonl, not its chart
    assert set(preds.by_id) == {"a"} and preds.path.endswith("predictions.jsonl")
    scored = tmp_path / "scored"
    scored.mkdir()
    (scored / "metrics.json").write_text("{}")
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(scored / "chart.png")
    with pytest.raises(InvalidInputError, match="scored run folder"):
        read_predictions(scored)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 12), w=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       density=st.sampled_from([0.0, 0.1, 0.5, 1.0]), status=st.sampled_from(["ok", "no_target"]))
def test_written_masks_read_back_identical(tmp_path, h, w, seed, density, status):
    mask = np.random.default_rng(seed).random((h, w)) < density
    pred = Prediction("s", masks.encode(mask), status=status, meta={"seed": seed})
    path = _write(tmp_path, [prediction_to_json(pred)], name="rt.jsonl")
    back = read_predictions(path).by_id["s"]
    assert back == pred and np.array_equal(masks.decode(back.mask), mask)
