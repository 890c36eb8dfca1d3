"""RLE codec and mask arithmetic: property tests against pycocotools and numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reasonseg_x import masks
from reasonseg_x.errors import InvalidMaskError

small_masks = st.tuples(st.integers(0, 24), st.integers(0, 24)).flatmap(
    lambda hw: arrays(np.bool_, hw))


@settings(max_examples=150, deadline=None)
@given(small_masks)
def test_encode_decode_round_trip(mask: np.ndarray) -> None:
    rle = masks.encode(mask)
    assert isinstance(rle["counts"], str)
    assert rle["size"] == list(mask.shape)
    np.testing.assert_array_equal(masks.decode(rle), mask)
    assert masks.area(rle) == int(mask.sum())


@settings(max_examples=150, deadline=None)
@given(small_masks)
def test_counts_codec_matches_pycocotools(mask: np.ndarray) -> None:
    rle = masks.encode(mask)
    runs = masks.decode_counts(rle["counts"])
    assert sum(runs) == mask.size
    assert masks.encode_counts(runs) == rle["counts"]
    assert masks.validate_rle(rle) == rle


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 16), st.integers(1, 16), st.data())
def test_intersection_and_merge_agree_with_numpy(h: int, w: int, data: st.DataObject) -> None:
    a = data.draw(arrays(np.bool_, (h, w)))
    b = data.draw(arrays(np.bool_, (h, w)))
    ra, rb = masks.encode(a), masks.encode(b)
    assert masks.intersection_area(ra, rb) == int((a & b).sum())
    np.testing.assert_array_equal(masks.decode(masks.merge([ra, rb])), a | b)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 16), st.integers(1, 16), st.data())
def test_iou_agrees_with_numpy(h: int, w: int, data: st.DataObject) -> None:
    a = data.draw(arrays(np.bool_, (h, w)))
    b = data.draw(arrays(np.bool_, (h, w)))
    union = int((a | b).sum())
    assert masks.iou(masks.encode(a), masks.encode(b)) == (int((a & b).sum()) / union if union else 0.0)


@settings(max_examples=150, deadline=None)
@given(small_masks)
def test_bbox_of_rle_and_array_agree_with_numpy(mask: np.ndarray) -> None:
    ys, xs = np.nonzero(mask)
    expected = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())) if xs.size else None
    assert masks.bbox(mask) == expected
    assert masks.bbox(masks.encode(mask)) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=12), st.integers(1, 10))
def test_uncompressed_counts_are_normalised(runs: list[int], w: int) -> None:
    total = sum(runs)
    if total % w:
        runs = runs + [w - total % w]
    h = sum(runs) // w
    rle = masks.validate_rle({"size": [h, w], "counts": runs})
    assert masks.decode_counts(rle["counts"])[: len(runs)] == runs or sum(runs) == 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_validate_never_crashes_on_garbage_counts(counts: str) -> None:
    try:
        masks.validate_rle({"size": [4, 5], "counts": counts})
    except InvalidMaskError:
        pass


@pytest.mark.parametrize(
    "obj, message",
    [
        ([1, 2], "RLE object"),
        ({"size": [2], "counts": ""}, "'size'"),
        ({"size": [-1, 3], "counts": ""}, "out of range"),
        ({"size": [10**6, 3], "counts": ""}, "out of range"),
        ({"size": [2.0, 3], "counts": ""}, "'size'"),
        ({"size": [2, 3], "counts": 5}, "'counts'"),
        ({"size": [2, 3], "counts": [1, 2]}, "sum to 3"),
        ({"size": [2, 3], "counts": [1, -1, 6]}, "negative"),
        ({"size": [2, 3], "counts": "\u00e9"}, "invalid character"),
        ({"size": [2, 3], "counts": "1"}, "sum to 1"),
    ],
)
def test_validate_rejects_malformed(obj: object, message: str) -> None:
    with pytest.raises(InvalidMaskError, match=message) as info:
        masks.validate_rle(obj, where="preds.jsonl:3")
    assert str(info.value).startswith("preds.jsonl:3: ")


def test_validate_checks_expected_size() -> None:
    rle = masks.empty(3, 4)
    with pytest.raises(InvalidMaskError, match="differs from the image size"):
        masks.validate_rle(rle, expected_size=(4, 3))


def test_empty_full_and_areas_in_chunks() -> None:
    rles = [masks.full(7, 9)] * 300 + [masks.empty(7, 9)]
    got = masks.areas(rles)
    assert got.dtype == np.int64
    assert got[:300].tolist() == [63] * 300 and got[300] == 0


def test_merge_refuses_different_sizes() -> None:
    with pytest.raises(InvalidMaskError, match="different sizes"):
        masks.merge([masks.empty(2, 2), masks.empty(2, 3)])


def test_resize_nearest() -> None:
    src = np.zeros((4, 4), bool)
    src[:2, :2] = True
    out = masks.decode(masks.resize_nearest(masks.encode(src), 8, 8))
    assert out.shape == (8, 8) and out[:4, :4].all() and not out[4:, :].any()


@settings(max_examples=300, deadline=None)
@given(runs=st.lists(st.integers(0, 5000), max_size=30),
       junk=st.text(alphabet="0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmno~ ", max_size=12),
       mode=st.sampled_from(["valid", "junk", "append"]))
def test_fast_counts_decoder_agrees_with_exact_reader(runs: list[int], junk: str, mode: str) -> None:
    counts = masks.encode_counts(runs)
    if mode == "junk":
        counts = junk
    elif mode == "append":
        counts = counts + junk
    fast = masks._decode_counts_fast(counts)
    try:
        exact = masks.decode_counts(counts)
    except InvalidMaskError:
        exact = None
    if fast is not None:  # whatever the fast path accepts, the exact reader reads the same way
        assert exact is not None and fast.tolist() == exact
    for size in ([1, sum(runs)], [2, max(sum(runs), 1)]):
        obj = {"size": size, "counts": counts}
        ok = (exact is not None and all(r >= 0 for r in exact) and sum(exact) == size[0] * size[1]
              and max(size) <= masks.MAX_SIDE)  # 30 runs of 5000 can exceed the largest side
        if ok:
            assert masks.validate_rle(obj)["counts"] == counts
        else:
            with pytest.raises(InvalidMaskError):
                masks.validate_rle(obj)
