"""The segmenter interface: prompts, the ``Segmenter`` base class and its results.

Why its own module: every SAM backend (:mod:`.segmenters`) and the torch-free box segmenter
(:mod:`.box_segmenter`) build on it, and the factory in :mod:`.segmenters` loads them all, so the
interface lives apart from both (no two modules import each other). Imports numpy only.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from reasonseg_x.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["Prompt", "answer_prompts", "clip_prompt", "Segmenter", "PreparedImage", "SegmentResult"]


@dataclass(frozen=True)
class Prompt:
    """One object prompt in original-image pixels: an ``(x1, y1, x2, y2)`` box and/or positive points."""

    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] = ()

    @property
    def kind(self) -> tuple[bool, int]:
        """Prompts of one kind (box or not, number of points) decode together in one tensor."""
        return (self.box is not None, len(self.points))


def clip_prompt(prompt: Prompt, width: int, height: int) -> Prompt:
    """Clip box and points into the image; reorder box corners; a box with no area keeps its extent >= 1 px.

    A NaN coordinate has no place to be clipped to: it is refused (decoded, it gave an empty mask
    with a NaN score that the vote would then sort on). Infinities clip to the border."""
    values = [*(prompt.box or ()), *(v for point in prompt.points for v in point)]
    if any(math.isnan(float(v)) for v in values):
        raise InvalidInputError(f"prompt has a NaN coordinate: {prompt}", "segmenter")
    box = None
    if prompt.box is not None:
        x1, y1, x2, y2 = (float(v) for v in prompt.box)
        x1, x2 = sorted((min(max(x1, 0.0), width - 1.0), min(max(x2, 0.0), width - 1.0)))
        y1, y2 = sorted((min(max(y1, 0.0), height - 1.0), min(max(y2, 0.0), height - 1.0)))
        box = (x1, y1, x2, y2)
    points = tuple((min(max(float(x), 0.0), width - 1.0), min(max(float(y), 0.0), height - 1.0))
                   for x, y in prompt.points)
    return Prompt(box=box, points=points)


def _point_list(point: Any) -> list[tuple[float, float]]:
    """``[x, y]`` -> one point; ``[[x, y], [x, y]]`` -> several; anything else -> none."""
    if point is None:
        return []
    arr = np.asarray(point, dtype=np.float64) if not isinstance(point, np.ndarray) else point.astype(np.float64)
    if arr.ndim == 1 and arr.size == 2:
        return [(float(arr[0]), float(arr[1]))] if np.all(np.isfinite(arr)) else []
    if arr.ndim == 2 and arr.shape[1] == 2:
        return [(float(x), float(y)) for x, y in arr if np.isfinite(x) and np.isfinite(y)]
    return []


def answer_prompts(objects: Sequence[Any]) -> list[Prompt]:
    """SAM prompts (box + positive points, image pixels) for parsed answer objects, in order: one
    prompt per object, shared by the pipeline, the rewards and the lmms-eval tasks."""
    prompts = []
    for obj in objects:
        box = getattr(obj, "bbox", None)
        box_t = None
        if box is not None:
            values = [float(v) for v in box]
            if len(values) == 4 and all(np.isfinite(values)):
                box_t = tuple(values)
        points = [] if getattr(obj, "point", None) is None else _point_list(obj.point)
        extra = getattr(obj, "extra_points", None)  # Seg-Zero's second point
        if extra:
            points += [p for p in _point_list(extra) if p not in points]
        prompts.append(Prompt(box=box_t, points=tuple(points)))
    return prompts


class Segmenter(ABC):
    """``set_image`` once per image, then ``segment`` any number of prompts on it.

    ``segment`` returns ``(masks, scores)``: bool ``[n, H, W]`` at the original resolution and float
    ``[n]`` (the chosen mask's predicted IoU: in [0, 1] for SAM 2, unbounded for SAM 1).
    """

    name: str = "segmenter"
    #: prompts per decoder call (memory bound: each needs an upsampled H x W mask)
    max_prompts_per_call: int = 64
    #: why this backend runs its slower, public path instead of its batched one (the installed
    #: library lacks an internal it reads, see reasonseg_x.star.compat); recorded in run.json
    fallback: str | None = None

    def __init__(self) -> None:
        self._size: tuple[int, int] | None = None  # (height, width) of the current image
        self.calls = 0  # decoder calls made since construction (benchmarks and tests read it)

    @property
    def image_size(self) -> tuple[int, int]:
        if self._size is None:
            raise RuntimeError("call set_image() before segment()")
        return self._size

    #: whether :meth:`prepare_image` does real work (then callers may run it ahead on another thread)
    prepares_ahead: bool = False

    def prepare_image(self, image: Image.Image) -> PreparedImage:
        """The CPU side of :meth:`set_image` (resize, normalise), touching no model state, so a
        worker thread can do it for the next images while the GPU embeds this one."""
        rgb = image.convert("RGB")
        return PreparedImage((rgb.height, rgb.width), self._preprocess(rgb))

    def set_image(self, image: Image.Image | PreparedImage) -> Any:
        """Embed ``image`` (the original, not the VLM frame; or what :meth:`prepare_image` made of
        it); returns the backend's embedding object."""
        prepared = image if isinstance(image, PreparedImage) else self.prepare_image(image)
        self._size = prepared.size
        return self._embed(prepared.inputs)

    def _preprocess(self, rgb: Image.Image) -> Any:
        """What :meth:`_embed` takes: the RGB image itself unless a backend does CPU work ahead."""
        return rgb

    def segment(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        """Masks and scores for ``prompts`` on the current image, in prompt order."""
        result = self.segment_unique(prompts)
        return result.masks[result.index], result.scores[result.index]

    def segment_unique(self, prompts: Sequence[Prompt]) -> SegmentResult:
        """Like :meth:`segment`, but each distinct prompt's mask is stored once (``result.mask(i)``).

        Sampled answers repeat objects often; not copying a full-size mask per repeat is most of
        the saving of the 32-answer SAM stage on CPU.
        """
        height, width = self.image_size
        clipped = [clip_prompt(p, width, height) for p in prompts]
        groups: dict[tuple[bool, int], dict[Prompt, None]] = {}  # distinct prompts by kind, first seen first
        for p in clipped:
            groups.setdefault(p.kind, {})[p] = None
        # rows grouped by kind, so that each decoder call fills one contiguous block of ``masks``
        unique = [p for members in groups.values() for p in members]
        slots = {p: row for row, p in enumerate(unique)}
        index = np.array([slots[p] for p in clipped], dtype=np.int64)
        masks = np.zeros((len(unique), height, width), dtype=bool)
        scores = np.zeros(len(unique), dtype=np.float32)
        row, step = 0, self.max_prompts_per_call
        for kind, members in groups.items():
            if kind == (False, 0):  # nothing to prompt with: an empty mask, score 0
                row += len(members)
                continue
            for start in range(0, len(members), step):
                rows = slice(row, row + min(step, len(members) - start))
                scores[rows] = self._decode_into(unique[rows], masks[rows])
                self.calls += 1
                row = rows.stop
        return SegmentResult(masks, scores, index if len(prompts) else np.zeros(0, dtype=np.int64))

    def _decode_into(self, prompts: Sequence[Prompt], out: np.ndarray) -> np.ndarray:
        """Write the masks of ``prompts`` (one kind) into ``out`` (bool ``[n, H, W]``); return their scores.

        Backends whose masks come out at low resolution override this to upsample straight into
        ``out``: with 32 sampled answers on a large image, a second full-size copy of every mask is
        the largest allocation of the SAM stage."""
        masks, scores = self._decode(prompts)
        out[...] = masks
        return scores

    @abstractmethod
    def _embed(self, inputs: Any) -> Any:
        """Embed the current image from what :meth:`_preprocess` made of it."""

    @abstractmethod
    def _decode(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        """Decode prompts of one kind (same box presence and point count) in one call."""


@dataclass(frozen=True)
class PreparedImage:
    """An image made ready for :meth:`Segmenter.set_image` ahead of time (:meth:`Segmenter.prepare_image`)."""

    size: tuple[int, int]  # (height, width) of the original image
    inputs: Any


@dataclass(frozen=True)
class SegmentResult:
    """Masks of the distinct prompts of one ``segment_unique`` call; ``index[i]`` is prompt i's row."""

    masks: np.ndarray  # bool [u, H, W]
    scores: np.ndarray  # float32 [u]
    index: np.ndarray  # int64 [n]

    def mask(self, i: int) -> np.ndarray:
        return self.masks[self.index[i]]

    def score(self, i: int) -> float:
        return float(self.scores[self.index[i]])

    def __len__(self) -> int:
        return len(self.index)
