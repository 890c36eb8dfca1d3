"""Parity of every protocol with the official scripts' arithmetic, re-implemented here on numpy masks.

The reference functions below reproduce, step by step, what the public evaluation code computes:
LISA (``utils.intersectionAndUnionGPU`` + ``AverageMeter`` in ``validate``), Seg-Zero /
VisionReasoner (``compute_iou`` returning (0, 0) for an empty union, then
``evaluation/calculate_iou*.py`` averaging I/U with 0 for U = 0), StAR (empty union scores 1,
failure scores I = 0, U = area(GT)) and GRES/ReLA (``refer_evaluation.py`` loop with no-target
rows, N-acc and T-acc). Our RLE scorer must match them to 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _eval_helpers import MemorySource, make_case
from reasonseg_x import masks
from reasonseg_x.data.record import ImageRef, Sample
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators.api import score_predictions
from reasonseg_x.evaluators.protocols import get_protocol, protocol_names
from reasonseg_x.predictions import Prediction

FAIL = "fail"  # a failed answer in the reference scripts (parse error / exception)


# --- reference implementations (numpy, the scripts' own arithmetic) -------------------------

def _histc2(values: np.ndarray) -> np.ndarray:
    """torch.histc(x, bins=2, min=0, max=1) on integer labels: values outside [0, 1] are dropped."""
    v = values.astype(np.float64).ravel()
    v = v[(v >= 0) & (v <= 1)]
    return np.array([np.count_nonzero(v < 0.5), np.count_nonzero(v >= 0.5)], dtype=np.float64)


def ref_lisa(cases):
    """LISA validate(): intersectionAndUnionGPU(output, target, 2, ignore_index=255) per sample."""
    inter_sum = np.zeros(2)
    union_sum = np.zeros(2)
    acc_sum = np.zeros(2)
    n = 0
    for pred, target, ignore in cases:
        label = target.astype(np.int64)
        if ignore is not None:
            label[ignore] = 255
        output = (np.zeros_like(target) if pred is FAIL else pred).astype(np.int64)
        output[label == 255] = 255
        hit = output[output == label]
        area_i, area_o, area_t = _histc2(hit), _histc2(output), _histc2(label)
        area_u = area_o + area_t - area_i
        acc = area_i / (area_u + 1e-5)
        acc[area_u == 0] += 1.0
        inter_sum += area_i
        union_sum += area_u
        acc_sum += acc
        n += 1
    iou_class = inter_sum / (union_sum + 1e-10)
    return acc_sum[1] / n, iou_class[1]


def _merged(target, ignore):
    return target | ignore if ignore is not None else target


def ref_star(cases):
    """StAR: HF masks (ignore merged by astype(bool)); U = 0 -> 1.0; failure -> I = 0, U = gt.sum()."""
    ious, ti, tu = [], 0, 0
    for pred, target, ignore in cases:
        gt = _merged(target, ignore)
        if pred is FAIL:
            i, u = 0, int(gt.sum())
        else:
            i, u = int(np.logical_and(pred, gt).sum()), int(np.logical_or(pred, gt).sum())
        ious.append(1.0 if u == 0 else i / u)
        ti += i
        tu += u
    return float(np.mean(ious)), (ti / tu if tu > 0 else 0.0)


def ref_visionreasoner(cases):
    """Seg-Zero / VisionReasoner: compute_iou -> (0, 0) when U = 0; gIoU = mean(I/U or 0)."""
    rows = []
    for pred, target, ignore in cases:
        gt = _merged(target, ignore)
        if pred is FAIL:
            rows.append({"intersection": 0, "union": int(gt.sum())})
            continue
        i, u = int(np.logical_and(pred, gt).sum()), int(np.logical_or(pred, gt).sum())
        rows.append({"intersection": i if u else 0, "union": u if u else 0})
    giou = float(np.mean([r["intersection"] / r["union"] if r["union"] > 0 else 0.0 for r in rows]))
    ti, tu = sum(r["intersection"] for r in rows), sum(r["union"] for r in rows)
    return giou, (ti / tu if tu > 0 else 0.0)


def ref_gres(cases):
    """ReLA refer_evaluation: no-target rows, correct rejection = 1 and (0, 0); N-acc, T-acc, Pr@."""
    nt = {"TP": 0, "FN": 0, "TN": 0, "FP": 0}
    acc_iou, acc_i, acc_u, total, not_empty = 0.0, 0, 0, 0, 0
    pr = dict.fromkeys((0.5, 0.6, 0.7, 0.8, 0.9), 0)
    for pred, target, ignore in cases:
        gt = _merged(target, ignore)
        gt_nt = not gt.any()
        failed = pred is FAIL
        pmask = np.zeros_like(gt) if failed else pred
        pred_nt = (not failed) and not pmask.any()
        i, u = int(np.logical_and(pmask, gt).sum()), int(np.logical_or(pmask, gt).sum())
        if gt_nt:
            if pred_nt:
                nt["TP"] += 1
                acc_iou += 1
            else:
                nt["FN"] += 1
                acc_u += u
        else:
            if pred_nt or failed:
                nt["FP"] += 1
                i = 0
            else:
                nt["TN"] += 1
            this_iou = 0.0 if u == 0 else i / u
            acc_iou += this_iou
            acc_i += i
            acc_u += u
            for t in pr:
                if this_iou >= t:
                    pr[t] += 1
            not_empty += 1
        total += 1
    empty_count = nt["TP"] + nt["FN"]
    return {"giou": acc_iou / total, "ciou": acc_i / acc_u if acc_u else 0.0,
            "n_acc": nt["TP"] / (nt["TP"] + nt["FN"]) if empty_count else 0.0,
            "t_acc": nt["TN"] / (nt["TN"] + nt["FP"]) if empty_count and nt["TN"] + nt["FP"] else 0.0,
            "pr": {f"{t:.1f}": (c / not_empty if not_empty else 0.0) for t, c in pr.items()}}


REFERENCES = {"star": ref_star, "visionreasoner": ref_visionreasoner, "lisa": ref_lisa}


# --- building a case -------------------------------------------------------------------------

def _case(seed: int, n: int, p_empty: float, p_fail: float, with_ignore: bool):
    source, arrays = make_case(n, seed, h=12, w=14, with_ignore=with_ignore, p_empty=p_empty)
    rng = np.random.default_rng(seed + 7)
    preds, cases = [], {}
    for sid, (target, ignore, pred) in arrays.items():
        roll = rng.random()
        if roll < p_fail:
            preds.append(Prediction(sid, None, status=str(rng.choice(["parse_error", "error"]))))
            cases[sid] = (FAIL, target, ignore)
        elif roll < p_fail + 0.1:  # an empty mask, or an explicit 'no target' answer
            preds.append(Prediction(sid, None, status="ok" if roll < p_fail + 0.05 else "no_target"))
            cases[sid] = (np.zeros_like(target), target, ignore)
        else:
            preds.append(Prediction(sid, masks.encode(pred)))
            cases[sid] = (pred, target, ignore)
    return source, preds, cases


case_params = st.tuples(st.integers(0, 10_000), st.integers(1, 40), st.sampled_from([0.0, 0.2, 0.6]),
                        st.sampled_from([0.0, 0.15]), st.booleans())


@pytest.mark.parametrize("name", ["star", "visionreasoner", "lisa"])
@settings(max_examples=25, deadline=None)
@given(params=case_params)
def test_protocol_matches_reference_script(name, params):
    seed, n, p_empty, p_fail, with_ignore = params
    if name == "lisa":
        p_fail = 0.0  # LISA is teacher-forced: it cannot fail
    source, preds, cases = _case(seed, n, p_empty, p_fail, with_ignore)
    result = score_predictions(source, None, preds, protocol=name, n_resamples=0)
    giou, ciou = REFERENCES[name](list(cases.values()))
    assert result.metrics["overall"]["giou"] == pytest.approx(giou, abs=1e-9)
    assert result.metrics["overall"]["ciou"] == pytest.approx(ciou, abs=1e-9)
    for rtype, group in result.metrics.get("by_reasoning_type", {}).items():
        sub = [cases[r.id] for r in result.records if r.groups.get("reasoning_type") == rtype]
        g_giou, g_ciou = REFERENCES[name](sub)
        assert group["giou"] == pytest.approx(g_giou, abs=1e-9)
        assert group["ciou"] == pytest.approx(g_ciou, abs=1e-9)  # pooled inside the group


@settings(max_examples=25, deadline=None)
@given(params=case_params)
def test_gres_matches_rela(params):
    seed, n, _, p_fail, with_ignore = params
    source, preds, cases = _case(seed, n, 0.4, p_fail, with_ignore)
    result = score_predictions(source, None, preds, protocol="gres", n_resamples=0)
    ref = ref_gres(list(cases.values()))
    m = result.metrics
    assert m["overall"]["giou"] == pytest.approx(ref["giou"], abs=1e-9)
    assert m["overall"]["ciou"] == pytest.approx(ref["ciou"], abs=1e-9)
    assert m["gres"]["n_acc"] == pytest.approx(ref["n_acc"], abs=1e-12)
    assert m["gres"]["t_acc"] == pytest.approx(ref["t_acc"], abs=1e-12)
    assert m["overall"]["precision"] == pytest.approx(ref["pr"], abs=1e-12)


def _one(target, pred, ignore=None, status="ok"):
    h, w = target.shape
    sample = Sample(id="a", image=ImageRef(data=b""), query="q", height=h, width=w, target=masks.encode(target),
                    ignore=masks.encode(ignore) if ignore is not None else None, reasoning_type="commonsense")
    pmask = masks.encode(pred) if pred is not None else None
    return MemorySource([sample]), [Prediction("a", pmask, status=status)]


def test_empty_union_conventions():
    z = np.zeros((4, 5), dtype=bool)
    src, preds = _one(z, z)
    star = score_predictions(src, None, preds, protocol="star", n_resamples=0)
    assert star.records.records[0].iou == 1.0
    assert star.metrics["overall"]["ciou"] == 0.0  # pooled U = 0 reports cIoU 0
    vr = score_predictions(src, None, preds, protocol="segzero", n_resamples=0)
    assert vr.metrics["protocol"] == "visionreasoner"
    assert vr.records.records[0].iou == 0.0
    lisa = score_predictions(src, None, preds, protocol="lisa", n_resamples=0)
    assert lisa.records.records[0].iou == 1.0
    gres = score_predictions(src, None, preds, protocol="gres", n_resamples=0)
    assert gres.metrics["overall"]["giou"] == 1.0 and gres.metrics["gres"]["n_acc"] == 1.0


def test_failure_scores_gt_area():
    t = np.zeros((4, 5), dtype=bool)
    t[1:3, 1:4] = True
    src, preds = _one(t, None, status="parse_error")
    r = score_predictions(src, None, preds, n_resamples=0).records.records[0]
    assert (r.I, r.U, r.iou, r.status) == (0, 6, 0.0, "parse_error")


def test_lisa_ignore_is_neither_tp_nor_fp():
    t = np.zeros((4, 4), dtype=bool)
    t[0, :2] = True
    ignore = np.zeros_like(t)
    ignore[3, :] = True
    pred = t | ignore  # predicting on ignore pixels costs nothing under lisa
    src, preds = _one(t, pred, ignore)
    lisa = score_predictions(src, None, preds, protocol="lisa", n_resamples=0).records.records[0]
    assert (lisa.I, lisa.U) == (2, 2)
    star = score_predictions(src, None, preds, protocol="star", n_resamples=0).records.records[0]
    assert (star.I, star.U) == (6, 6)  # merged into the target


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="unknown protocol"):
        get_protocol("nope")
    assert set(protocol_names()) == {"star", "visionreasoner", "lisa", "gres"}
