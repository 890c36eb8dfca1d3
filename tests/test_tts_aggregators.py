"""The pluggable aggregators: registry, pixel vote, IoU medoid, first valid run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonseg_x import tts
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.masks import encode

SHAPE = (3, 4)


def box(r0, r1, c0, c1):
    m = np.zeros(SHAPE, dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


A, B = box(0, 2, 0, 2), box(1, 3, 2, 4)


def test_registry_has_the_documented_names() -> None:
    for name in ("majority_vote", "mv", "pixel_vote", "iou_medoid", "first"):
        assert name in tts.AGGREGATORS
    assert tts.AGGREGATORS["mv"] is tts.majority_vote
    assert "mv" in tts.list_aggregators()


def test_get_aggregator_rejects_unknown_names_and_options() -> None:
    with pytest.raises(InvalidInputError, match="known: .*majority_vote"):
        tts.get_aggregator("nope")
    with pytest.raises(InvalidInputError, match="no option 'iou'"):
        tts.get_aggregator("mv")([], SHAPE, iou=0.5)
    out = tts.get_aggregator("mv")([[(A, 1.0, None)]], SHAPE, mask_iou_cluster_threshold=0.5)
    np.testing.assert_array_equal(out, A)


def test_register_a_custom_aggregator() -> None:
    @tts.register_aggregator("test_all_full")
    def _full(runs, shape, *, value: bool = True):
        return np.full(shape, value, dtype=bool)

    try:
        assert tts.get_aggregator("test_all_full")([], SHAPE, value=False).sum() == 0
        with pytest.raises(ValueError, match="already registered"):
            tts.register_aggregator("test_all_full")(lambda runs, shape: None)
    finally:
        del tts.AGGREGATORS["test_all_full"]


def test_custom_aggregators_with_plain_or_open_options() -> None:
    @tts.register_aggregator("test_plain")
    def _plain(runs, shape, value=True):
        return np.full(shape, value, dtype=bool)

    @tts.register_aggregator("test_open")
    def _open(runs, shape, **options):
        return np.full(shape, bool(options.get("value", True)), dtype=bool)

    try:
        assert not tts.get_aggregator("test_plain")([], SHAPE, value=False).any()
        with pytest.raises(InvalidInputError):
            tts.get_aggregator("test_plain")([], SHAPE, other=False)
        assert not tts.get_aggregator("test_open")([], SHAPE, value=False, anything=1).any()
    finally:
        del tts.AGGREGATORS["test_plain"], tts.AGGREGATORS["test_open"]


def test_pixel_vote_is_a_strict_majority_over_valid_runs() -> None:
    runs = [[(A, 0.9, None)], [(A, 0.1, None), (B, 0.2, None)], [], None]
    # valid runs: 3; A pixels covered by 2 runs (> 1.5), B-only pixels by 1
    np.testing.assert_array_equal(tts.pixel_vote(runs, SHAPE), A)
    np.testing.assert_array_equal(tts.pixel_vote(runs, SHAPE, threshold=0.3), A | B)
    assert not tts.pixel_vote([None], SHAPE).any()
    # exactly half is not a majority
    assert not tts.pixel_vote([[(A, 1.0, None)], []], SHAPE).any()


def test_iou_medoid_picks_the_most_central_run() -> None:
    a2 = A.copy(); a2[2, 0] = True
    runs = [[(B, 0.9, None)], [(A, 0.5, None)], [(a2, 0.5, None)], None]
    np.testing.assert_array_equal(tts.iou_medoid(runs, SHAPE), A)  # first of the A-like pair
    # empty answers agree with each other: two "no object" runs beat one object
    assert not tts.iou_medoid([[(A, 1.0, None)], [], []], SHAPE).any()
    np.testing.assert_array_equal(tts.iou_medoid([None, [(encode(B), 1.0, None)]], SHAPE), B)
    assert not tts.iou_medoid([], SHAPE).any()


def test_first_takes_the_first_valid_run() -> None:
    np.testing.assert_array_equal(tts.first_valid([None, [(A, 0.1, None), (B, 0.1, None)], [(B, 1.0, None)]], SHAPE), A | B)
    assert not tts.first_valid([None, [], [(A, 1.0, None)]], SHAPE).any()
    assert not tts.first_valid([None], SHAPE).any()
    assert tts.AGGREGATORS["first"] is tts.first_valid


@st.composite
def any_runs(draw):
    runs = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["none", "empty", "obj"]))
        if kind == "none":
            runs.append(None)
        elif kind == "empty":
            runs.append([])
        else:
            cells = draw(st.lists(st.booleans(), min_size=12, max_size=12))
            runs.append([(np.array(cells).reshape(SHAPE), draw(st.floats(-1, 1)), None)])
    return runs


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(any_runs(), st.sampled_from(["majority_vote", "pixel_vote", "iou_medoid", "first"]))
def test_every_aggregator_returns_a_bool_mask_of_the_shape(runs, name) -> None:
    out = tts.get_aggregator(name)(runs, SHAPE)
    assert out.dtype == np.bool_ and out.shape == SHAPE


@pytest.mark.parametrize("name", ["majority_vote", "pixel_vote", "iou_medoid", "first"])
def test_bad_shape_is_a_clear_error(name) -> None:
    with pytest.raises(InvalidInputError, match="shape"):
        tts.get_aggregator(name)([], "big")
