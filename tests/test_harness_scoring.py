"""The harness's scoring without lmms-eval (reasonseg_x/tasks/harness.py): a document's text becomes
our predictions line and the Evaluator's record; the aggregation equals ``score`` on the same
lines; the predictions reader takes an lmms-eval per-sample log line as it is."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reasonseg_x import masks as rle
from reasonseg_x.star.answer.formats import get_format
from reasonseg_x.tasks.harness import PREDICTION_KEY, HarnessSettings, aggregate, score_answer

H, W = 40, 84  # the 840 frame maps x by / 10 and y by / 21


def _truth(sample_id="a", kind="commonsense"):
    target = np.zeros((H, W), bool)
    target[10:20, 10:30] = True  # 200 pixels
    return {"id": sample_id, "target": rle.encode(target), "ignore": None, "reasoning_type": kind,
            "query_kind": "short", "source": "synth"}


def test_an_answer_becomes_a_box_mask_and_a_record():
    text = '<answer>[{"label": "a", "bbox_2d": [100, 210, 290, 399], "point_2d": [150, 300]}]</answer>'
    out = score_answer(text, _truth(), opts=HarnessSettings(), data="mini", split="test")
    line = out[PREDICTION_KEY]
    assert line["status"] == "ok" and line["meta"] == {
        "format": "star", "prompt": get_format("star").prompt_template, "model_family": "qwen2.5",
        "segmenter": "box", "protocol": "star", "data": "mini", "split": "test"}
    mask = rle.decode(line["mask"])
    # x: int(100 / 10 + .5) = 10 .. int(290 / 10 + .5) = 29; y: 210 / 21 = 10 .. int(399 / 21 + .5) = 19
    expected = np.zeros((H, W), bool)
    expected[10:20, 10:30] = True
    assert np.array_equal(mask, expected)
    assert out["gIoU"] == {"id": "a", "I": 200, "U": 200, "iou": 1.0, "status": "ok",
                           "groups": {"reasoning_type": "commonsense", "query_kind": "short", "source": "synth"},
                           "protocol": "star"}


@pytest.mark.parametrize("text,status", [("no idea", "parse_error"), (None, "parse_error"),
                                         ("<answer>[]</answer>", "no_target"), (["<answer>[]</answer>"], "no_target")])
def test_failures_are_scored_not_raised(text, status):
    out = score_answer(text, _truth(), opts=HarnessSettings())
    assert out[PREDICTION_KEY]["status"] == status and out[PREDICTION_KEY]["mask"] is None
    assert out["gIoU"]["I"] == 0 and out["gIoU"]["U"] == 200 and out["gIoU"]["iou"] == 0.0


def test_other_formats_and_protocols_are_settings():
    opts = HarnessSettings(format="internvl", protocol="visionreasoner")
    out = score_answer("<ref>a</ref><box>[[119, 250, 357, 475]]</box>", _truth(), opts=opts)
    # 0-1000 grid: x 119 * .084 + .5 -> 10, 357 * .084 + .5 -> 30; y 250 * .04 + .5 -> 10, 475 * .04 + .5 -> 19
    assert rle.area(rle.encode(rle.decode(out[PREDICTION_KEY]["mask"]))) == 21 * 10
    assert out["gIoU"]["protocol"] == "visionreasoner"


def test_aggregate_and_score_agree_per_reasoning_type(tmp_path):
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.evaluators.api import score_predictions

    samples = list(open_source("mini").samples("test"))
    lines, records = [], []
    for n, s in enumerate(samples):
        truth = {"id": s.id, "target": s.target, "ignore": s.ignore, "reasoning_type": s.reasoning_type,
                 "query_kind": s.query_kind, "source": s.source}
        text = ["<answer>[]</answer>", "garbage", '[{"bbox_2d": [0, 0, 500, 700]}]',
                '<answer>[{"bbox_2d": [100, 100, 800, 600]}]</answer>'][n % 4]
        out = score_answer(text, truth, opts=HarnessSettings())
        lines.append({"doc_id": n, "resps": [text], PREDICTION_KEY: out[PREDICTION_KEY], "gIoU": out["gIoU"]})
        records.append(out["gIoU"])
    log = tmp_path / "samples.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    metrics = score_predictions(open_source("mini"), "test", log, n_resamples=0).metrics
    assert aggregate(records, "giou") == metrics["overall"]["giou"]
    assert aggregate(records, "ciou") == metrics["overall"]["ciou"]
    for kind, block in metrics["by_reasoning_type"].items():
        assert aggregate(records, "giou", kind) == block["giou"]
        assert aggregate(records, "ciou", kind) == block["ciou"]
    assert np.isnan(aggregate(records, "giou", "no_such_type"))
    # the same log is a submission as it is (the bundle holds the plain predictions lines)
    from reasonseg_x.leaderboard.manifest import manifest_from_source
    from reasonseg_x.leaderboard.submission import build_submission

    _, info = build_submission(log, manifest_from_source(open_source("mini"), "test"), model_name="m",
                               out=tmp_path / "bundle")
    bundled = [json.loads(x) for x in (tmp_path / "bundle" / "predictions.jsonl").read_text().splitlines()]
    assert len(bundled) == 48 and all("doc_id" not in line for line in bundled)


def test_harness_origin_names_the_data(tmp_path):
    from reasonseg_x.predictions import harness_origin

    out = score_answer("x", _truth(), opts=HarnessSettings(), data="reasonseg-x", split="val")
    log = tmp_path / "s.jsonl"
    log.write_text(json.dumps({"doc_id": 0, PREDICTION_KEY: out[PREDICTION_KEY]}) + "\n")
    assert harness_origin(log) == {"data": "reasonseg-x", "split": "val", "protocol": "star", "format": "star"}
    plain = tmp_path / "p.jsonl"
    plain.write_text(json.dumps(out[PREDICTION_KEY]) + "\n")
    assert harness_origin(plain) is None


def test_submit_takes_the_answer_format_from_the_log(tmp_path):
    from reasonseg_x.leaderboard.runmeta import meta_from_run

    out = score_answer("x", _truth(), opts=HarnessSettings(format="qwen2.5-native"), data="mini", split="test")
    log = tmp_path / "s.jsonl"
    log.write_text(json.dumps({"doc_id": 0, PREDICTION_KEY: out[PREDICTION_KEY]}) + "\n")
    assert meta_from_run(log) == {"meta": {"answer_format": "qwen2.5-native"}}
    plain = tmp_path / "p.jsonl"
    plain.write_text(json.dumps(out[PREDICTION_KEY]) + "\n")
    assert meta_from_run(plain) == {}


@pytest.mark.parametrize("model,fmt,family", [("qwen2_5_vl", "qwen2.5-native", "qwen2.5"),
                                              ("qwen3_vl", "qwen3-native", "qwen3"),
                                              ("internvl3", "internvl", "qwen2.5"), ("openai", "plain-boxes", "qwen2.5"),
                                              ("qwen2_vl", "star", "qwen2"), ("llava_hf", "star", "qwen2.5"),
                                              (None, "star", "qwen2.5")])
def test_settings_follow_the_lmms_eval_model(model, fmt, family, monkeypatch):
    from reasonseg_x.tasks.harness import settings

    for name in ("REASONSEG_X_FORMAT", "REASONSEG_X_MODEL_FAMILY"):
        monkeypatch.delenv(name, raising=False)
    opts = settings(model)
    assert (opts.format, opts.model_family, opts.model) == (fmt, family, model)
    assert opts.format_source == ("default" if fmt == "star" else "formats.yaml")
    monkeypatch.setenv("REASONSEG_X_FORMAT", "plain-boxes")
    monkeypatch.setenv("REASONSEG_X_MODEL_FAMILY", "qwen3")
    opts = settings(model)
    assert (opts.format, opts.model_family, opts.format_source) == ("plain-boxes", "qwen3", "REASONSEG_X_FORMAT")
