"""The procedural renderer: determinism, exact masks, honest labels, streaming."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reasonseg_x import masks
from reasonseg_x.data.source import Source
from reasonseg_x.data.synth import FAMILIES, Recipe, SynthSource, render_sample, render_samples
from reasonseg_x.data.synth.render import render_ground_truth, render_scene
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.taxonomy import query_kinds, reasoning_types

#: which reasoning types each family may honestly claim
FAMILY_TYPES = {
    "bar_chart": {"compositional", "comparative_relational"},
    "table": {"compositional"},
    "price_tags": {"compositional"},
    "shapes": {"comparative_relational"},
    "functional": {"function_purpose"},
    "traffic_light": {"commonsense"},
    "flags": {"commonsense"},
    "road_signs": {"commonsense"},
}


def test_same_seed_same_bytes_and_masks():
    for index in (0, 7, 123):
        a, b = render_sample(index, seed=3), render_sample(index, seed=3)
        assert a.image.read_bytes() == b.image.read_bytes()
        assert a.target == b.target and a.ignore == b.ignore
        fields = ("query", "queries", "reasoning_type", "query_kind", "meta")
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]


def test_different_seeds_differ_and_ids_follow_the_rule():
    a, b = render_sample(5, seed=0), render_sample(5, seed=1)
    assert a.id == "synth-0-000005" and b.id == "synth-1-000005"
    assert a.image.read_bytes() != b.image.read_bytes()


def test_sample_does_not_depend_on_its_neighbours():
    streamed = list(render_samples(6, seed=11))
    assert [s.target for s in streamed] == [render_sample(i, 11).target for i in range(6)]


@pytest.mark.parametrize("index", range(40))
def test_masks_are_exactly_the_painted_pixels(index):
    """Every pixel of every object shows one of that object's colours; the target mask is the union
    of the target objects' pixels, after occlusion."""
    recipe = Recipe(seed=5, index=index)
    scene, canvas, _, _ = render_scene(recipe, pixels=True)
    rgb = np.asarray(canvas.image)
    labels = np.asarray(canvas.labels)
    for obj in np.unique(labels):
        colours = np.array(sorted(canvas.colours[int(obj)]), dtype=np.uint8)
        pixels = rgb[labels == obj]
        match = (pixels[:, None, :] == colours[None, :, :]).all(axis=2).any(axis=1)
        assert match.all(), f"object {canvas.names[int(obj)]!r} shows colours it was not painted with"
    sample = render_sample(index, seed=5)
    assert np.array_equal(masks.decode(sample.target), np.isin(labels, scene.targets))
    if scene.targets:
        assert masks.area(sample.target) > 0
    if scene.ignores:
        ignore = masks.decode(sample.ignore)
        assert np.array_equal(ignore, np.isin(labels, scene.ignores))
        assert not (ignore & masks.decode(sample.target)).any()
    else:
        assert sample.ignore is None


def test_pure_shape_targets_have_the_target_colour():
    """In shape scenes nothing is drawn over a shape: its pixels are its one fill colour."""
    found = 0
    for index in range(200):
        recipe = Recipe(seed=2, index=index, family="shapes", variant="largest")
        scene, canvas, _, _ = render_scene(recipe, pixels=True)
        rgb = np.asarray(canvas.image)
        target = canvas.mask(scene.targets)
        (colour,) = canvas.colours[scene.targets[0]]
        assert (rgb[target] == colour).all()
        found += 1
        if found >= 10:
            break


def test_fields_are_valid_and_labels_honest():
    rtypes, kinds = reasoning_types(), query_kinds()
    for sample in itertools.islice(SynthSource(150, seed=9).samples(), 150):
        assert 320 <= sample.width <= 640 and 240 <= sample.height <= 480
        assert sample.target["size"] == [sample.height, sample.width]
        masks.validate_rle(sample.target, expected_size=[sample.height, sample.width])
        assert rtypes.resolve(sample.reasoning_type) == sample.reasoning_type
        assert kinds.resolve(sample.query_kind) == sample.query_kind
        assert sample.reasoning_type in FAMILY_TYPES[sample.meta["family"]]
        assert 1 <= len(sample.queries) <= 3 and sample.query == sample.queries[0]
        assert len(set(sample.queries)) == len(sample.queries)
        if sample.query_kind == "long":
            assert sample.query.endswith("?") or sample.query.endswith(".")
        assert sample.source == "synth" and sample.split == "test"
        img = sample.image.open()
        assert img.size == (sample.width, sample.height) and img.mode == "RGB"


def test_stream_covers_types_kinds_empty_and_ignore():
    samples = list(render_samples(300, seed=0))
    assert {s.reasoning_type for s in samples} == set(reasoning_types().ids)
    assert {s.query_kind for s in samples} == {"long", "short"}
    empty = [s for s in samples if masks.area(s.target) == 0]
    assert 0 < len(empty) < 0.15 * len(samples)
    assert any(s.ignore is not None for s in samples)
    assert {s.meta["family"] for s in samples} == set(FAMILIES)


def test_synth_source_streams_100000_lazily():
    src = SynthSource(100_000, seed=4)
    assert isinstance(src, Source)
    assert len(src) == 100_000 and src.num_samples("test") == 100_000
    assert src.splits() == ["test"] and src.spec == "synth:100000:4"
    first = list(itertools.islice(src.samples(), 3))
    assert [s.id for s in first] == ["synth-4-000000", "synth-4-000001", "synth-4-000002"]
    assert src.sample(99_999).id == "synth-4-099999"
    gts = list(itertools.islice(src.ground_truth(), 3))
    assert [g.target for g in gts] == [s.target for s in first]
    assert [g.groups for g in gts] == [s.groups for s in first]


def test_ground_truth_skips_the_picture_and_matches_samples():
    recipe = Recipe(seed=1, index=4)
    gt = render_ground_truth(recipe)
    sample = render_sample(4, 1)
    assert gt == sample.ground_truth()
    src = SynthSource(12, seed=1)
    assert src.fingerprint() == SynthSource(12, seed=1).fingerprint()
    assert src.fingerprint() != SynthSource(12, seed=2).fingerprint()


@pytest.mark.parametrize("bad", [(-1, 0), (3, -2), ("5", 0), (True, 0)])
def test_bad_arguments_are_clear_errors(bad):
    with pytest.raises(InvalidInputError):
        SynthSource(*bad)
    with pytest.raises(InvalidInputError):
        SynthSource(3).resolve_split("train")
