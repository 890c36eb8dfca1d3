"""The reward presets: the published StAR, VisionReasoner and Seg-Zero rewards, and the benchmark's own metric.

Each preset turns one completion into a :class:`Reading` (its format terms and its objects in
pixels, or why they could not be read), says which SAM prompts it needs, and finishes the score
from the mask IoUs the reward computed for the whole group (:mod:`reasonseg_x.rewards.reward`).
The formulas and their sources are recorded in docs/rewards.md; the terms are in
:mod:`reasonseg_x.rewards.formulas`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.rewards import formulas as f
from reasonseg_x.rewards.frames import to_pixels
from reasonseg_x.rewards.truth import MAX_OBJECTS, Truth

__all__ = ["RewardResult", "Reading", "Preset", "PRESETS", "NO_TARGET_POLICIES", "get_preset"]

#: ``reference``: the published code's behaviour on a truth without objects (accuracy 0 for every
#: answer); ``reward-empty``: an empty answer ``[]`` earns the full accuracy there, any other 0;
#: ``protocol`` (``metric`` only): what the evaluator protocol scores.
NO_TARGET_POLICIES = ("reference", "reward-empty", "protocol")


@dataclass(frozen=True)
class RewardResult:
    """One completion's reward: ``total`` (what the trainer optimises), every term (for logging),
    and ``reason`` when some term failed (``None`` otherwise)."""

    total: float
    terms: dict[str, float]
    reason: str | None = None
    #: whether the answer's objects (or its "no target") could be read at all (the format held)
    readable: bool = True


@dataclass
class Reading:
    """What a preset read from one completion before segmentation."""

    text: str
    terms: dict[str, float] = field(default_factory=dict)
    #: per object: (box, points) in pixels of the image, or None when the objects could not be read
    objects: list[tuple[tuple[float, ...], list[tuple[float, float]]]] | None = None
    reason: str | None = None
    #: the answer block held an empty JSON list (or object): "no target"
    empty: bool = False
    #: free slot for a preset (the metric keeps the parser's status)
    status: str = ""


def _numbers(value: Any, n: int, where: str) -> list[float]:
    """A list of exactly ``n`` JSON numbers (booleans count, as numpy reads them); else ValueError."""
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, (int, float)) for v in value):
        raise ValueError(f"{where} must be a list of {n} numbers, got {json.dumps(value)[:80]}")
    try:
        return [float(v) for v in value]
    except OverflowError:
        raise ValueError(f"{where} holds a number too large for a float") from None


def _reference_objects(data: Any) -> list[tuple[list[float], list[float]]]:
    """The published readers' objects: every item's ``bbox_2d`` (4 numbers) and ``point_2d`` (2)."""
    if not isinstance(data, list):
        raise ValueError(f"answer must be a JSON list of objects, got {type(data).__name__}")
    if not data:
        raise ValueError("empty answer []")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(f"object {i} is not a JSON object")
        for key in ("bbox_2d", "point_2d"):
            if key not in item:
                raise ValueError(f"object {i} has no {key}")
        out.append((_numbers(item["bbox_2d"], 4, f"object {i} bbox_2d"), _numbers(item["point_2d"], 2, f"object {i} point_2d")))
    return out[:MAX_OBJECTS]


def _is_empty_answer(data: Any) -> bool:
    return isinstance(data, (list, dict)) and not data


class Preset:
    """One reward recipe. Subclasses set the class attributes and the three steps."""

    name: ClassVar[str]
    #: (lowest, highest) total a completion can get
    bounds: ClassVar[tuple[float, float]]
    #: whether the accuracy needs SAM masks of the answer's objects
    needs_masks: ClassVar[bool] = False
    #: whether the answer's union mask is scored (then also on rows without a target)
    scores_union: ClassVar[bool] = False
    #: where the formula comes from (docs/rewards.md has the details)
    source: ClassVar[str] = ""
    default_no_target: ClassVar[str] = "reference"
    no_target_policies: ClassVar[tuple[str, ...]] = ("reference", "reward-empty")

    def __init__(self, *, coords: str = "pixels", no_target: str | None = None, **options: Any) -> None:
        from reasonseg_x.rewards.frames import check_rule

        self.coords = check_rule(coords)
        self.no_target = no_target or self.default_no_target
        if self.no_target not in self.no_target_policies:
            raise InvalidInputError(f"preset {self.name} takes no_target in {', '.join(self.no_target_policies)}, "
                                    f"got {self.no_target!r}", "reward")
        if options:
            raise InvalidInputError(f"preset {self.name} takes no option(s) {', '.join(sorted(options))}", "reward")

    def describe(self) -> dict[str, Any]:
        return {"preset": self.name, "bounds": list(self.bounds), "coords": self.coords, "no_target": self.no_target,
                "needs_masks": self.needs_masks, "source": self.source}

    def read(self, text: str, truth: Truth) -> Reading:
        raise NotImplementedError

    def finish(self, reading: Reading, ious: np.ndarray | None, truth: Truth, union: Any = None) -> RewardResult:
        """``ious``: ``[M, N]`` mask IoU of the reading's objects against the truth's (None: no masks);
        ``union``: the union of the reading's masks, for a preset that ``scores_union``."""
        raise NotImplementedError

    # shared steps -------------------------------------------------------------------------
    def _pixels(self, reading: Reading, objects: list[tuple[list[float], list[float]]], truth: Truth) -> None:
        try:
            reading.objects = to_pixels([(box, [pt]) for box, pt in objects], self.coords, truth.width, truth.height)
        except ValueError as exc:
            reading.objects, reading.reason = None, str(exc)

    def _total(self, terms: dict[str, float], summed: tuple[str, ...], reason: str | None) -> RewardResult:
        total = float(sum(terms[k] for k in summed))
        low, high = self.bounds
        if not math.isfinite(total):  # defensive: every term is bounded, a NaN would poison a batch
            total, reason = low, reason or "non-finite total"
        return RewardResult(min(max(total, low), high), terms, reason)


