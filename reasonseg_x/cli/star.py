"""``reasonseg-x star export``: a StAR checkpoint in the form serving engines load (``vllm serve DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reasonseg_x.cli._common import user_errors

star_app = typer.Typer(help="StAR checkpoints: export for serving engines, or a tiny random one to try the "
                            "pipeline.", no_args_is_help=True)


@star_app.command("export")
def export_command(
    checkpoint: str = typer.Option("sj9909/StAR-7B", "--checkpoint", "-c",
                                   help="A published StAR repo or a LoRA adapter (Hub id or folder)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (then: vllm serve OUT)."),
    base_model: Optional[str] = typer.Option(None, "--base-model", help="Base VLM of the adapter (default: the known one)."),
    adapter: bool = typer.Option(False, "--adapter",
                                 help="Write the adapter with today's key layout instead of the merged model "
                                      "(then: vllm serve BASE --enable-lora --lora-modules star=OUT)."),
    dtype: str = typer.Option("bfloat16", "--dtype", help="Weights of the merged model: bfloat16, float16, float32."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
) -> None:
    """Write the merged model (or the remapped adapter) plus processor files for vLLM / SGLang."""
    with user_errors():
        from reasonseg_x.star.device import import_torch
        from reasonseg_x.star.export import export_checkpoint

        import_torch()  # the one-line "install the models extra" error on a core install
        result = export_checkpoint(checkpoint, out, base_model=base_model, form="adapter" if adapter else "merged",
                                   dtype=dtype, overwrite=overwrite)
        typer.echo(f"wrote the {result.form} {'adapter' if adapter else 'model'} of {checkpoint} "
                   f"(base {result.base_model}) to {result.out}: {', '.join(result.files)}")
        if adapter:
            typer.echo(f"serve it: vllm serve {result.base_model} --enable-lora --lora-modules star={result.out} "
                       "--max-lora-rank 64")
        else:
            typer.echo(f"serve it: vllm serve {result.out} --served-model-name star")


@star_app.command("tiny-checkpoint")
def tiny_checkpoint_command(
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the tiny model, adapter and SAM 2."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights."),
) -> None:
    """Write a tiny random StAR and print the eval command that runs it: --model star in seconds on a CPU.

    Qwen2.5-VL + LoRA + SAM 2, a few MB: the whole pipeline before spending GPU hours. Its answers
    are random, so every sample is a parse error and the scores are zero."""
    with user_errors():
        import shlex

        from reasonseg_x.errors import InvalidInputError
        from reasonseg_x.output_paths import prepare_folder
        from reasonseg_x.star.device import import_torch
        from reasonseg_x.star.tiny import build_tiny_star

        import_torch()  # the one-line "install the models extra" error on a core install
        if out.is_dir() and any(out.iterdir()):
            raise InvalidInputError("the folder is not empty; choose a new --out", str(out))
        folder = prepare_folder(out, "--out")
        import warnings

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a few MB: no bars, no deprecation chatter
        hf_logging.set_verbosity_error()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiny = build_tiny_star(folder, seed=seed)
        command = ["reasonseg-x", "eval", *tiny.eval_args(), "--data", "mini", "--limit", "2",
                   "--out", str(tiny.root / "run")]
        typer.echo(f"wrote a tiny random StAR to {tiny.root}: {tiny.base.name}/ (base VLM), "
                   f"{tiny.adapter.name}/ (LoRA adapter), {tiny.sam2.name}/ (SAM 2)")
        typer.echo("run it (drop --limit for the whole split):")
        typer.echo("  " + shlex.join(command))


def register(app: typer.Typer) -> None:
    app.add_typer(star_app, name="star")
