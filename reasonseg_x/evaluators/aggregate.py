"""From per-sample records to the numbers of ``metrics.json``.

gIoU is the mean per-sample IoU, cIoU the pooled sum I / sum U, each group's cIoU pooled inside
the group (never averaged from others). Precision at IoU 0.5..0.9, honest counts, seeded
bootstrap intervals, and GRES's N-acc / T-acc.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from reasonseg_x.evaluators.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, bootstrap_intervals
from reasonseg_x.evaluators.protocols import Protocol, get_protocol
from reasonseg_x.evaluators.records import RecordSet

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.taxonomy import Taxonomy

__all__ = ["PRECISION_THRESHOLDS", "COUNT_KEYS", "group_metrics", "aggregate", "order_groups", "count_statuses",
           "gres_accuracy"]

PRECISION_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
COUNT_KEYS = ("n", "missing", "parse_error", "no_target", "error", "empty_prediction", "duplicate", "invalid")
#: group keys reported, with the metrics.json field for each
GROUPINGS = (("reasoning_type", "by_reasoning_type"), ("query_kind", "by_query_kind"), ("source", "by_source"))


def group_metrics(cols: dict[str, np.ndarray], select: np.ndarray | None, protocol: Protocol, *,
                  n_resamples: int, seed: int, level: float, label: str) -> dict[str, Any]:
    """``{n, giou, ciou, giou_ci, ciou_ci, precision, sum_I, sum_U}`` of the selected samples."""
    i, u, iou = cols["I"], cols["U"], cols["iou"]
    gt_empty = cols["gt_empty"]
    if select is not None:
        i, u, iou, gt_empty = i[select], u[select], iou[select], gt_empty[select]
    n = int(len(iou))
    sum_i, sum_u = int(i.sum()), int(u.sum())
    giou = float(iou.mean()) if n else 0.0
    ciou = float(protocol.pooled_iou(sum_i, sum_u)) if n else 0.0
    # GRES reports precision over the rows that have a target; the others over all rows
    prec_iou = iou[~gt_empty] if protocol.no_target_rows else iou
    precision = {f"{t:.1f}": (float(np.count_nonzero(prec_iou >= t)) / len(prec_iou) if len(prec_iou) else 0.0)
                 for t in PRECISION_THRESHOLDS}
    giou_ci, ciou_ci = bootstrap_intervals(i, u, iou, protocol, n_resamples=n_resamples, seed=seed, level=level,
                                           label=label)
    return {"n": n, "giou": giou, "ciou": ciou, "giou_ci": giou_ci, "ciou_ci": ciou_ci,
            "precision": precision, "sum_I": sum_i, "sum_U": sum_u}


def order_groups(key: str, labels: set[str], taxonomy: Taxonomy | None = None) -> list[str]:
    """Reasoning types in taxonomy order (then unknown labels alphabetically); others sorted.

    ``taxonomy``: the one to order by (default: the shipped ReasonSeg-X taxonomy)."""
    if key == "reasoning_type":
        from reasonseg_x.taxonomy import reasoning_types

        tax = taxonomy if taxonomy is not None else reasoning_types(open=True)
        return sorted(labels, key=tax.sort_key)
    if key == "query_kind":
        order = {"long": 0, "short": 1}
        return sorted(labels, key=lambda v: (order.get(v, 2), v))
    return sorted(labels)


def count_statuses(records: RecordSet, extra: dict[str, int] | None = None) -> dict[str, int]:
    """``counts``: n, missing, parse_error, no_target, error, empty_prediction, duplicate, invalid."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    counts["n"] = len(records)
    for r in records:
        if r.status in ("missing", "parse_error", "no_target", "error", "invalid"):
            counts[r.status] += 1
        elif r.status == "ok" and r.pred_empty:
            counts["empty_prediction"] += 1
    ignored = sum(1 for r in records if r.mask_ignored)
    if ignored:  # only when it happens: a status that contradicts its mask
        counts["mask_ignored"] = ignored
    for key, value in (extra or {}).items():
        counts[key] = counts.get(key, 0) + int(value)
    return counts


def gres_accuracy(cols: dict[str, np.ndarray]) -> dict[str, Any]:
    """N-acc = TP / (TP + FN) with 'no target' positive; T-acc = TN / (TN + FP).

    A row predicts 'no target' when its prediction selects nothing and did not fail; a failure
    is never a correct rejection, nor a correct detection. Like ReLA's ``refer_evaluation``, both
    are 0 when no row lacks a target (``n_no_target`` says so).
    """
    gt_empty, pred_empty, failed = cols["gt_empty"], cols["pred_empty"], cols["failed"]
    says_none = pred_empty & ~failed
    says_some = ~pred_empty & ~failed
    tp = int(np.count_nonzero(gt_empty & says_none))
    fn = int(np.count_nonzero(gt_empty & ~says_none))
    tn = int(np.count_nonzero(~gt_empty & says_some))
    fp = int(np.count_nonzero(~gt_empty & ~says_some))
    # as ReLA: both accuracies are reported as 0 when the split has no no-target row
    has_empty = tp + fn > 0
    return {"TP": tp, "FN": fn, "TN": tn, "FP": fp,
            "n_acc": tp / (tp + fn) if has_empty else 0.0,
            "t_acc": tn / (tn + fp) if has_empty and tn + fp else 0.0,
            "n_no_target": tp + fn, "n_target": tn + fp}


def reported_groups(records: RecordSet, taxonomy: Taxonomy | None = None
                    ) -> Iterator[tuple[str, str, list[tuple[str, np.ndarray]]]]:
    """``(key, metrics.json field, [(group value, row selection), ...])`` for every grouping reported.

    A grouping is reported when some sample carries it (``source`` only with two sources or more);
    groups come in taxonomy order. Shared by the aggregate and the paired comparison.
    """
    for key, field_name in GROUPINGS:
        labels = records.group_labels(key)
        present = {v for v in labels if v is not None}
        if not present or (key == "source" and len(present) < 2):
            continue
        arr = np.asarray([v if v is not None else "" for v in labels], dtype=object)
        yield key, field_name, [(value, arr == value) for value in order_groups(key, present, taxonomy)]


def aggregate(records: RecordSet, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              level: float = DEFAULT_LEVEL, extra_counts: dict[str, int] | None = None,
              taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """The metric part of ``metrics.json`` (everything but provenance); independent of record order.
    ``taxonomy`` orders the reasoning types (default: the shipped one)."""
    protocol = get_protocol(records.protocol)
    records = records.canonical()
    cols = records.columns()
    opts = {"n_resamples": n_resamples, "seed": seed, "level": level}
    out: dict[str, Any] = {"overall": group_metrics(cols, None, protocol, label="overall", **opts)}
    for key, field_name, selections in reported_groups(records, taxonomy):
        out[field_name] = {value: group_metrics(cols, sel, protocol, label=f"{key}={value}", **opts)
                           for value, sel in selections}
        unlabelled = sum(1 for v in records.group_labels(key) if v is None)
        if unlabelled:
            out.setdefault("unlabelled", {})[key] = unlabelled
    out["counts"] = count_statuses(records, extra_counts)
    if protocol.no_target_rows:
        out["gres"] = gres_accuracy(cols)
    out["bootstrap"] = {"n_resamples": int(n_resamples), "seed": int(seed), "level": float(level),
                        "method": "percentile, multinomial resampling of samples within each group"}
    return out
