"""The reward object: a preset plus a segmenter, scoring one completion or a group of rollouts.

Why groups: a GRPO step samples N rollouts of one prompt, and the expensive part of a mask reward
is SAM's image encoder. The published StAR worker embeds the image once per rollout; here a group
embeds it once (``Segmenter.set_image``) and decodes every rollout's objects in a few batched
prompt calls (``Segmenter.segment_unique``: repeated objects are decoded once). Scoring a group
gives exactly what scoring its rollouts one by one gives.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.rewards import formulas as f
from reasonseg_x.rewards.presets import Preset, Reading, RewardResult, get_preset
from reasonseg_x.rewards.truth import Truth, as_truth

__all__ = ["Reward", "load", "completion_text"]

#: prompts decoded per ``segment_unique`` call (bounds the full-size masks held at once)
_PROMPTS_PER_CHUNK = 96


def completion_text(completion: Any) -> str | None:
    """The text of a plain completion (a string) or a conversational one (a list of messages:
    the assistant messages' text joined); None when there is no text."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, (list, tuple)) and all(isinstance(m, Mapping) for m in completion):
        parts: list[str] = []
        for message in completion:
            if message.get("role", "assistant") != "assistant":
                continue
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
        return "".join(parts) if parts else None
    return None


def _pil_image(image: Any) -> Any:
    """A PIL image from what trainers carry (PIL, an ``H x W x 3`` array, a path, HF's ``{"bytes"}``)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        return Image.fromarray(np.asarray(image, dtype=np.uint8))
    if isinstance(image, Mapping) and (image.get("bytes") or image.get("path")):
        import io

        return Image.open(io.BytesIO(image["bytes"])) if image.get("bytes") else Image.open(image["path"])
    if isinstance(image, str):
        return Image.open(image)
    raise InvalidInputError(f"image must be a PIL image, an array, a path or {{'bytes': ...}}, got "
                            f"{type(image).__name__}", "reward")


class Reward:
    """A reward preset with its segmenter (loaded on first use). Built by :func:`load`."""

    def __init__(self, preset: Preset, segmenter: Any = "sam2.1-hiera-large", *, device: str | None = "cpu") -> None:
        self.preset = preset
        self._segmenter_spec = segmenter
        self._segmenter: Any = None if isinstance(segmenter, str) else segmenter
        self.device = device
        self._truths: OrderedDict[str, Truth] = OrderedDict()

    # ------------------------------------------------------------------ configuration
    @property
    def name(self) -> str:
        return self.preset.name

    @property
    def bounds(self) -> tuple[float, float]:
        return self.preset.bounds

    @property
    def pixel_free(self) -> bool:
        """Whether the segmenter needs no pixels (``box``): then ``image`` may be None."""
        from reasonseg_x.star.segment.box_segmenter import BoxSegmenter

        if self._segmenter is not None:
            return isinstance(self._segmenter, BoxSegmenter)
        from reasonseg_x.star.segment.segmenters import needs_device

        return not needs_device(self._segmenter_spec)

    @property
    def segmenter(self) -> Any:
        if self._segmenter is None:
            from reasonseg_x.star.segment.segmenters import load_segmenter

            self._segmenter = load_segmenter(self._segmenter_spec, device=self.device)
        return self._segmenter

    def describe(self) -> dict[str, Any]:
        """What the reward is (recorded by ``reasonseg-x reward`` and the docs' examples)."""
        spec = self._segmenter_spec if isinstance(self._segmenter_spec, str) else type(self._segmenter_spec).__name__
        return {**self.preset.describe(), "segmenter": spec if self.preset.needs_masks else None}

    # ------------------------------------------------------------------ scoring
    def truth(self, truth: Any) -> Truth:
        """``truth`` as a :class:`Truth` (encoded strings are decoded once and kept for a while)."""
        if isinstance(truth, (str, bytes)):
            key = truth if isinstance(truth, str) else truth.decode("utf-8", "replace")
            found = self._truths.get(key)
            if found is None:
                found = self._truths[key] = as_truth(key)
                if len(self._truths) > 16:  # decoded masks are large: keep the few prompts in flight
                    self._truths.popitem(last=False)
            else:
                self._truths.move_to_end(key)
            return found
        return as_truth(truth)

    def score(self, completion: Any, truth: Any, image: Any = None) -> RewardResult:
        """One completion (a group of one: its image is embedded for it alone)."""
        return self.score_group([completion], truth, image)[0]

    def score_group(self, completions: Sequence[Any], truth: Any, image: Any = None) -> list[RewardResult]:
        """N rollouts of one prompt: the image is embedded once, every rollout's objects decoded in
        batched prompt calls. Never raises for a completion; a bad ``truth`` or ``image`` raises
        :class:`InvalidInputError`."""
        truth = self.truth(truth)
        readings = [self._read(c, truth) for c in completions]
        outcomes = self._segment(readings, truth, image)
        results = []
        for reading, (ious, union) in zip(readings, outcomes):
            readable = reading.objects is not None or reading.empty
            try:
                result = self.preset.finish(reading, ious, truth, union)
            except InvalidInputError:
                raise
            except Exception as exc:  # noqa: BLE001 - a completion must never stop training
                result = RewardResult(self.preset.bounds[0], {k: 0.0 for k in reading.terms},
                                      f"unreadable ({type(exc).__name__}: {exc})"[:300])
                readable = False
            results.append(replace(result, readable=readable))
        return results

    def _read(self, completion: Any, truth: Truth) -> Reading:
        text = completion_text(completion)
        if text is None:
            reading = self.preset.read("", truth)
            reading.terms = {k: 0.0 for k in reading.terms}
            reading.objects, reading.empty = None, False
            reading.reason = f"completion is not text ({type(completion).__name__})"
            return reading
        try:
            return self.preset.read(text, truth)
        except Exception as exc:  # noqa: BLE001 - a completion must never stop training
            reading = self.preset.read("", truth)
            reading.terms = {k: 0.0 for k in reading.terms}
            reading.objects, reading.reason = None, f"unreadable ({type(exc).__name__}: {exc})"[:300]
            return reading

    def _wants_masks(self, truth: Truth) -> bool:
        if not self.preset.needs_masks or truth.masks is None:
            return False
        return len(truth) > 0 or self.preset.scores_union  # the union is scored on no-target rows too

    def _prepared(self, image: Any, truth: Truth) -> Any:
        """What ``set_image`` gets: the image (checked against the truth's size), or the bare size
        for a segmenter that needs no pixels; None when masks cannot be made."""
        from reasonseg_x.star.segment.base import PreparedImage

        if image is None:
            return PreparedImage(truth.size, None) if self.pixel_free else None
        pil = _pil_image(image)
        if (pil.height, pil.width) != truth.size:
            raise InvalidInputError(f"image is {pil.width}x{pil.height} but the truth's masks are {truth.width}x"
                                    f"{truth.height}: coordinates are read in the frame of the image passed, so "
                                    "pass the image the masks belong to", "reward")
        return pil

    def _segment(self, readings: Sequence[Reading], truth: Truth, image: Any) -> list[tuple[Any, Any]]:
        """Per reading: (mask IoU ``[M, N]`` against the truth, the union of its masks for a preset
        that scores the union) or (None, None)."""
        from reasonseg_x.star.answer.parser import AnswerObject
        from reasonseg_x.star.segment.base import answer_prompts

        out: list[tuple[Any, Any]] = [(None, None)] * len(readings)
        if not self._wants_masks(truth):
            return out
        wanted = [i for i, r in enumerate(readings) if r.objects]
        if not wanted:
            return out
        prepared = self._prepared(image, truth)
        if prepared is None:
            return out
        prompts = {i: answer_prompts([AnswerObject(None, tuple(box), tuple(pts[0]) if pts else None,
                                                   tuple(tuple(p) for p in pts[1:]))
                                      for box, pts in readings[i].objects]) for i in wanted}
        segmenter = self.segmenter
        segmenter.set_image(prepared)  # once for the whole group
        union = self.preset.scores_union
        chunk: list[int] = []
        for position, i in enumerate(wanted):
            chunk.append(i)
            if position == len(wanted) - 1 or sum(len(prompts[j]) for j in chunk) >= _PROMPTS_PER_CHUNK:
                flat = [p for j in chunk for p in prompts[j]]
                found = segmenter.segment_unique(flat)
                packed = np.packbits(found.masks.reshape(found.masks.shape[0], -1), axis=1)
                ious = f.mask_iou_matrix(packed, truth.packed)
                offset = 0
                for j in chunk:
                    rows = found.index[offset:offset + len(prompts[j])]
                    offset += len(prompts[j])
                    out[j] = (ious[rows], np.logical_or.reduce(found.masks[rows], axis=0) if union else None)
                chunk = []
        return out

    # ------------------------------------------------------------------ trainers
    def for_trl(self, *, image_column: str | None = "image", truth_column: str = "truth",
                log_terms: bool = True) -> Callable[..., list[float]]:
        """A TRL ``GRPOTrainer`` reward function (see :mod:`reasonseg_x.rewards.adapters`)."""
        from reasonseg_x.rewards.adapters import trl_reward

        return trl_reward(self, image_column=image_column, truth_column=truth_column, log_terms=log_terms)

    def score_batch(self, completions: Sequence[Any], truths: Sequence[Any],
                    images: Sequence[Any] | None = None) -> list[RewardResult]:
        """A mixed batch (several prompts, their rollouts in any order): rollouts are grouped by
        truth and image, each group scored with :meth:`score_group`, results in input order."""
        n = len(completions)
        if len(truths) != n or (images is not None and len(images) != n):
            raise InvalidInputError(f"{n} completions but {len(truths)} truths"
                                    + (f" and {len(images)} images" if images is not None else ""), "reward")
        groups: dict[tuple[Any, Any], list[int]] = {}
        fingerprints: dict[int, Any] = {}
        for i in range(n):
            image = images[i] if images is not None else None
            groups.setdefault((_truth_key(truths[i]), _image_key(image, fingerprints)), []).append(i)
        results: list[RewardResult | None] = [None] * n
        for members in groups.values():
            first = members[0]
            scored = self.score_group([completions[i] for i in members], truths[first],
                                      images[first] if images is not None else None)
            for i, result in zip(members, scored):
                results[i] = result
        return results  # type: ignore[return-value]


def _truth_key(truth: Any) -> Any:
    if isinstance(truth, (str, bytes)):
        return truth
    return ("object", id(truth))


def _image_key(image: Any, seen: dict[int, Any]) -> Any:
    """Equal images (TRL hands each rollout its own copy of the row) share one key."""
    if image is None:
        return None
    if id(image) in seen:
        return seen[id(image)]
    tobytes = getattr(image, "tobytes", None)
    if callable(tobytes):
        digest = hashlib.blake2b(tobytes(), digest_size=16).hexdigest()
        key = (getattr(image, "size", None), getattr(image, "mode", None), digest)
    elif isinstance(image, Mapping) and image.get("bytes"):
        key = ("bytes", hashlib.blake2b(image["bytes"], digest_size=16).hexdigest())
    else:
        key = ("object", id(image))
    seen[id(image)] = key
    return key


def load(preset: str, *, segmenter: Any = "sam2.1-hiera-large", device: str | None = "cpu", **options: Any) -> Reward:
    """A reward by preset name: ``star-stage1``, ``star-stage2``, ``visionreasoner``, ``segzero``, ``metric``.

    ``segmenter``: a segmenter name (``sam2.1-hiera-large``, ``box``, any ``load_segmenter`` spec,
    loaded on first use) or a built :class:`~reasonseg_x.star.segment.base.Segmenter`.
    ``options``: ``coords`` (``pixels``, ``qwen3-reference``, ``qwen2.5``, ``qwen3``, ``qwen2``),
    ``no_target`` (``reference``, ``reward-empty``; ``metric`` also ``protocol``) and, for
    ``metric``, ``protocol`` and ``style``.
    """
    if not isinstance(segmenter, str):
        from reasonseg_x.star.segment.base import Segmenter

        if not isinstance(segmenter, Segmenter):
            raise InvalidInputError(f"segmenter must be a name or a Segmenter, got {type(segmenter).__name__}",
                                    "reward")
    else:
        from reasonseg_x.star.segment.segmenters import resolve_segmenter

        resolve_segmenter(segmenter)  # a typo fails now, not at the first masked rollout
    return Reward(get_preset(preset, **options), segmenter, device=device)
