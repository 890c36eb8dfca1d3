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
