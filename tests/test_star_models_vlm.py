"""VLM loading (full model, LoRA in the old and new key layouts, broken adapters) and batched generation."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

# third-party deprecation noise (peft/transformers/torch.jit), not ours
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
pytest.importorskip("peft")

from _star_tiny import ForceTextLogitsProcessor, random_image, tiny_checkpoints  # noqa: E402

from reasonseg_x.errors import InvalidInputError  # noqa: E402
from reasonseg_x.star.vlm import (LoraLoadError, load_vlm, model_family_of, remap_adapter_keys,  # noqa: E402
                                  resolve_dtype)


@pytest.fixture(scope="module")
def ckpt():
    return tiny_checkpoints()


@pytest.fixture(scope="module")
def star_vlm(ckpt):
    return load_vlm(str(ckpt.lora_old), device="cpu")


def _lora_values(model) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model)


def test_old_layout_adapter_loads_every_weight(ckpt, star_vlm):
    from safetensors.torch import load_file

    saved = load_file(str(ckpt.lora_old / "adapter_model.safetensors"))
    assert any(".model.layers." in k for k in saved)  # really the transformers-4.51 layout
    loaded = _lora_values(star_vlm.model)
    remapped = remap_adapter_keys(saved)
    assert set(remapped) == set(loaded)
    for key, value in remapped.items():
        assert torch.equal(loaded[key].float(), value.float()), key
    assert star_vlm.adapter == str(ckpt.lora_old)
    assert star_vlm.base_model == str(ckpt.qwen25)
    assert star_vlm.family == "qwen2.5"
    assert star_vlm.info["dtype"] == "float32"


def test_new_layout_adapter_loads_and_changes_outputs(ckpt, star_vlm):
    base = load_vlm(str(ckpt.qwen25), device="cpu")
    new = load_vlm(str(ckpt.lora_new), device="cpu")
    inputs = base.build_inputs([random_image(64, 48)], ["find it"])
    with torch.no_grad():
        logits_base = base.model(**inputs).logits
        logits_old = star_vlm.model(**inputs).logits
        logits_new = new.model(**inputs).logits
    assert not torch.allclose(logits_base, logits_old)
    assert not torch.allclose(logits_old, logits_new)


def test_broken_adapter_is_a_hard_error_listing_keys(ckpt):
    with pytest.raises(LoraLoadError, match=r"layers\.97\.self_attn\.q_proj"):
        load_vlm(str(ckpt.lora_broken), device="cpu")


def test_old_layout_without_key_mapping_fails_instead_of_dropping_weights(ckpt):
    with pytest.raises(LoraLoadError, match="not found in the model"):
        load_vlm(str(ckpt.lora_old), device="cpu", key_mapping={})


def test_adapter_config_without_weights_is_reported(ckpt, tmp_path):
    (tmp_path / "adapter_config.json").write_text((ckpt.lora_old / "adapter_config.json").read_text())
    with pytest.raises(InvalidInputError, match="no adapter_model"):
        load_vlm(str(tmp_path), device="cpu")


def test_adapter_without_base_model_needs_one(ckpt, tmp_path):
    config = json.loads((ckpt.lora_old / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = None
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    (tmp_path / "adapter_model.safetensors").write_bytes((ckpt.lora_old / "adapter_model.safetensors").read_bytes())
    with pytest.raises(InvalidInputError, match="base_model"):
        load_vlm(str(tmp_path), device="cpu")
    vlm = load_vlm(str(tmp_path), base_model=str(ckpt.qwen25), device="cpu")
    assert vlm.adapter == str(tmp_path)


def test_checkpoint_that_is_a_file_names_it(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="not a folder"):
        load_vlm(str(path), device="cpu")


def test_merged_adapter_gives_the_same_logits(ckpt, star_vlm):
    merged = load_vlm(str(ckpt.lora_old), device="cpu", merge_lora=True)
    assert merged.info["merged"] and not hasattr(merged.model, "peft_config")
    inputs = star_vlm.build_inputs([random_image(64, 48)], ["find it"])
    with torch.no_grad():
        assert torch.allclose(star_vlm.model(**inputs).logits, merged.model(**inputs).logits, atol=1e-4)


def test_qwen3_adapter_and_family(ckpt):
    vlm = load_vlm(str(ckpt.lora_qwen3), device="cpu")
    assert vlm.family == "qwen3"
    out = vlm.generate([random_image(50, 70)], ["q"], max_new_tokens=3)
    assert len(out) == 1 and len(out[0]) == 1


def test_scripted_greedy_and_sampled_generation(star_vlm):
    texts = ['<think>x</think><answer>[{"label": "cat", "bbox_2d": [1, 2, 30, 40], "point_2d": [5, 6]}]</answer>',
             "<answer>[]</answer>", "not an answer"]
    images = [random_image(70, 50, 1), random_image(200, 300, 2)]
    greedy = star_vlm.generate(images, ["short", "a much longer prompt that needs left padding"],
                               logits_processor=ForceTextLogitsProcessor(star_vlm.tokenizer, texts[:2]),
                               max_new_tokens=200)
    assert greedy == [[texts[0]], [texts[1]]]
    sampled = star_vlm.generate(images, ["a", "b"], n=3, seed=7, max_new_tokens=200,
                                logits_processor=ForceTextLogitsProcessor(star_vlm.tokenizer, texts))
    assert sampled == [texts, texts]


def test_left_padding_keeps_greedy_output_batch_independent(star_vlm):
    images = [random_image(64, 64, 3), random_image(120, 80, 4)]
    prompts = ["tiny", "a considerably longer prompt so that the first row is padded on the left"]
    together = star_vlm.generate(images, prompts, max_new_tokens=8)
    alone = [star_vlm.generate([img], [p], max_new_tokens=8)[0] for img, p in zip(images, prompts)]
    assert together == alone
    assert star_vlm.tokenizer.padding_side == "left"


def test_sampling_is_seeded(star_vlm):
    image, prompt = [random_image(64, 64, 5)], ["q"]
    first = star_vlm.generate(image, prompt, n=3, seed=11, max_new_tokens=6)
    again = star_vlm.generate(image, prompt, n=3, seed=11, max_new_tokens=6)
    other = star_vlm.generate(image, prompt, n=3, seed=12, max_new_tokens=6)
    assert first == again and first != other
    with pytest.raises(ValueError):
        star_vlm.generate(image, prompt, n=2, do_sample=False)


def test_dtype_and_family_helpers():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(InvalidInputError):
        resolve_dtype("int3", "cpu")

    class Cfg:
        model_type = "qwen3_vl"

    assert model_family_of(Cfg) == "qwen3"
    assert remap_adapter_keys({"base_model.model.model.layers.0.q.lora_A.weight": 1,
                               "base_model.model.visual.blocks.0.qkv.lora_A.weight": 2,
                               "base_model.model.model.language_model.layers.1.q.lora_A.weight": 3,
                               "base_model.model.lm_head.lora_A.weight": 4}) == {
        "base_model.model.model.language_model.layers.0.q.lora_A.weight": 1,
        "base_model.model.model.visual.blocks.0.qkv.lora_A.weight": 2,
        "base_model.model.model.language_model.layers.1.q.lora_A.weight": 3,
        "base_model.model.lm_head.lora_A.weight": 4}
    with pytest.raises(LoraLoadError, match="both map"):
        remap_adapter_keys({"base_model.model.model.layers.0.q.lora_A.weight": 1,
                            "base_model.model.model.language_model.layers.0.q.lora_A.weight": 2})


def test_uncached_hub_id_offline_is_a_clear_error(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(InvalidInputError, match="not in the local Hugging Face cache, and HF_HUB_OFFLINE is set"):
        load_vlm("someone/not-a-real-star-checkpoint", device="cpu")


def test_unreachable_hub_fails_at_once_or_uses_the_cache(monkeypatch, tmp_path):
    import time

    import huggingface_hub.constants as hub_constants

    import reasonseg_x.data.hub as hub
    from reasonseg_x.star import vlm as vlm_module

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub, "endpoint_reachable", lambda *a, **k: False)
    monkeypatch.setattr(vlm_module, "_HUB_REACHABLE", {})
    started = time.perf_counter()
    with pytest.raises(InvalidInputError, match="cannot be reached"):
        load_vlm("someone/not-a-real-star-checkpoint", device="cpu")
    assert time.perf_counter() - started < 5
    monkeypatch.setattr(vlm_module, "_repo_cached", lambda ref: True)
    assert vlm_module.hub_load_kwargs("someone/cached") == {"local_files_only": True}


def test_device_and_dtype_are_checked_before_loading():
    from reasonseg_x.star.device import check_dtype_name, resolve_device

    with pytest.raises(InvalidInputError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="no GPU"):
            resolve_device("cuda")
    with pytest.raises(InvalidInputError, match="unknown dtype 'fp8'"):
        check_dtype_name("fp8")
    check_dtype_name("bf16")


def test_a_folder_that_is_not_a_vlm_is_one_clear_line(ckpt, tmp_path):
    with pytest.raises(InvalidInputError, match="cannot load the vision-language model.*Sam2Config") as info:
        load_vlm(str(ckpt.sam2), device="cpu")
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidInputError, match="cannot load the vision-language model"):
        load_vlm(str(tmp_path), device="cpu")


def test_published_repo_layout_loads_adapter_and_processor(ckpt, tmp_path):
    """``sj9909/StAR-7B`` keeps ``lora_adapter/`` and ``huggingface/`` (processor) side by side."""
    import shutil

    from reasonseg_x.star.vlm import KNOWN_BASE_MODELS, resolve_checkpoint

    root = tmp_path / "StAR-7B"
    shutil.copytree(ckpt.lora_old, root / "lora_adapter")
    (root / "huggingface").mkdir()
    for item in ckpt.qwen25.iterdir():
        if item.suffix in (".json", ".jinja"):
            shutil.copy(item, root / "huggingface" / item.name)
    layout = resolve_checkpoint(str(root))
    # the adapter names an existing base folder: it wins over the published base's Hub id
    assert (layout.base, layout.adapter, layout.processor) == (
        str(ckpt.qwen25), str(root / "lora_adapter"), str(root / "huggingface"))
    vlm = load_vlm(str(root), device="cpu")
    assert vlm.adapter == str(root / "lora_adapter") and vlm.family == "qwen2.5"
    config = json.loads((root / "lora_adapter" / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "/training/cluster/path/Qwen2.5-VL-7B-Instruct"
    (root / "lora_adapter" / "adapter_config.json").write_text(json.dumps(config))
    assert resolve_checkpoint(str(root)).base == KNOWN_BASE_MODELS["StAR-7B"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert resolve_checkpoint(str(root), base_model=str(ckpt.qwen25)).base == str(ckpt.qwen25)


def test_hub_ids_may_name_a_folder_inside_a_repo():
    from reasonseg_x.star.vlm import hub_parts

    assert hub_parts("sj9909/StAR-7B") == ("sj9909/StAR-7B", "")
    assert hub_parts("sj9909/StAR-7B/lora_adapter") == ("sj9909/StAR-7B", "lora_adapter")
