"""Optional vLLM generation backend (``--model-arg backend=vllm``; ``pip install reasonseg-x[vllm]``).

Why: test-time scaling samples N answers per query; vLLM's ``SamplingParams(n=N)`` shares the
prompt's prefix (image tokens included) across the N samples and batches continuously, which is
much faster than ``transformers.generate`` with ``num_return_sequences``. It is a
:class:`~reasonseg_x.star.generation.backend.GenerationBackend` like the others.

vLLM is imported lazily and is not installed in the test environment (it pins its own torch and
transformers); this module is therefore untested here. The chat text comes from the same
transformers processor as the HF path, so both backends see the same prompt; images are resized
to the same 840x840 frame. vLLM maps LoRA module names itself; ``max_lora_rank`` defaults to 64
(StAR's rank).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.star.answer.prompts import to_vlm_frame
from reasonseg_x.star.generation.backend import Answers, LogitsProcessorFactory, Sampling, TextGenerator
from reasonseg_x.star.generation.reference import reference_batch_size, reference_chunks
from reasonseg_x.star.vlm import from_pretrained_or_error, hub_parts, model_family_of, resolve_checkpoint

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = ["VllmVLM", "load_vllm"]


@dataclass
class VllmVLM(TextGenerator):
    """A vLLM engine (base model, optional LoRA adapter): a
    :class:`~reasonseg_x.star.generation.backend.GenerationBackend`."""

    schedule = "vllm"
    overlap_sam = False

    llm: Any
    processor: Any
    family: str
    lora_request: Any = None
    device: str = "cuda"
    checkpoint: str = ""
    base_model: str = ""
    adapter: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: greedy queries per call (None: all of a predict call), as the reference schedule
    batch_size: int | None = None

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

    def answers(self, images: Sequence[Image.Image], prompts: Sequence[str], sampling: Sampling,
                seeds: Sequence[int | None], logits_processor: LogitsProcessorFactory | None = None,
                ) -> Iterator[Answers]:
        """The reference schedule's calls (one query per call when sampling, with its seed; else
        ``batch_size`` queries); greedy is temperature 0 (vLLM's convention)."""
        from vllm import SamplingParams

        if logits_processor is not None:
            raise InvalidInputError("the vLLM backend does not take a transformers logits processor", "backend")
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        do_sample = sampling.do_sample
        extra = {"top_k": sampling.top_k} if do_sample and sampling.top_k is not None else {}
        for rows in reference_chunks(len(images), sampling, self.batch_size):
            started = time.perf_counter()
            params = SamplingParams(n=sampling.n, temperature=sampling.temperature if do_sample else 0.0,
                                    top_p=sampling.top_p if do_sample else 1.0, seed=seeds[rows[0]],
                                    max_tokens=sampling.max_new_tokens, skip_special_tokens=True, **extra)
            outputs = self.llm.generate(self._inputs([images[r] for r in rows], [prompts[r] for r in rows],
                                                     sampling.frame),
                                        params, lora_request=self.lora_request, use_tqdm=False)
            yield Answers(rows, [[choice.text for choice in out.outputs] for out in outputs],
                          time.perf_counter() - started)

    def generation_config(self) -> Mapping[str, Any]:
        return {}

    def default_batch_size(self, tts: int, batch_size: int | None) -> int:
        return reference_batch_size(tts, batch_size, self.device)

    def run_info(self) -> dict[str, Any]:
        return {"generation": "vllm", **self.info}


def load_vllm(checkpoint: str, *, base_model: str | None = None, dtype: str = "auto", max_lora_rank: int = 64,
              gpu_memory_utilization: float = 0.85, max_model_len: int = 8192,
              tensor_parallel_size: int = 1, batch_size: int | None = None) -> VllmVLM:
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
            repo, sub = hub_parts(adapter)
            local = str(Path(snapshot_download(repo, allow_patterns=[f"{sub}/*"] if sub else None)) / sub)
        lora_request = LoRARequest("adapter", 1, local)
    processor = from_pretrained_or_error("processor", layout.processor, AutoProcessor.from_pretrained)
    return VllmVLM(llm=llm, processor=processor, family=model_family_of(AutoConfig.from_pretrained(base)),
                   lora_request=lora_request, checkpoint=checkpoint, base_model=base, adapter=adapter,
                   info={"backend": "vllm", "dtype": dtype_name}, batch_size=batch_size)
