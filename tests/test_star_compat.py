"""The compatibility probes (reasonseg_x/star/compat.py): the transformers and sam2 internals the fast
engine and the segmenters rely on fit the installed versions; where one breaks, the run falls back
to the reference schedule (or the sam2 package's public predict) and run.json says why."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

from _star_tiny import tiny_checkpoints  # noqa: E402

from reasonseg_x.star import compat  # noqa: E402


def _base_class(vlm):
    return type(vlm.model.get_base_model() if hasattr(vlm.model, "get_base_model") else vlm.model)


def test_the_installed_transformers_fits_the_fast_engine():
    """The pin of the models extra is where this holds: a failure here means the pin moved past
    what the engine was checked on (README: how to move the pin)."""
    from reasonseg_x.star.vlm import load_vlm

    for checkpoint in (tiny_checkpoints().lora_old, tiny_checkpoints().qwen3):
        vlm = load_vlm(str(checkpoint), device="cpu")
        assert compat.fast_engine_unsupported(vlm.model) is None
        assert compat.rope_owner(vlm.model) is not None


def _hide_logits_to_keep(monkeypatch, vlm) -> None:
    """The model's forward keeps working but no longer declares ``logits_to_keep`` (as when
    transformers renames an argument): ``generate`` stops passing it, the fast engine cannot."""
    import inspect

    cls = _base_class(vlm)
    original = cls.forward
    signature = inspect.signature(original)

    def forward(self, *args, **kwargs):
        return original(self, *args, **kwargs)

    forward.__signature__ = signature.replace(
        parameters=[p for name, p in signature.parameters.items() if name != "logits_to_keep"])
    monkeypatch.setattr(cls, "forward", forward)


def test_a_broken_internal_falls_back_to_the_reference_schedule_and_run_json_says_why(tmp_path, monkeypatch):
    from reasonseg_x.runner.evaluate import EvalConfig, run_eval
    from reasonseg_x.star.vlm import load_vlm

    _hide_logits_to_keep(monkeypatch, load_vlm(str(tiny_checkpoints().lora_old), device="cpu"))
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="does not fit the installed transformers"):
        run_eval(EvalConfig(model="_star_tiny:SampledStarPredictor", model_args={"tts": 2}, data="synth:3",
                            out=out, batch_size=3, score=False))
    session = json.loads((out / "run.json").read_text())["sessions"][-1]["predictor"]
    assert session["generation"] == "reference" and session["generation_requested"] == "fast"
    assert "logits_to_keep" in session["generation_fallback"]
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(line["status"] != "error" for line in lines)
    assert all(len(line["meta"]["candidates"]) == 2 for line in lines)  # tts=2 answers each, from generate()


def test_the_probe_names_each_broken_internal(monkeypatch):
    from reasonseg_x.star.vlm import load_vlm

    vlm = load_vlm(str(tiny_checkpoints().lora_old), device="cpu")
    owner = compat.rope_owner(vlm.model)
    monkeypatch.delattr(owner, "rope_deltas")  # the state the decode positions come from
    assert "get_rope_index" in compat.fast_engine_unsupported(vlm.model)


def test_the_sam2_package_without_its_internals_decodes_through_predict(monkeypatch):
    """A sam2 release without a private attribute the batched decode reads: the segmenter says so
    (the pipeline's run.json record carries it) and decodes through the package's public predict(),
    which gives the batched decode's masks."""
    pytest.importorskip("sam2")
    import numpy as np
    from _openai_server import ScriptedVLM
    from _star_tiny import build_sam2_package_model, random_image
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from reasonseg_x.star.predictor import StarPredictor
    from reasonseg_x.star.segment.segmenters import Prompt, Sam2PackageSegmenter

    model = build_sam2_package_model()
    segmenter = Sam2PackageSegmenter(model=model)
    assert segmenter.fallback is None
    image = random_image(96, 64, seed=3)
    prompts = [Prompt(box=(10.0, 8.0, 60.0, 50.0), points=((30.0, 30.0),)), Prompt(box=(0.0, 0.0, 90.0, 60.0))]
    segmenter.set_image(image)
    batched = [segmenter.segment([p]) for p in prompts]
    segmenter.fallback = "forced"  # the public path on the same predictor
    segmenter.set_image(image)
    for prompt, (masks, scores) in zip(prompts, batched):
        public_masks, public_scores = segmenter.segment([prompt])
        np.testing.assert_allclose(public_scores, scores, rtol=1e-4, atol=1e-5)
        assert public_masks.shape == masks.shape == (1, 64, 96) and (public_masks != masks).mean() < 0.01

    monkeypatch.delattr(SAM2ImagePredictor, "_prep_prompts")
    with pytest.warns(UserWarning, match="_prep_prompts"):
        broken = Sam2PackageSegmenter(model=model)
    assert "_prep_prompts" in broken.fallback
    star = StarPredictor("unused", vlm=ScriptedVLM(), segmenter=broken, device="cpu")
    assert "_prep_prompts" in star.run_info()["segmenter_fallback"]