# ----------------------------------------------------------------------------- StAR

_STAR_FORMAT = {"bbox_2d": 2 / 3, "point_2d": 2 / 3, "label": 2 / 3}


def _box_point_parts(reading: Reading, truth: Truth) -> dict[str, np.ndarray]:
    """The three 0/1 matrices ``[M, N]`` of the published box-and-point accuracy: box IoU > 0.5,
    mean box L1 < 10 px, point within 30 px and inside its own predicted box."""
    boxes = np.array([box for box, _ in reading.objects or ()], dtype=np.float64).reshape(-1, 4)
    points = np.array([pts[0] for _, pts in reading.objects or ()], dtype=np.float64).reshape(-1, 2)
    gt_boxes = np.array(truth.boxes[:MAX_OBJECTS], dtype=np.float64).reshape(-1, 4)
    gt_points = np.array([p[0] for p in truth.points[:MAX_OBJECTS]], dtype=np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        return {"bbox_iou": (f.box_iou_matrix(boxes, gt_boxes) > 0.5).astype(float),
                "bbox_l1": (f.box_l1_matrix(boxes, gt_boxes) < 10).astype(float),
                "point": ((f.point_distance_matrix(points, gt_points) < 30)
                          & f.points_in_own_box(points, boxes)[:, None]).astype(float)}


class _StarBase(Preset):
    source = "ysj9909/StAR verl/workers/sam_worker.py (_vision_reasoner_format_reward, star_accuracy_reward)"
    needs_masks = True
    format_weights: ClassVar[dict[str, float]] = _STAR_FORMAT

    def read(self, text: str, truth: Truth) -> Reading:
        reading = Reading(text, {"format": f.think_format(text), "non_repeat": f.non_repeat(text)})
        data: Any = None
        try:
            data = f.answer_json(text)
            reading.terms["format"] += f.object_format(data, self.format_weights)
        except ValueError as exc:
            reading.reason = str(exc)
            return reading
        reading.empty = _is_empty_answer(data)
        try:
            objects = _reference_objects(data)
        except ValueError as exc:
            reading.reason = str(exc)
            return reading
        self._pixels(reading, objects, truth)
        return reading

    def _no_target(self, reading: Reading, full: float) -> float:
        return full if self.no_target == "reward-empty" and reading.empty else 0.0


class StarStage1(_StarBase):
    """StAR stage 1: format (<= 3) + non-repeat (<= 1) + accuracy (<= 9)."""

    name = "star-stage1"
    bounds = (0.0, 13.0)

    def finish(self, reading: Reading, ious: np.ndarray | None, truth: Truth, union: Any = None) -> RewardResult:
        terms = dict(reading.terms)
        terms.update(accuracy=0.0, bbox_iou=0.0, bbox_l1=0.0, point=0.0, mask=0.0, count_match=0.0)
        summed = ("format", "non_repeat", "accuracy")
        reason = reading.reason
        if len(truth) == 0:
            terms["accuracy"] = self._no_target(reading, 9.0)
            return self._total(terms, summed, reason or "no target in the truth (no-target policy "
                                                          f"{self.no_target})")
        if reading.objects is None:
            return self._total(terms, summed, reason)
        parts = _box_point_parts(reading, truth)
        ceiling = 3.0
        if ious is not None:
            parts["mask"] = f.grade_mask_iou(ious[:, :MAX_OBJECTS])
            ceiling = 8.0
        else:
            reason = "no masks for the mask term (three-term accuracy, as the published code without an image)"
        matched, rows, cols = f.hungarian_total(sum(parts.values()), ceiling)
        m, n = parts["bbox_iou"].shape
        longest = max(m, n)
        terms["count_match"] = 1.0 if m == n else 0.0
        terms["accuracy"] = matched / longest + terms["count_match"]
        for key, part in parts.items():
            terms[key] = float(part[rows, cols].sum() / longest)
        return self._total(terms, summed, reason)


class StarStage2(_StarBase):
    """StAR stage 2: format (<= 3) + non-repeat (<= 1) + 2 x matched graded mask score (<= 10)."""

    name = "star-stage2"
    bounds = (0.0, 14.0)

    def finish(self, reading: Reading, ious: np.ndarray | None, truth: Truth, union: Any = None) -> RewardResult:
        terms = dict(reading.terms)
        terms.update(accuracy=0.0, mask=0.0)
        summed = ("format", "non_repeat", "accuracy")
        reason = reading.reason
        if len(truth) == 0:
            terms["accuracy"] = self._no_target(reading, 10.0)
            if terms["accuracy"]:
                terms["mask"] = 5.0
            return self._total(terms, summed, reason or f"no target in the truth (no-target policy {self.no_target})")
        if reading.objects is None:
            return self._total(terms, summed, reason)
        if ious is None:
            return self._total(terms, summed, "no masks: stage 2 scores masks only (pass the image or use "
                                              "segmenter='box')")
        grades = f.grade_mask_iou(ious[:, :MAX_OBJECTS])
        matched, _, _ = f.hungarian_total(grades, 5.0)
        terms["mask"] = matched / max(grades.shape)
        terms["accuracy"] = 2.0 * terms["mask"]
        return self._total(terms, summed, reason)


# ----------------------------------------------------------------------------- VisionReasoner

class VisionReasoner(_StarBase):
    """VisionReasoner: format (<= 3: think layout + 1 per box + 1 per point, averaged) + accuracy
    (<= 3, boxes and points only) + non-repeat (<= 1)."""

    name = "visionreasoner"
    bounds = (0.0, 7.0)
    needs_masks = False
    source = "dvlab-research/Seg-Zero verl/utils/reward_score/vision_reasoner.py"
    format_weights = {"bbox_2d": 1.0, "point_2d": 1.0}

    def finish(self, reading: Reading, ious: np.ndarray | None, truth: Truth, union: Any = None) -> RewardResult:
        terms = dict(reading.terms)
        terms.update(accuracy=0.0, bbox_iou=0.0, bbox_l1=0.0, point=0.0)
        summed = ("format", "non_repeat", "accuracy")
        if len(truth) == 0:
            terms["accuracy"] = self._no_target(reading, 3.0)
            return self._total(terms, summed, reading.reason or "no target in the truth (no-target policy "
                                                                  f"{self.no_target})")
        if reading.objects is None:
            return self._total(terms, summed, reading.reason)
        parts = _box_point_parts(reading, truth)
        matched, rows, cols = f.hungarian_total(sum(parts.values()), 3.0)
        longest = max(parts["bbox_iou"].shape)
        terms["accuracy"] = matched / longest
        for key, part in parts.items():
            terms[key] = float(part[rows, cols].sum() / longest)
        return self._total(terms, summed, reading.reason)


# ----------------------------------------------------------------------------- Seg-Zero v1

_FIRST_OBJECT = re.compile(r"{[^}]+}")


class SegZero(Preset):
    """Seg-Zero v1 (``seg_strict``): five binary terms on one object with a box and two points."""

    name = "segzero"
    bounds = (0.0, 5.0)
    source = "dvlab-research/Seg-Zero verl/utils/reward_score/seg_restrict.py (commit d327eb7, seg_strict_compute_score)"

    def read(self, text: str, truth: Truth) -> Reading:
        reading = Reading(text, {"think_format": f.think_format(text), "segmentation_format": 0.0})
        try:
            reading.empty = _is_empty_answer(f.answer_json(text))
        except ValueError:
            pass
        match = _FIRST_OBJECT.search(text)
        if match is None:
            reading.reason = "no {...} object in the text"
            return reading
        try:
            data = json.loads(match.group(0))
        except (ValueError, RecursionError) as exc:
            reading.reason = f"first {{...}} is not JSON: {exc}"
            return reading
        if not isinstance(data, dict):
            reading.reason = "first {...} is not a JSON object"
            return reading
        box, p1, p2 = data.get("bbox"), data.get("points_1"), data.get("points_2")
        if (isinstance(box, list) and len(box) == 4 and all(isinstance(v, list) and len(v) == 2 for v in (p1, p2))):
            reading.terms["segmentation_format"] = 1.0
        try:  # the box terms need only the box; the points term needs both points as well
            numbers = _numbers(box, 4, "bbox")
        except ValueError as exc:
            reading.reason = str(exc)
            return reading
        try:
            points = [_numbers(p1, 2, "points_1"), _numbers(p2, 2, "points_2")]
        except ValueError as exc:
            points, reading.reason = [], str(exc)
        try:
            reading.objects = to_pixels([(numbers, points)], self.coords, truth.width, truth.height)
        except ValueError as exc:
            reading.reason = str(exc)
        return reading

    def finish(self, reading: Reading, ious: np.ndarray | None, truth: Truth, union: Any = None) -> RewardResult:
        terms = dict(reading.terms)
        terms.update(box_iou=0.0, box_l1=0.0, points=0.0)
        summed = ("think_format", "segmentation_format", "box_iou", "box_l1", "points")
        target = truth.segzero
        if target is None:
            if self.no_target == "reward-empty" and reading.empty:
                terms.update(box_iou=1.0, box_l1=1.0, points=1.0)
            return self._total(terms, summed, reading.reason or f"no target in the truth (no-target policy "
                                                                  f"{self.no_target})")
        if reading.objects is None:
            return self._total(terms, summed, reading.reason)
        gt_box, gt_points = target
        box, points = reading.objects[0]
        box = [float(v) for v in box]
        with np.errstate(all="ignore"):
            try:
                terms["box_iou"] = 1.0 if f.segzero_box_iou(box, list(gt_box)) > 0.5 else 0.0
            except ZeroDivisionError:
                pass
            terms["box_l1"] = 1.0 if sum(abs(a - b) for a, b in zip(box, gt_box)) / 4 < 10 else 0.0
        reason = reading.reason
        try:
            if len(points) < 2:
                raise ValueError("no two points")
            pts = [[int(p[0]), int(p[1])] for p in points[:2]]
            inside = all(box[0] <= x <= box[2] and box[1] <= y <= box[3] for x, y in pts)
            if inside and f.segzero_points_distance(pts, [list(p) for p in gt_points]) < 100:
                terms["points"] = 1.0
        except (ValueError, OverflowError) as exc:
            reason = reason or f"points: {exc}"
        return self._total(terms, summed, reason)


# ----------------------------------------------------------------------------- the benchmark

class Metric(Preset):
    """The benchmark as the reward: the answer's mask (union of its objects) scored against the
    truth's union with an evaluator protocol, exactly as ``reasonseg-x score`` would (IoU in [0, 1])."""

    name = "metric"
    bounds = (0.0, 1.0)
    needs_masks = True
    scores_union = True
    source = "reasonseg_x.evaluators (docs/protocols.md), answers read by reasonseg_x.star.answer.parser"
    default_no_target = "protocol"
    no_target_policies = NO_TARGET_POLICIES

    def __init__(self, *, protocol: str = "star", style: str = "star", **options: Any) -> None:
        super().__init__(**options)
        from reasonseg_x.evaluators.protocols import get_protocol
        from reasonseg_x.star.answer.parser import PARSE_STYLES

        self.protocol = get_protocol(protocol)
        if style not in PARSE_STYLES:
            raise InvalidInputError(f"unknown answer style {style!r}; known: {', '.join(PARSE_STYLES)}", "reward")
        self.style = style

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "protocol": self.protocol.name, "style": self.style}

    def read(self, text: str, truth: Truth) -> Reading:
        from reasonseg_x.star.answer.parser import parse_answer

        parsed = parse_answer(text, style=self.style)
        reading = Reading(text, {"format": 0.0 if parsed.status == "parse_error" else 1.0}, status=parsed.status,
                          empty=parsed.status == "no_target", reason=parsed.error)
        if parsed.status == "ok":
            objects = [(obj.bbox, ([obj.point] if obj.point is not None else []) + list(obj.extra_points))
                       for obj in parsed.objects]
            try:
                reading.objects = to_pixels(objects, self.coords, truth.width, truth.height)
            except ValueError as exc:
                reading.objects, reading.reason, reading.status = None, str(exc), "parse_error"
                reading.terms["format"] = 0.0
        return reading

    def finish(self, reading: Reading, ious: np.ndarray | None, truth: Truth, union: Any = None) -> RewardResult:
        from reasonseg_x import masks as rle
        from reasonseg_x.evaluators.sample import score_sample
        from reasonseg_x.predictions import Prediction

        terms = dict(reading.terms)
        if truth.masks is None:
            raise InvalidInputError("the metric preset needs the truth's masks", "reward truth")
        if len(truth) == 0 and self.no_target != "protocol":
            terms["iou"] = 1.0 if self.no_target == "reward-empty" and reading.empty else 0.0
            return self._total(terms, ("iou",), reading.reason)
        status = reading.status
        mask = None
        if status == "ok":
            if union is None:
                return self._total({**terms, "iou": 0.0}, ("iou",), "no masks: pass the image or use segmenter='box'")
            mask = rle.encode(union)
        prepared = _prepared_truth(truth, self.protocol)
        record = score_sample(prepared, Prediction("rollout", mask, status), self.protocol)
        terms["iou"] = float(record.iou)
        return self._total(terms, ("iou",), reading.reason)


def _prepared_truth(truth: Truth, protocol: Any) -> Any:
    from reasonseg_x import masks as rle
    from reasonseg_x.data.record import GroundTruth
    from reasonseg_x.evaluators.sample import prepare_truth

    key = f"prepared:{protocol.name}"
    cache = truth.extra.setdefault("_cache", {})
    if key not in cache:
        gt = GroundTruth("rollout", truth.height, truth.width, rle.encode(truth.union))
        cache[key] = prepare_truth(gt, protocol)
    return cache[key]


PRESETS: dict[str, type[Preset]] = {cls.name: cls for cls in (StarStage1, StarStage2, VisionReasoner, SegZero, Metric)}


def get_preset(name: str, **options: Any) -> Preset:
    try:
        cls = PRESETS[name]
    except KeyError:
        raise InvalidInputError(f"unknown reward preset {name!r}; known: {', '.join(PRESETS)}", "reward") from None
    return cls(**options)
