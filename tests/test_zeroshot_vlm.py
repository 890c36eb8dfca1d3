"""``reasonseg-x eval --model vlm`` end to end on the tiny random Qwen2.5-VL and Qwen3-VL, in each
answer format: the real CLI, registry, fast engine, parser and ``box`` segmenter; answers are
scripted through the real ``generate()`` (a logits processor forces the text)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
typer_testing = pytest.importorskip("typer.testing")

from _star_tiny import build_tokenizer, scripted, tiny_checkpoints  # noqa: E402

from reasonseg_x import masks as rle  # noqa: E402

#: an answer per format naming the top-left quarter of the image (pixels of the 840 frame or 0-1000 grid)
QUARTER = {
    "qwen2.5-native": '```json\n[{"bbox_2d": [0, 0, 420, 420], "label": "thing"}]\n```',
    "qwen3-native": '[{"bbox_2d": [0, 0, 500, 500], "label": "thing"}]',
    "internvl": "<ref>thing</ref><box>[[0, 0, 500, 500]]</box>",
    "plain-boxes": "[[0, 0, 420, 420]]",
    "star": '<think>t</think><answer>[{"label": "thing", "bbox_2d": [0, 0, 420, 420], "point_2d": [1, 1]}]</answer>',
}


def _eval(tmp_path, monkeypatch, checkpoint, fmt, answer):
    from reasonseg_x.baselines import zeroshot
    from reasonseg_x.cli import app

    original = zeroshot.ZeroShotVlmPredictor.__dict__.get("_unscripted_init", zeroshot.ZeroShotVlmPredictor.__init__)
    monkeypatch.setattr(zeroshot.ZeroShotVlmPredictor, "_unscripted_init", original, raising=False)

    def with_script(self, *args, **kwargs):
        original(self, *args, logits_processor=scripted(build_tokenizer(), [answer]), **kwargs)

    monkeypatch.setattr(zeroshot.ZeroShotVlmPredictor, "__init__", with_script)
    out = tmp_path / f"run-{fmt}"
    result = typer_testing.CliRunner().invoke(app, [
        "eval", "--model", "vlm", "-a", f"checkpoint={checkpoint}", "-a", f"format={fmt}", "-a", "segmenter=box",
        "-a", "device=cpu", "-a", "max_new_tokens=120", "-d", "synth:2:3", "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out


@pytest.mark.parametrize("family", ["qwen25", "qwen3"])
def test_eval_vlm_in_each_format(tmp_path, monkeypatch, family):
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.star.answer.formats import get_format

    checkpoint = getattr(tiny_checkpoints(), family)
    sizes = {s.id: (s.height, s.width) for s in open_source("synth:2:3").samples(None)}
    for fmt, answer in QUARTER.items():
        if fmt == "star" and family == "qwen3":
            continue  # StAR's frame on Qwen3 is the 0-999 grid rule, covered by test_answer_formats
        out = _eval(tmp_path, monkeypatch, checkpoint, fmt, answer)
        lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        assert len(lines) == 2
        for line in lines:
            assert line["status"] == "ok", (fmt, line)
            h, w = sizes[line["id"]]
            expected = np.zeros((h, w), bool)
            expected[: int(h / 2 + 0.5) + 1, : int(w / 2 + 0.5) + 1] = True  # inclusive corners
            assert np.array_equal(rle.decode(line["mask"]), expected), fmt
        run = (out / "run.json").read_text()
        assert f'"format": "{fmt}"' in run and '"zero_shot": true' in run
        assert json.dumps(get_format(fmt).prompt_template)[1:40] in run  # the prompt is recorded


def test_random_answers_are_parse_errors_not_crashes(tmp_path):
    from reasonseg_x.cli import app

    out = tmp_path / "random"
    result = typer_testing.CliRunner().invoke(app, [
        "eval", "--model", "vlm", "-a", f"checkpoint={tiny_checkpoints().qwen3}", "-a", "format=internvl",
        "-a", "segmenter=box", "-a", "device=cpu", "-a", "max_new_tokens=6", "-d", "synth:2", "-o", str(out),
        "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    statuses = {json.loads(line)["status"] for line in (out / "predictions.jsonl").read_text().splitlines()}
    assert statuses == {"parse_error"}


def test_unknown_format_fails_before_loading(tmp_path):
    from reasonseg_x.cli import app

    result = typer_testing.CliRunner().invoke(app, [
        "eval", "--model", "vlm", "-a", "checkpoint=/nonexistent", "-a", "format=nope", "-d", "synth:1",
        "-o", str(tmp_path / "x"), "--quiet"])
    assert result.exit_code != 0
    assert "unknown answer format 'nope'" in result.output


@pytest.mark.parametrize("fmt,coords,refused", [("internvl", "pixels", True), ("plain-boxes", "grid1000", True),
                                                ("qwen2.5-native", "grid1000", True), ("star", "pixels", False),
                                                ("auto", "grid1000", False), ("internvl", "auto", False)])
def test_coords_is_refused_where_the_format_fixes_the_frame(fmt, coords, refused):
    """A fixed-frame format ignores -a coords: accepting it would let a user believe it was applied."""
    from reasonseg_x.baselines.zeroshot import ZeroShotOptions
    from reasonseg_x.errors import InvalidInputError

    if refused:
        with pytest.raises(InvalidInputError, match=rf"coords={coords} has no effect with format={fmt}"):
            ZeroShotOptions(format=fmt, coords=coords)
    else:
        assert ZeroShotOptions(format=fmt, coords=coords).coords == coords


def test_the_harness_segments_with_a_sam_when_asked():
    """REASONSEG_X_SEGMENTER names any SAM (here the tiny SAM 2 folder); without the image the
    sample is an ``error``, not a crash."""
    from _star_tiny import random_image

    from reasonseg_x.tasks.harness import PREDICTION_KEY, HarnessSettings, score_answer

    target = np.zeros((40, 84), bool)
    target[10:20, 10:30] = True
    truth = {"id": "a", "target": rle.encode(target), "ignore": None, "reasoning_type": "commonsense"}
    opts = HarnessSettings(segmenter=str(tiny_checkpoints().sam2), segmenter_device="cpu")
    text = '<answer>[{"bbox_2d": [100, 210, 290, 399], "point_2d": [150, 300]}]</answer>'
    line = score_answer(text, truth, image=random_image(84, 40), opts=opts)[PREDICTION_KEY]
    assert line["status"] == "ok" and line["mask"]["size"] == [40, 84] and line["meta"]["segmenter"] == opts.segmenter
    failed = score_answer(text, truth, image=None, opts=opts)
    assert failed[PREDICTION_KEY]["status"] == "error" and "needs the image" in failed[PREDICTION_KEY]["meta"]["error"]
    assert failed["gIoU"]["status"] == "error" and failed["gIoU"]["U"] == 200
