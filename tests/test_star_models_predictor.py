"""The StAR predictor and the baseline adapters end to end on tiny models: scripted answers drive
the real ``generate()``; unscripted (random) output exercises the failure path."""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

# third-party deprecation noise (peft/transformers/torch.jit), not ours
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
pytest.importorskip("peft")

from _star_tiny import random_image, scripted  # noqa: E402

from reasonseg_x import masks as rle  # noqa: E402
from reasonseg_x.data.record import GroundTruth, ImageRef  # noqa: E402
from reasonseg_x.predictors.protocol import Output, Predictor, Query  # noqa: E402

CAT = ('<think>a cat</think><answer>[{"label": "cat", "bbox_2d": [100, 200, 400, 500], "point_2d": [250, 350]}, '
       '{"label": "dog", "bbox_2d": [-50, 0, 2000, 900], "point_2d": [10, 10]}]</answer>')
ONE = '<answer>[{"label": "cat", "bbox_2d": [100, 200, 400, 500], "point_2d": [250, 350]}]</answer>'
NONE = "<think>nothing</think><answer>[]</answer>"
BROKEN = "<answer>[{'bbox_2d': [1, 2, 3</answer> and then some"
GARBAGE = "I cannot help with that."


def make_query(i: int, width: int, height: int, text: str = "the animal that purrs?", gt: np.ndarray | None = None) -> Query:
    buf = io.BytesIO()
    random_image(width, height, seed=i).save(buf, "PNG")
    truth = None
    if gt is not None:
        truth = GroundTruth(f"q{i}", height, width, rle.encode(gt))
    return Query(id=f"q{i}", image=ImageRef(data=buf.getvalue(), where=f"q{i}"), text=text, height=height,
                 width=width, ground_truth=truth)




def star(vlm, sam, texts=None, **kwargs):
    from reasonseg_x.star.predictor import StarPredictor

    processor = scripted(vlm.tokenizer, texts) if texts else None
    return StarPredictor("unused", vlm=vlm, segmenter=sam, logits_processor=processor, **kwargs)


def _decode(output: Output, query: Query) -> np.ndarray:
    assert output.mask is not None
    rle.validate_rle(output.mask, expected_size=(query.height, query.width))
    return rle.decode(output.mask)


def test_greedy_statuses_mixed_sizes_and_clipping(vlm, sam):
    predictor = star(vlm, sam, [CAT, NONE, GARBAGE])
    assert isinstance(predictor, Predictor) and predictor.needs_ground_truth is False
    queries = [make_query(0, 300, 200), make_query(1, 120, 333), make_query(2, 64, 64)]
    out = predictor.predict(queries)
    assert [o.status for o in out] == ["ok", "no_target", "parse_error"]
    mask = _decode(out[0], queries[0])
    assert mask.any()
    # the second object's box [-50, 0, 2000, 900] in the 840 frame is clipped to the image
    assert out[0].boxes[1] == [0.0, 0.0, 300.0, 200.0]
    assert out[0].boxes[0] == [36.0, 48.0, 143.0, 119.0]  # x * 300/840, y * 200/840, half up
    assert out[0].raw_text == CAT and out[2].raw_text == GARBAGE
    assert out[1].mask is None and out[2].mask is None
    assert [c["label"] for c in out[0].candidates[0]["objects"]] == ["cat", "dog"]
    for o in out:
        assert set(o.timings) >= {"generate_s", "segment_s"}


def test_single_answer_mask_is_the_union_of_its_objects(vlm, sam):
    queries = [make_query(5, 256, 192)]
    both = _decode(star(vlm, sam, [CAT]).predict(queries)[0], queries[0])
    first = _decode(star(vlm, sam, [ONE]).predict(queries)[0], queries[0])
    assert np.array_equal(both | first, both)


def test_repairable_and_broken_answers(vlm, sam):
    out = star(vlm, sam, [BROKEN]).predict([make_query(6, 100, 90)])[0]
    assert out.status in ("ok", "parse_error")  # the parser may repair the unclosed array
    assert out.raw_text == BROKEN


