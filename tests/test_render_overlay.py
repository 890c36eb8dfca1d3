"""Overlays, pixel by pixel, on a synthetic sample: the mask colour where the mask is, the hatch only
where the ignore region is, box edges where the box is, points where the answer put them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reasonseg_x.render import (BOX_COLOUR, DROPPED_COLOUR, GT_COLOUR, HALO_COLOUR, IGNORE_COLOUR, MASK_ALPHA,
                                POINT_COLOUR, PRED_COLOUR, compose, draw_box, draw_hatch, draw_mask, draw_outline,
                                draw_point, scaled_mask, split_geometry)

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
    assert (out[60, 60] == GREY).all()  # inside the target, away from its edge: untouched (an outline)
    assert (out[50, 60] == GT_COLOUR).all() and (out[49, 60] == HALO_COLOUR).all()
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


# --- the ground truth as an outline; boxes that made the mask and those that did not -------------


@pytest.mark.parametrize("background", [(230, 30, 20), (250, 140, 0)])  # a red and an orange object
def test_ground_truth_stays_visible_under_the_prediction_and_on_red_or_orange(background: tuple) -> None:
    """A perfect prediction on a red / orange object: the ground truth is still seen (a green outline
    with a dark rim, over the prediction's tint), and inside it the picture is not tinted green."""
    image = Image.new("RGB", (80, 60), background)
    target = np.zeros((60, 80), bool)
    target[10:50, 20:60] = True
    out = np.asarray(compose(image, target=target, pred=target))
    ring = np.zeros_like(target)
    ring[10:12, 20:60] = ring[48:50, 20:60] = ring[10:50, 20:22] = ring[10:50, 58:60] = True  # 2 px inside the edge
    assert (out[ring] == GT_COLOUR).all()
    assert (out[9, 30] == HALO_COLOUR).all() and (out[30, 60] == HALO_COLOUR).all()  # the rim, just outside
    weight = round(MASK_ALPHA * 256)
    tinted = (np.asarray(background) * (256 - weight) + np.asarray(PRED_COLOUR) * weight + 128) >> 8
    assert (out[30, 40] == tinted).all()  # the prediction's tint, no green blended in
    assert (np.asarray(compose(image, target=target))[30, 40] == background).all()


def test_outline_band_and_rim() -> None:
    rgb = _canvas()
    mask = np.zeros((60, 80), bool)
    mask[10:30, 20:50] = True
    draw_outline(rgb, mask, GT_COLOUR, width=3)
    band = mask & ~np.pad(np.ones((14, 24), bool), ((13, 33), (23, 33)))
    assert (rgb[band] == GT_COLOUR).all() and (rgb[13:27, 23:47] == GREY).all()
    rim = np.zeros_like(mask)
    rim[9, 20:50] = rim[30, 20:50] = rim[10:30, 19] = rim[10:30, 50] = True
    assert (rgb[rim] == HALO_COLOUR).all()
    assert (rgb[~(mask | rim)] == GREY).all()


def test_dashed_box_has_gaps() -> None:
    rgb = _canvas()
    draw_box(rgb, [10, 5, 40, 30], DROPPED_COLOUR, width=1, dash=4)
    top = (rgb[5, 10:40] == DROPPED_COLOUR).all(axis=1)  # the right stroke starts at the corner
    assert top.tolist() == [((x // 4) % 2 == 0) for x in range(30)]


def _tts_meta() -> dict:
    """Three sampled answers: cluster 0 (answers 1 and 2) kept, cluster 1 (answer 2's second object) lost,
    answer 3 a parse error."""
    return {"vote": {"decision": "clusters", "k": 1, "clusters": [{"votes": 2, "kept": True}, {"votes": 1, "kept": False}]},
            "candidates": [
                {"status": "ok", "kept": True, "cluster": "0",
                 "objects": [{"bbox": [10, 10, 30, 30], "points": [[20, 20]], "score": 0.8, "cluster": 0}]},
                {"status": "ok", "kept": True, "cluster": "0,1",
                 "objects": [{"bbox": [11, 11, 31, 31], "points": [[21, 21]], "score": 0.9, "cluster": 0},
                             {"bbox": [50, 5, 70, 25], "points": [[60, 15]], "score": 0.7, "cluster": 1}]},
                {"status": "parse_error", "objects": [], "kept": False}]}


def test_only_what_made_the_mask_is_drawn_by_default() -> None:
    """One box per kept cluster (its best-scoring member), the lost cluster and the duplicate aside."""
    geometry = split_geometry(_tts_meta())
    assert geometry.boxes == [[11, 11, 31, 31]] and geometry.points == [[21, 21]]
    assert sorted(geometry.dropped_boxes) == [[10, 10, 30, 30], [50, 5, 70, 25]]
    image = Image.new("RGB", (80, 60), (GREY, GREY, GREY))
    plain = np.asarray(compose(image, boxes=geometry.boxes, points=geometry.points))
    assert not (plain == DROPPED_COLOUR).all(axis=2).any() and not (plain[5:26, 50:71] != GREY).any()
    every = np.asarray(compose(image, boxes=geometry.boxes, points=geometry.points,
                               dropped_boxes=geometry.dropped_boxes, dropped_points=geometry.dropped_points))
    assert (every[5, 50:71] == DROPPED_COLOUR).all(axis=1).any() and not (every[5, 50:71] == BOX_COLOUR).all(axis=1).any()
    assert (every[11, 11:32] == BOX_COLOUR).all(axis=1).all()  # the kept box stays on top, solid
    # a single answer's own boxes are what it drew
    assert split_geometry({"boxes": [[1, 2, 3, 4]], "candidates": _tts_meta()["candidates"]}).dropped_boxes == []


@pytest.mark.parametrize(("mode", "fmt"), [("RGB", "JPEG"), ("CMYK", "JPEG"), ("P", "PNG"), ("1", "PNG"),
                                           ("I;16", "PNG"), ("RGBA", "PNG")])
def test_pictures_are_decoded_at_the_size_they_are_shown(mode: str, fmt: str) -> None:
    """A 1000 x 800 picture for a 200-pixel tile comes out RGB at 200 x 160, whatever its mode."""
    import io

    from reasonseg_x.render import decode_picture

    buffer = io.BytesIO()
    Image.new(mode, (1000, 800)).save(buffer, format=fmt)
    picture = decode_picture(buffer.getvalue(), 1000, 800, 200)
    assert picture.mode == "RGB" and picture.size == (200, 160)
