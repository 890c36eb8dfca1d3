"""Rollout-expanded selective tuning and GRPO advantages, torch-free (docs/rewards.md section 10).

StAR's trainer samples n rollouts per prompt, keeps the ``m // 2`` best and the ``m - m // 2``
worst by total reward (two ``torch.topk`` calls; top first, then bottom, per prompt), and computes
the GRPO advantage over the kept ones: ``(r - group mean) / (group std + 1e-6)`` with the sample
standard deviation (``torch.std``, n - 1), and ``r / (1 + 1e-6)`` for a group of one.
Ties are broken by the lower rollout index here (``torch.topk`` leaves them unspecified).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reasonseg_x.errors import InvalidInputError

__all__ = ["select_rollouts", "group_advantages"]


def _matrix(rewards: Any) -> np.ndarray:
    array = np.asarray(rewards, dtype=np.float64)
    if array.ndim != 2:
        raise InvalidInputError(f"rewards must be a [prompts, rollouts] matrix, got shape {array.shape}", "selection")
    return array


def select_rollouts(rewards: Any, m: int) -> np.ndarray:
    """Indices ``[B, m]`` of the rollouts to train on: per row the top ``m // 2`` (best first),
    then the bottom ``m - m // 2`` (worst first). ``m <= 0`` or ``m >= n`` keeps every rollout
    (``[B, n]``, in order), as the reference does."""
    array = _matrix(rewards)
    b, n = array.shape
    if m <= 0 or m >= n:
        return np.tile(np.arange(n), (b, 1))
    top, bottom = m // 2, m - m // 2
    best = np.argsort(-array, axis=1, kind="stable")[:, :top]
    worst = np.argsort(array, axis=1, kind="stable")[:, :bottom]
    return np.concatenate([best, worst], axis=1)


def group_advantages(rewards: Any, eps: float = 1e-6) -> np.ndarray:
    """GRPO advantages ``[B, N]``: each row standardised by its mean and sample std (``+ eps``)."""
    array = _matrix(rewards)
    if array.shape[1] == 1:
        return array / (1.0 + eps)
    mean = array.mean(axis=1, keepdims=True)
    std = array.std(axis=1, ddof=1, keepdims=True)
    return (array - mean) / (std + eps)
