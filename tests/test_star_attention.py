"""The attention functions the fast generator swaps in: the same attention as transformers' own, in fewer calls."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reasonseg_x.star.generation.attention import (  # noqa: E402
    VISION_ATTENTION,
    attention_implementation,
    packed_attention_configs,
    packed_chunk_attention,
    register_attention,
)
from reasonseg_x.star.generation.fast import FastGenerator  # noqa: E402


def _per_chunk(query, key, value, bounds, scale):
    """What transformers does outside flash-attention: one sdpa call per chunk."""
    outs = [torch.nn.functional.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b],
                                                             scale=scale)
            for a, b in zip(bounds[:-1], bounds[1:])]
    return torch.cat(outs, dim=2).transpose(1, 2)


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=7), heads=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16))
def test_packed_chunks_equal_one_call_per_chunk(lengths, heads, seed):
    generator = torch.Generator().manual_seed(seed)
    tokens, dim = sum(lengths), 8
    query, key, value = (torch.randn(1, heads, tokens, dim, generator=generator) for _ in range(3))
    bounds = [0]
    for length in lengths:
        bounds.append(bounds[-1] + length)
    cu = torch.tensor(bounds, dtype=torch.int32)
    out, weights = packed_chunk_attention(None, query, key, value, cu_seq_lens_q=cu, cu_seq_lens_k=cu,
                                          max_length_q=max(lengths), scaling=0.3)
    assert weights is None and out.shape == (1, tokens, heads, dim)
    torch.testing.assert_close(out, _per_chunk(query, key, value, bounds, 0.3), rtol=1e-5, atol=1e-6)


def test_anything_but_plain_chunks_goes_to_transformers_sdpa():
    query, key, value = (torch.randn(1, 2, 6, 8) for _ in range(3))
    causal, _ = packed_chunk_attention(None, query, key, value, is_causal=True, scaling=None)
    expected = torch.nn.functional.scaled_dot_product_attention(query, key, value, is_causal=True)
    torch.testing.assert_close(causal, expected.transpose(1, 2))


class _SdpaCalls:
    """Counts torch's sdpa calls (transformers' path and ours both end there)."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        real = torch.nn.functional.scaled_dot_product_attention

        def counting(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)


def test_qwen25_vision_windows_attend_in_one_call_per_layer_with_the_same_result(vlm, monkeypatch):
    base = vlm.model.get_base_model() if hasattr(vlm.model, "get_base_model") else vlm.model
    visual = next(m for name, m in base.named_modules() if name.endswith("visual"))
    assert visual.fullatt_block_indexes == [1] and len(visual.blocks) == 2  # block 0 attends in windows
    inputs = vlm.build_inputs([_image()], ["x"], to_device=False)
    configs = packed_attention_configs(vlm.model)
    assert len(configs) == 1 and register_attention()
    counter = _SdpaCalls(monkeypatch)
    with torch.inference_mode():
        expected = visual(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]).pooler_output
        per_window = counter.calls
        counter.calls = 0
        with attention_implementation(configs, VISION_ATTENTION):
            packed = visual(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]).pooler_output
    assert per_window > 2  # several windows: transformers made one call each
    assert counter.calls == 2  # one per layer
    torch.testing.assert_close(packed, expected, rtol=1e-5, atol=1e-6)
    assert configs[0]._attn_implementation == "sdpa"  # restored: the reference path keeps transformers' own


def test_the_fast_generator_can_keep_transformers_vision_attention(vlm):
    images, prompts = [_image(), _image(seed=1)], ["first query", "second"]
    on = FastGenerator(vlm).generate(images, prompts, max_new_tokens=8)
    off = FastGenerator(vlm, packed_vision_attention=False).generate(images, prompts, max_new_tokens=8)
    assert on == off
    assert FastGenerator(vlm, packed_vision_attention=False)._vision_attention_configs() == []


def test_vision_attention_is_a_model_argument_recorded_in_run_json(vlm, sam):
    from reasonseg_x.star.predictor import StarPredictor

    exact = StarPredictor("unused", vlm=vlm, segmenter=sam, vision_attention="transformers")
    assert exact.engine._vision_attention_configs() == []
    assert exact.run_info()["vision_attention"] == "transformers"
    packed = StarPredictor("unused", vlm=vlm, segmenter=sam)
    assert packed.engine._vision_attention_configs() and packed.run_info()["vision_attention"] == "packed"


def _image(seed: int = 0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (100, 110, 3), dtype=np.uint8))


def test_inputs_prepared_on_threads_equal_one_at_a_time_and_a_refusing_tokenizer_falls_back(vlm, monkeypatch):
    images = [_image(seed=i) for i in range(6)]
    prompts = [f"query {i} " * (i + 1) for i in range(6)]
    threaded = FastGenerator(vlm, prepare_threads=4)._prepare_all(images, prompts, (84, 84))
    single = FastGenerator(vlm, prepare_threads=1)._prepare_all(images, prompts, (84, 84))
    assert [p.length for p in threaded] == [p.length for p in single]
    assert all(torch.equal(a.inputs[k], b.inputs[k]) for a, b in zip(threaded, single) for k in a.inputs)

    engine = FastGenerator(vlm, prepare_threads=4)
    real = engine._prepare
    calls = {"n": 0}

    def refusing(image, prompt, frame):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("Already borrowed")
        return real(image, prompt, frame)

    monkeypatch.setattr(engine, "_prepare", refusing)
    again = engine._prepare_all(images, prompts, (84, 84))
    assert engine.prepare_threads == 1 and [p.length for p in again] == [p.length for p in single]
