"""Overlays, pixel by pixel, on a synthetic sample: the mask colour where the mask is, the hatch only
where the ignore region is, box edges where the box is, points where the answer put them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reasonseg_x.render import (BOX_COLOUR, GT_COLOUR, IGNORE_COLOUR, MASK_ALPHA, POINT_COLOUR, PRED_COLOUR,
                                compose, draw_box, draw_hatch, draw_mask, draw_point, scaled_mask)

GREY = 100


def _canvas(h: int = 60, w: int = 80) -> np.ndarray:
    return np.full((h, w, 3), GREY, dtype=np.uint8)


def _blend(colour: tuple[int, int, int], alpha: float = MASK_ALPHA) -> np.ndarray:
    weight = round(alpha * 256)
    return ((GREY * (256 - weight) + np.asarray(colour) * weight + 128) >> 8).astype(np.uint8)


def test_mask_tints_inside_outlines_its_edge_and_leaves_the_rest() -> None:
    rgb = _canvas()
    mask = np.zeros((60, 80), bool)
    mask[10:30, 20:50] = True
    draw_mask(rgb, mask, PRED_COLOUR)
    inner = rgb[11:29, 21:49]
    assert (inner == _blend(PRED_COLOUR)).all()
    edge = np.zeros_like(mask)
    edge[10, 20:50] = edge[29, 20:50] = edge[10:30, 20] = edge[10:30, 49] = True
    assert (rgb[edge] == PRED_COLOUR).all()
    assert (rgb[~mask] == GREY).all()


def test_hatch_only_inside_the_ignore_region() -> None:
    rgb = _canvas()
    ignore = np.zeros((60, 80), bool)
    ignore[5:40, 30:70] = True
    draw_hatch(rgb, ignore, spacing=8, width=2)
    hatched = (rgb == IGNORE_COLOUR).all(axis=2)
    assert hatched.any() and not (hatched & ~ignore).any()
    assert (rgb[~ignore] == GREY).all()
    inside = hatched[ignore].mean()
    assert 0.15 < inside < 0.35  # 2 of every 8 diagonals: stripes, not a fill
    ys, xs = np.nonzero(hatched)
    assert (((ys + xs) % 8) < 2).all()  # on the diagonals


def test_box_edges_where_the_box_is() -> None:
    rgb = _canvas()
    draw_box(rgb, [10, 5, 40, 30], width=2)
    painted = (rgb == BOX_COLOUR).all(axis=2)
    expected = np.zeros((60, 80), bool)
    expected[5:7, 10:41] = expected[29:31, 10:41] = True
    expected[5:31, 10:12] = expected[5:31, 39:41] = True
    assert (painted == expected).all()
    assert (rgb[~expected] == GREY).all()


@pytest.mark.parametrize("box", [[-50, -50, 500, 500], [70, 50, 200, 200], [float("nan"), 1, 2, 3], [1, 2, 3]])
def test_boxes_off_the_picture_or_malformed_are_clipped_or_skipped(box: list[float]) -> None:
    rgb = _canvas()
    draw_box(rgb, box)  # never raises: answers are untrusted
    assert rgb.shape == (60, 80, 3)


def test_point_disc_with_ring() -> None:
    rgb = _canvas()
    draw_point(rgb, [40, 20], radius=4)
    assert (rgb[20, 40] == POINT_COLOUR).all() and (rgb[20, 44] == POINT_COLOUR).all()
    assert (rgb[20, 45] == 20).all()  # the dark ring
    assert (rgb[20, 47] == GREY).all() and (rgb[0, 0] == GREY).all()
    draw_point(rgb, [-100, 5000])  # off the picture: nothing, no error


def test_compose_scales_geometry_with_the_picture() -> None:
    """A 400 x 300 sample drawn at max side 200: masks sampled, the box and point at half their coordinates."""
    image = Image.new("RGB", (400, 300), (GREY, GREY, GREY))
    target = np.zeros((300, 400), bool)
    target[100:200, 100:200] = True
    ignore = np.zeros((300, 400), bool)
    ignore[0:60, 300:400] = True
    out = np.asarray(compose(image, max_side=200, target=target, ignore=ignore, pred=None,
                             boxes=[[20, 20, 80, 80], "junk"], points=[[300, 200], [1]]))
    assert out.shape == (150, 200, 3)
    assert (out[60, 60] == _blend(GT_COLOUR, 0.3)).all()  # inside the target, away from its edge
    hatched = (out == IGNORE_COLOUR).all(axis=2)
    assert hatched[0:30, 150:200].any() and not hatched[30:, :].any() and not hatched[:, :150].any()
    boxed = (out == BOX_COLOUR).all(axis=2)
    assert boxed[10, 10:41].all() and boxed[10:41, 10].all() and not boxed[20:35, 15:35].any()
    assert (out[100, 150] == POINT_COLOUR).all()


def test_compose_frame_maps_answers_given_in_original_pixels() -> None:
    """A picture decoded at half size (a big JPEG's draft): ``frame`` is the size answers refer to."""
    image = Image.new("RGB", (100, 50), (GREY, GREY, GREY))
    out = np.asarray(compose(image, points=[[100, 50]], frame=(200, 100)))
    assert (out[25, 50] == POINT_COLOUR).all()


def test_scaled_mask_is_nearest_sampling() -> None:
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    assert scaled_mask(mask, 2, 2).tolist() == [[True, False], [False, False]]
    assert scaled_mask(mask, 8, 8)[:4, :4].all() and not scaled_mask(mask, 8, 8)[4:, :].any()
