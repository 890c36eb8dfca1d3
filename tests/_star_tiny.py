"""Tiny randomly initialised VLM and SAM checkpoints for the tests (no downloads).

The builders live in :mod:`reasonseg_x.star.tiny` (``reasonseg-x star tiny-checkpoint`` writes the
same ones); this module adds what only tests need: scripted answers, the built-once cache and
importable scripted predictors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonseg_x.star.tiny import (  # noqa: F401 - re-exported: the tests import them from here
    CHAT_TEMPLATE,
    QWEN_SPECIAL_TOKENS,
    build_lora_adapter,
    build_qwen3vl,
    build_qwen25vl,
    build_sam,
    build_sam2,
    build_tokenizer,
)


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

