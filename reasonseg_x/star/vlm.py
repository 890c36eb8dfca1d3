"""The vision-language model half of a VLM + SAM pipeline: load, adapt (LoRA), generate.

Why this module is careful about LoRA: StAR's adapters were saved under transformers 4.51, whose
Qwen-VL module paths (``model.layers.N``) differ from transformers 5 (``model.language_model.layers.N``).
A non-strict load silently drops every LoRA weight and the model quietly runs as its base; here the
keys are remapped and any adapter weight left unloaded (or any LoRA module left without a weight) is
a hard error that lists them.

torch, transformers and peft are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.errors import InvalidInputError, ReasonSegXError
from reasonseg_x.star.answer.prompts import VLM_FRAME, to_vlm_frame  # the 840 x 840 frame the VLM sees (docs/protocols.md section 4)
from reasonseg_x.star.device import DTYPE_NAMES, check_dtype_name, resolve_device, resolve_dtype
from reasonseg_x.star.generation.backend import Answers, LogitsProcessorFactory, Sampling, TextGenerator

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = [
    "VLM_FRAME",
    "OLD_LAYOUT_KEY_MAPPING",
    "LoraLoadError",
    "VLM",
    "load_vlm",
    "resolve_device",
    "resolve_dtype",
    "remap_adapter_keys",
    "model_family_of",
    "from_pretrained_or_error",
    "resolve_checkpoint",
    "CheckpointLayout",
    "KNOWN_BASE_MODELS",
    "hub_load_kwargs",
    "hub_parts",
    "local_or_hub_file",
    "lora_module_names",
    "read_adapter_weights",
    "check_dtype_name",
    "DTYPE_NAMES",
]


#: transformers-4.51 Qwen-VL module paths -> transformers-5 paths (applied after the peft prefix).
OLD_LAYOUT_KEY_MAPPING: dict[str, str] = {
    r"^model\.(?!language_model\.|visual\.)": "model.language_model.",
    r"^visual\.": "model.visual.",
}

_PEFT_PREFIX = "base_model.model."


class LoraLoadError(ReasonSegXError):
    """A LoRA adapter that does not fit the model: some of its weights would be silently dropped."""


def model_family_of(config: Any) -> str:
    """The coordinate convention of a Qwen-VL config: ``qwen2.5`` (840-frame pixels) or ``qwen3`` (0-999 grid)."""
    model_type = getattr(config, "model_type", "")
    if model_type.startswith("qwen3"):
        return "qwen3"
    if model_type == "qwen2_vl":
        return "qwen2"
    return "qwen2.5"


def remap_adapter_keys(state: dict[str, Any], mapping: dict[str, str] | None = None) -> dict[str, Any]:
    """Rename peft adapter keys saved under older module paths (first matching pattern wins)."""
    mapping = OLD_LAYOUT_KEY_MAPPING if mapping is None else mapping
    out: dict[str, Any] = {}
    for key, value in state.items():
        prefix = _PEFT_PREFIX if key.startswith(_PEFT_PREFIX) else ""
        rest = key[len(prefix):]
        for pattern, replacement in mapping.items():
            new, count = re.subn(pattern, replacement, rest)
            if count:
                rest = new
                break
        if prefix + rest in out:
            raise LoraLoadError(f"adapter weights {key!r} and another key both map to {prefix + rest!r}")
        out[prefix + rest] = value
    return out


# ----------------------------------------------------------------------------- checkpoint files

_HUB_REACHABLE: dict[str, bool] = {}


def _hub_unusable() -> str | None:
    """Why the Hub cannot be used now (an offline variable is set, or the endpoint does not answer
    a quick probe), or None. Checked before any download: huggingface_hub would otherwise retry
    for ~30 s before failing."""
    from reasonseg_x.data.hub import endpoint_reachable, offline_variable

    variable = offline_variable()
    if variable is not None:
        return f"{variable} is set"
    if "ok" not in _HUB_REACHABLE:
        _HUB_REACHABLE["ok"] = endpoint_reachable()
    return None if _HUB_REACHABLE["ok"] else "the Hugging Face Hub cannot be reached (no network?)"


def hub_parts(ref: str) -> tuple[str, str]:
    """``owner/name[/sub/folder]`` -> (repo id, subfolder): a Hub id names a folder inside a repo
    the way a path does (the published StAR repos keep ``lora_adapter/`` and ``huggingface/``)."""
    parts = ref.strip("/").split("/")
    return "/".join(parts[:2]), "/".join(parts[2:])


def _repo_cached(ref: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    repo, sub = hub_parts(ref)
    prefix = f"{sub}/" if sub else ""
    return any(isinstance(try_to_load_from_cache(repo, prefix + name), str)
               for name in ("config.json", "adapter_config.json", "processor_config.json", "preprocessor_config.json"))


def _not_cached(ref: str, why: str) -> InvalidInputError:
    from reasonseg_x.data.hub import download_command

    repo, sub = hub_parts(ref)
    command = download_command(repo, include=f"{sub}/*" if sub else None)
    return InvalidInputError(f"not a local folder and not in the local Hugging Face cache, and {why}: download "
                             f"it once with network access (`{command}`) or pass a local folder", ref)


def hub_load_kwargs(ref: str) -> dict[str, Any]:
    """Extra ``from_pretrained`` arguments for ``ref``: ``local_files_only`` when the Hub cannot be
    used but the repo is cached; an immediate error when it is neither usable nor cached."""
    if Path(ref).expanduser().is_dir():
        return {}
    why = _hub_unusable()
    if why is None:
        return {}
    if _repo_cached(ref):
        return {"local_files_only": True}
    raise _not_cached(ref, why)


def local_or_hub_file(ref: str, filename: str) -> Path | None:
    """``filename`` of a local folder or a Hub repo, or None when the repo has no such file."""
    folder = Path(ref).expanduser()
    if folder.is_dir():
        path = folder / filename
        return path if path.is_file() else None
    if folder.exists() or ref.startswith((".", "/", "~")):
        raise InvalidInputError("checkpoint is not a folder", ref)
    from huggingface_hub import errors as hub_errors
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    repo, sub = hub_parts(ref)
    filename = f"{sub}/{filename}" if sub else filename
    why = _hub_unusable()
    if why is not None:
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str):
            return Path(cached)
        if cached is not None or _repo_cached(repo) or _repo_cached(ref):  # known absent, or cached without it
            return None
        raise _not_cached(ref, why)
    remote_missing = getattr(hub_errors, "RemoteEntryNotFoundError", hub_errors.EntryNotFoundError)
    try:
        return Path(hf_hub_download(repo, filename))
    except hub_errors.LocalEntryNotFoundError:
        # the Hub stopped answering and this file is not cached: absent if the repo itself is cached
        if _repo_cached(repo) or _repo_cached(ref):
            return None
        raise _not_cached(ref, "the Hugging Face Hub did not answer") from None
    except remote_missing:
        return None
    except Exception as exc:  # unknown repo, gated, network
        raise InvalidInputError(f"cannot fetch {filename} from the Hub: {type(exc).__name__}: {exc}", repo) from None


def read_adapter_weights(ref: str) -> dict[str, Any]:
    path = local_or_hub_file(ref, "adapter_model.safetensors")
    if path is not None:
        from safetensors.torch import load_file

        return load_file(str(path))
    path = local_or_hub_file(ref, "adapter_model.bin")
    if path is None:
        raise InvalidInputError("LoRA adapter has adapter_config.json but no adapter_model.safetensors/.bin", ref)
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=True)


def lora_module_names(keys: Sequence[str]) -> list[str]:
    """Module paths (relative to the base model) that the adapter weights belong to."""
    names = set()
    for key in keys:
        rest = key[len(_PEFT_PREFIX):] if key.startswith(_PEFT_PREFIX) else key
        match = re.match(r"^(.*)\.lora_(?:A|B|embedding_A|embedding_B|magnitude_vector)\b", rest)
        if match:
            names.add(match.group(1))
    return sorted(names)


def attach_lora(model: Any, adapter_ref: str, *, key_mapping: dict[str, str] | None = None) -> Any:
    """Wrap ``model`` in a peft model carrying the adapter at ``adapter_ref``; every weight must land.

    The LoRA modules are created for exactly the modules the (remapped) adapter has weights for,
    so a rewritten module path can never leave an adapter weight unused without an error.
    """
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    config_path = local_or_hub_file(adapter_ref, "adapter_config.json")
    if config_path is None:
        raise InvalidInputError("not a LoRA adapter (no adapter_config.json)", adapter_ref)
    raw = json.loads(config_path.read_text(encoding="utf-8"))
    if raw.get("peft_type", "LORA") != "LORA":
        raise InvalidInputError(f"unsupported adapter type {raw.get('peft_type')!r} (only LoRA)", str(config_path))
    state = remap_adapter_keys(read_adapter_weights(adapter_ref), key_mapping)
    modules = lora_module_names(list(state))
    if not modules:
        raise LoraLoadError(f"{adapter_ref}: the adapter file holds no LoRA weights")
    present = {name for name, _ in model.named_modules()}
    absent = [m for m in modules if m not in present]
    if absent:
        raise LoraLoadError(f"{adapter_ref}: {len(absent)} LoRA module(s) not found in the model "
                            f"(weights would be dropped): {', '.join(absent[:20])}" + (" ..." if len(absent) > 20 else ""))
    known = set(LoraConfig.__dataclass_fields__)
    kwargs = {k: v for k, v in raw.items() if k in known and k not in ("target_modules", "base_model_name_or_path",
                                                                          "revision", "task_type", "peft_type",
                                                                          "auto_mapping", "inference_mode",
                                                                          "layers_to_transform", "layers_pattern",
                                                                          "exclude_modules", "modules_to_save")}
    config = LoraConfig(**kwargs, target_modules=modules, inference_mode=True)
    import warnings

    with warnings.catch_warnings():  # peft calls a transformers API deprecated in 5.x: not the user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, config)
    expected = set(get_peft_model_state_dict(peft_model))
    given = set(state)
    unloaded, unset = sorted(given - expected), sorted(expected - given)
    if unloaded or unset:
        lines = [f"{adapter_ref}: LoRA adapter does not match the model"]
        if unloaded:
            lines.append(f"  {len(unloaded)} adapter weight(s) left unloaded: {', '.join(unloaded[:20])}")
        if unset:
            lines.append(f"  {len(unset)} LoRA weight(s) of the model without a value: {', '.join(unset[:20])}")
        raise LoraLoadError("\n".join(lines))
    result = set_peft_model_state_dict(peft_model, state)
    leftover = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if leftover:
        raise LoraLoadError(f"{adapter_ref}: {len(leftover)} adapter weight(s) left unloaded: {', '.join(leftover[:20])}")
    return peft_model


# ----------------------------------------------------------------------------- the model wrapper

@dataclass
class VLM(TextGenerator):
    """A loaded Qwen-VL model with its processor. ``generate`` (one ``model.generate`` call) is for
    scripts and tests; the pipeline wraps it in a generation backend (fast or reference schedule)."""

    model: Any
    processor: Any
    device: str
    family: str
    checkpoint: str = ""
    base_model: str = ""
    adapter: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    def build_inputs(self, images: Sequence[Image.Image], prompts: Sequence[str], *,
                     frame: tuple[int, int] | None = VLM_FRAME, to_device: bool = True) -> Any:
        """Chat-formatted, left-padded model inputs for one image + one user prompt per row
        (on the model's device, or left on the CPU with ``to_device=False``)."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        resized = [to_vlm_frame(img, frame) for img in images]
        texts = []
        for prompt in prompts:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            texts.append(self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        self.tokenizer.padding_side = "left"
        inputs = self.processor(text=texts, images=resized, padding=True, return_tensors="pt")
        return inputs.to(self.device) if to_device else inputs

    def answers(self, images: Sequence[Image.Image], prompts: Sequence[str], sampling: Sampling,
                seeds: Sequence[int | None], logits_processor: LogitsProcessorFactory | None = None,
                ) -> Iterator[Answers]:
        """All rows in one ``model.generate`` call, seeded by the first row's seed (what
        ``generate`` does; the pipeline runs the schedules of :mod:`reasonseg_x.star.generation`)."""
        from reasonseg_x.star.generation.reference import generate_once

        started = time.perf_counter()
        texts = generate_once(self, images, prompts, sampling, seeds[0] if seeds else None,
                              logits_processor() if logits_processor is not None else None)
        yield Answers(list(range(len(images))), list(texts), time.perf_counter() - started)


def from_pretrained_or_error(what: str, ref: str, load: Any, *args: Any, **kwargs: Any) -> Any:
    """``load(ref, ...)`` (a transformers ``from_pretrained``), with the usual failures (not a model
    folder, wrong model type, missing files, unknown Hub id) as one clear line naming ``ref``."""
    if not Path(ref).expanduser().is_dir():
        ref, sub = hub_parts(ref)
        if sub:
            kwargs = {**kwargs, "subfolder": sub}
    try:
        return load(ref, *args, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if len(first) > 300:
            first = first[:300] + " ..."
        raise InvalidInputError(f"cannot load the {what}: {first}", ref) from None


def _is_adapter(ref: str) -> bool:
    return local_or_hub_file(ref, "adapter_config.json") is not None


def _has_processor(ref: str) -> bool:
    return any(local_or_hub_file(ref, name) is not None
               for name in ("processor_config.json", "preprocessor_config.json"))


#: the base model of each published StAR checkpoint (their adapter configs name training paths)
KNOWN_BASE_MODELS: dict[str, str] = {
    "StAR-7B": "Qwen/Qwen2.5-VL-7B-Instruct",
    "StAR-8B": "Qwen/Qwen3-VL-8B-Instruct",
    "StAR-32B": "Qwen/Qwen3-VL-32B-Instruct",
}
#: subfolders of the published StAR repos: the LoRA adapter, and the processor (with the config)
ADAPTER_SUBFOLDER = "lora_adapter"
PROCESSOR_SUBFOLDER = "huggingface"


def _child(ref: str, name: str) -> str:
    folder = Path(ref).expanduser()
    return str(folder / name) if folder.is_dir() else f"{ref.rstrip('/')}/{name}"


@dataclass(frozen=True)
class CheckpointLayout:
    """Where the parts of a checkpoint are: the model to load, the adapter on it, the processor."""

    base: str
    adapter: str | None
    processor: str


def resolve_checkpoint(checkpoint: str, base_model: str | None = None) -> CheckpointLayout:
    """The parts of ``checkpoint``: a full model folder/repo, a LoRA adapter folder/repo, or a
    published StAR repo (``lora_adapter/`` + ``huggingface/`` inside, as ``sj9909/StAR-7B``).

    The base of an adapter is ``base_model``, else the adapter's ``base_model_name_or_path`` when
    that folder exists here, else the known base of a published StAR checkpoint, else the
    adapter's ``base_model_name_or_path`` as a Hub id.
    """
    adapter: str | None = None
    if _is_adapter(checkpoint):
        adapter = checkpoint
    elif local_or_hub_file(checkpoint, f"{ADAPTER_SUBFOLDER}/adapter_config.json") is not None:
        adapter = _child(checkpoint, ADAPTER_SUBFOLDER)
    if adapter is None:
        if base_model:
            raise InvalidInputError("base_model was given but the checkpoint is not a LoRA adapter", checkpoint)
        return CheckpointLayout(checkpoint, None, checkpoint)
    config_path = local_or_hub_file(adapter, "adapter_config.json")
    assert config_path is not None
    named = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    known = KNOWN_BASE_MODELS.get(Path(checkpoint.rstrip("/")).name)
    if base_model:
        base = base_model
    elif named and Path(named).expanduser().is_dir():
        base = named
    else:
        base = known or named
    if not base:
        raise InvalidInputError("LoRA adapter names no base model: pass base_model=...", str(config_path))
    published_processor = _child(checkpoint, PROCESSOR_SUBFOLDER)
    if _has_processor(adapter):
        processor = adapter
    elif adapter != checkpoint and _has_processor(published_processor):
        processor = published_processor
    else:
        processor = base
    return CheckpointLayout(base, adapter, processor)


def load_vlm(checkpoint: str, *, base_model: str | None = None, device: str = "auto", dtype: str | Any = "auto",
             merge_lora: bool = False, attn_implementation: str | None = None,
             key_mapping: dict[str, str] | None = None) -> VLM:
    """Load a Qwen-VL checkpoint (full model, LoRA adapter, or a published StAR repo) from a Hub id
    or a local folder; see :func:`resolve_checkpoint` for how the base model and processor are found."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    started = time.perf_counter()
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    layout = resolve_checkpoint(checkpoint, base_model)
    base, adapter = layout.base, layout.adapter
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if device.startswith("cuda"):
        kwargs["device_map"] = "auto" if device == "cuda" else device
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = from_pretrained_or_error("vision-language model (a Qwen-VL checkpoint or LoRA adapter)", base,
                                     AutoModelForImageTextToText.from_pretrained, **kwargs, **hub_load_kwargs(base))
    if not device.startswith("cuda"):
        model = model.to(device)
    if adapter is not None:
        model = attach_lora(model, adapter, key_mapping=key_mapping)
        if merge_lora:
            model = model.merge_and_unload()
    model.eval()
    processor = from_pretrained_or_error("processor", layout.processor, AutoProcessor.from_pretrained,
                                         **hub_load_kwargs(layout.processor))
    processor.tokenizer.padding_side = "left"
    config = model.config if hasattr(model, "config") else model.base_model.model.config
    generation = getattr(model, "generation_config", None)
    inherited = {k: getattr(generation, k, None) for k in ("do_sample", "temperature", "top_p", "top_k",
                                                            "repetition_penalty")} if generation else {}
    return VLM(model=model, processor=processor, device=device, family=model_family_of(config),
               checkpoint=checkpoint, base_model=base, adapter=adapter,
               info={"load_s": time.perf_counter() - started, "dtype": str(torch_dtype).replace("torch.", ""),
                     "merged": bool(adapter and merge_lora), "generation_config": inherited})
