"""Groups embed their image once and score exactly like one-by-one; any text stays within bounds.

The bounds come from the formulas: star-stage1 0..13, star-stage2 0..14, visionreasoner 0..7,
segzero 0..5, metric 0..1 (docs/rewards.md section 1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasonseg_x import rewards
from reasonseg_x.rewards.presets import PRESETS

from _rewards_helpers import CountingBox

pytest.importorskip("scipy")

A = np.zeros((64, 64), dtype=bool)
A[8:24, 10:40] = True
B = np.zeros((64, 64), dtype=bool)
B[40:60, 30:50] = True
TRUTH = rewards.encode_truth([A, B])


def _rollouts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        objects = []
        for _ in range(int(rng.integers(1, 4))):
            x, y = (int(v) for v in rng.integers(0, 50, 2))
            w, h = (int(v) for v in rng.integers(3, 25, 2))
            objects.append({"label": "o", "bbox_2d": [x, y, min(x + w, 63), min(y + h, 63)], "point_2d": [x + 1, y + 1]})
        if i % 7 == 3:
            out.append("<think>broken</think><answer>[{]</answer>")
        elif i % 11 == 5:
            out.append("<think>none</think><answer>[]</answer>")
        else:
            out.append(f"<think>r</think><answer>{json.dumps(objects)}</answer>")
    return out


@pytest.mark.parametrize("preset", ["star-stage1", "star-stage2", "metric"])
def test_group_embeds_once_and_equals_one_by_one(preset: str) -> None:
    segmenter = CountingBox()
    reward = rewards.load(preset, segmenter=segmenter)
    completions = _rollouts(40)
    grouped = reward.score_group(completions, TRUTH)
    assert segmenter.embeddings == 1
    single = [reward.score(c, TRUTH) for c in completions]
    assert grouped == single
    # one by one, every rollout with objects embeds the image again (the published worker's loop)
    assert segmenter.embeddings - 1 == sum(1 for c in completions if "[{]" not in c and "[]" not in c)


def test_group_with_a_real_sam_architecture_embeds_once(tmp_path) -> None:
    pytest.importorskip("transformers")
    from _star_tiny import build_sam2, random_image

    from reasonseg_x.star.segment.segmenters import HFSam2Segmenter, load_segmenter

    class CountingSam(HFSam2Segmenter):
        embeddings = 0

        def set_image(self, image):  # noqa: ANN001, ANN201
            type(self).embeddings += 1
            return super().set_image(image)

    base = load_segmenter(str(build_sam2(tmp_path / "sam2")), device="cpu")
    segmenter = CountingSam("tiny", model=base.model, processor=base.processor)
    reward = rewards.load("star-stage1", segmenter=segmenter)
    image = random_image(64, 64)
    completions = _rollouts(12, seed=1)
    grouped = reward.score_group(completions, TRUTH, image)
    assert CountingSam.embeddings == 1
    single = [reward.score(c, TRUTH, image) for c in completions]
    assert [r.total for r in grouped] == pytest.approx([r.total for r in single])
    assert [r.terms for r in grouped] == [r.terms for r in single]


def test_group_of_zero_and_no_masks_needed() -> None:
    segmenter = CountingBox()
    assert rewards.load("star-stage1", segmenter=segmenter).score_group([], TRUTH) == []
    rewards.load("visionreasoner", segmenter=segmenter).score_group(_rollouts(5), TRUTH)
    assert segmenter.embeddings == 0  # box-and-point rewards never segment


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["bbox_2d", "point_2d", "label", "bbox", "points_1", "points_2", "x"]), children, max_size=4),
    max_leaves=20)


def _json_text(value) -> str:  # noqa: ANN001
    return json.dumps(value, allow_nan=True)


_TEXTS = st.one_of(
    st.text(max_size=300),
    st.builds(lambda think, body: f"<think>{think}</think><answer>{body}</answer>", st.text(max_size=40),
              _JSONISH.map(_json_text)),
    st.builds(lambda body: f"<answer>{body}</answer>", st.text(alphabet="[]{},:\"0123456789.-eE bboxpint_2dlae", max_size=80)),
    st.builds(lambda n: "<think>t</think><answer>" + json.dumps(
        [{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3], "label": "x"}] * n) + "</answer>", st.integers(0, 400)),
)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_TEXTS, min_size=1, max_size=4))
def test_any_text_scores_within_bounds_and_never_raises(preset: str, texts: list[str]) -> None:
    reward = rewards.load(preset, segmenter="box")
    low, high = PRESETS[preset].bounds
    for result in reward.score_group(texts, TRUTH):
        assert low <= result.total <= high
        assert all(np.isfinite(v) for v in result.terms.values())


def test_non_text_completions_score_zero_with_a_reason() -> None:
    reward = rewards.load("star-stage1", segmenter="box")
    for bad in (None, 12, b"bytes", {"role": "user", "content": "hi"}, [1, 2]):
        result = reward.score(bad, TRUTH)
        assert result.total == 0.0 and "not text" in result.reason


def test_ten_thousand_objects_are_capped() -> None:
    obj = {"label": "x", "bbox_2d": [10, 8, 39, 23], "point_2d": [20, 10]}
    text = "<think>t</think><answer>" + json.dumps([obj] * 10_000) + "</answer>"
    result = rewards.load("star-stage1", segmenter="box").score(text, TRUTH)
    # 120 objects read; the one matching A earns 8 (mask IoU 1, box, L1, point) / max(120, 2)
    assert result.terms["accuracy"] == pytest.approx(8 / 120)


def test_conversational_completion() -> None:
    reward = rewards.load("star-stage1", segmenter="box")
    text = _rollouts(1)[0]
    plain = reward.score(text, TRUTH)
    assert reward.score([{"role": "assistant", "content": text}], TRUTH) == plain
    assert reward.score([{"role": "assistant", "content": [{"type": "text", "text": text}]}], TRUTH) == plain


@settings(max_examples=40, deadline=None)
@given(shape=st.tuples(st.integers(1, 12), st.integers(1, 12)), n=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_encode_truth_round_trips(shape: tuple[int, int], n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = [rng.random(shape) < 0.4 for _ in range(n)]
    kept = [m for m in masks if m.any()]
    truth = rewards.as_truth(rewards.encode_truth(masks, size=list(shape)))
    assert truth.size == shape and len(truth) == len(kept)
    for got, want in zip(truth.masks, kept):
        assert np.array_equal(got, want)
    for box, want in zip(truth.boxes, kept):
        ys, xs = np.nonzero(want)
        assert box == (xs.min(), ys.min(), xs.max(), ys.max())
    for (point,), want in zip(truth.points, kept):
        assert want[int(point[1]), int(point[0])]  # the derived point lies inside its mask


def test_encode_truth_takes_the_truth_mapping_that_score_takes() -> None:
    """encode_truth({"masks": ..., "boxes": ...}) equals encode_truth(masks, boxes=...), and mixing the two
    forms is refused rather than silently dropping one."""
    import numpy as np
    import pytest

    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.rewards import encode_truth

    mask = np.zeros((8, 10), bool)
    mask[2:5, 3:7] = True
    assert encode_truth({"masks": [mask], "boxes": [[3, 2, 6, 4]], "id": "a"}) == \
        encode_truth([mask], boxes=[[3, 2, 6, 4]], id="a")
    with pytest.raises(InvalidInputError, match="not both"):
        encode_truth({"masks": [mask]}, boxes=[[3, 2, 6, 4]])
