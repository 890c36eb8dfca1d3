"""The arguments of the VLM + SAM pipeline, declared once.

Why a dataclass: a model's arguments used to be written three times (the registry, the base
constructor and each subclass's constructor). Here each one is a field: its annotation is its type,
its default is its default, its metadata carries the help line. The registry lists them
(``reasonseg-x models star``, ``eval --model star --help``) and converts ``-a NAME=VALUE`` strings
from this class; the predictor's constructor validates Python values against it.

Per-model defaults (StAR's checkpoint, VisionReasoner's 2048-token budget) and pinned values
(Seg-Zero's single answer) are data in the model catalog (``baselines/models.yaml``), not code.
Nothing here imports torch: a core install can list and check arguments.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from reasonseg_x.errors import InvalidInputError

__all__ = ["SegmenterOptions", "PipelineOptions", "option", "DEVICE_PATTERN", "DTYPE_NAMES", "check_device_name", "check_dtype_name"]

#: devices accepted by name (whether a GPU is really there is checked when the model loads)
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: dtype names accepted besides ``auto``
DTYPE_NAMES = ("bf16", "bfloat16", "fp16", "float16", "half", "fp32", "float32", "float")


def option(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field with a help line (shown by ``reasonseg-x models NAME``); ``identity=False``
    marks an argument that cannot change a prediction (a run resumes across changes of it)."""
    return field(default=default, metadata={"help": help, **extra})


def check_device_name(device: Any, name: str = "device") -> None:
    """Reject an unknown device name without importing torch."""
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise InvalidInputError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps", name)


def check_dtype_name(dtype: Any) -> None:
    """Reject an unknown dtype name without importing torch."""
    if isinstance(dtype, str) and dtype != "auto" and dtype not in DTYPE_NAMES:
        raise InvalidInputError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(sorted(DTYPE_NAMES))}", "dtype")


@dataclass(frozen=True, kw_only=True)
class SegmenterOptions:
    """Where SAM comes from and where it runs: shared by every predictor that segments."""

    segmenter: str = option("sam2.1-hiera-large",
                            "SAM backend (sam2.1-hiera-large, sam-vit-huge, sam2:REF[:CKPT], ...) or a local folder; "
                            "'box': the answer's boxes as masks (no torch)")
    device: str = option("auto", "'auto', 'cpu', 'cuda', 'cuda:N' (under torchrun: the local rank's GPU)")
    dtype: str = option("auto", "'auto' (bf16 on GPU, float32 on CPU), 'bfloat16', 'float16', 'float32'")

    def __post_init__(self) -> None:
        check_dtype_name(self.dtype)
        check_device_name(self.device)


