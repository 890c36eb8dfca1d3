"""Tiny randomly initialised VLM and SAM checkpoints built from configs (no downloads).

Why: the real checkpoints are tens of GB; these have the same classes, file layout, tokenizer kind,
chat template and processors, so the loading and predict code paths are the real ones. Each
builder writes a ``save_pretrained`` folder and returns its path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "QWEN_SPECIAL_TOKENS",
    "build_tokenizer",
    "build_qwen25vl",
    "build_qwen3vl",
    "build_sam2",
    "build_sam",
    "build_lora_adapter",
    "ForceTextLogitsProcessor",
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


def _save_vlm(model: Any, processor: Any, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_qwen25vl(out: Path, *, seed: int = 0) -> Path:
    """A 2-layer, hidden-32 Qwen2.5-VL with a 56x56..112x112 pixel budget."""
    import torch
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor)

    tok = build_tokenizer()
    ids = _token_ids(tok)
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[1]),  # block 0 attends in windows
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
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
    import torch
    from transformers import (Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration,
                              Qwen3VLProcessor)
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    tok = build_tokenizer()
    ids = _token_ids(tok)
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2],
                                          "mrope_interleaved": True, "rope_theta": 10000.0},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                           patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                           num_position_embeddings=64, deepstack_visual_indexes=[0]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
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


class ForceTextLogitsProcessor:
    """Forces ``generate()`` to emit scripted texts (one per output row, cycling), then EOS.

    Row r of the batch*n outputs gets ``texts[r % len(texts)]``; the forced token gets +inf margin,
    so greedy and sampling both follow the script.
    """

    def __init__(self, tokenizer: Any, texts: list[str], prompt_length: int | None = None) -> None:
        self.scripts = [tokenizer.encode(t, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
                        for t in texts]
        self.prompt_length = prompt_length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.prompt_length is None or input_ids.shape[1] < self.prompt_length:
            self.prompt_length = input_ids.shape[1]
        step = input_ids.shape[1] - self.prompt_length
        forced = torch.full_like(scores, float("-inf"))
        for row in range(scores.shape[0]):
            script = self.scripts[row % len(self.scripts)]
            forced[row, script[min(step, len(script) - 1)]] = 0.0
        return forced


# ----------------------------------------------------------------------------- built-once cache

class TinyCheckpoints:
    """Paths of the tiny checkpoints, built once per test process (``tiny_checkpoints()``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.qwen25 = build_qwen25vl(root / "qwen25vl")
        self.qwen3 = build_qwen3vl(root / "qwen3vl")
        self.lora_old = build_lora_adapter(self.qwen25, root / "lora_old", old_layout=True)
        self.lora_new = build_lora_adapter(self.qwen25, root / "lora_new", old_layout=False, seed=2)
        self.lora_broken = build_lora_adapter(self.qwen25, root / "lora_broken", old_layout=True, break_keys=True)
        self.lora_qwen3 = build_lora_adapter(self.qwen3, root / "lora_qwen3", old_layout=True)
        self.sam2 = build_sam2(root / "sam2")
        self.sam = build_sam(root / "sam")


_CACHE: dict[str, TinyCheckpoints] = {}


def tiny_checkpoints() -> TinyCheckpoints:
    """Build (first call) or return the tiny checkpoints in a temporary folder removed at exit."""
    if "ckpt" not in _CACHE:
        import atexit

        import torch

        # tiny models gain nothing from threads, and the test machine's cores are shared
        torch.set_num_threads(1)
        import shutil
        import tempfile

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        root = Path(tempfile.mkdtemp(prefix="rsx-star-tiny-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _CACHE["ckpt"] = TinyCheckpoints(root)
    return _CACHE["ckpt"]


def random_image(width: int, height: int, seed: int = 0) -> Any:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def scripted(tokenizer: Any, texts: list[str]) -> Any:
    """A factory for the predictors' ``logits_processor`` argument: fresh forcing per generate call."""
    return lambda: ForceTextLogitsProcessor(tokenizer, texts)


# ----------------------------------------------------------------------------- package SAM models

def build_sam2_package_model(image_size: int = 256, seed: int = 0) -> Any:
    """A tiny ``sam2``-package SAM2Base (16/32-wide), built from a config dict with hydra's instantiate."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    feat = image_size // 16
    pos = lambda n: {"_target_": "sam2.modeling.position_encoding.PositionEmbeddingSine",  # noqa: E731
                     "num_pos_feats": n, "normalize": True, "scale": None, "temperature": 10000}
    rope = lambda **kw: {"_target_": "sam2.modeling.sam.transformer.RoPEAttention", "rope_theta": 10000.0,  # noqa: E731
                         "feat_sizes": [feat, feat], "embedding_dim": 32, "num_heads": 1, "downsample_rate": 1,
                         "dropout": 0.0, **kw}
    cfg = {"_target_": "sam2.modeling.sam2_base.SAM2Base",
           "image_encoder": {"_target_": "sam2.modeling.backbones.image_encoder.ImageEncoder", "scalp": 1,
                             "trunk": {"_target_": "sam2.modeling.backbones.hieradet.Hiera", "embed_dim": 16,
                                       "num_heads": 1, "stages": [1, 1, 2, 1], "global_att_blocks": [3],
                                       "window_pos_embed_bkg_spatial_size": [4, 4], "window_spec": [4, 4, 4, 4]},
                             "neck": {"_target_": "sam2.modeling.backbones.image_encoder.FpnNeck",
                                      "position_encoding": pos(32), "d_model": 32,
                                      "backbone_channel_list": [128, 64, 32, 16], "fpn_top_down_levels": [2, 3],
                                      "fpn_interp_model": "nearest"}},
           "memory_attention": {"_target_": "sam2.modeling.memory_attention.MemoryAttention", "d_model": 32,
                                "pos_enc_at_input": True, "num_layers": 1,
                                "layer": {"_target_": "sam2.modeling.memory_attention.MemoryAttentionLayer",
                                          "activation": "relu", "dim_feedforward": 64, "dropout": 0.0,
                                          "pos_enc_at_attn": False, "d_model": 32,
                                          "pos_enc_at_cross_attn_keys": True, "pos_enc_at_cross_attn_queries": False,
                                          "self_attention": rope(), "cross_attention": rope(rope_k_repeat=True, kv_in_dim=16)}},
           "memory_encoder": {"_target_": "sam2.modeling.memory_encoder.MemoryEncoder", "out_dim": 16,
                              "position_encoding": pos(16),
                              "mask_downsampler": {"_target_": "sam2.modeling.memory_encoder.MaskDownSampler",
                                                   "kernel_size": 3, "stride": 2, "padding": 1, "embed_dim": 32},
                              "fuser": {"_target_": "sam2.modeling.memory_encoder.Fuser", "num_layers": 1,
                                        "layer": {"_target_": "sam2.modeling.memory_encoder.CXBlock", "dim": 32,
                                                  "kernel_size": 7, "padding": 3, "layer_scale_init_value": 1e-6,
                                                  "use_dwconv": True}}},
           "num_maskmem": 2, "image_size": image_size, "use_high_res_features_in_sam": True,
           "multimask_output_in_sam": True, "iou_prediction_use_sigmoid": True, "pred_obj_scores": True,
           "pred_obj_scores_mlp": True, "use_mlp_for_obj_ptr_proj": True, "directly_add_no_mem_embed": True,
           "no_obj_embed_spatial": True, "use_obj_ptrs_in_encoder": True}
    torch.manual_seed(seed)
    return instantiate(OmegaConf.create(cfg), _recursive_=True).eval()


def build_segment_anything_model(image_size: int = 256, seed: int = 0) -> Any:
    """A tiny ``segment-anything`` Sam (ViT with 2 blocks, 32 wide)."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    feat = image_size // 16
    encoder = ImageEncoderViT(img_size=image_size, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
                              out_chans=32, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                              use_rel_pos=True, window_size=4, global_attn_indexes=(1,))
    prompt = PromptEncoder(embed_dim=32, image_embedding_size=(feat, feat), input_image_size=(image_size, image_size),
                           mask_in_chans=8)
    decoder = MaskDecoder(num_multimask_outputs=3, transformer_dim=32, iou_head_depth=3, iou_head_hidden_dim=32,
                          transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2))
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder).eval()


# ----------------------------------------------------------------------------- an importable scripted model

#: what ScriptedStarPredictor's VLM is forced to answer, in turn (840-frame pixels)
SCRIPTED_ANSWERS = [
    '<think>centre</think><answer>[{"label": "thing", "bbox_2d": [210, 210, 630, 630], "point_2d": [420, 420]}]</answer>',
    "<think>none</think><answer>[]</answer>",
    "no answer at all",
]


def ScriptedStarPredictor(tts: int = 1, batch_size: int | None = None) -> Any:  # noqa: N802 - a factory
    """StAR on the tiny checkpoints with scripted answers (for ``eval -m _star_tiny:ScriptedStarPredictor``)."""
    from reasonseg_x.star.predictor import StarPredictor
    from reasonseg_x.star.vlm import load_vlm

    ckpt = tiny_checkpoints()
    vlm = load_vlm(str(ckpt.lora_old), device="cpu")
    # the script follows the row order of a batch: the paper's schedule keeps dataset order, the
    # fast one sorts rows by prompt length
    return StarPredictor(str(ckpt.lora_old), vlm=vlm, segmenter=str(ckpt.sam2), device="cpu", tts=tts,
                         batch_size=batch_size, logits_processor=scripted(vlm.tokenizer, SCRIPTED_ANSWERS),
                         generation="reference")


#: set by tests: SampledStarPredictor raises KeyboardInterrupt (a kill) once it has predicted this many batches
INTERRUPT_AFTER: dict[str, int | None] = {"batches": None}


def SampledStarPredictor(tts: int = 3, max_new_tokens: int = 6, max_batch_rows: int | None = None) -> Any:  # noqa: N802
    """StAR on the tiny checkpoints, unscripted: tts answers sampled from the random weights (kept
    in the predictions file), for resume tests (``eval -m _star_tiny:SampledStarPredictor``)."""
    from reasonseg_x.star.predictor import StarPredictor
    from reasonseg_x.star.vlm import load_vlm

    ckpt = tiny_checkpoints()
    vlm = load_vlm(str(ckpt.lora_old), device="cpu")
    predictor = StarPredictor(str(ckpt.lora_old), vlm=vlm, segmenter=str(ckpt.sam2), device="cpu", tts=tts,
                              max_new_tokens=max_new_tokens, max_batch_rows=max_batch_rows, keep_answers=True)
    predict = predictor.predict
    calls = {"n": 0}

    def interruptible(queries: Any) -> Any:
        limit = INTERRUPT_AFTER["batches"]
        if limit is not None and calls["n"] >= limit:
            raise KeyboardInterrupt("simulated kill")
        calls["n"] += 1
        return predict(queries)

    predictor.predict = interruptible
    return predictor