def test_unscripted_random_output_is_a_parse_error_not_a_crash(vlm, sam):
    out = star(vlm, sam, max_new_tokens=12).predict([make_query(7, 80, 60), make_query(8, 333, 111)])
    assert [o.status for o in out] == ["parse_error", "parse_error"]
    assert all(isinstance(o.raw_text, str) for o in out)


def test_majority_vote_over_sampled_answers(vlm, sam):
    from reasonseg_x.tts import majority_vote

    queries = [make_query(9, 210, 140), make_query(10, 140, 210)]
    texts = [CAT, CAT, NONE, GARBAGE, ONE, CAT]
    out = star(vlm, sam, texts, tts=6).predict(queries)
    for o, q in zip(out, queries):
        assert o.status == "ok"
        assert [c["status"] for c in o.candidates] == ["ok", "ok", "no_target", "parse_error", "ok", "ok"]
        assert [c["raw_text"] for c in o.candidates] == texts
        # the same vote recomputed from single answers
        singles = []
        for text in texts:
            single = star(vlm, sam, [text]).predict([q])[0]
            if single.status == "parse_error":
                singles.append(None)
            elif single.status == "no_target":
                singles.append([])
            else:
                objs = single.candidates[0]["objects"]
                sam.set_image(q.image.open())
                from reasonseg_x.star.segment.segmenters import Prompt

                m, s = sam.segment([Prompt(tuple(ob["bbox"]), tuple(map(tuple, ob["points"]))) for ob in objs])
                singles.append([(m[k], float(s[k]), objs[k]["label"]) for k in range(len(objs))])
        expected = majority_vote(singles, (q.height, q.width))
        assert np.array_equal(_decode(o, q), expected)


def test_majority_of_no_target_votes(vlm, sam):
    out = star(vlm, sam, [NONE, NONE, ONE, GARBAGE], tts=4).predict([make_query(11, 90, 90)])[0]
    assert out.status == "no_target" and out.mask is None
    out = star(vlm, sam, [GARBAGE], tts=3).predict([make_query(12, 90, 90)])[0]
    assert out.status == "parse_error"


def test_other_aggregator_by_name(vlm, sam):
    out = star(vlm, sam, [CAT, ONE, CAT], tts=3, aggregator="pixel_vote").predict([make_query(13, 120, 100)])[0]
    assert out.status == "ok" and out.mask is not None


def test_sampling_is_seeded_per_query_not_per_batch(vlm, sam):
    queries = [make_query(14, 64, 64), make_query(15, 64, 80)]
    predictor = star(vlm, sam, tts=2, max_new_tokens=5, keep_answers=True)
    together = predictor.predict(queries)
    alone = predictor.predict(queries[1:])
    assert [c["raw_text"] for c in together[1].candidates] == [c["raw_text"] for c in alone[0].candidates]


def test_greedy_batching_does_not_change_answers(vlm, sam):
    queries = [make_query(16, 64, 64, "x"), make_query(17, 96, 64, "a much longer query about the scene")]
    batched = star(vlm, sam, max_new_tokens=6, batch_size=2).predict(queries)
    single = star(vlm, sam, max_new_tokens=6, batch_size=1).predict(queries)
    assert [o.raw_text for o in batched] == [o.raw_text for o in single]


def test_corrupt_image_is_an_error_output(vlm, sam):
    bad = Query(id="bad", image=ImageRef(data=b"not an image", where="bad.jpg"), text="x", height=10, width=10)
    out = star(vlm, sam, [ONE]).predict([bad, make_query(18, 50, 40)])
    assert out[0].status == "error" and "bad.jpg" in out[0].error
    assert out[1].status == "ok"


def test_record_size_differs_from_image_size(vlm, sam):
    query = make_query(19, 100, 80)
    query = Query(id=query.id, image=query.image, text=query.text, height=160, width=200)
    out = star(vlm, sam, [ONE]).predict([query])[0]
    assert out.mask["size"] == [160, 200]


