"""Trainer adapters: TRL's ``reward_funcs`` callable (veRL: :mod:`.verl`, EasyR1: :mod:`.easyr1`).

Why thin: the trainers differ only in how a batch arrives; every adapter ends in
:meth:`Reward.score_batch`, which groups a batch's rollouts by prompt (truth and image) so each
image is embedded once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from reasonseg_x.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.rewards.presets import RewardResult
    from reasonseg_x.rewards.reward import Reward

__all__ = ["trl_reward", "term_means"]


def term_means(results: Sequence[RewardResult]) -> dict[str, float]:
    """Mean of every term over ``results`` (a term a result lacks counts as absent, not 0)."""
    sums: dict[str, list[float]] = {}
    for result in results:
        for key, value in result.terms.items():
            sums.setdefault(key, []).append(float(value))
    return {key: sum(values) / len(values) for key, values in sums.items()}


def _column_images(columns: dict[str, Any], name: str | None, n: int) -> list[Any] | None:
    if name is None:
        return None
    values = columns.get(name)
    if values is None and name == "image":  # TRL's vision datasets may carry "images" (a list per row)
        values = columns.get("images")
        if values is not None:
            values = [v[0] if isinstance(v, (list, tuple)) and v else v for v in values]
    if values is None:
        return None
    if len(values) != n:
        raise InvalidInputError(f"column {name!r} has {len(values)} values for {n} completions", "reward")
    return list(values)


def trl_reward(reward: Reward, *, image_column: str | None = "image", truth_column: str = "truth",
               log_terms: bool = True) -> Callable[..., list[float]]:
    """``reward_funcs`` entry for ``trl.GRPOTrainer``: ``(prompts, completions, completion_ids=None,
    **columns) -> list[float]``. Reads the ``truth_column`` (``encode_truth`` strings or mappings)
    and ``image_column`` dataset columns; plain and conversational completions; reports the mean
    of every term through TRL's ``log_metric`` as ``<preset>/<term>``."""

    def reward_fn(prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None,
                  completion_ids: Sequence[Any] | None = None, **columns: Any) -> list[float]:
        completions = list(completions or [])
        n = len(completions)
        truths = columns.get(truth_column)
        if truths is None:
            raise InvalidInputError(f"the dataset has no {truth_column!r} column (reasonseg-x data rl-export writes "
                                    f"it; or pass truth_column=...); columns: {', '.join(sorted(columns)) or 'none'}",
                                    "reward")
        if len(truths) != n:
            raise InvalidInputError(f"column {truth_column!r} has {len(truths)} values for {n} completions", "reward")
        results = reward.score_batch(completions, list(truths), _column_images(columns, image_column, n))
        log_metric = columns.get("log_metric")
        if log_terms and callable(log_metric) and results:
            for key, value in term_means(results).items():
                log_metric(f"{reward.name}/{key}", value)
        return [r.total for r in results]

    reward_fn.__name__ = f"reasonseg_x_{reward.name.replace('-', '_')}"
    reward_fn.__qualname__ = reward_fn.__name__
    return reward_fn
