"""The fast generation engine (reasonseg_x.star.generation.fast) on the tiny Qwen-VL models: one
prefill per query, answers independent of batch composition and of a kill + resume, greedy
tokens equal to ``generate()``'s, the compiled decode step equal to the eager one."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

# third-party deprecation noise (peft/transformers/torch.jit), not ours
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
pytest.importorskip("peft")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import _star_tiny  # noqa: E402
from _star_tiny import random_image  # noqa: E402
from test_star_models_predictor import make_query  # noqa: E402

from reasonseg_x.star.generation.fast import FastGenerator, gumbel_noise, plan_batches, row_keys  # noqa: E402

TEXTS = ["the animal that purrs?", "x", "what holds the water in this kitchen, if anything at all?", "a", "two cups"]




@pytest.fixture(scope="module")
def qwen3(ckpt):
    from reasonseg_x.star.vlm import load_vlm

    return load_vlm(str(ckpt.qwen3), device="cpu")


def star(vlm, sam, **kwargs):
    from reasonseg_x.star.predictor import StarPredictor

    return StarPredictor("unused", vlm=vlm, segmenter=sam, **kwargs)


def _answers(outputs):
    return [[c["raw_text"] for c in o.candidates] for o in outputs]


def _inputs(n: int = 5):
    return [random_image(90 + 13 * i, 70 + 7 * i, seed=i) for i in range(n)], TEXTS[:n]


# ----------------------------------------------------------------------------- counting work

class _Counter:
    """Forward hooks: vision-encoder calls, and prefill rows of the model (calls with > 1 token)."""

    def __init__(self, model) -> None:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        visual = next(m for name, m in base.named_modules() if name.endswith("visual"))
        self.vision_calls = 0
        self.prefill_rows = 0
        self.decode_calls = 0
        self.handles = [visual.register_forward_hook(self._vision), base.register_forward_pre_hook(self._model,
                                                                                                   with_kwargs=True)]

    def _vision(self, module, args, output) -> None:
        self.vision_calls += 1

    def _model(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids")
        if ids.shape[1] > 1:
            self.prefill_rows += ids.shape[0]
        else:
            self.decode_calls += 1

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def test_mv_runs_the_vision_encoder_once_and_prefills_one_row_per_query(vlm, sam):
    queries = [make_query(i, 80 + 10 * i, 60, text=TEXTS[i]) for i in range(3)]
    counter = _Counter(vlm.model)
    try:
        out = star(vlm, sam, tts=4, max_new_tokens=5).predict(queries)
    finally:
        counter.close()
    assert all(len(o.candidates) == 4 for o in out)
    assert counter.vision_calls == 3  # one image each, never repeated for the 4 answers
    assert counter.prefill_rows == 3  # one prompt row per query (generate() would prefill 12)
    # the three queries' 12 rows decode together: 4 forward calls for 5 tokens, not 3 x 4
    assert counter.decode_calls == 4

    counter = _Counter(vlm.model)
    try:
        star(vlm, sam, tts=4, max_new_tokens=5, generation="reference").predict(queries[:1])
    finally:
        counter.close()
    assert counter.prefill_rows == 4  # today's path: num_return_sequences expands the prompt


# ----------------------------------------------------------------------------- independence

def test_sampled_answers_do_not_depend_on_batch_composition(vlm, sam):
    queries = [make_query(i, 80 + 10 * i, 60, text=TEXTS[i]) for i in range(4)]
    packed = star(vlm, sam, tts=3, max_new_tokens=6).predict(queries)
    alone = [star(vlm, sam, tts=3, max_new_tokens=6).predict([q])[0] for q in queries]
    reversed_ = star(vlm, sam, tts=3, max_new_tokens=6, max_batch_rows=6).predict(queries[::-1])[::-1]
    assert _answers(packed) == _answers(alone) == _answers(reversed_)
    assert len({a for answers in _answers(packed) for a in answers}) > 4  # really sampled, not constant


def test_greedy_length_grouped_batch_equals_one_query_at_a_time(vlm, sam):
    queries = [make_query(i, 80 + 10 * i, 60, text=TEXTS[i]) for i in range(5)]
    batched = star(vlm, sam, max_new_tokens=8).predict(queries)
    single = [star(vlm, sam, max_new_tokens=8).predict([q])[0] for q in queries]
    reference = [star(vlm, sam, max_new_tokens=8, generation="reference").predict([q])[0] for q in queries]
    assert [o.raw_text for o in batched] == [o.raw_text for o in single] == [o.raw_text for o in reference]


@pytest.mark.parametrize("which", ["qwen2.5+lora", "qwen3"])
def test_greedy_tokens_equal_generate(vlm, qwen3, which):
    model = vlm if which == "qwen2.5+lora" else qwen3
    images, prompts = _inputs()
    expected = [model.generate([image], [prompt], max_new_tokens=10)[0] for image, prompt in zip(images, prompts)]
    engine = FastGenerator(model, max_batch_rows=3)
    assert engine.generate(images, prompts, max_new_tokens=10) == expected
    assert engine.stats["batches"] == 2 and engine.stats["prefill_rows"] == 5


def test_repetition_penalty_of_the_generation_config_is_applied_like_generate(vlm):
    images, prompts = _inputs(3)
    saved = dict(vlm.info["generation_config"]), vlm.model.generation_config.repetition_penalty
    vlm.info["generation_config"]["repetition_penalty"] = 3.0
    vlm.model.generation_config.repetition_penalty = 3.0
    try:
        expected = [vlm.generate([i], [p], max_new_tokens=12)[0] for i, p in zip(images, prompts)]
        assert FastGenerator(vlm).generate(images, prompts, max_new_tokens=12) == expected
    finally:
        vlm.info["generation_config"], vlm.model.generation_config.repetition_penalty = saved


def test_a_killed_and_resumed_run_gives_the_answers_of_an_uninterrupted_one(tmp_path):
    from reasonseg_x.runner.evaluate import EvalConfig, run_eval

    def config(out, batch):
        return EvalConfig(model="_star_tiny:SampledStarPredictor", model_args={"tts": 3}, data="synth:5",
                          out=out, batch_size=batch, score=False)

    def answers(run):
        lines = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
        return {line["id"]: [c["raw_text"] for c in line["meta"]["candidates"]] for line in lines}

    run_eval(config(tmp_path / "whole", 5))
    _star_tiny.INTERRUPT_AFTER["batches"] = 1
    try:
        with pytest.raises(KeyboardInterrupt):
            run_eval(config(tmp_path / "killed", 2))
    finally:
        _star_tiny.INTERRUPT_AFTER["batches"] = None
    assert len(answers(tmp_path / "killed")) == 2  # one batch was written before the kill
    run_eval(config(tmp_path / "killed", 2))
    assert answers(tmp_path / "killed") == answers(tmp_path / "whole")
    info = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert info["sessions"][-1]["predictor"]["generation"] == "fast"


# ----------------------------------------------------------------------------- compiled decoding

@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler")
def test_compiled_decoding_gives_the_eager_tokens(vlm):
    images, prompts = _inputs(3)
    kwargs = dict(n=2, do_sample=True, seeds=[1, 2, 3], max_new_tokens=6)
    eager = FastGenerator(vlm, max_batch_rows=4).generate(images, prompts, **kwargs)
    compiled = FastGenerator(vlm, max_batch_rows=4, compile=True)
    assert compiled.generate(images, prompts, **kwargs) == eager
    assert compiled.compile_fallback is None  # it really ran compiled, no fallback
    greedy = FastGenerator(vlm).generate(images, prompts, max_new_tokens=6)
    assert compiled.generate(images, prompts, max_new_tokens=6) == greedy


# ----------------------------------------------------------------------------- pieces

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=30), st.integers(1, 4), st.integers(0, 12))
def test_plan_batches_covers_every_query_once_in_length_order(lengths, n, extra_rows):
    rows = n + extra_rows
    plan = plan_batches(lengths, n, rows, max_tokens=None)
    flat = [i for batch in plan for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)  # stable length order
    assert all(len(batch) * n <= rows for batch in plan)
    assert all(len(a) + 1 > rows // n for a in plan[:-1])  # packed full before starting the next


def test_plan_batches_respects_the_token_budget():
    plan = plan_batches([100, 100, 100, 400], 2, 64, max_tokens=2 * 2 * 150 + 1, max_new_tokens=50)
    assert plan == [[0, 1], [2], [3]]


def test_gumbel_noise_is_a_function_of_key_step_and_token_only():
    keys = row_keys(torch.tensor([7, 7, 8]), torch.tensor([0, 1, 0]))
    a = gumbel_noise(keys, 3, 50)
    assert torch.equal(a[1], gumbel_noise(keys[1:2], 3, 50)[0])  # another batch: the same row noise
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[0], a[2])
    assert not torch.equal(a, gumbel_noise(keys, 4, 50))
    assert torch.isfinite(a).all()
    big = gumbel_noise(row_keys(torch.tensor([1]), torch.tensor([0])), 0, 200_000)[0]
    assert abs(float(big.mean()) - 0.5772) < 0.02  # Euler-Mascheroni: the Gumbel mean


def test_top_p_keeps_sampling_inside_the_nucleus():
    from reasonseg_x.star.generation.fast import FastGenerator as Engine
    from reasonseg_x.star.generation.fast import SamplingSettings

    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(64, 1)
    keys = row_keys(torch.arange(64), torch.zeros(64, dtype=torch.long))
    chosen = {int(t) for step in range(20) for t in Engine._choose(scores, SamplingSettings(do_sample=True, top_p=0.7),
                                                                   keys, step)}
    assert chosen == {0, 1}


def test_decode_steps_attend_per_kv_group_without_copying_kv(vlm, monkeypatch):
    import torch.nn.functional as F

    shapes = []
    real = F.scaled_dot_product_attention

    def spy(query, key, value, **kwargs):
        shapes.append((tuple(query.shape), tuple(key.shape), kwargs.get("attn_mask") is not None))
        return real(query, key, value, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    images, prompts = _inputs(2)
    FastGenerator(vlm).generate(images, prompts, max_new_tokens=3)
    cfg = vlm.model.config.get_text_config()
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    grouped = [s for s in shapes if s[0][1:3] == (kv_heads, heads // kv_heads) and s[1][1] == kv_heads and s[2]]
    assert len(grouped) == 2 * cfg.num_hidden_layers  # 2 decode steps x layers, K/V with their own head count
    assert cfg._attn_implementation in (None, "sdpa")  # restored after decoding


def test_compiled_row_buckets_are_powers_of_two_within_the_limit():
    from reasonseg_x.star.generation.fast import compiled_rows

    assert [compiled_rows(r, 512) for r in (1, 8, 9, 64, 65, 300, 512)] == [8, 8, 16, 64, 128, 512, 512]
    assert compiled_rows(48, 48) == 48 and compiled_rows(600, 512) == 600  # never fewer rows than the batch has


@pytest.mark.parametrize("scale", [0.5, 3.0, 12.0])
def test_nucleus_sampler_on_candidates_equals_the_full_sort(scale):
    """The top-candidates shortcut gives the full-vocabulary sampler's token on every row: rows whose
    nucleus fits the candidates and rows (flat logits) that fall back to the full sort alike."""
    from reasonseg_x.star.generation.fast import _nucleus_full, nucleus_sample

    generator = torch.Generator().manual_seed(7)
    scores = torch.randn(48, 3000, generator=generator) * scale
    keys = row_keys(torch.arange(48), torch.arange(48) % 5)
    for step in range(4):
        lse = torch.logsumexp(scores, dim=-1, keepdim=True)
        full = _nucleus_full(scores, lse, 0.9, keys, step)
        assert torch.equal(nucleus_sample(scores, 0.9, keys, step, candidates=40), full)
        assert torch.equal(nucleus_sample(scores[5:9], 0.9, keys[5:9], step, candidates=40), full[5:9])  # any batch


def test_sam_images_prepared_ahead_give_the_masks_of_set_image(vlm, sam, monkeypatch):
    """The fast schedule's SAM worker hands set_image images prepared on other threads; the
    reference schedule prepares them in set_image itself: the same masks."""
    from reasonseg_x import masks as rle
    from reasonseg_x.star.segment.segmenters import PreparedImage

    seen: list[type] = []
    real = type(sam).set_image
    monkeypatch.setattr(type(sam), "set_image", lambda self, image: (seen.append(type(image)), real(self, image))[1])
    answer = _star_tiny.SCRIPTED_ANSWERS[0]
    queries = [make_query(i, 80 + 10 * i, 60 + 5 * i, text=TEXTS[i]) for i in range(5)]
    processor = _star_tiny.scripted(vlm.tokenizer, [answer])
    fast = star(vlm, sam, max_new_tokens=80, logits_processor=processor).predict(queries)
    assert seen == [PreparedImage] * 5
    seen.clear()
    reference = star(vlm, sam, max_new_tokens=80, logits_processor=processor, generation="reference").predict(queries)
    assert len(seen) == 5 and PreparedImage not in seen
    assert [o.status for o in fast] == ["ok"] * 5
    def mask(output):
        return rle.decode(output.mask) if isinstance(output.mask, dict) else output.mask

    assert all(mask(o).any() for o in fast)
    assert all((mask(a) == mask(b)).all() for a, b in zip(fast, reference))
