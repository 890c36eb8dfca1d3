"""``reasonseg-x data rl-export`` and ``reasonseg-x reward RUN``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonseg_x import masks as rle
from reasonseg_x.cli import app

pytest.importorskip("scipy")
runner = CliRunner()


def test_rl_export_rows_for_trl_and_verl(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    from reasonseg_x import rewards
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.star.answer.prompts import PROMPT_TEMPLATES

    out = tmp_path / "rl"
    result = runner.invoke(app, ["data", "rl-export", "mini", "--split", "test", "--out", str(out), "-n", "4",
                                 "--stage", "2"])
    assert result.exit_code == 0, result.output
    trl = datasets.load_dataset("parquet", data_files=str(out / "trl" / "test.parquet"), split="train")
    verl = datasets.load_dataset("parquet", data_files=str(out / "verl" / "test.parquet"), split="train")
    assert len(trl) == len(verl) == 4
    row = trl[0]
    sample = next(iter(open_source("mini").samples("test")))
    template = PROMPT_TEMPLATES["star_muse_mmr"]  # StAR's stage-2 training wording
    assert row["prompt"] == [{"role": "user", "content": template.text.format(
        Question=sample.query.lower().strip("."), Answer=template.answer_example)}]
    assert row["image"].size == (840, 840)  # an Image column: TRL gets a PIL image
    truth = rewards.as_truth(row["truth"])
    assert truth.size == (840, 840)
    assert len(truth) == (1 if rle.area(sample.target) else 0)
    v = verl[0]
    assert v["prompt"][0]["content"].startswith("<image>\n")
    assert v["reward_model"] == {"style": "rule", "ground_truth": row["truth"]}
    assert v["extra_info"]["id"] == row["id"] == sample.id and len(v["images"]) == 1
    # a second export refuses to overwrite
    again = runner.invoke(app, ["data", "rl-export", "mini", "--split", "test", "--out", str(out), "-n", "1"])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_rl_export_splits_a_solution_into_objects() -> None:
    import numpy as np

    from reasonseg_x import rewards
    from reasonseg_x.data.record import ImageRef, Sample
    from reasonseg_x.rewards.export import sample_truth

    union = np.zeros((420, 840), dtype=bool)
    union[10:50, 20:100] = True
    union[200:300, 400:600] = True
    solution = json.dumps([{"bbox_2d": [20, 20, 99, 99], "point_2d": [50, 60]},
                           {"bbox_2d": [400, 400, 599, 599], "point_2d": [500, 500]}])
    sample = Sample("s", ImageRef(data=b""), "q", 420, 840, rle.encode(union), meta={"solution": solution})
    truth = rewards.as_truth(sample_truth(sample, (420, 840)))
    assert len(truth) == 2
    assert truth.boxes[0] == (20.0, 10.0, 99.0, 49.5)  # the 840 frame scaled to 840 x 420
    assert truth.masks[0].sum() == 40 * 80 and truth.masks[1].sum() == 100 * 200


def _run_with_answers(tmp_path: Path) -> Path:
    """A run folder (eval replaying a predictions file) whose answers are the targets' boxes."""
    from reasonseg_x.data.resolve import open_source

    lines = []
    for k, sample in enumerate(open_source("mini").samples("test")):
        if k >= 6:
            break
        box = rle.bbox(sample.target)
        if box is None:
            text = "<think>nothing there</think><answer>[]</answer>"
        else:
            fx, fy = 840 / sample.width, 840 / sample.height
            x1, y1, x2, y2 = box
            if k % 3 == 2:  # a wrong half of the answers: shifted far away
                x1, x2 = 0, 2
            answer = [{"label": "t", "bbox_2d": [round(x1 * fx), round(y1 * fy), round(x2 * fx), round(y2 * fy)],
                       "point_2d": [round((x1 + x2) / 2 * fx), round((y1 + y2) / 2 * fy)]}]
            text = f"<think>found it</think><answer>{json.dumps(answer)}</answer>"
        good = box is None or k % 3 != 2
        if k == 4:
            text, good = "I cannot answer", False
        mask = sample.target if good else rle.empty(sample.height, sample.width)
        lines.append({"id": sample.id, "mask": mask, "status": "ok", "raw_text": text})
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    run = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--model", f"predictions:{preds}", "-d", "mini", "-s", "test", "-n", "6",
                                 "--out", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    return run


def test_reward_scores_a_runs_answers(tmp_path: Path) -> None:
    run = _run_with_answers(tmp_path)
    result = runner.invoke(app, ["reward", str(run), "--preset", "star-stage1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["answers"] == 6 and report["samples"] == 6
    assert report["unreadable_share"] == pytest.approx(1 / 6)  # "I cannot answer"
    assert set(report["terms"]) >= {"format", "accuracy", "non_repeat", "mask"}
    assert report["reward"]["coords"] == "qwen2.5" and report["reward"]["segmenter"] == "box"
    assert report["correlation_with_iou"] > 0.5  # the answers that earn the reward are the masks that score
    table = runner.invoke(app, ["reward", str(run), "--preset", "metric"])
    assert table.exit_code == 0, table.output
    assert "correlation with IoU" in table.output and "unreadable answers" in table.output


def test_reward_names_a_malformed_prediction_line_instead_of_dropping_it(tmp_path: Path) -> None:
    run = _run_with_answers(tmp_path)
    path = run / "predictions.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = '{"id": "torn", "raw_text": '
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = json.loads(runner.invoke(app, ["reward", str(run), "--preset", "metric", "--json"]).output)
    assert report["samples"] == 5 and report["samples_covered"] == 6 and report["samples_without_answer"] == 1
    assert len(report["unreadable_lines"]) == 1 and "predictions.jsonl:3" in report["unreadable_lines"][0]
    table = runner.invoke(app, ["reward", str(run), "--preset", "metric"])
    assert "1 of 6 samples have no recorded answer text" in table.output
    assert "unreadable prediction line" in table.output and "malformed JSON" in table.output


def test_reward_refuses_a_folder_that_is_no_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["reward", str(tmp_path), "--preset", "metric"])
    assert result.exit_code == 2 and "not a run folder" in result.output


def test_run_answers_reads_every_sampled_answer_of_a_tts_run() -> None:
    from reasonseg_x.predictions import Prediction
    from reasonseg_x.rewards.report import run_answers

    tts = Prediction("a", None, "ok", raw_text="first", meta={"candidates": [
        {"status": "ok", "objects": [], "raw_text": "first"}, {"status": "parse_error", "raw_text": "second"}]})
    assert run_answers(tts) == ["first", "second"]
    # without keep_answers the candidates hold no text: the one recorded answer
    kept = Prediction("b", None, "ok", raw_text="only", meta={"candidates": [{"status": "ok", "objects": []}]})
    assert run_answers(kept) == ["only"]
    assert run_answers(Prediction("c", None, "error")) == []
