"""Optional vLLM generation backend (``--model-arg backend=vllm``; ``pip install reasonseg-x[vllm]``).

Why: test-time scaling samples N answers per query; vLLM's ``SamplingParams(n=N)`` shares the
prompt's prefix (image tokens included) across the N samples and batches continuously, which is
much faster than ``transformers.generate`` with ``num_return_sequences``. It exposes the same
``generate`` signature as :class:`reasonseg_x.star.vlm.VLM`, so predictors take either.

vLLM is imported lazily and is not installed in the test environment (it pins its own torch and
transformers); this module is therefore untested here. The chat text comes from the same
transformers processor as the HF path, so both backends see the same prompt; images are resized
to the same 840x840 frame. vLLM maps LoRA module names itself; ``max_lora_rank`` defaults to 64
(StAR's rank).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.answer.prompts import to_vlm_frame
from reasonseg_x.star.vlm import VLM_FRAME, _hub_parts, from_pretrained_or_error, model_family_of, resolve_checkpoint

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["VllmVLM", "load_vllm"]


@dataclass
class VllmVLM:
    """A vLLM engine (base model, optional LoRA adapter) with the ``VLM.generate`` interface."""

    llm: Any
    processor: Any
    family: str
    lora_request: Any = None
    device: str = "cuda"
    checkpoint: str = ""
    base_model: str = ""
    adapter: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    def _inputs(self, images: Sequence[Image.Image], prompts: Sequence[str], frame: tuple[int, int] | None) -> list[dict[str, Any]]:
        inputs = []
        for image, prompt in zip(images, prompts):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            inputs.append({"prompt": text, "multi_modal_data": {"image": to_vlm_frame(image, frame)}})
        return inputs

    def generate(self, images: Sequence[Image.Image], prompts: Sequence[str], *, n: int = 1,
                 do_sample: bool | None = None, temperature: float = 1.0, top_p: float = 0.9,
                 seed: int | None = None, max_new_tokens: int = 1024, logits_processor: Any = None,
                 frame: tuple[int, int] | None = VLM_FRAME, top_k: int | None = None) -> list[list[str]]:
        """``n`` answers per row; greedy is temperature 0 (vLLM's convention)."""
        from vllm import SamplingParams

        if logits_processor is not None:
            raise InvalidInputError("the vLLM backend does not take a transformers logits processor", "backend")
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        do_sample = n > 1 if do_sample is None else do_sample
        if n > 1 and not do_sample:
            raise ValueError("n > 1 answers need sampling (do_sample=True)")
        extra = {"top_k": top_k} if do_sample and top_k is not None else {}
        params = SamplingParams(n=n, temperature=temperature if do_sample else 0.0,
                                top_p=top_p if do_sample else 1.0, seed=seed, max_tokens=max_new_tokens,
                                skip_special_tokens=True, **extra)
        outputs = self.llm.generate(self._inputs(images, prompts, frame), params, lora_request=self.lora_request,
                                    use_tqdm=False)
        return [[choice.text for choice in out.outputs] for out in outputs]


def load_vllm(checkpoint: str, *, base_model: str | None = None, dtype: str = "auto", max_lora_rank: int = 64,
              gpu_memory_utilization: float = 0.85, max_model_len: int = 8192,
              tensor_parallel_size: int = 1) -> VllmVLM:
    """A vLLM engine for a full checkpoint or a LoRA adapter (Hub id or folder)."""
    try:
        from vllm import LLM
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        raise InvalidInputError(f"backend=vllm needs vLLM: pip install 'reasonseg-x[vllm]' ({exc})", "backend") from None
    from transformers import AutoConfig, AutoProcessor

    layout = resolve_checkpoint(checkpoint, base_model)
    base, adapter = layout.base, layout.adapter
    dtype_name = "bfloat16" if dtype in ("auto", "bf16") else dtype
    llm = LLM(model=base, dtype=dtype_name, enable_lora=adapter is not None, max_lora_rank=max_lora_rank,
              gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
              tensor_parallel_size=tensor_parallel_size, limit_mm_per_prompt={"image": 1})
    lora_request = None
    if adapter is not None:
        from pathlib import Path

        from huggingface_hub import snapshot_download

        if Path(adapter).is_dir():
            local = adapter
        else:  # a Hub repo, or a folder inside one (owner/name/lora_adapter)
            repo, sub = _hub_parts(adapter)
            local = str(Path(snapshot_download(repo, allow_patterns=[f"{sub}/*"] if sub else None)) / sub)
        lora_request = LoRARequest("adapter", 1, local)
    processor = from_pretrained_or_error("processor", layout.processor, AutoProcessor.from_pretrained)
    return VllmVLM(llm=llm, processor=processor, family=model_family_of(AutoConfig.from_pretrained(base)),
                   lora_request=lora_request, checkpoint=checkpoint, base_model=base, adapter=adapter,
                   info={"backend": "vllm", "dtype": dtype_name})