def test_qwen3_checkpoint_runs(ckpt, sam):
    from reasonseg_x.star.predictor import StarPredictor
    from reasonseg_x.star.vlm import load_vlm

    vlm3 = load_vlm(str(ckpt.lora_qwen3), device="cpu")
    grid = '<answer>[{"label": "a", "bbox_2d": [0, 0, 999, 999], "point_2d": [500, 500]}]</answer>'
    predictor = StarPredictor("unused", vlm=vlm3, segmenter=sam, logits_processor=scripted(vlm3.tokenizer, [grid]))
    out = predictor.predict([make_query(20, 150, 100)])[0]
    assert out.status == "ok" and out.boxes == [[0.0, 0.0, 149.0, 99.0]]


def test_predictor_loads_checkpoint_and_segmenter_by_name(ckpt):
    from reasonseg_x.star.predictor import StarPredictor

    predictor = StarPredictor(str(ckpt.lora_old), segmenter=str(ckpt.sam), device="cpu", max_new_tokens=4)
    assert predictor.vlm.adapter == str(ckpt.lora_old)
    out = predictor.predict([make_query(21, 40, 30)])
    assert out[0].status == "parse_error"


def test_visionreasoner_and_segzero_adapters(vlm, sam):
    from reasonseg_x.baselines.segzero import SegZeroPredictor
    from reasonseg_x.baselines.visionreasoner import VisionReasonerPredictor

    vr_text = '<think>t</think><answer>[{"bbox_2d": [10, 10, 420, 420], "point_2d": [200, 200]}]</answer>'
    vr = VisionReasonerPredictor("unused", vlm=vlm, segmenter=sam, logits_processor=scripted(vlm.tokenizer, [vr_text]))
    assert vr.max_new_tokens == 2048 and vr.style == "visionreasoner"
    out = vr.predict([make_query(22, 168, 84)])[0]
    assert out.status == "ok" and out.boxes == [[2.0, 1.0, 84.0, 42.0]]
    sz_text = "<think>t</think><answer>{'bbox': [10, 10, 420, 420], 'points_1': [100, 100], 'points_2': [300, 300]}</answer>"
    sz = SegZeroPredictor("unused", vlm=vlm, segmenter=sam, logits_processor=scripted(vlm.tokenizer, [sz_text]))
    out = sz.predict([make_query(23, 168, 84)])[0]
    assert out.status == "ok" and out.points == [[20.0, 10.0], [60.0, 30.0]]


def test_gt_box_sam_prompts_the_ground_truth_box(ckpt):
    from reasonseg_x.baselines.gt_box_sam import GtBoxSamPredictor, target_prompts

    gt = np.zeros((60, 80), bool)
    gt[10:30, 20:50] = True
    gt[40:55, 5:15] = True
    [single] = target_prompts(gt)
    assert single.box == (5.0, 10.0, 49.0, 54.0) and single.points == ((27.0, 32.0),)
    parts = target_prompts(gt, per_component=True, point="inside")
    assert [p.box for p in parts] == [(20.0, 10.0, 49.0, 29.0), (5.0, 40.0, 14.0, 54.0)]
    assert all(gt[int(y), int(x)] for p in parts for x, y in p.points)
    predictor = GtBoxSamPredictor(str(ckpt.sam2), device="cpu")
    assert predictor.needs_ground_truth is True
    empty = np.zeros((60, 80), bool)
    out = predictor.predict([make_query(24, 80, 60, gt=gt), make_query(25, 80, 60, gt=empty)])
    assert out[0].status == "ok" and out[0].boxes == [[5.0, 10.0, 49.0, 54.0]]
    assert rle.decode(out[0].mask).shape == (60, 80)
    assert out[1].status == "no_target"
    from reasonseg_x.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="ground truth"):
        predictor.predict([make_query(26, 80, 60)])


