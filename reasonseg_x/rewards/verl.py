"""veRL's custom reward function: ``custom_reward_function.path`` = this file, ``.name`` =
``compute_score`` (one rollout) or ``compute_score_batch`` (the batch reward manager).

veRL calls ``compute_score(data_source, solution_str, ground_truth, extra_info=None, **reward_kwargs)``
and logs every key of the returned dict beside ``score``. ``preset=`` and ``segmenter=`` (and any
:func:`reasonseg_x.rewards.load` option) arrive through ``reward_kwargs``; the ground truth is
:func:`reasonseg_x.rewards.encode_truth`'s string; an image, if the data carries one, is read from
``extra_info["image"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["compute_score", "compute_score_batch", "cached_reward"]

_REWARDS: dict[tuple[Any, ...], Any] = {}


def cached_reward(preset: str = "star-stage1", segmenter: Any = "sam2.1-hiera-large", **options: Any) -> Any:
    """One :class:`~reasonseg_x.rewards.reward.Reward` per configuration for the whole process (a
    trainer calls once per rollout; SAM must load once)."""
    from reasonseg_x.rewards.reward import load

    key = (preset, segmenter if isinstance(segmenter, str) else id(segmenter), tuple(sorted(options.items())))
    if key not in _REWARDS:
        _REWARDS[key] = load(preset, segmenter=segmenter, **options)
    return _REWARDS[key]


def _image(extra_info: Any) -> Any:
    return extra_info.get("image") if isinstance(extra_info, dict) else None


def compute_score(data_source: Any, solution_str: str, ground_truth: str, extra_info: Any = None,
                  **kwargs: Any) -> dict[str, float]:
    """``{"score": total, **terms}`` for one rollout."""
    result = cached_reward(**kwargs).score(solution_str, ground_truth, _image(extra_info))
    return {"score": result.total, **result.terms}


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[str],
                        extra_infos: Sequence[Any] | None = None, **kwargs: Any) -> list[dict[str, float]]:
    """The batch form: rollouts of one prompt (same truth and image) share one image embedding."""
    reward = cached_reward(**kwargs)
    images = [_image(e) for e in extra_infos] if extra_infos is not None else None
    if images is not None and all(i is None for i in images):
        images = None
    results = reward.score_batch(list(solution_strs), list(ground_truths), images)
    return [{"score": r.total, **r.terms} for r in results]
