"""Metric conventions as data (PROTOCOLS.md section 3).

The published pipelines disagree on three things: what ignore (255) pixels mean, what a sample
with an empty union scores, and how a failed answer counts. A :class:`Protocol` names each
choice, so every number the toolkit prints says which convention produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reasonseg_x.errors import InvalidInputError

__all__ = ["Protocol", "PROTOCOLS", "ALIASES", "get_protocol", "protocol_names"]


@dataclass(frozen=True)
class Protocol:
    """One metric convention.

    ``ignore``: ``"merge"`` (ignore pixels are target) or ``"exclude"`` (neither TP nor FP).
    ``empty_union_iou``: the IoU of a sample with U = 0. ``iou_eps`` / ``ciou_eps``: the
    denominators' epsilons (LISA adds 1e-5 per sample and 1e-10 pooled). ``empty_pool_ciou``:
    cIoU of a group whose pooled union is 0. ``no_target_rows``: GRES-style rows without a
    target, with correct rejection and N-acc/T-acc.
    """

    name: str
    ignore: str
    empty_union_iou: float
    iou_eps: float = 0.0
    ciou_eps: float = 0.0
    empty_pool_ciou: float = 0.0
    no_target_rows: bool = False
    description: str = ""
    used_by: str = ""

    def sample_iou(self, intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
        """Per-sample IoU, vectorised (float64)."""
        i = np.asarray(intersection, dtype=np.float64)
        u = np.asarray(union, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = i / (u + self.iou_eps)
        return np.where(u == 0, self.empty_union_iou, iou)

    def iou_of(self, intersection: int, union: int) -> float:
        """Per-sample IoU of one sample; bit-identical to :meth:`sample_iou`."""
        if union == 0:
            return float(self.empty_union_iou)
        return float(intersection) / (float(union) + self.iou_eps)

    def pooled_iou(self, intersection_sum: np.ndarray | float, union_sum: np.ndarray | float) -> np.ndarray:
        """cIoU from pooled sums (vectorised over bootstrap resamples)."""
        i = np.asarray(intersection_sum, dtype=np.float64)
        u = np.asarray(union_sum, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            c = i / (u + self.ciou_eps)
        return np.where(u == 0, self.empty_pool_ciou, c)


PROTOCOLS: dict[str, Protocol] = {
    "star": Protocol(
        name="star", ignore="merge", empty_union_iou=1.0,
        description="ignore pixels merged into the target; U = 0 scores 1.0; a failed answer scores "
                    "I = 0, U = area(GT); a group with pooled U = 0 reports cIoU 0",
        used_by="StAR (ReasonSeg-X official)"),
    "visionreasoner": Protocol(
        name="visionreasoner", ignore="merge", empty_union_iou=0.0,
        description="ignore pixels merged into the target; U = 0 scores 0.0; a failed answer scores "
                    "I = 0, U = area(GT)",
        used_by="Seg-Zero, VisionReasoner"),
    "lisa": Protocol(
        name="lisa", ignore="exclude", empty_union_iou=1.0, iou_eps=1e-5, ciou_eps=1e-10,
        description="ignore pixels excluded from I and U; IoU = I / (U + 1e-5), U = 0 scores 1.0; "
                    "cIoU = sum I / (sum U + 1e-10)",
        used_by="LISA, MMR, LLM-Seg40K"),
    "gres": Protocol(
        name="gres", ignore="merge", empty_union_iou=1.0, no_target_rows=True,
        description="targets merged; a correctly rejected no-target row scores 1 (a failed answer on it "
                    "scores 0) and adds (0, 0) to the "
                    "cIoU sums; N-acc = TP / (TP + FN) with 'no target' positive, T-acc = TN / (TN + FP)",
        used_by="GRES / ReLA"),
}

ALIASES = {"segzero": "visionreasoner", "seg-zero": "visionreasoner", "vision_reasoner": "visionreasoner",
           "rela": "gres", "reasonseg-x": "star"}


def protocol_names() -> list[str]:
    return list(PROTOCOLS)


def get_protocol(name: str | Protocol) -> Protocol:
    """Resolve a protocol name or alias (case-insensitive)."""
    if isinstance(name, Protocol):
        return name
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in PROTOCOLS:
        known = ", ".join([*PROTOCOLS, "segzero (= visionreasoner)"])
        raise InvalidInputError(f"unknown protocol {name!r}; known: {known}")
    return PROTOCOLS[key]