def test_extreme_image_sizes(vlm, sam):
    queries = [make_query(27, 1, 1), make_query(28, 5, 900), make_query(29, 1200, 3)]
    out = star(vlm, sam, [CAT]).predict(queries)
    for o, q in zip(out, queries):
        assert o.status == "ok"
        assert _decode(o, q).shape == (q.height, q.width)


def test_answers_without_a_block_vote_no_object_as_in_star(vlm, sam):
    # StAR's vote counts a sampled output with no <answer> block as a "no object" vote:
    # two such votes out of three valid runs reach the 0.5 no-object threshold
    out = star(vlm, sam, [GARBAGE, GARBAGE, ONE], tts=3).predict([make_query(14, 90, 90)])[0]
    assert out.status == "no_target" and out.mask is None
    # a single greedy answer without a block is a parse error, not a "no target"
    single = star(vlm, sam, [GARBAGE]).predict([make_query(15, 90, 90)])[0]
    assert single.status == "parse_error"


def test_a_segmenter_typo_fails_before_the_vlm_loads(tmp_path):
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.star.predictor import StarPredictor

    with pytest.raises(InvalidInputError, match="unknown segmenter 'sam2.1-hiera-larg'"):
        StarPredictor(str(tmp_path / "never-loaded"), segmenter="sam2.1-hiera-larg", device="cpu")


@pytest.mark.parametrize("arg, match", [({"temperature": float("nan")}, "temperature"), ({"top_p": 5.0}, "top_p"),
                                        ({"device": "tpu"}, "unknown device"), ({"dtype": "fp8"}, "unknown dtype"),
                                        ({"max_new_tokens": 0}, "max_new_tokens"),
                                        ({"mask_iou_cluster_threshold": 1.5}, "mask_iou_cluster_threshold"),
                                        ({"cluster_agg_mode": "bestt"}, "cluster_agg_mode")])
def test_bad_model_arguments_fail_before_anything_loads(tmp_path, arg, match):
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.star.predictor import StarPredictor

    with pytest.raises(InvalidInputError, match=match):
        StarPredictor(str(tmp_path / "never-loaded"), **{"device": "cpu", **arg})


def test_vote_clusters_are_recorded_for_the_viewer(vlm, sam):
    """Each sampled answer says which clusters its objects joined and whether the vote kept one;
    the output's meta holds the vote's decision and cluster tallies (what `show` displays)."""
    out = star(vlm, sam, [CAT, CAT, ONE, GARBAGE], tts=4).predict([make_query(15, 120, 100)])[0]
    vote = out.meta["vote"]
    assert vote["decision"] == "clusters" and vote["k"] >= 1
    assert sum(c["kept"] for c in vote["clusters"]) >= 1
    answers = out.candidates
    assert answers[3]["kept"] is False and "cluster" not in answers[3]  # unreadable: no vote
    for answer in answers[:3]:
        assert isinstance(answer["cluster"], str) and isinstance(answer["kept"], bool)
        assert all("cluster" in obj for obj in answer["objects"])
    kept = {i for i, c in enumerate(vote["clusters"]) if c["kept"]}
    assert any(int(c) in kept for c in answers[0]["cluster"].split(",")) == answers[0]["kept"]


def test_inherited_top_k_of_one_is_flagged_for_sampled_answers(vlm, sam):
    """Qwen2.5-VL-Instruct's generation config sets top_k=1: N sampled answers would all be greedy.
    The pipeline warns and records it, unless top_k is given."""
    import copy

    flat = copy.copy(vlm)
    flat.info = {**vlm.info, "generation_config": {**(vlm.info.get("generation_config") or {}), "top_k": 1}}
    with pytest.warns(UserWarning, match="top_k=1"):
        predictor = star(flat, sam, [CAT], tts=3)
    assert "top_k=1" in predictor.run_info()["sampling_warning"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "sampling_warning" not in star(flat, sam, [CAT], tts=3, top_k=50).run_info()
        assert "sampling_warning" not in star(flat, sam, [CAT], tts=1).run_info()
