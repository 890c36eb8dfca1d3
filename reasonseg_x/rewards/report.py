"""``reasonseg-x reward RUN``: score every answer a run recorded with a reward preset.

Why: when a reward is stuck at 0 during training, the first question is whether the model's
answers fail the format, fail the accuracy, or whether the reward disagrees with the benchmark.
This reads a finished run (its ``predictions.jsonl``: ``raw_text``, and for test-time-scaling runs
every sampled answer kept in ``meta.candidates``), scores each answer against the sample's truth,
and reports the mean of every term, the share of answers that cannot be read, and the Pearson
correlation of each sample's mean reward with its IoU under the run's protocol.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_x.errors import InvalidInputError

__all__ = ["reward_report", "run_answers"]


def run_answers(prediction: Any) -> list[str]:
    """Every answer text a prediction line holds: the sampled answers kept in ``meta.candidates``
    (test-time scaling with ``keep_answers``), else its ``raw_text``."""
    candidates = (prediction.meta or {}).get("candidates")
    if isinstance(candidates, list):
        texts = [c["raw_text"] for c in candidates if isinstance(c, dict) and isinstance(c.get("raw_text"), str)]
        if texts:
            return texts
    return [prediction.raw_text] if isinstance(prediction.raw_text, str) else []


def _pearson(x: list[float], y: list[float]) -> float | None:
    if len(x) < 2:
        return None
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def reward_report(run: str | Path, preset: str = "star-stage1", *, data: str | None = None, split: str | None = None,
                  segmenter: Any = "box", coords: str = "qwen2.5", limit: int | None = None,
                  device: str | None = "cpu", **options: Any) -> dict[str, Any]:
    """Score the answers of the run at ``run`` (a run folder or its predictions file).

    ``coords`` defaults to ``qwen2.5``: a run's answers are in the VLM's 840 frame and are mapped to
    the original image, as the run itself did (``qwen3`` for Qwen3-VL runs). ``segmenter``
    defaults to ``box`` (no weights needed); pass a SAM name for the masks the model was trained with.
    """
    from reasonseg_x.evaluators.api import score_records
    from reasonseg_x.rewards.adapters import term_means
    from reasonseg_x.rewards.export import sample_truth
    from reasonseg_x.rewards.reward import load
    from reasonseg_x.runner.record import open_run_data, recorded_run

    recorded = recorded_run(run)
    if recorded is None:
        raise InvalidInputError("not a run folder (no readable run.json beside predictions.jsonl)", str(run))
    protocol = recorded.protocol or "star"
    source, split = open_run_data(recorded, data=data, split=split)  # the samples the run covers
    data = data or recorded.data
    records, predictions, scored_info = score_records(source, split, recorded.predictions, protocol=protocol, skip_invalid=True)
    iou_of = {r.id: r.iou for r in records}
    reward = load(preset, segmenter=segmenter, coords=coords, device=device, **options)
    needs_pixels = reward.preset.needs_masks and not reward.pixel_free
    results, per_sample, scored, covered, without_answer = [], [], 0, 0, 0
    for sample in source.samples(split):
        covered += 1
        prediction = predictions.get(sample.id)
        answers = [] if prediction is None else run_answers(prediction)
        if not answers:
            without_answer += 1
            continue
        if limit is not None and scored >= limit:
            break
        scored += 1
        truth = sample_truth(sample, (sample.height, sample.width))
        image = sample.image.open() if needs_pixels else None
        group = reward.score_group(answers, truth, image)
        results.extend(group)
        if sample.id in iou_of:
            per_sample.append((sum(r.total for r in group) / len(group), iou_of[sample.id]))
    if not results:
        raise InvalidInputError("the run recorded no answer text (raw_text) to score", str(recorded.predictions))
    unreadable = sum(1 for r in results if not r.readable)
    correlation = _pearson([p[0] for p in per_sample], [p[1] for p in per_sample])
    return {"run": str(recorded.folder), "data": data, "split": split, "protocol": protocol,
            "reward": reward.describe(), "samples": scored, "answers": len(results),
            "total_mean": sum(r.total for r in results) / len(results), "terms": term_means(results),
            "unreadable_share": unreadable / len(results),
            "correlation_with_iou": None if correlation is None or math.isnan(correlation) else correlation,
            "correlated_samples": len(per_sample),
            "reasons": _top_reasons(results),
            # what could not be scored, so a torn or malformed line is named, never silently dropped
            "samples_covered": covered, "samples_without_answer": without_answer,
            "unreadable_lines": [f"{p.where}: {p.reason}" for p in scored_info["problems"]]}


def _top_reasons(results: list[Any], top: int = 5) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for r in results:
        if r.reason:
            key = r.reason.split(":")[0][:80]
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])[:top]
