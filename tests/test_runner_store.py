"""The append-only predictions store: durability, torn-tail recovery, refusing real corruption."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.predictions import Prediction
from reasonseg_x.runner.store import PredictionStore, read_stored_lines, serialize


def _preds(n, start=0):
    return [Prediction(id=f"p{i:03d}", mask=masks.empty(3, 4), raw_text="é ünï ✓" if i % 2 else None,
                       meta={"i": i}) for i in range(start, start + n)]


def test_append_and_recover(tmp_path):
    path = tmp_path / "predictions.jsonl"
    with PredictionStore(path) as store:
        store.append(_preds(3))
        store.append([])
        store.append(_preds(2, start=3))
    stored = PredictionStore(path).recover()
    assert stored.ids == ["p000", "p001", "p002", "p003", "p004"]
    assert stored.torn_bytes == 0
    assert json.loads(stored.lines["p001"])["raw_text"] == "é ünï ✓"


def test_serialize_refuses_nan():
    with pytest.raises(ValueError):
        serialize(Prediction(id="x", mask=None, meta={"score": float("nan")}))


@pytest.mark.parametrize("tail", [b'{"id": "p9', b'{"id":"p9","mask":null,"status":"ok"}', b"\x00\x00\x00",
                                  b"garbage\n", b"{\"no_id\": 1}\n"])
def test_torn_tail_is_truncated_before_appending(tmp_path, tail):
    path = tmp_path / "predictions.jsonl"
    with PredictionStore(path) as store:
        store.append(_preds(2))
    clean = path.read_bytes()
    path.write_bytes(clean + tail)
    store = PredictionStore(path)
    stored = store.recover()
    assert stored.ids == ["p000", "p001"] and stored.torn_bytes == len(tail)
    assert path.read_bytes() == clean
    store.append(_preds(1, start=2))
    store.close()
    assert read_stored_lines(path).ids == ["p000", "p001", "p002"]


def test_corruption_before_the_last_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "predictions.jsonl"
    lines = [serialize(p) for p in _preds(3)]
    path.write_text(lines[0] + "\nnot json\n" + lines[2] + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"predictions.jsonl:2.*--fresh"):
        PredictionStore(path).recover()


def test_duplicate_ids_are_an_error(tmp_path):
    path = tmp_path / "predictions.jsonl"
    line = serialize(_preds(1)[0])
    path.write_text(line + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r":2: id 'p000' appears twice"):
        read_stored_lines(path)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 6), cut=st.integers(0, 10_000))
def test_a_kill_at_any_byte_keeps_exactly_the_complete_lines(tmp_path_factory, n, cut):
    path = tmp_path_factory.mktemp("cut") / "predictions.jsonl"
    with PredictionStore(path) as store:
        store.append(_preds(n))
    data = path.read_bytes()
    cut = cut % (len(data) + 1)
    path.write_bytes(data[:cut])
    stored = PredictionStore(path).recover()
    complete = data[:cut].count(b"\n")
    assert stored.ids == [f"p{i:03d}" for i in range(complete)]
    assert path.read_bytes() == data[: stored.good_bytes]
    assert path.read_bytes().endswith(b"\n") or path.stat().st_size == 0
