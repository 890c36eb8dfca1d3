"""Trainer adapters (TRL, veRL, EasyR1) and StAR's rollout selection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reasonseg_x import rewards
from reasonseg_x.rewards import easyr1, verl

from _rewards_helpers import CountingBox

pytest.importorskip("scipy")


def _mask(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((50, 60), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


TRUTH_1 = rewards.encode_truth([_mask(5, 15, 10, 30)])  # box (10, 5, 29, 14)
TRUTH_2 = rewards.encode_truth([_mask(20, 40, 30, 50)])  # box (30, 20, 49, 39)


def _answer(box, point) -> str:
    return f'<think>r</think><answer>{json.dumps([{"label": "x", "bbox_2d": box, "point_2d": point}])}</answer>'


GOOD_1 = _answer([10, 5, 29, 14], [15, 10])
GOOD_2 = _answer([30, 20, 49, 39], [40, 30])


def test_trl_groups_a_mixed_batch_by_prompt() -> None:
    from PIL import Image

    segmenter = CountingBox()
    fn = rewards.load("star-stage1", segmenter=segmenter).for_trl()
    image_1, image_2 = Image.new("RGB", (60, 50), "red"), Image.new("RGB", (60, 50), "blue")
    # two prompts, three rollouts each, interleaved; TRL hands each rollout its own copy of the row
    completions = [GOOD_1, GOOD_2, "junk", [{"role": "assistant", "content": GOOD_2}], GOOD_1, GOOD_1]
    truths = [TRUTH_1, TRUTH_2, TRUTH_1, TRUTH_2, TRUTH_2, TRUTH_1]
    images = [image_1.copy() if t == TRUTH_1 else image_2.copy() for t in truths]
    logged: dict[str, float] = {}
    out = fn(prompts=["p"] * 6, completions=completions, completion_ids=None, truth=truths, image=images,
             log_metric=logged.__setitem__, trainer_state=None, log_extra=lambda *a: None)
    assert segmenter.embeddings == 2  # one per prompt
    # GOOD on its own truth: 13; junk: non-repeat 1; GOOD_1 on truth 2: format 3 + non-repeat 1 + count 1
    assert out == [13.0, 13.0, 1.0, 13.0, 5.0, 13.0]
    assert logged["star-stage1/accuracy"] == pytest.approx((9 + 9 + 0 + 9 + 1 + 9) / 6)
    assert fn.__name__ == "reasonseg_x_star_stage1"


def test_trl_configurable_columns_and_missing_truth() -> None:
    from reasonseg_x.errors import InvalidInputError

    fn = rewards.load("visionreasoner", segmenter="box").for_trl(truth_column="gt", image_column=None)
    assert fn(prompts=["p"], completions=[GOOD_1], gt=[TRUTH_1]) == [7.0]
    with pytest.raises(InvalidInputError, match="no 'gt' column"):
        fn(prompts=["p"], completions=[GOOD_1], truth=[TRUTH_1])


def test_verl_compute_score_signature() -> None:
    out = verl.compute_score("reasonseg-x", GOOD_1, TRUTH_1, None, preset="star-stage2", segmenter="box")
    assert out["score"] == 14.0 and out["mask"] == 5.0
    batch = verl.compute_score_batch(data_sources=["a", "a", "b"], solution_strs=[GOOD_1, "x", GOOD_2],
                                     ground_truths=[TRUTH_1, TRUTH_1, TRUTH_2], extra_infos=[{}, {}, {}],
                                     preset="star-stage2", segmenter="box")
    assert [b["score"] for b in batch] == [14.0, 1.0, 14.0]


def test_easyr1_batch_function() -> None:
    assert easyr1.REWARD_TYPE == "batch"
    out = easyr1.compute_score([{"response": GOOD_1, "response_length": 10, "ground_truth": TRUTH_1},
                                {"response": GOOD_1, "response_length": 10, "ground_truth": TRUTH_2}],
                               preset="visionreasoner", segmenter="box")
    assert [o["overall"] for o in out] == [7.0, 4.0]  # format 3 + non-repeat 1 (+ accuracy 3 on its own truth)
    assert set(out[0]) >= {"overall", "format", "accuracy", "non_repeat"}


def test_select_rollouts_top_then_bottom() -> None:
    r = np.array([[0.1, 0.9, 0.5, 0.3, 0.7, 0.2], [1, 1, 0, 0, 2, 3]], dtype=float)
    picked = rewards.select_rollouts(r, 4)
    assert picked.tolist() == [[1, 4, 0, 5], [5, 4, 2, 3]]  # top 2 best first, bottom 2 worst first
    assert rewards.select_rollouts(r, 3).tolist() == [[1, 0, 5], [5, 2, 3]]  # m // 2 = 1 top, 2 bottom
    assert rewards.select_rollouts(r, 6).tolist() == [list(range(6))] * 2  # m >= n: no selection
    assert rewards.select_rollouts(r, 0).shape == (2, 6)


def test_group_advantages_are_grpo() -> None:
    r = np.array([[1.0, 2.0, 3.0, 6.0]])
    # mean 3, sample std sqrt(((-2)^2 + 1 + 0 + 9) / 3) = sqrt(14 / 3)
    expected = (r - 3.0) / (np.sqrt(14 / 3) + 1e-6)
    assert np.allclose(rewards.group_advantages(r), expected)
    assert np.allclose(rewards.group_advantages([[5.0]]), [[5.0 / (1 + 1e-6)]])  # a group of one: mean 0, std 1
    assert np.allclose(rewards.group_advantages([[2.0, 2.0]]), [[0.0, 0.0]])


@pytest.mark.parametrize("module, name", [("verl", "compute_score"), ("easyr1", "compute_score")])
def test_trainers_load_the_reward_file_by_path(module: str, name: str) -> None:
    """veRL's ``custom_reward_function.path`` and EasyR1's ``path:fn`` import the file by its path as a
    module of their own (``importlib.util.spec_from_file_location``), not as part of our package."""
    import importlib.util
    from pathlib import Path

    import reasonseg_x.rewards as package

    path = Path(package.__file__).with_name(f"{module}.py")
    spec = importlib.util.spec_from_file_location("custom_module", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    fn = getattr(loaded, name)
    if module == "verl":
        assert fn("reasonseg-x", GOOD_1, TRUTH_1, {"split": "train"}, preset="visionreasoner", segmenter="box") == {
            "score": 7.0, "format": 3.0, "non_repeat": 1.0, "accuracy": 3.0, "bbox_iou": 1.0, "bbox_l1": 1.0,
            "point": 1.0}
    else:
        assert loaded.REWARD_TYPE == "batch"
        assert fn([{"response": GOOD_2, "response_length": 5, "ground_truth": TRUTH_2}], preset="segzero",
                  segmenter="box")[0]["overall"] == 1.0  # the think layout only: not Seg-Zero's answer format
