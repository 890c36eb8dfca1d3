"""Rewards that are the benchmark: the published StAR, VisionReasoner and Seg-Zero rewards and the
evaluator's own metric, for TRL, veRL and EasyR1, with SAM run once per group of rollouts.

``load(preset, segmenter=...)`` returns a :class:`~reasonseg_x.rewards.reward.Reward`;
``encode_truth`` writes the ground truth as text for trainers; ``select_rollouts`` and
``group_advantages`` are StAR's rollout selection (docs/rewards.md). Core install: numpy
(scipy for Hungarian matching: the ``rewards`` extra); SAM through ``reasonseg_x.star.segment``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["load", "Reward", "RewardResult", "PRESETS", "encode_truth", "as_truth", "Truth", "select_rollouts",
           "group_advantages", "completion_text", "rl_export", "reward_report"]

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.rewards.export import rl_export
    from reasonseg_x.rewards.presets import PRESETS, RewardResult
    from reasonseg_x.rewards.report import reward_report
    from reasonseg_x.rewards.reward import Reward, completion_text, load
    from reasonseg_x.rewards.selection import group_advantages, select_rollouts
    from reasonseg_x.rewards.truth import Truth, as_truth, encode_truth

_HOME = {"load": "reward", "Reward": "reward", "completion_text": "reward", "RewardResult": "presets",
         "PRESETS": "presets", "encode_truth": "truth", "as_truth": "truth", "Truth": "truth",
         "select_rollouts": "selection", "group_advantages": "selection", "rl_export": "export",
         "reward_report": "report"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"reasonseg_x.rewards.{_HOME[name]}"), name)
    raise AttributeError(f"module 'reasonseg_x.rewards' has no attribute {name!r}")
