"""Parallel test-time scaling: turn N sampled answers of one query into one mask (numpy only).

Why a module of its own: the aggregation is pure arithmetic on masks, so it is tested without a
model and imported without torch (docs/architecture.md). The default, :func:`majority_vote`, reproduces
the StAR paper's "MV" (docs/protocols.md section 5) step by step, tie order included; the reference
is ``run_ensemble_with_params`` / ``cluster_mask_candidates`` / ``aggregate_cluster_mask`` in
StAR's public evaluation script. Other aggregators plug in by name through
:func:`register_aggregator` and are fetched with :func:`get_aggregator`.

Every aggregator has the signature ``(runs, shape, **options) -> bool array of shape``, where
``runs`` has one entry per sampled answer:

- ``None``: the answer was unparseable; the run abstains (it is not a valid run);
- ``[]``: a valid run that votes "no object";
- ``[(mask, score, label), ...]``: a valid run, one SAM candidate per answered object in answer
  order. ``mask`` is a bool array of ``shape`` or an RLE dict of that size; ``label`` may be
  ``None`` and may be left out (a ``(mask, score)`` pair).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import isfinite
from typing import Any, Protocol

import numpy as np

from reasonseg_x.errors import InvalidInputError, InvalidMaskError

__all__ = [
    "Candidate",
    "Run",
    "Aggregator",
    "AGGREGATORS",
    "register_aggregator",
    "get_aggregator",
    "list_aggregators",
    "majority_vote",
    "pixel_vote",
    "iou_medoid",
    "first_valid",
    "CLUSTER_AGG_MODES",
]

#: One SAM candidate: ``(mask, score, label)``; ``mask`` is a bool array or an RLE dict.
Candidate = tuple[Any, float, str | None]
#: One sampled answer: ``None`` (abstains), ``[]`` (votes "no object") or its candidates.
Run = Sequence[Candidate] | None

CLUSTER_AGG_MODES = ("best", "consensus")


class Aggregator(Protocol):
    def __call__(self, runs: Sequence[Sequence[Any] | None], shape: tuple[int, int], **options: Any) -> np.ndarray: ...


#: name -> aggregator; aliases map to the same function.
AGGREGATORS: dict[str, Aggregator] = {}


def register_aggregator(name: str, *aliases: str) -> Callable[[Aggregator], Aggregator]:
    """Decorator: make ``fn`` available as ``get_aggregator(name)`` (and each alias)."""

    def decorate(fn: Aggregator) -> Aggregator:
        for key in (name, *aliases):
            if key in AGGREGATORS and AGGREGATORS[key] is not fn:
                raise ValueError(f"aggregator {key!r} is already registered")
            AGGREGATORS[key] = fn
        return fn

    return decorate


def list_aggregators() -> list[str]:
    """Registered names (aliases included), sorted."""
    return sorted(AGGREGATORS)


def get_aggregator(name: str) -> Aggregator:
    """The aggregator registered as ``name``; unknown names and unknown options raise
    :class:`InvalidInputError` naming what is accepted (a typo in ``--model-arg`` must not pass)."""
    try:
        fn = AGGREGATORS[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown test-time-scaling aggregator {name!r}; known: {', '.join(list_aggregators())}",
            "aggregator") from None
    return _checked(fn, name)


def _checked(fn: Aggregator, name: str) -> Aggregator:
    params = list(inspect.signature(fn).parameters.values())
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    accepted = {p.name for p in params[2:]
                if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}

    def call(runs: Sequence[Sequence[Any] | None], shape: tuple[int, int], **options: Any) -> np.ndarray:
        unknown = [] if open_ended else sorted(set(options) - accepted)
        if unknown:
            raise InvalidInputError(
                f"aggregator {name!r} has no option {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(sorted(accepted)) or 'none'}", "aggregator")
        return fn(runs, shape, **options)

    call.__name__ = getattr(fn, "__name__", name)
    call.__doc__ = fn.__doc__
    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call


# --- input normalisation ----------------------------------------------------------------------


@dataclass
class _Candidates:
    """All candidates of the valid runs, flattened in run order (the reference's order)."""

    run_index: np.ndarray  # (n,) index of the run in ``runs``
    scores: list[float]
    labels: list[str | None]
    packed: np.ndarray  # (n, ceil(P / 8)) uint8, masks packed along the flattened pixels
    areas: np.ndarray  # (n,) int64
    object_counts: list[int]  # per valid run, in order (0 for a "no object" run)
    valid_runs: int
    no_object_votes: int
    shape: tuple[int, int]

    def mask(self, i: int) -> np.ndarray:
        size = self.shape[0] * self.shape[1]
        return np.unpackbits(self.packed[i], count=size).astype(bool).reshape(self.shape)


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise InvalidInputError(f"shape must be (height, width), got {shape!r}", "tts") from None
    if h < 0 or w < 0:
        raise InvalidInputError(f"shape must be non-negative, got {(h, w)}", "tts")
    return h, w


def _as_mask(obj: Any, shape: tuple[int, int], where: str) -> np.ndarray:
    if isinstance(obj, Mapping):
        from reasonseg_x import masks as _masks

        rle = _masks.validate_rle(dict(obj), expected_size=shape, where=where)
        return _masks.decode(rle)
    array = np.asarray(obj)
    if array.shape != shape:
        raise InvalidMaskError(f"mask has shape {array.shape}, expected {shape}", where)
    return array if array.dtype == np.bool_ else array != 0


def _split_candidate(cand: Any, where: str) -> tuple[Any, float, str | None]:
    if not isinstance(cand, (tuple, list)) or len(cand) not in (2, 3):
        raise InvalidInputError("a candidate must be (mask, score, label) or (mask, score)", where)
    mask, score = cand[0], cand[1]
    label = cand[2] if len(cand) == 3 else None
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise InvalidInputError(f"candidate score must be a number, got {score!r}", where) from None
    if not isfinite(value):
        raise InvalidInputError(f"candidate score must be finite, got {value!r}", where)
    return mask, value, label


def _collect(runs: Sequence[Sequence[Any] | None], shape: tuple[int, int]) -> _Candidates:
    size = shape[0] * shape[1]
    run_index: list[int] = []
    scores: list[float] = []
    labels: list[str | None] = []
    packed: list[np.ndarray] = []
    areas: list[int] = []
    object_counts: list[int] = []
    valid = no_object = 0
    for r, run in enumerate(runs):
        if run is None:
            continue
        if isinstance(run, (str, bytes, Mapping)) or not isinstance(run, Sequence):
            raise InvalidInputError("a run must be None, [] or a list of (mask, score, label)", f"run {r}")
        valid += 1
        object_counts.append(len(run))
        if len(run) == 0:
            no_object += 1
            continue
        for c, cand in enumerate(run):
            where = f"run {r}, candidate {c}"
            mask, score, label = _split_candidate(cand, where)
            flat = _as_mask(mask, shape, where).reshape(size)
            run_index.append(r)
            scores.append(score)
            labels.append(label)
            areas.append(int(np.count_nonzero(flat)))
            packed.append(np.packbits(flat))
    width = (size + 7) // 8
    return _Candidates(
        run_index=np.asarray(run_index, dtype=np.int64), scores=scores, labels=labels,
        packed=np.stack(packed) if packed else np.zeros((0, width), dtype=np.uint8),
        areas=np.asarray(areas, dtype=np.int64), object_counts=object_counts,
        valid_runs=valid, no_object_votes=no_object, shape=shape)


def _popcount_rows(packed: np.ndarray) -> np.ndarray:
    return np.bitwise_count(packed).sum(axis=-1, dtype=np.int64)


# --- the paper's majority vote ------------------------------------------------------------------


def _greedy_clusters(cands: _Candidates, iou_threshold: float) -> list[list[int]]:
    """Step 3: each candidate joins the first cluster whose FIRST member has IoU >= threshold.

    IoUs against all cluster representatives are computed at once on packed bits
    (AND + popcount), one row per candidate: O(n * clusters) row operations, no pixel loops.
    """
    clusters: list[list[int]] = []
    reps = np.zeros((0, cands.packed.shape[1]), dtype=np.uint8)
    rep_areas = np.zeros(0, dtype=np.int64)
    for i in range(len(cands.scores)):
        joined = -1
        if clusters:
            inter = _popcount_rows(reps & cands.packed[i])
            union = rep_areas + cands.areas[i] - inter
            with np.errstate(divide="ignore", invalid="ignore"):
                iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
            hits = np.flatnonzero(iou >= iou_threshold)
            if hits.size:
                joined = int(hits[0])
        if joined >= 0:
            clusters[joined].append(i)
        else:
            clusters.append([i])
            reps = np.concatenate([reps, cands.packed[i][None]], axis=0)
            rep_areas = np.append(rep_areas, cands.areas[i])
    return clusters


def _best_member(cands: _Candidates, members: list[int]) -> np.ndarray:
    """Step 6 "best": the largest (score, area); ``max`` keeps the first on ties."""
    best = max(members, key=lambda i: (cands.scores[i], int(cands.areas[i])))
    return cands.mask(best)


def _consensus(cands: _Candidates, members: list[int], pixel_threshold: float) -> np.ndarray:
    """Step 6 "consensus": score-weighted pixel vote, in float32 like the reference.

    The reference stacks the masks and calls ``np.tensordot`` in float32; since each mask pixel is
    0 or 1 every product is exact, so accumulating the weights member by member in float32 gives
    the same sums in O(pixels) memory instead of O(members * pixels).
    """
    scores = np.array([cands.scores[i] for i in members], dtype=np.float32)
    if np.all(scores <= 0):
        scores = np.ones_like(scores)
    weights = scores / scores.sum()
    size = cands.shape[0] * cands.shape[1]
    prob = np.zeros(size, dtype=np.float32)
    for weight, i in zip(weights, members):
        prob += weight * np.unpackbits(cands.packed[i], count=size).astype(np.float32)
    return (prob >= float(pixel_threshold)).reshape(cands.shape)


@register_aggregator("majority_vote", "mv")
def majority_vote(
    runs: Sequence[Sequence[Any] | None],
    shape: tuple[int, int],
    *,
    no_object_vote_threshold: float = 0.5,
    mask_iou_cluster_threshold: float = 0.85,
    cluster_vote_threshold: float = 0.2,
    cluster_agg_mode: str = "best",
    pixel_majority_threshold: float = 0.5,
    explain: dict[str, Any] | None = None,
) -> np.ndarray:
    """The paper's majority vote over sampled answers (docs/protocols.md section 5), mask for mask.

    1. no valid run, or no-object votes / valid runs >= ``no_object_vote_threshold`` -> empty;
    2. K = most common object count among runs with objects (first seen wins ties);
    3. greedy clustering: join the first cluster whose first member has IoU >= threshold
       (IoU of two empty masks is 0);
    4. votes = distinct runs in a cluster, ratio = votes / valid runs, avg score = mean;
    5. keep clusters with ratio >= ``cluster_vote_threshold`` (all if none), stable-sort by
       (votes, avg score) descending, take min(K, count);
    6. one mask per kept cluster ("best" or "consensus");
    7. the union.

    ``explain`` (a dict, filled in place) records how the vote went, for people reading a run:
    ``decision``, ``k``, and per cluster its ``members`` as ``[run, object]`` pairs, ``votes``,
    ``ratio``, ``avg_score`` and whether it was ``kept``. It changes nothing in the result.
    """
    shape = _check_shape(shape)
    note = explain if explain is not None else {}
    if cluster_agg_mode not in CLUSTER_AGG_MODES:
        raise InvalidInputError(
            f"cluster_agg_mode must be one of {', '.join(CLUSTER_AGG_MODES)}, got {cluster_agg_mode!r}", "aggregator")
    cands = _collect(runs, shape)
    empty = np.zeros(shape, dtype=bool)
    # step 1
    if cands.valid_runs == 0:
        note["decision"] = "no valid answer"
        return empty
    if cands.no_object_votes / cands.valid_runs >= no_object_vote_threshold:
        note["decision"] = "no-object majority"
        return empty
    # step 2
    positive = [c for c in cands.object_counts if c > 0]
    k = Counter(positive).most_common(1)[0][0] if positive else 0
    if k <= 0 or not cands.scores:
        note["decision"] = "no objects"
        return empty
    # steps 3-4
    clusters = _greedy_clusters(cands, mask_iou_cluster_threshold)
    infos = []
    for members in clusters:
        votes = len({int(cands.run_index[i]) for i in members})
        infos.append({
            "members": members,
            "votes": votes,
            "ratio": votes / max(1, cands.valid_runs),
            "avg_score": float(np.mean([cands.scores[i] for i in members])),
        })
    # step 5
    kept = [c for c in infos if c["ratio"] >= cluster_vote_threshold] or infos
    kept = sorted(kept, key=lambda c: (c["votes"], c["avg_score"]), reverse=True)[: min(len(kept), k)]
    if explain is not None:
        explain.update(decision="clusters", k=k, clusters=_describe_clusters(cands, infos, kept))
    # steps 6-7
    out = empty
    for info in kept:
        if cluster_agg_mode == "best":
            out |= _best_member(cands, info["members"])
        else:
            out |= _consensus(cands, info["members"], pixel_majority_threshold)
    return out


def _describe_clusters(cands: _Candidates, infos: list[dict[str, Any]],
                       kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The clusters in the order they were formed, members as [run, object index in that run]."""
    position: list[int] = []
    seen: Counter[int] = Counter()
    for r in cands.run_index.tolist():
        position.append(seen[r])
        seen[r] += 1
    kept_ids = {id(info) for info in kept}
    return [{"members": [[int(cands.run_index[i]), position[i]] for i in info["members"]], "votes": info["votes"],
             "ratio": round(info["ratio"], 4), "avg_score": round(info["avg_score"], 4), "kept": id(info) in kept_ids}
            for info in infos]


# --- simpler aggregators ----------------------------------------------------------------------


def _run_union(run: Sequence[Any], shape: tuple[int, int], r: int) -> np.ndarray:
    """The union of one valid run's masks; a "no object" run gives an empty mask."""
    if isinstance(run, (str, bytes, Mapping)) or not isinstance(run, Sequence):
        raise InvalidInputError("a run must be None, [] or a list of (mask, score, label)", f"run {r}")
    union = np.zeros(shape, dtype=bool)
    for c, cand in enumerate(run):
        where = f"run {r}, candidate {c}"
        mask, _, _ = _split_candidate(cand, where)
        union |= _as_mask(mask, shape, where)
    return union


def _run_unions(runs: Sequence[Sequence[Any] | None], shape: tuple[int, int]) -> list[np.ndarray]:
    """One union mask per valid run, in order."""
    return [_run_union(run, shape, r) for r, run in enumerate(runs) if run is not None]


@register_aggregator("pixel_vote")
def pixel_vote(
    runs: Sequence[Sequence[Any] | None], shape: tuple[int, int], *, threshold: float = 0.5,
) -> np.ndarray:
    """Pixel-wise majority over the valid runs' union masks: a pixel is kept when the fraction
    of valid runs covering it is strictly above ``threshold`` ("no object" runs cover nothing)."""
    shape = _check_shape(shape)
    unions = _run_unions(runs, shape)
    if not unions:
        return np.zeros(shape, dtype=bool)
    counts = np.zeros(shape, dtype=np.int64)
    for union in unions:
        counts += union
    return counts / len(unions) > threshold


@register_aggregator("iou_medoid", "medoid")
def iou_medoid(runs: Sequence[Sequence[Any] | None], shape: tuple[int, int]) -> np.ndarray:
    """The valid run whose union mask has the highest mean IoU to the other valid runs' masks.

    Here two empty masks agree perfectly (IoU 1): a medoid must be able to pick "no object" when
    most runs say so. Ties keep the earliest run; a single valid run is its own medoid.
    """
    shape = _check_shape(shape)
    unions = _run_unions(runs, shape)
    if not unions:
        return np.zeros(shape, dtype=bool)
    if len(unions) == 1:
        return unions[0]
    size = shape[0] * shape[1]
    packed = np.stack([np.packbits(u.reshape(size)) for u in unions])
    areas = _popcount_rows(packed)
    n = len(unions)
    inter = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        inter[i] = _popcount_rows(packed & packed[i])
    union = areas[:, None] + areas[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    np.fill_diagonal(iou, 0.0)
    mean_iou = iou.sum(axis=1) / (n - 1)
    return unions[int(np.argmax(mean_iou))]


@register_aggregator("first", "greedy")
def first_valid(runs: Sequence[Sequence[Any] | None], shape: tuple[int, int]) -> np.ndarray:
    """The first valid run's union mask (what greedy decoding would have answered)."""
    shape = _check_shape(shape)
    for r, run in enumerate(runs):
        if run is not None:
            return _run_union(run, shape, r)
    return np.zeros(shape, dtype=bool)
