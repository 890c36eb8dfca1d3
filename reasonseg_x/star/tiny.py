"""Tiny randomly initialised StAR checkpoints built from configs (no downloads): a 2-layer Qwen2.5-VL
or Qwen3-VL, a LoRA adapter on it, and a small SAM 2 / SAM.

Why in the package: ``reasonseg-x star tiny-checkpoint`` writes one so that a user can run
``--model star`` end to end (loading, prompting, generation, parsing, SAM, scoring) in seconds on a
CPU before spending GPU hours, and the test suite builds the same ones. They have the real classes,
file layout, tokenizer kind, chat template and processors; the weights are random, so their answers
do not parse (every sample is a parse error) and the scores are zero. Each builder writes a
``save_pretrained`` folder and returns its path. Needs the ``models`` extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "build_tokenizer",
    "build_qwen25vl",
    "build_qwen3vl",
    "build_sam2",
    "build_sam",
    "build_lora_adapter",
    "build_tiny_star",
    "TinyStar",
]

#: The 7 special tokens every Qwen-VL tokenizer has (ids follow the 256 byte tokens).
QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                       "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

VOCAB_SIZE = 272  # 256 bytes + 7 specials, rounded up


def _byte_vocab() -> dict[str, int]:
    """GPT-2 style byte-to-unicode table: one token per byte, so any text round-trips."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    table = dict(zip(printable, chars))
    return {chr(table[b]): b for b in range(256)}


def build_tokenizer() -> Any:
    from transformers import Qwen2Tokenizer

    vocab = _byte_vocab()
    for i, token in enumerate(QWEN_SPECIAL_TOKENS):
        vocab[token] = 256 + i
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token="<|endoftext|>", eos_token="<|im_end|>",
                         pad_token="<|endoftext|>",
                         additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]))
    tok.chat_template = CHAT_TEMPLATE
    return tok


def _token_ids(tok: Any) -> dict[str, int]:
    return {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}


def _vlm_config(ids: dict[str, int], *, rope: dict[str, Any], vision: dict[str, Any], **text: Any) -> dict[str, Any]:
    """The keyword arguments of a tiny Qwen-VL config: 2 layers of width 32 on the byte vocabulary."""
    return dict(
        text_config=dict(vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], **rope,
                                          "rope_theta": 10000.0},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"], **text),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                           spatial_merge_size=2, temporal_patch_size=2, **vision),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )


def _tiny_model(model_class: Any, config: Any, ids: dict[str, int], seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    model = model_class(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


def _save_vlm(model: Any, processor: Any, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_qwen25vl(out: Path, *, seed: int = 0) -> Path:
    """A 2-layer, hidden-32 Qwen2.5-VL with a 56x56..112x112 pixel budget."""
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor)

    tok = build_tokenizer()
    ids = _token_ids(tok)
    config = Qwen2_5_VLConfig(**_vlm_config(ids, rope={}, vision=dict(
        patch_size=14, window_size=56, fullatt_block_indexes=[1])))  # block 0 attends in windows
    model = _tiny_model(Qwen2_5_VLForConditionalGeneration, config, ids, seed)
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112,
                                            size={"shortest_edge": 56 * 56, "longest_edge": 112 * 112},
                                            patch_size=14, merge_size=2, temporal_patch_size=2)
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    video_processor = Qwen2VLVideoProcessor(patch_size=14, merge_size=2, temporal_patch_size=2)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                    chat_template=CHAT_TEMPLATE)
    return _save_vlm(model, processor, out)


def build_qwen3vl(out: Path, *, seed: int = 0) -> Path:
    """A 2-layer, hidden-32 Qwen3-VL (patch 16) with a small pixel budget."""
    from transformers import (Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration,
                              Qwen3VLProcessor)
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    tok = build_tokenizer()
    ids = _token_ids(tok)
    config = Qwen3VLConfig(**_vlm_config(ids, rope={"mrope_interleaved": True}, head_dim=8, vision=dict(
        patch_size=16, num_position_embeddings=64, deepstack_visual_indexes=[0])))
    model = _tiny_model(Qwen3VLForConditionalGeneration, config, ids, seed)
    image_processor = Qwen2VLImageProcessor(size={"shortest_edge": 64 * 64, "longest_edge": 128 * 128},
                                            patch_size=16, merge_size=2, temporal_patch_size=2,
                                            image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    video_processor = Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                 chat_template=CHAT_TEMPLATE)
    return _save_vlm(model, processor, out)


