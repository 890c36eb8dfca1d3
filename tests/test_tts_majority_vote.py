"""The paper's majority vote (docs/protocols.md section 5) against a literal transcription of it.

``reference_majority_vote`` below is written the way the steps read, with loops and the same
numpy calls as StAR's public evaluation script (``np.logical_and(...).sum()`` IoUs, float32
``np.tensordot`` consensus), so that the vectorised implementation is checked mask for mask.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasonseg_x import masks as rle_masks
from reasonseg_x.errors import InvalidInputError, InvalidMaskError
from reasonseg_x.tts import majority_vote


def reference_majority_vote(runs, shape, *, no_object_vote_threshold=0.5, mask_iou_cluster_threshold=0.85,
                            cluster_vote_threshold=0.2, cluster_agg_mode="best", pixel_majority_threshold=0.5):
    candidates = []  # (mask, score, run index)
    object_counts = []
    no_object_votes = 0
    valid_runs = 0
    for run_idx, run in enumerate(runs):
        if run is None:
            continue
        valid_runs += 1
        object_counts.append(len(run))
        if len(run) == 0:
            no_object_votes += 1
            continue
        for cand in run:
            mask = cand[0]
            if isinstance(mask, dict):
                mask = rle_masks.decode(mask)
            candidates.append((np.asarray(mask, dtype=bool), float(cand[1]), run_idx))
    empty = np.zeros(shape, dtype=bool)
    # 1
    if valid_runs == 0:
        return empty
    if no_object_votes / valid_runs >= no_object_vote_threshold:
        return empty
    # 2
    positive = [c for c in object_counts if c > 0]
    k = Counter(positive).most_common(1)[0][0] if positive else 0
    if k <= 0 or not candidates:
        return empty
    # 3
    clusters = []
    for idx, (mask, _, run_idx) in enumerate(candidates):
        assigned = False
        for cluster in clusters:
            rep = candidates[cluster["members"][0]][0]
            inter = np.logical_and(mask, rep).sum()
            union = np.logical_or(mask, rep).sum()
            iou = 0.0 if union == 0 else inter / union
            if iou >= mask_iou_cluster_threshold:
                cluster["members"].append(idx)
                cluster["runs"].add(run_idx)
                assigned = True
                break
        if not assigned:
            clusters.append({"members": [idx], "runs": {run_idx}})
    # 4
    infos = []
    for cluster in clusters:
        votes = len(cluster["runs"])
        infos.append({"members": cluster["members"], "votes": votes, "ratio": votes / max(1, valid_runs),
                      "avg": float(np.mean([candidates[i][1] for i in cluster["members"]]))})
    # 5
    kept = [c for c in infos if c["ratio"] >= cluster_vote_threshold]
    if not kept:
        kept = infos
    kept = sorted(kept, key=lambda c: (c["votes"], c["avg"]), reverse=True)
    kept = kept[: min(len(kept), k)]
    # 6-7
    out = np.zeros(shape, dtype=bool)
    for info in kept:
        members = [candidates[i] for i in info["members"]]
        if cluster_agg_mode == "best":
            chosen = max(members, key=lambda m: (m[1], m[0].sum()))[0]
        else:
            stack = np.stack([m[0] for m in members], axis=0).astype(np.float32)
            scores = np.array([m[1] for m in members], dtype=np.float32)
            if np.all(scores <= 0):
                scores = np.ones_like(scores)
            weights = scores / scores.sum()
            chosen = np.tensordot(weights, stack, axes=(0, 0)) >= float(pixel_majority_threshold)
        out = np.logical_or(out, chosen)
    return out


# --- hypothesis: random runs with deliberate duplicates, near-duplicates, ties ----------------------


@st.composite
def runs_and_shape(draw):
    h = draw(st.integers(1, 6))
    w = draw(st.integers(1, 6))
    shape = (h, w)
    pool = [np.array(draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)), dtype=bool).reshape(shape)
            for _ in range(draw(st.integers(1, 3)))]
    pool.append(np.zeros(shape, dtype=bool))

    def candidate_mask():
        kind = draw(st.sampled_from(["same", "same", "near", "empty", "random"]))
        if kind == "empty":
            return np.zeros(shape, dtype=bool)
        base = draw(st.sampled_from(pool)).copy()
        if kind == "near":
            i = draw(st.integers(0, h * w - 1))
            base.reshape(-1)[i] = ~base.reshape(-1)[i]
        elif kind == "random":
            base = np.array(draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)), dtype=bool).reshape(shape)
        return base

    runs = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["none", "empty", "objects", "objects", "objects"]))
        if kind == "none":
            runs.append(None)
        elif kind == "empty":
            runs.append([])
        else:
            run = []
            for _ in range(draw(st.integers(1, 3))):
                mask = candidate_mask()
                if draw(st.booleans()) and draw(st.booleans()):
                    mask = rle_masks.encode(mask)
                score = draw(st.sampled_from([0.0, 0.25, 0.5, 0.5, 0.9, 1.0, -0.3, 0.1 + 0.2]))
                run.append((mask, score, draw(st.sampled_from(["a", "b", None]))))
            runs.append(run)
    options = {
        "no_object_vote_threshold": draw(st.sampled_from([0.0, 0.25, 0.5, 0.5, 1.0, 1.01])),
        "mask_iou_cluster_threshold": draw(st.sampled_from([0.0, 0.5, 0.85, 0.85, 1.0])),
        "cluster_vote_threshold": draw(st.sampled_from([0.0, 0.2, 0.2, 0.5, 1.0])),
        "cluster_agg_mode": draw(st.sampled_from(["best", "consensus"])),
        "pixel_majority_threshold": draw(st.sampled_from([0.0, 0.3, 0.5, 0.5, 1.0])),
    }
    return runs, shape, options


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(runs_and_shape())
def test_matches_reference_transcription(case) -> None:
    runs, shape, options = case
    got = majority_vote(runs, shape, **options)
    want = reference_majority_vote(runs, shape, **options)
    assert got.dtype == np.bool_ and got.shape == shape
    np.testing.assert_array_equal(got, want)


# --- hand-written cases, one per step and tie rule ------------------------------------------------

SHAPE = (4, 4)


def box(r0, r1, c0, c1, shape=SHAPE):
    m = np.zeros(shape, dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


A = box(0, 2, 0, 2)  # top-left 4 px
B = box(2, 4, 2, 4)  # bottom-right 4 px
C = box(0, 1, 2, 4)  # top-right 2 px


def test_no_valid_run_is_empty() -> None:
    assert not majority_vote([None, None], SHAPE).any()
    assert not majority_vote([], SHAPE).any()


def test_no_object_majority_uses_greater_or_equal() -> None:
    runs = [[(A, 0.9, "a")], []]  # ratio exactly 0.5
    assert not majority_vote(runs, SHAPE).any()
    assert majority_vote(runs, SHAPE, no_object_vote_threshold=0.51).sum() == 4


def test_abstaining_runs_do_not_count() -> None:
    runs = [[(A, 0.9, "a")], None, None, [], [(A, 0.8, "a")]]  # 1 no-object out of 3 valid
    np.testing.assert_array_equal(majority_vote(runs, SHAPE), A)


def test_k_is_the_most_common_count_first_seen_wins_ties() -> None:
    # counts: 2, 1 -> tie, the first seen (2) wins: both clusters kept
    runs = [[(A, 0.9, "a"), (B, 0.9, "b")], [(A, 0.9, "a")]]
    np.testing.assert_array_equal(majority_vote(runs, SHAPE), A | B)
    # counts: 1, 2 -> K = 1: only the cluster with most votes (A, 2 runs)
    runs = [[(A, 0.9, "a")], [(A, 0.9, "a"), (B, 0.9, "b")]]
    np.testing.assert_array_equal(majority_vote(runs, SHAPE), A)


def test_clusters_compare_with_their_first_member_only() -> None:
    # X joins A's cluster (IoU 0.75 >= 0.7); Y overlaps X a lot but A too little -> new cluster.
    x = A.copy(); x[0, 2] = True  # 5 px, IoU with A = 4/5
    y = x.copy(); y[1, 2] = True; y[0, 0] = False  # IoU(y, A) = 3/6, IoU(y, x) = 4/6
    runs = [[(A, 0.5, None)], [(x, 0.9, None)], [(y, 0.95, None)]]
    # K = 1; clusters: {A, x} 2 votes, {y} 1 vote -> best of {A, x} = x (higher score)
    np.testing.assert_array_equal(majority_vote(runs, SHAPE, mask_iou_cluster_threshold=0.7), x)


def test_iou_of_two_empty_masks_is_zero() -> None:
    e = np.zeros(SHAPE, dtype=bool)
    runs = [[(e, 0.1, None)], [(e, 0.1, None)], [(A, 0.9, None)]]
    # empty masks never cluster together: three clusters of one vote each, A has the best score.
    # (Were IoU(empty, empty) = 1, the empty cluster would have 2 votes and win.)
    np.testing.assert_array_equal(majority_vote(runs, SHAPE), A)
    # with threshold 0, IoU 0 >= 0: everything joins the first cluster; best member is A
    np.testing.assert_array_equal(majority_vote(runs, SHAPE, mask_iou_cluster_threshold=0.0), A)
    runs = [[(e, 0.1, None)], [(e, 0.1, None)], [(A, 0.05, None)]]
    assert not majority_vote(runs, SHAPE, mask_iou_cluster_threshold=0.0).any()


def test_votes_count_distinct_runs() -> None:
    # run 0 answers A twice: cluster A has 2 members but 1 vote; B has 2 votes.
    runs = [[(A, 0.9, None), (A, 0.9, None)], [(B, 0.1, None)], [(B, 0.1, None)]]
    # counts 2, 1, 1 -> K = 1: B (2 votes) beats A (1 vote) despite A's higher score
    np.testing.assert_array_equal(majority_vote(runs, SHAPE), B)


def test_vote_ratio_filter_and_fallback_to_all() -> None:
    runs = [[(A, 0.9, None), (B, 0.9, None)], [(A, 0.9, None), (C, 0.95, None)], [(A, 0.9, None), (B, 0.9, None)]]
    # ratios: A 3/3, B 2/3, C 1/3; K = 2 -> A and B
    np.testing.assert_array_equal(majority_vote(runs, SHAPE), A | B)
    # threshold above every ratio: fall back to all clusters, still sorted by votes -> A, B
    np.testing.assert_array_equal(majority_vote(runs, SHAPE, cluster_vote_threshold=1.5), A | B)
    # threshold 1.0 keeps only A, although K = 2
    np.testing.assert_array_equal(majority_vote(runs, SHAPE, cluster_vote_threshold=1.0), A)


def test_sort_is_stable_on_equal_votes_and_scores() -> None:
    runs = [[(B, 0.5, None)], [(A, 0.5, None)]]
    # equal votes and scores: the first cluster (B) stays first
    np.testing.assert_array_equal(majority_vote(runs, SHAPE), B)
    runs = [[(B, 0.5, None)], [(A, 0.6, None)]]
    np.testing.assert_array_equal(majority_vote(runs, SHAPE), A)


def test_best_takes_largest_score_then_area_first_on_ties() -> None:
    big = box(0, 2, 0, 3)  # 6 px, IoU with A = 4/6
    runs = [[(A, 0.9, None)], [(big, 0.9, None)]]
    # same score: the larger area wins
    np.testing.assert_array_equal(majority_vote(runs, SHAPE, mask_iou_cluster_threshold=0.5), big)
    # identical (score, area): the first member wins
    a2 = box(0, 2, 1, 3)  # 4 px, IoU with A = 2/6
    runs = [[(A, 0.9, None)], [(a2, 0.9, None)]]
    np.testing.assert_array_equal(majority_vote(runs, SHAPE, mask_iou_cluster_threshold=0.3), A)


def test_consensus_weighted_pixel_vote() -> None:
    m1, m2, m3 = box(0, 2, 0, 2), box(0, 2, 0, 3), box(0, 3, 0, 2)
    runs = [[(m1, 0.5, None)], [(m2, 0.3, None)], [(m3, 0.2, None)]]
    out = majority_vote(runs, SHAPE, mask_iou_cluster_threshold=0.5, cluster_agg_mode="consensus")
    np.testing.assert_array_equal(out, m1)  # the extra column has 0.3, the extra row 0.2
    out = majority_vote(runs, SHAPE, mask_iou_cluster_threshold=0.5, cluster_agg_mode="consensus",
                        pixel_majority_threshold=0.2)
    np.testing.assert_array_equal(out, m1 | m2 | m3)


def test_consensus_all_non_positive_scores_weigh_equally() -> None:
    m1, m2, m3 = box(0, 2, 0, 2), box(0, 2, 0, 3), box(0, 3, 0, 3)
    runs = [[(m1, 0.0, None)], [(m2, -1.0, None)], [(m3, 0.0, None)]]
    out = majority_vote(runs, SHAPE, mask_iou_cluster_threshold=0.4, cluster_agg_mode="consensus")
    np.testing.assert_array_equal(out, m2)  # pixels covered by >= 2 of the 3 masks


def test_union_of_kept_clusters_and_rle_input() -> None:
    runs = [[(rle_masks.encode(A), 0.9, "a"), (B, 0.8, "b")], [(A, 0.7, "a"), (rle_masks.encode(B), 0.6, "b")]]
    np.testing.assert_array_equal(majority_vote(runs, SHAPE), A | B)


def test_pairs_without_label_are_accepted() -> None:
    np.testing.assert_array_equal(majority_vote([[(A, 0.9)]], SHAPE), A)


@pytest.mark.parametrize("runs, error", [
    ([[(np.zeros((3, 3), bool), 0.9, None)]], InvalidMaskError),
    ([[(rle_masks.encode(np.zeros((3, 3), bool)), 0.9, None)]], InvalidMaskError),
    ([[(A, float("nan"), None)]], InvalidInputError),
    ([[(A, "high", None)]], InvalidInputError),
    ([[A]], InvalidInputError),
    (["not a run"], InvalidInputError),
])
def test_bad_input_names_run_and_candidate(runs, error) -> None:
    with pytest.raises(error, match="run 0"):
        majority_vote(runs, SHAPE)


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="cluster_agg_mode"):
        majority_vote([[(A, 0.9, None)]], SHAPE, cluster_agg_mode="mean")


def test_large_masks_are_fast_enough() -> None:
    import time
    rng = np.random.default_rng(0)
    shape = (768, 1024)
    base = [rng.random(shape) < 0.3 for _ in range(3)]
    runs = [[(base[(r + j) % 3], float(rng.random()), None) for j in range(2)] for r in range(32)]
    start = time.perf_counter()
    out = majority_vote(runs, shape)
    elapsed = time.perf_counter() - start
    assert out.shape == shape
    assert elapsed < 10.0


def test_tts_imports_without_torch() -> None:
    code = "import reasonseg_x.tts, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_explain_records_the_clusters_without_changing_the_mask():
    from reasonseg_x.tts import majority_vote

    a = np.zeros((6, 6), bool)
    a[:3, :3] = True
    b = np.zeros((6, 6), bool)
    b[3:, 3:] = True
    runs = [[(a, 0.9, "x")], [(a, 0.8, "x"), (b, 0.5, "y")], [(a, 0.7, "x")], None, []]
    explain: dict = {}
    mask = majority_vote(runs, (6, 6), explain=explain)
    assert np.array_equal(mask, majority_vote(runs, (6, 6)))
    assert explain["decision"] == "clusters" and explain["k"] == 1
    first, second = explain["clusters"]
    assert first["members"] == [[0, 0], [1, 0], [2, 0]] and first["votes"] == 3 and first["kept"] is True
    assert second["members"] == [[1, 1]] and second["kept"] is False
    empty: dict = {}
    majority_vote([[], [], None], (6, 6), explain=empty)
    assert empty == {"decision": "no-object majority"}
