"""Polygon rasterisation: pixel-for-pixel parity with OpenCV, and the LISA painting rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasonseg_x.data import polygons as P

cv2 = pytest.importorskip("cv2")

_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
                     database=None)


@st.composite
def scenes(draw, max_vertices=12, spread=3):
    """An image size and a polygon whose vertices may fall well outside it (self-intersection,
    repeated and collinear vertices included)."""
    h = draw(st.integers(1, 48))
    w = draw(st.integers(1, 48))
    n = draw(st.integers(1, max_vertices))
    xs = st.integers(-spread * w, spread * w)
    ys = st.integers(-spread * h, spread * h)
    pts = draw(st.lists(st.tuples(xs, ys), min_size=n, max_size=n))
    return h, w, np.array(pts, dtype=np.int64)


def _cv2_outline(h, w, pts):
    ref = np.zeros((h, w), np.uint8)
    cv2.polylines(ref, np.array([pts], dtype=np.int32), True, 1, 1)
    return ref


def _cv2_lisa(h, w, pts):
    ref = np.zeros((h, w), np.uint8)
    cv2.polylines(ref, np.array([pts], dtype=np.int32), True, 1, 1)
    cv2.fillPoly(ref, np.array([pts], dtype=np.int32), 1)
    return ref


@_settings
@given(scenes())
def test_outline_matches_cv2_polylines(scene):
    h, w, pts = scene
    mine = np.zeros((h, w), np.uint8)
    P.draw_polyline(mine, pts, 1)
    assert np.array_equal(mine, _cv2_outline(h, w, pts))


@_settings
@given(scenes())
def test_fill_matches_cv2_fillpoly(scene):
    h, w, pts = scene
    ref = np.zeros((h, w), np.uint8)
    cv2.fillPoly(ref, np.array([pts], dtype=np.int32), 1)
    mine = np.zeros((h, w), np.uint8)
    P.fill_polygon(mine, pts, 1)
    assert np.array_equal(mine, ref)


@_settings
@given(scenes(max_vertices=6, spread=1))
def test_tiny_polygons_match(scene):
    h, w, pts = scene
    assert np.array_equal(P.polygon_mask(pts, h, w), _cv2_lisa(h, w, pts).astype(bool))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 2**32 - 1))
def test_large_far_outside_polygons_match(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 200)), int(rng.integers(20, 200))
    pts = rng.integers(-5000, 5000, size=(int(rng.integers(3, 30)), 2))
    assert np.array_equal(P.polygon_mask(pts, h, w), _cv2_lisa(h, w, pts).astype(bool))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.floats(-40, 90, allow_nan=False), st.floats(-40, 90, allow_nan=False)),
                min_size=3, max_size=10))
def test_float_vertices_are_truncated_like_int32(points):
    vertices = P.to_int_vertices([list(p) for p in points])
    ref = _cv2_lisa(50, 60, np.array(points, dtype=np.float64).astype(np.int32))
    assert np.array_equal(P.polygon_mask(vertices, 50, 60), ref.astype(bool))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 2**32 - 1))
def test_lisa_painting_matches_the_reference_procedure(seed):
    """Several overlapping target/ignore polygons painted largest first, as LISA's loader does."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(10, 80)), int(rng.integers(10, 80))
    polys = []
    for k in range(int(rng.integers(1, 5))):
        pts = rng.integers(-10, max(h, w) + 10, size=(int(rng.integers(3, 8)), 2))
        polys.append(P.Polygon(pts, 255 if rng.random() < 0.4 else 1, "", k))
    # the reference procedure, written with cv2
    areas = []
    for p in polys:
        areas.append(_cv2_lisa(h, w, p.vertices).sum())
    ref = np.zeros((h, w), np.uint8)
    for i in list(np.argsort(areas)[::-1].astype(np.int32)):
        a = np.array([polys[i].vertices], dtype=np.int32)
        cv2.polylines(ref, a, True, polys[i].value, 1)
        cv2.fillPoly(ref, a, polys[i].value)
    assert np.array_equal(P.rasterize(polys, h, w), ref)


def test_large_polygon_on_a_big_image_matches():
    angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    pts = np.stack([960 + 1000 * np.cos(angles), 540 + 560 * np.sin(angles * 3)], axis=1).astype(np.int64)
    assert np.array_equal(P.polygon_mask(pts, 1080, 1920), _cv2_lisa(1080, 1920, pts).astype(bool))
