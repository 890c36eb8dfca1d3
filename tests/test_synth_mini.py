"""The curated ``mini`` split: coverage and determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np

from reasonseg_x import masks
from reasonseg_x.data.synth import MiniSource, mini_samples
from reasonseg_x.taxonomy import reasoning_types


def test_mini_covers_everything_it_promises():
    samples = mini_samples()
    assert len(samples) >= 40
    assert [s.id for s in samples] == [f"mini-{i:03d}" for i in range(len(samples))]
    types = Counter(s.reasoning_type for s in samples)
    assert set(types) == set(reasoning_types().ids) and min(types.values()) >= 8
    kinds = Counter(s.query_kind for s in samples)
    assert kinds["long"] >= 10 and kinds["short"] >= 10
    assert sum(masks.area(s.target) == 0 for s in samples) >= 1
    assert sum(s.ignore is not None for s in samples) >= 3
    assert all(s.split == "test" and s.source == "synth" for s in samples)
    assert len({s.image.read_bytes() for s in samples[:8]}) == 8


def test_mini_is_deterministic():
    a, b = mini_samples(), mini_samples()
    assert [(s.id, s.query, s.target["counts"], s.ignore and s.ignore["counts"]) for s in a] == \
           [(s.id, s.query, s.target["counts"], s.ignore and s.ignore["counts"]) for s in b]
    assert a[0].image.read_bytes() == b[0].image.read_bytes()


def test_ignore_regions_are_visible_and_apart_from_targets():
    for s in mini_samples():
        if s.ignore is None:
            continue
        ignore, target = masks.decode(s.ignore), masks.decode(s.target)
        assert ignore.any() and target.any()
        assert not np.any(ignore & target)


def test_mini_source_matches_mini_samples():
    src = MiniSource()
    assert src.num_samples() == len(mini_samples())
    assert [g.id for g in src.ground_truth()] == [s.id for s in mini_samples()]
    assert src.fingerprint() == MiniSource().fingerprint()


def test_mini_plan_is_honoured():
    """No curated entry silently fell back to another family, variant or query kind."""
    from reasonseg_x.data.synth import MINI_PLAN

    for sample, (family, variant, kind) in zip(mini_samples(), MINI_PLAN):
        assert sample.meta["family"] == family and sample.query_kind == kind
        if variant is not None:
            assert sample.meta["variant"] == variant.split(":")[0], sample.id


def test_shipped_mini_matches_the_renderer():
    """The compact copy in annotations/mini must be regenerated whenever the renderer changes."""
    import pytest

    from reasonseg_x._resources import shipped_dir

    folder = shipped_dir("annotations") / "mini"
    if not folder.is_dir():
        pytest.skip("annotations/mini has not been generated yet")
    from reasonseg_x.data.resolve import open_source

    shipped = open_source("mini")
    assert shipped.fingerprint() == MiniSource().fingerprint(), (
        "annotations/mini is stale: regenerate it with write_compact({'test': mini_samples()}, 'annotations/mini')")
