"""gt-box-sam: SAM prompted with the ground-truth box of the target and its centre point.

Why: it measures how well a perfect localiser could do with this segmenter, separating the
reasoning error of a VLM + SAM model from SAM's own mask error (an upper bound for boxes+points
models). It reads the ground truth, so it is a sanity baseline, never a leaderboard entry.

``per_component=True`` prompts one box per connected component of the target (closer to the
per-instance boxes a model answers); the default prompts the single box around the whole target.
``point="center"`` is the box centre (docs/protocols.md section 4); ``point="inside"`` is the target pixel
nearest that centre (always on the object); ``point="none"`` prompts the box alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from reasonseg_x import masks as rle
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.predictors.protocol import Output, Query
from reasonseg_x.star.options import SegmenterOptions, option

__all__ = ["GtBoxSamPredictor", "target_prompts"]

POINT_MODES = ("center", "inside", "none")


def _box_and_point(mask: np.ndarray, point: str) -> tuple[tuple[float, float, float, float], tuple[tuple[float, float], ...]]:
    ys, xs = np.nonzero(mask)
    x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    if point == "none":
        return (x1, y1, x2, y2), ()
    if point == "inside":
        k = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
        return (x1, y1, x2, y2), ((float(xs[k]), float(ys[k])),)
    return (x1, y1, x2, y2), ((cx, cy),)


def target_prompts(target: np.ndarray, *, point: str = "center", per_component: bool = False) -> list[Any]:
    """SAM prompts for a ground-truth target mask (empty list for an empty target)."""
    from reasonseg_x.star.segment.segmenters import Prompt

    if point not in POINT_MODES:
        raise InvalidInputError(f"point must be one of {', '.join(POINT_MODES)}, got {point!r}", "point")
    if not target.any():
        return []
    if not per_component:
        box, points = _box_and_point(target, point)
        return [Prompt(box=box, points=points)]
    try:
        import cv2
    except ImportError:
        raise InvalidInputError("per_component=True needs opencv (pip install opencv-python-headless)",
                                "per_component") from None
    count, labels = cv2.connectedComponents(target.astype(np.uint8), connectivity=8)
    prompts = []
    for label in range(1, count):
        box, points = _box_and_point(labels == label, point)
        prompts.append(Prompt(box=box, points=points))
    return prompts


@dataclass(frozen=True, kw_only=True)
class GtBoxSamOptions(SegmenterOptions):
    """gt-box-sam's arguments: SAM's, plus how the ground truth becomes a prompt."""

    point: Literal["center", "inside", "none"] = option(
        "center", "positive point: the box centre, a point inside the mask, or none")
    per_component: bool = option(False, "one prompt per connected component of the target")


class GtBoxSamPredictor:
    """SAM with the ground-truth box and centre point: the localisation upper bound."""

    needs_ground_truth: ClassVar[bool] = True

    Options: ClassVar[type[GtBoxSamOptions]] = GtBoxSamOptions
    #: the entry of baselines/models.yaml whose defaults and pins apply
    catalog_name: ClassVar[str] = "gt-box-sam"

    def __init__(self, segmenter: str | None = None, **options: Any) -> None:
        from reasonseg_x.predictors.catalog import catalog_options
        from reasonseg_x.star.device import resolve_device, resolve_dtype
        from reasonseg_x.star.segment.segmenters import load_segmenter

        if segmenter is not None:
            options["segmenter"] = segmenter
        opts = catalog_options(self.catalog_name, self.Options, options)
        self.point = opts.point
        self.per_component = opts.per_component
        resolved = resolve_device(opts.device)
        # SAM runs in float32 unless asked otherwise: it is cheap and bf16 shifts mask borders
        torch_dtype = None if opts.dtype == "auto" else resolve_dtype(opts.dtype, resolved)
        self.segmenter = load_segmenter(opts.segmenter, device=resolved, dtype=torch_dtype)

    def predict(self, queries: Sequence[Query]) -> list[Output]:
        outputs = []
        for query in queries:
            gt = query.ground_truth
            if gt is None:
                raise InvalidInputError("gt-box-sam needs the ground truth, but the runner gave none", query.id)
            target = rle.decode(gt.target)
            prompts = target_prompts(target, point=self.point, per_component=self.per_component)
            if not prompts:
                outputs.append(Output(mask=None, status="no_target", timings={"segment_s": 0.0}))
                continue
            try:
                image = query.image.open()
            except InvalidInputError as exc:
                outputs.append(Output(status="error", error=str(exc)))
                continue
            started = time.perf_counter()
            if (image.height, image.width) != target.shape:
                sy, sx = image.height / target.shape[0], image.width / target.shape[1]
                prompts = [type(p)(box=(p.box[0] * sx, p.box[1] * sy, p.box[2] * sx, p.box[3] * sy),
                                   points=tuple((x * sx, y * sy) for x, y in p.points)) for p in prompts]
            self.segmenter.set_image(image)
            found, scores = self.segmenter.segment(prompts)
            mask = rle.encode(np.logical_or.reduce(found))
            if (image.height, image.width) != target.shape:
                mask = rle.resize_nearest(mask, target.shape[0], target.shape[1])
            outputs.append(Output(
                mask=mask, boxes=[list(p.box) for p in prompts], points=[list(pt) for p in prompts for pt in p.points],
                candidates=[{"score": round(float(s), 4)} for s in scores],
                timings={"segment_s": round(time.perf_counter() - started, 4)}))
        return outputs
