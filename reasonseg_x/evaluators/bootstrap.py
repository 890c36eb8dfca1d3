"""Seeded percentile bootstrap for gIoU and cIoU, vectorised with numpy.

Why: ReasonSeg-X groups are small (a reasoning type has ~200 test samples), so a 2-point gap can be
noise; every gIoU/cIoU the toolkit prints carries a 95% interval. A resample is a row of
multinomial counts over the samples, so gIoU and cIoU of all resamples are two matrix products;
the paired version applies the same counts to both runs (``compare``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np

from reasonseg_x.evaluators.protocols import Protocol

__all__ = ["DEFAULT_RESAMPLES", "DEFAULT_LEVEL", "rng_for", "resample_counts", "bootstrap_intervals",
           "paired_bootstrap"]

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
#: cap on the elements of one block of resample counts (keeps memory flat for large splits)
_BLOCK_ELEMENTS = 4_000_000


def rng_for(seed: int, label: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the group ``label`` (stable across runs)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(label.encode("utf-8"))])


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield blocks of shape (b, n): how often each sample is drawn in each resample."""
    if n <= 0 or n_resamples <= 0:
        return
    block = max(1, _BLOCK_ELEMENTS // n)
    probs = np.full(n, 1.0 / n)
    done = 0
    while done < n_resamples:
        b = min(block, n_resamples - done)
        yield rng.multinomial(n, probs, size=b).astype(np.float64)
        done += b


def _interval(values: np.ndarray, level: float) -> list[float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def bootstrap_intervals(intersection: np.ndarray, union: np.ndarray, iou: np.ndarray, protocol: Protocol, *,
                        n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = DEFAULT_LEVEL,
                        label: str = "overall") -> tuple[list[float] | None, list[float] | None]:
    """Percentile intervals ``(giou_ci, ciou_ci)``; ``None`` for an empty group or no resamples."""
    n = len(iou)
    if n == 0 or n_resamples <= 0:
        return None, None
    i = np.asarray(intersection, dtype=np.float64)
    u = np.asarray(union, dtype=np.float64)
    s = np.asarray(iou, dtype=np.float64)
    gious, cious = [], []
    for counts in resample_counts(n, n_resamples, rng_for(seed, label)):
        gious.append(counts @ s / n)
        cious.append(protocol.pooled_iou(counts @ i, counts @ u))
    return _interval(np.concatenate(gious), level), _interval(np.concatenate(cious), level)


def _p_value(deltas: np.ndarray) -> float:
    """Two-sided bootstrap p-value for 'no difference': twice the smaller tail at zero."""
    b = len(deltas)
    below = (np.count_nonzero(deltas <= 0) + 1) / (b + 1)
    above = (np.count_nonzero(deltas >= 0) + 1) / (b + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def paired_bootstrap(a: dict[str, np.ndarray], b: dict[str, np.ndarray], protocol: Protocol, *,
                     n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = DEFAULT_LEVEL,
                     label: str = "overall") -> dict[str, object]:
    """Deltas (B - A) of gIoU and cIoU on the same samples, with paired intervals and p-values.

    ``a`` and ``b`` hold aligned columns ``I``, ``U``, ``iou`` (same samples, same order).
    """
    n = len(a["iou"])
    giou_a, giou_b = float(np.mean(a["iou"])) if n else 0.0, float(np.mean(b["iou"])) if n else 0.0
    ciou_a = float(protocol.pooled_iou(a["I"].sum(), a["U"].sum()))
    ciou_b = float(protocol.pooled_iou(b["I"].sum(), b["U"].sum()))
    out: dict[str, object] = {"n": n, "giou_a": giou_a, "giou_b": giou_b, "ciou_a": ciou_a, "ciou_b": ciou_b,
                              "delta_giou": giou_b - giou_a, "delta_ciou": ciou_b - ciou_a,
                              "delta_giou_ci": None, "delta_ciou_ci": None, "p_giou": None, "p_ciou": None}
    if n == 0 or n_resamples <= 0:
        return out
    ia, ua, sa = (np.asarray(a[k], dtype=np.float64) for k in ("I", "U", "iou"))
    ib, ub, sb = (np.asarray(b[k], dtype=np.float64) for k in ("I", "U", "iou"))
    d_giou, d_ciou = [], []
    for counts in resample_counts(n, n_resamples, rng_for(seed, "paired:" + label)):
        d_giou.append(counts @ (sb - sa) / n)
        d_ciou.append(protocol.pooled_iou(counts @ ib, counts @ ub) - protocol.pooled_iou(counts @ ia, counts @ ua))
    dg, dc = np.concatenate(d_giou), np.concatenate(d_ciou)
    out.update(delta_giou_ci=_interval(dg, level), delta_ciou_ci=_interval(dc, level),
               p_giou=_p_value(dg), p_ciou=_p_value(dc))
    return out
