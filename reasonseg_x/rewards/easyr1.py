"""EasyR1's batch reward function: ``worker.reward.reward_function=<this file>:compute_score``.

EasyR1 calls ``compute_score(reward_inputs, **reward_function_kwargs)`` with one dict per rollout
(``response``, ``response_length``, ``ground_truth``) when the file sets ``REWARD_TYPE = "batch"``,
and logs every key of the returned dicts; ``overall`` is the reward. ``preset=`` / ``segmenter=``
come from ``reward_function_kwargs``; the ground truth is :func:`reasonseg_x.rewards.encode_truth`'s string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reasonseg_x.rewards.verl import cached_reward

__all__ = ["REWARD_TYPE", "compute_score"]

REWARD_TYPE = "batch"


def compute_score(reward_inputs: Sequence[dict[str, Any]], **kwargs: Any) -> list[dict[str, float]]:
    """``[{"overall": total, **terms}]`` in input order; rollouts of one prompt share one image embedding."""
    reward = cached_reward(**kwargs)
    texts = [item.get("response") for item in reward_inputs]
    truths = [item.get("ground_truth") for item in reward_inputs]
    images = [item.get("image") for item in reward_inputs]
    results = reward.score_batch(texts, truths, None if all(i is None for i in images) else images)
    return [{"overall": r.total, **r.terms} for r in results]
