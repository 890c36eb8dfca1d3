"""Seeded bootstrap intervals and the paired comparison's p-value."""

from __future__ import annotations

import numpy as np

from reasonseg_x.evaluators.bootstrap import bootstrap_intervals, paired_bootstrap
from reasonseg_x.evaluators.protocols import get_protocol

STAR = get_protocol("star")


def _ious(i, u):
    """Per-sample IoUs as the evaluator computes them, one sample at a time."""
    return np.array([STAR.iou_of(int(a), int(b)) for a, b in zip(i, u)], dtype=np.float64)


def _cols(rng, n, quality):
    u = rng.integers(50, 500, n)
    i = np.minimum(u, (u * np.clip(rng.normal(quality, 0.2, n), 0, 1)).astype(np.int64))
    return {"I": i, "U": u, "iou": _ious(i, u)}


def test_intervals_are_seeded_and_bracket_the_estimate():
    rng = np.random.default_rng(0)
    c = _cols(rng, 300, 0.5)
    a = bootstrap_intervals(c["I"], c["U"], c["iou"], STAR, n_resamples=500, seed=1)
    b = bootstrap_intervals(c["I"], c["U"], c["iou"], STAR, n_resamples=500, seed=1)
    other = bootstrap_intervals(c["I"], c["U"], c["iou"], STAR, n_resamples=500, seed=2)
    assert a == b and a != other
    giou_ci, ciou_ci = a
    assert giou_ci[0] < c["iou"].mean() < giou_ci[1]
    assert ciou_ci[0] < c["I"].sum() / c["U"].sum() < ciou_ci[1]
    assert giou_ci[1] - giou_ci[0] < 0.1
    assert bootstrap_intervals(c["I"][:0], c["U"][:0], c["iou"][:0], STAR) == (None, None)


def test_bootstrap_matches_a_naive_loop():
    """The multinomial-count formulation equals resampling indices with the same draws."""
    from reasonseg_x.evaluators.bootstrap import resample_counts, rng_for

    rng = np.random.default_rng(4)
    c = _cols(rng, 40, 0.6)
    counts = np.concatenate(list(resample_counts(40, 50, rng_for(9, "overall"))))
    naive = [np.repeat(c["iou"], row.astype(int)).mean() for row in counts]
    fast = counts @ c["iou"] / 40
    np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-12)


def test_paired_bootstrap_identical_runs_and_real_gain():
    rng = np.random.default_rng(1)
    a = _cols(rng, 200, 0.5)
    same = paired_bootstrap(a, a, STAR, n_resamples=400, seed=0)
    assert same["delta_giou"] == 0 and same["p_giou"] == 1.0 and same["delta_giou_ci"] == [0.0, 0.0]
    better_i = np.minimum(a["U"], a["I"] + (a["U"] // 5))
    b = {"I": better_i, "U": a["U"], "iou": _ious(better_i, a["U"])}
    gain = paired_bootstrap(a, b, STAR, n_resamples=400, seed=0)
    assert gain["delta_giou"] > 0.1 and gain["p_giou"] < 0.01 and gain["delta_giou_ci"][0] > 0
    assert gain["p_ciou"] < 0.01
    noise = _cols(np.random.default_rng(2), 200, 0.5)
    null = paired_bootstrap(a, noise, STAR, n_resamples=400, seed=0)
    assert null["delta_giou_ci"][0] < null["delta_giou"] < null["delta_giou_ci"][1]


def test_paired_bootstrap_empty_group():
    empty = {"I": np.zeros(0, np.int64), "U": np.zeros(0, np.int64), "iou": np.zeros(0)}
    out = paired_bootstrap(empty, empty, STAR)
    assert out["n"] == 0 and out["p_giou"] is None
