"""The optional vLLM backend's request building, against a stand-in ``vllm`` module (vLLM itself is
not installed here): sampling parameters, the chat text, the 840 frame, the LoRA request."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

# third-party deprecation noise (peft/transformers/torch.jit), not ours
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

from _star_tiny import tiny_checkpoints  # noqa: E402

ANSWER = '<answer>[{"label": "a", "bbox_2d": [84, 84, 420, 420], "point_2d": [200, 200]}]</answer>'


@dataclass
class FakeSamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    max_tokens: int = 16
    skip_special_tokens: bool = True
    top_k: int | None = None


@dataclass
class FakeLLM:
    model: str
    kwargs: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)

    def __init__(self, model, **kwargs):
        self.model, self.kwargs, self.calls = model, kwargs, []

    def generate(self, inputs, params, lora_request=None, use_tqdm=True):
        self.calls.append((inputs, params, lora_request))
        choice = types.SimpleNamespace(text=ANSWER)
        return [types.SimpleNamespace(outputs=[choice] * params.n) for _ in inputs]


@pytest.fixture()
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = FakeLLM, FakeSamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, idx, path: ("lora", name, idx, path)
    for name, module in {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return vllm


def test_vllm_backend_builds_requests(fake_vllm):
    from _star_tiny import random_image

    from reasonseg_x.star.generation.vllm_backend import load_vllm

    ckpt = tiny_checkpoints()
    vlm = load_vllm(str(ckpt.lora_old))
    assert vlm.llm.model == str(ckpt.qwen25) and vlm.llm.kwargs["enable_lora"] is True
    assert vlm.lora_request == ("lora", "adapter", 1, str(ckpt.lora_old)) and vlm.family == "qwen2.5"
    texts = vlm.generate([random_image(300, 200)], ["find the cat"], n=4, seed=3, max_new_tokens=50)
    assert texts == [[ANSWER] * 4]
    inputs, params, lora = vlm.llm.calls[-1]
    assert (params.n, params.temperature, params.top_p, params.seed, params.max_tokens) == (4, 1.0, 0.9, 3, 50)
    assert inputs[0]["multi_modal_data"]["image"].size == (840, 840)
    assert "find the cat" in inputs[0]["prompt"] and inputs[0]["prompt"].endswith("<|im_start|>assistant\n")
    vlm.generate([random_image(30, 20)], ["x"])
    assert vlm.llm.calls[-1][1].temperature == 0.0 and vlm.llm.calls[-1][1].n == 1  # greedy


def test_star_predictor_runs_on_the_vllm_backend(fake_vllm):
    import io

    from _star_tiny import random_image

    from reasonseg_x.data.record import ImageRef
    from reasonseg_x.predictors.protocol import Query
    from reasonseg_x.star.predictor import StarPredictor

    ckpt = tiny_checkpoints()
    buf = io.BytesIO()
    random_image(168, 84).save(buf, "PNG")
    query = Query(id="v0", image=ImageRef(data=buf.getvalue()), text="a thing", height=84, width=168)
    predictor = StarPredictor(str(ckpt.lora_old), backend="vllm", segmenter=str(ckpt.sam2), device="cpu", tts=3)
    out = predictor.predict([query])[0]
    assert out.status == "ok" and len(out.candidates) == 3
    assert predictor.vlm.llm.calls[-1][1].n == 3