@dataclass(frozen=True, kw_only=True)
class PipelineOptions(SegmenterOptions):
    """Every argument of a Qwen-VL + SAM predictor (StAR, VisionReasoner, Seg-Zero)."""

    checkpoint: str = option("", "model weights: a LoRA adapter, a full model or a published StAR repo (Hub id or folder)")
    base_model: str | None = option(None, "base VLM of an adapter (default: the one the adapter names)")
    style: Literal["star", "star_muse_mmr", "star_refcoco", "visionreasoner", "segzero"] = option(
        "star", "prompt and answer style")
    tts: int = option(1, "answers per query: 1 = greedy, N > 1 = N sampled answers aggregated")
    aggregator: str = option("majority_vote", "how N answers combine (see reasonseg_x.tts)")
    seed: int = option(42, "sampling seed for tts > 1 (mixed per query with its id)")
    temperature: float = option(1.0, "sampling temperature for tts > 1")
    top_p: float = option(0.9, "nucleus sampling for tts > 1")
    top_k: int | None = option(None, "top-k sampling for tts > 1 (default: the checkpoint's generation config)")
    max_new_tokens: int = option(1024, "generation budget per answer")
    batch_size: int | None = option(None, "generation batch inside the model (default: the runner's --batch-size)")
    no_object_vote_threshold: float = option(0.5, "majority vote: share of 'no object' votes that wins")
    mask_iou_cluster_threshold: float = option(0.85, "majority vote: mask IoU that joins a cluster")
    cluster_vote_threshold: float = option(0.2, "majority vote: least vote ratio a cluster keeps")
    cluster_agg_mode: Literal["best", "consensus"] = option(
        "best", "majority vote: a kept cluster's mask is its best member or a score-weighted pixel vote")
    pixel_majority_threshold: float = option(0.5, "pixel vote / consensus: share of votes a pixel needs")
    keep_answers: bool = option(True, "keep the N sampled answers' raw text in the predictions file")
    backend: Literal["hf", "vllm", "openai"] = option(
        "hf", "generation backend: transformers in-process, vLLM in-process (extra), or an OpenAI-compatible "
        "endpoint (openai: base_url, served_model; extra 'serve')")
    base_url: str | None = option(None, "backend=openai: the endpoint, e.g. http://HOST:PORT/v1", identity=False)
    served_model: str | None = option(None, "backend=openai: the model name the server serves (default: its only one)")
    api_key_env: str = option("OPENAI_API_KEY", "backend=openai: environment variable holding the API key (never recorded)",
                              identity=False)
    max_concurrency: int = option(64, "backend=openai: requests in flight", identity=False)
    request_timeout: float = option(600.0, "backend=openai: seconds one request may take before it is retried",
                                    identity=False)
    max_attempts: int = option(5, "backend=openai: tries per request (back-off with jitter on 429, 5xx, lost connections)",
                               identity=False)
    image_format: Literal["png", "jpeg"] = option("png", "backend=openai: how the 840x840 frame is sent (png is lossless)")
    coords: Literal["auto", "pixels", "grid1000"] = option(
        "auto", "answer coordinates: pixels of the 840 frame (Qwen2.5-VL) or the 0-999 grid (Qwen3-VL); "
        "auto = the checkpoint's family (backend=openai: guessed from the served model's name and root)")
    merge_lora: bool = option(False, "merge the adapter into the weights (faster generation)")
    segmenter_device: str | None = option(None, "device of SAM (default: the VLM's)")
    attn_implementation: str | None = option(None, "transformers attention kernel (sdpa, flash_attention_2, eager)")
    generation: Literal["fast", "reference"] = option(
        "fast", "hf backend schedule: fast (prefill once per query, packed length-sorted decode batches, per-answer "
        "seeds) or reference (the paper's: generate() in batches of batch_size, tts > 1 one query per call)")
    max_batch_rows: int | None = option(
        None, "fast generation: answer rows per decode batch (default 256 on a GPU, 16 on CPU, within a KV-memory budget)")
    compile: Literal["auto", "off", "on"] = option(
        "auto", "fast generation: decode step under torch.compile on a fixed-shape KV buffer (CUDA graphs on a GPU); "
        "auto = on with CUDA, off on CPU; falls back to eager if compiling fails")
    vision_attention: Literal["packed", "transformers"] = option(
        "packed", "fast generation: Qwen2.5-VL's vision windows in one attention call per layer (packed; 2x faster "
        "vision tower on an H200, the same attention in other rounding) or transformers' call per window "
        "(the reference schedule's arithmetic, for exact greedy parity)")

    def __post_init__(self) -> None:
        """Reject bad values before anything loads (a real checkpoint takes minutes to load)."""
        if self.tts < 1:
            raise InvalidInputError(f"tts must be >= 1, got {self.tts}", "tts")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise InvalidInputError(f"temperature must be a finite number > 0, got {self.temperature}", "temperature")
        if not (0 < self.top_p <= 1):
            raise InvalidInputError(f"top_p must be in (0, 1], got {self.top_p}", "top_p")
        if self.top_k is not None and self.top_k < 1:
            raise InvalidInputError(f"top_k must be >= 1, got {self.top_k}", "top_k")
        if self.max_new_tokens < 1:
            raise InvalidInputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}", "max_new_tokens")
        if self.batch_size is not None and self.batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {self.batch_size}", "batch_size")
        if self.max_batch_rows is not None and self.max_batch_rows < self.tts:
            raise InvalidInputError(f"max_batch_rows must be >= tts ({self.tts}) so one query's answers fit, "
                                    f"got {self.max_batch_rows}", "max_batch_rows")
        for name in ("no_object_vote_threshold", "mask_iou_cluster_threshold", "cluster_vote_threshold",
                     "pixel_majority_threshold"):
            value = getattr(self, name)
            if not (0 <= value <= 1):  # also rejects nan
                raise InvalidInputError(f"{name} must be in [0, 1], got {value}", name)
        for name in ("max_concurrency", "max_attempts"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be >= 1, got {getattr(self, name)}", name)
        if not (math.isfinite(self.request_timeout) and self.request_timeout > 0):
            raise InvalidInputError(f"request_timeout must be a finite number > 0, got {self.request_timeout}",
                                    "request_timeout")
        if self.backend == "openai" and not self.base_url:
            raise InvalidInputError("backend=openai needs the endpoint: -a base_url=http://HOST:PORT/v1", "base_url")
        super().__post_init__()
        if self.segmenter_device is not None:
            check_device_name(self.segmenter_device, "segmenter_device")

    @property
    def vote_thresholds(self) -> dict[str, float]:
        """The majority vote's numeric options, as :func:`reasonseg_x.tts.majority_vote` takes them."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name.endswith("_threshold")}
