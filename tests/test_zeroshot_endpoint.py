"""``eval --model vlm -a backend=openai -a format=...``: an API model asked in a plain format
through the endpoint backend (a real local HTTP server), boxes segmented by ``box``, no torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("httpx")

from _openai_server import ScriptedOpenAIServer  # noqa: E402

from reasonseg_x import masks as rle  # noqa: E402
from reasonseg_x.runner.evaluate import EvalConfig, run_eval  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("fmt,answer", [("plain-boxes", "Sure: [[0, 0, 420, 420]]"),
                                        ("qwen3-native", '```json\n[{"bbox_2d": [0, 0, 500, 500]}]\n```')])
def test_endpoint_in_a_zero_shot_format(tmp_path, monkeypatch, fmt, answer):
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.star.answer.formats import get_format

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    prompts: list[str] = []

    def reply(prompt: str, seed: int | None) -> str:
        prompts.append(prompt)
        return answer

    with ScriptedOpenAIServer(answer=reply) as server:
        run_eval(EvalConfig(model="vlm", out=tmp_path / "run", data="synth:3:5", model_args={
            "backend": "openai", "base_url": server.url, "format": fmt, "segmenter": "box"}))
    assert server.problems == []
    fmt_obj = get_format(fmt)
    sizes = {s.id: (s.height, s.width) for s in open_source("synth:3:5").samples(None)}
    assert sorted(prompts) == sorted(fmt_obj.build_prompt(s.query) for s in open_source("synth:3:5").samples(None))
    lines = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    for line in lines:
        h, w = sizes[line["id"]]
        expected = np.zeros((h, w), bool)
        expected[: int(h / 2 + 0.5) + 1, : int(w / 2 + 0.5) + 1] = True
        assert line["status"] == "ok" and np.array_equal(rle.decode(line["mask"]), expected)
    session = json.loads((tmp_path / "run" / "run.json").read_text())["sessions"][-1]
    assert session["predictor"]["answer_format"]["name"] == fmt
    assert session["predictor"]["answer_format"]["prompt"] == fmt_obj.prompt_template
    assert session["predictor"]["zero_shot"] is True


def test_the_leaderboard_row_says_zero_shot_and_the_format(tmp_path, monkeypatch):
    """submit reads the format from run.json; the host's board shows it beside the model."""
    from _leaderboard_helpers import FakeSource

    from reasonseg_x.leaderboard.host import GroundTruthContext, score_bundles
    from reasonseg_x.leaderboard.manifest import manifest_from_source
    from reasonseg_x.leaderboard.runmeta import meta_from_run
    from reasonseg_x.leaderboard.site import board_data
    from reasonseg_x.leaderboard.store import LeaderboardStore
    from reasonseg_x.leaderboard.submission import build_submission

    source = FakeSource(n=4)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ScriptedOpenAIServer(answer=lambda prompt, seed: "[[0, 0, 420, 420]]", check_images=False) as server:
        run_eval(EvalConfig(model="vlm", out=tmp_path / "run", data="synth:4", model_args={
            "backend": "openai", "base_url": server.url, "format": "plain-boxes", "segmenter": "box"}))
    meta = meta_from_run(tmp_path / "run" / "predictions.jsonl")
    assert meta["meta"]["answer_format"] == "plain-boxes" and meta["meta"]["zero_shot"] is True
    # the same metadata on a bundle of the fake source's predictions (ids must match its manifest)
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": gt.id, "mask": gt.target, "status": "ok"}) + "\n"
                             for gt in source.ground_truth("test")))
    bundle, _ = build_submission(preds, manifest_from_source(source, "test"), model_name="GPT-x",
                                 out=tmp_path / "bundle", meta=meta)
    with LeaderboardStore(tmp_path / "board.sqlite") as store:
        assert score_bundles([bundle], GroundTruthContext.load(source), store)[0].status == "verified"
        rows = [e for e in board_data(store, reported=False)["entries"] if e["kind"] == "verified"]
    assert [r["format"] for r in rows] == ["zero-shot, plain-boxes"]
