"""Score one (ground truth, prediction) pair into a :class:`SampleRecord`, on RLE.

Intersection and union come from :mod:`reasonseg_x.masks`' RLE merge and area (no decoding, ~40 us
a pair); the protocol decides how ignore pixels, failures and empty unions count.
"""

from __future__ import annotations

from reasonseg_x.data.record import GroundTruth
from reasonseg_x.errors import InvalidMaskError
from reasonseg_x.evaluators.protocols import Protocol
from reasonseg_x.evaluators.records import FAILED, SampleRecord
from reasonseg_x.masks import RLE, area, intersection_area, merge, resize_nearest
from reasonseg_x.predictions import Prediction

__all__ = ["PreparedTruth", "prepare_truth", "score_sample"]


class PreparedTruth:
    """A sample's target under a protocol: the effective target, ignore region and areas."""

    __slots__ = ("gt", "target", "ignore", "target_area")

    def __init__(self, gt: GroundTruth, target: RLE, ignore: RLE | None, target_area: int):
        self.gt = gt
        self.target = target
        self.ignore = ignore
        self.target_area = target_area


def prepare_truth(gt: GroundTruth, protocol: Protocol) -> PreparedTruth:
    """Merge or keep the ignore region as the protocol says, and measure the target."""
    size = [int(gt.height), int(gt.width)]
    target = gt.target
    if [int(v) for v in target["size"]] != size:
        raise InvalidMaskError(f"ground-truth mask size {list(target['size'])} differs from the image size {size}",
                               f"sample {gt.id!r}")
    ignore = gt.ignore
    if ignore is not None and area(ignore) == 0:
        ignore = None
    if ignore is None:
        return PreparedTruth(gt, target, None, area(target))
    if protocol.ignore == "merge":
        merged = merge([target, ignore])
        return PreparedTruth(gt, merged, None, area(merged))
    # exclude: the target outside the ignore region (an ignore pixel is never a target pixel)
    return PreparedTruth(gt, target, ignore, area(target) - intersection_area(target, ignore))


def score_sample(truth: PreparedTruth, pred: Prediction | None, protocol: Protocol, *,
                 status: str | None = None, resize: bool = False) -> SampleRecord:
    """One record. ``pred`` None means missing (or ``status="invalid"`` for a bad line).

    Raises :class:`InvalidMaskError` when the mask size differs from the image and ``resize``
    is off (the caller adds the file and line).
    """
    gt = truth.gt
    gt_empty = truth.target_area == 0
    if status is None:
        status = "missing" if pred is None else pred.status
    if pred is None or status in FAILED or status == "no_target" or pred.mask is None:
        iou = protocol.failed_iou(truth.target_area) if status in FAILED else protocol.iou_of(0, truth.target_area)
        ignored = pred is not None and pred.mask is not None and area(pred.mask) > 0
        return SampleRecord(gt.id, 0, truth.target_area, iou, status, dict(gt.groups), gt_empty, True,
                            mask_ignored=ignored)
    mask = pred.mask
    resized = False
    size, image = [int(mask["size"][0]), int(mask["size"][1])], [int(gt.height), int(gt.width)]
    if size != image:
        if size == image[::-1]:
            raise InvalidMaskError(f"prediction for id {gt.id!r} has size {size} but the image is {image} (height "
                                   "and width swapped: a transposed mask? a resize would distort it, not fix it)")
        if not resize:
            raise InvalidMaskError(
                f"prediction for id {gt.id!r} has size {size} but the image is {image} "
                "(--resize / resize=True accepts it with a nearest-neighbour resize)")
        mask = resize_nearest(mask, image[0], image[1])
        resized = True
    pred_area = area(mask)
    inter = intersection_area(mask, truth.target) if pred_area and truth.target_area else 0
    if truth.ignore is not None and pred_area:
        pred_area -= intersection_area(mask, truth.ignore)
        if inter:
            inter -= intersection_area(mask, truth.target, truth.ignore)
    union = pred_area + truth.target_area - inter
    return SampleRecord(gt.id, inter, union, protocol.iou_of(inter, union), status, dict(gt.groups), gt_empty,
                        pred_area == 0, resized)
