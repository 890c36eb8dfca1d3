"""Write a StAR checkpoint in a form serving engines load as is (``vllm serve DIR``, SGLang).

Why: StAR is published as a LoRA adapter saved under transformers 4.51 module paths, with its
processor in a subfolder; an engine wants one folder with weights, config and processor. Two forms:

- ``merged`` (default): the adapter merged into its base (keys remapped and checked exactly as
  in-process, :func:`reasonseg_x.star.vlm.attach_lora`), saved with the processor and the
  generation config: ``vllm serve DIR`` serves StAR.
- ``adapter``: the adapter alone with today's key layout (``model.language_model.layers.N``) and
  the processor: ``vllm serve BASE --enable-lora --lora-modules star=DIR``.

The export is written into a temporary folder beside ``--out`` and swapped in only when it is
complete (:func:`reasonseg_x.atomic.atomic_folder`), so a failed load leaves an old ``--out`` as it
was; an ``--out`` that is (or lies inside, or holds) a folder the export reads is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonseg_x.atomic import atomic_folder
from reasonseg_x.errors import InvalidInputError

__all__ = ["EXPORT_FORMS", "ExportResult", "export_checkpoint"]

EXPORT_FORMS = ("merged", "adapter")


@dataclass(frozen=True)
class ExportResult:
    out: Path
    form: str
    base_model: str
    adapter: str | None
    files: tuple[str, ...]


def _local_folders(checkpoint: str, layout: Any) -> list[Path]:
    """The folders on this machine the export reads from (a Hub id is none)."""
    refs = [checkpoint, layout.base, layout.adapter, layout.processor]
    return [Path(ref).expanduser().resolve() for ref in dict.fromkeys(filter(None, refs))
            if Path(ref).expanduser().is_dir()]


def _check_out(out: Path, overwrite: bool, sources: list[Path]) -> None:
    """Refuse an ``--out`` that would replace what the export reads (the checkpoint, or a folder
    holding it), a file, or a non-empty folder without ``overwrite``; nothing is touched here."""
    from reasonseg_x.output_paths import prepare_folder

    target = out.resolve()
    for source in sources:
        if target == source or source in target.parents:
            raise InvalidInputError(f"--out is the checkpoint folder {source} or inside it; write the export "
                                    "to a folder of its own", str(out))
        if target in source.parents:
            raise InvalidInputError(f"--out holds the checkpoint folder {source}; replacing it would delete the "
                                    "checkpoint. Write the export to a folder of its own", str(out))
    if out.exists() and not out.is_dir():
        raise InvalidInputError("--out must be a folder, but this is a file", str(out))
    prepare_folder(out.parent, "the folder of --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InvalidInputError("the folder is not empty; pass --overwrite to replace it", str(out))


def export_checkpoint(checkpoint: str, out: str | Path, *, base_model: str | None = None, form: str = "merged",
                      dtype: str = "bfloat16", overwrite: bool = False) -> ExportResult:
    """Export ``checkpoint`` (a StAR repo, a LoRA adapter; Hub id or folder) into ``out``."""
    from reasonseg_x.star.vlm import resolve_checkpoint

    if form not in EXPORT_FORMS:
        raise InvalidInputError(f"unknown export form {form!r}; use one of {', '.join(EXPORT_FORMS)}", "form")
    layout = resolve_checkpoint(checkpoint, base_model)
    if layout.adapter is None:
        raise InvalidInputError("not a LoRA adapter: it is a full model already, serve it as is "
                                f"(vllm serve {checkpoint})", checkpoint)
    out = Path(out).expanduser()
    _check_out(out, overwrite, _local_folders(checkpoint, layout))
    # written beside --out and swapped in only once complete: a failed load keeps the old folder
    with atomic_folder(out) as staging:
        if form == "merged":
            _export_merged(checkpoint, layout, staging, dtype)
        else:
            _export_adapter(layout, staging)
    files = tuple(sorted(p.name for p in out.iterdir()))
    return ExportResult(out, form, layout.base, layout.adapter, files)


def _save_processor(layout: Any, out: Path) -> None:
    from transformers import AutoProcessor

    from reasonseg_x.star.vlm import from_pretrained_or_error, hub_load_kwargs

    processor = from_pretrained_or_error("processor", layout.processor, AutoProcessor.from_pretrained,
                                         **hub_load_kwargs(layout.processor))
    processor.save_pretrained(out)


def _export_merged(checkpoint: str, layout: Any, out: Path, dtype: str) -> None:
    from reasonseg_x.star.vlm import load_vlm

    vlm = load_vlm(checkpoint, base_model=layout.base, device="cpu", dtype=dtype, merge_lora=True)
    left = [name for name, _ in vlm.model.named_parameters() if "lora_" in name]
    if left:  # merge_and_unload must leave a plain model: an engine would not know these weights
        raise InvalidInputError(f"{len(left)} LoRA weights survived the merge, e.g. {left[0]}", checkpoint)
    vlm.model.save_pretrained(out)
    vlm.processor.save_pretrained(out)


def _export_adapter(layout: Any, out: Path) -> None:
    from safetensors.torch import save_file

    from reasonseg_x.star.vlm import local_or_hub_file, lora_module_names, read_adapter_weights, remap_adapter_keys

    state = remap_adapter_keys(read_adapter_weights(layout.adapter))
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "adapter_model.safetensors"))
    config_path = local_or_hub_file(layout.adapter, "adapter_config.json")
    assert config_path is not None  # resolve_checkpoint found it
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = layout.base
    # the full paths of the modules the remapped keys name (a 4.51-era regex would no longer match them;
    # a short name like "up_proj" would also match the vision tower's MLPs, which have no LoRA weights)
    config["target_modules"] = lora_module_names(list(state))
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    _save_processor(layout, out)