def build_sam2(out: Path, *, seed: int = 0, image_size: int = 256) -> Path:
    """A transformers Sam2Model with 32-wide layers (Hiera with 2 stages) at a small input size."""
    import torch
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model, Sam2Processor

    stride = 4  # patch stride; stages halve the size
    sizes = [[image_size // stride // (2 ** i)] * 2 for i in range(3)]
    config = Sam2Config(
        vision_config=dict(
            model_type="sam2_vision_model",
            backbone_config=dict(model_type="sam2_hiera_det_model", hidden_size=16, num_attention_heads=1, image_size=[image_size, image_size],
                                 blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
                                 num_attention_heads_per_stage=[1, 1, 2, 2], window_size_per_stage=[4, 4, 4, 4],
                                 global_attention_blocks=[3], window_positional_embedding_background_size=[4, 4]),
            backbone_channel_list=[128, 64, 32, 16], backbone_feature_sizes=sizes, fpn_hidden_size=32),
        prompt_encoder_config=dict(hidden_size=32, image_size=image_size, patch_size=16),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
    )
    torch.manual_seed(seed)
    model = Sam2Model(config).eval()
    processor = Sam2Processor(image_processor=Sam2ImageProcessor(
        size={"height": image_size, "width": image_size},
        mask_size={"height": image_size // 4, "width": image_size // 4}), target_size=image_size)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_sam(out: Path, *, seed: int = 0, image_size: int = 256) -> Path:
    """A transformers SamModel (SAM 1) with 32-wide layers at a small input size."""
    import torch
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    config = SamConfig(
        vision_config=dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=16, window_size=4, global_attn_indexes=[1],
                           num_pos_feats=16, mlp_dim=64),
        prompt_encoder_config=dict(hidden_size=32, image_size=image_size, patch_size=16),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
    )
    torch.manual_seed(seed)
    model = SamModel(config).eval()
    processor = SamProcessor(image_processor=SamImageProcessor(
        size={"longest_edge": image_size}, pad_size={"height": image_size, "width": image_size},
        mask_size={"longest_edge": image_size // 4}, mask_pad_size={"height": image_size // 4, "width": image_size // 4}))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_lora_adapter(base_dir: Path, out: Path, *, old_layout: bool = True, rank: int = 2, seed: int = 1,
                       break_keys: bool = False) -> Path:
    """A LoRA adapter on every linear layer of the language model, saved the way peft saves it.

    ``old_layout`` renames keys to the transformers-4.51 module paths (``model.layers.N``);
    ``break_keys`` adds a LoRA weight for a layer the model does not have (must hard-fail).
    """
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(base_dir)
    cfg = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0,
                     target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
    torch.manual_seed(seed)
    model = get_peft_model(base, cfg)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # B starts at zero; make the adapter actually change the outputs
            torch.nn.init.normal_(param, std=0.02)
    state = get_peft_model_state_dict(model)
    if old_layout:
        state = {k.replace("model.language_model.", "model."): v for k, v in state.items()}
    if break_keys:
        any_key = next(k for k in state if "lora_A" in k)
        layer = "model.layers." if old_layout else "model.language_model.layers."
        bogus = any_key.split(layer)[0] + layer + "97.self_attn.q_proj.lora_A.weight"
        state[bogus] = state[any_key].clone()
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "adapter_model.safetensors"))
    config = model.peft_config["default"].to_dict()
    config["base_model_name_or_path"] = str(base_dir)
    config["target_modules"] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    if old_layout:
        config["target_modules"] = r".*model\.layers\.\d+\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    config = {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.items()}
    (out / "adapter_config.json").write_text(json.dumps(config, indent=1, default=str))
    return out


class TinyStar:
    """The folders of a tiny StAR set-up written by :func:`build_tiny_star`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "qwen2.5-vl"
        self.adapter = root / "star-lora"
        self.sam2 = root / "sam2"

    def eval_args(self) -> list[str]:
        """The ``reasonseg-x eval`` model options that run StAR on these folders on a CPU."""
        return ["--model", "star", "-a", f"checkpoint={self.adapter}", "-a", f"segmenter={self.sam2}",
                "-a", "device=cpu", "-a", "max_new_tokens=32"]


def build_tiny_star(out: str | Path, *, seed: int = 0) -> TinyStar:
    """A tiny Qwen2.5-VL, a StAR-style LoRA adapter on it (the published adapters' key layout, naming
    the base by its folder) and a tiny SAM 2, in three folders under ``out``."""
    tiny = TinyStar(Path(out).resolve())
    build_qwen25vl(tiny.base, seed=seed)
    build_lora_adapter(tiny.base, tiny.adapter, old_layout=True, seed=seed + 1)
    build_sam2(tiny.sam2, seed=seed)
    return tiny
