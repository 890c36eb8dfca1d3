"""Polygon rules that need no OpenCV: inclusive outlines, truncation, painting order, validation."""

from __future__ import annotations

import numpy as np
import pytest

from reasonseg_x.data import polygons as P


def test_axis_aligned_square_is_inclusive():
    mask = P.polygon_mask(np.array([[2, 1], [5, 1], [5, 4], [2, 4]]), 8, 8)
    expected = np.zeros((8, 8), bool)
    expected[1:5, 2:6] = True
    assert np.array_equal(mask, expected)


def test_vertices_are_truncated_toward_zero():
    assert P.to_int_vertices([[1.9, -0.9], [2.5, 3.99], [-1.5, 0]]).tolist() == [[1, 0], [2, 3], [-1, 0]]


@pytest.mark.parametrize("bad", [[[1, 2, 3]], [["a", 1]], [["1", 2]], [[float("nan"), 1]], [[1e9, 2]], "xy",
                                 [[True, 1]], [[None, 1]], [3, 4]])
def test_bad_points_are_rejected(bad):
    with pytest.raises(ValueError):
        P.to_int_vertices(bad)


def test_smaller_polygon_overwrites_larger():
    big = P.Polygon(np.array([[0, 0], [9, 0], [9, 9], [0, 9]]), P.IGNORE_VALUE, "ignore", 0)
    small = P.Polygon(np.array([[3, 3], [5, 3], [5, 5], [3, 5]]), P.TARGET_VALUE, "target", 1)
    for order in ([big, small], [small, big]):
        canvas = P.rasterize(order, 10, 10)
        assert (canvas[3:6, 3:6] == 1).all()
        assert (canvas == 255).sum() == 100 - 9


def test_painted_area_counts_only_pixels_inside_the_image():
    assert P.painted_area(np.array([[-5, -5], [2, -5], [2, 2], [-5, 2]]), 10, 10) == 9
    assert P.painted_area(np.array([[20, 20], [30, 20], [30, 30]]), 10, 10) == 0


def test_paint_order_is_largest_first():
    assert P.paint_order([5, 50, 20]) == [1, 2, 0]
    assert P.paint_order([]) == []


def test_line_pixels_are_8_connected_and_end_at_both_points():
    ys, xs = P.line_pixels(1, 2, 11, 6, 20, 20)
    assert (xs[0], ys[0]) == (1, 2) and (xs[-1], ys[-1]) == (11, 6)
    steps = np.abs(np.diff(np.stack([xs, ys]), axis=1))
    assert steps.max() == 1 and len(xs) == 11
