"""``reasonseg-x eval``, ``merge`` and ``models``: run a model over a split, merge shards, list models.

A thin layer: options are parsed here, the work is done by :mod:`reasonseg_x.runner` and
:mod:`reasonseg_x.predictors.registry`. Heavy imports stay inside the command functions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from reasonseg_x.cli._common import user_errors

__all__ = ["register"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def eval_command(
    model: str = typer.Option(..., "--model", "-m", help="Model name (see `reasonseg-x models`), predictions:PATH, "
                              "or an importable package.module:Factory."),
    model_arg: List[str] = typer.Option([], "--model-arg", "-a", help="Model argument KEY=VALUE (repeatable)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: predictions.jsonl, run.json, metrics.json, ..."),
    data: str = typer.Option("mini", "--data", "-d", help="Data source: mini, synth:N[:SEED], a folder, a Hub id."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split (default: the source's test/val)."),
    protocol: str = typer.Option("star", "--protocol", "-p", help="star, visionreasoner (segzero), lisa, gres."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Queries per predict() call "
                                             "(default: the model's preference, else 8); halved on out-of-memory."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Only the first N samples of the split."),
    seed: int = typer.Option(0, "--seed", help="Seeds python/numpy/torch RNGs and the bootstrap intervals."),
    num_shards: Optional[int] = typer.Option(None, "--num-shards", help="Split the samples into K disjoint shards..."),
    shard_id: Optional[int] = typer.Option(None, "--shard-id", help="...and run shard I (0-based) into OUT/shard-I-of-K."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log lines instead of a progress bar."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard this folder's earlier predictions and start over."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Recompute the samples recorded as 'error'."),
    strict: bool = typer.Option(False, "--strict", help="A missing prediction is an error, not a failure."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip malformed data rows (counted)."),
) -> None:
    """Run a model over a split, resumably, then score it like `reasonseg-x score` (plus run.json).

    Rerun the same command after a crash to resume. Under torchrun / accelerate launch each rank
    runs one shard into OUT/shard-<rank>-of-<world> and rank 0 merges and scores into OUT.
    """
    with user_errors():
        from reasonseg_x.errors import InvalidInputError
        from reasonseg_x.predictors.registry import parse_model_args
        from reasonseg_x.runner.distributed import detect
        from reasonseg_x.runner.evaluate import EvalConfig

        if (num_shards is None) != (shard_id is None) and not (num_shards == 1 and shard_id is None):
            raise InvalidInputError("--num-shards and --shard-id go together (e.g. --num-shards 4 --shard-id 0)")
        config = EvalConfig(model=model, out=out, model_args=parse_model_args(model_arg), data=data, split=split,
                            protocol=protocol, batch_size=batch_size, limit=limit, seed=seed,
                            num_shards=num_shards or 1, shard_id=shard_id or 0, fresh=fresh, strict=strict,
                            skip_invalid=skip_invalid, retry_errors=retry_errors)
        env = detect()
        try:
            if env is not None:
                if num_shards is not None and num_shards > 1:
                    raise InvalidInputError(f"launched with WORLD_SIZE={env.world_size}: the ranks are the shards; "
                                            "drop --num-shards/--shard-id")
                _eval_distributed(config, env, quiet=quiet)
            else:
                _eval_single(config, quiet=quiet)
        except KeyboardInterrupt:
            _stderr(f"interrupted: the predictions written so far are kept in {out}; rerun the same command to resume")
            raise typer.Exit(code=130) from None


def _eval_single(config: Any, *, quiet: bool, source: Any = None) -> None:
    from reasonseg_x.runner.evaluate import run_eval
    from reasonseg_x.runner.progress import make_progress_factory

    outcome = run_eval(config, progress=make_progress_factory(quiet=quiet), source=source)
    _summarise(outcome)
    if outcome.result is not None:
        _print_result(outcome.result, outcome.run_dir, quiet=quiet)


def _eval_distributed(config: Any, env: Any, *, quiet: bool, source: Any = None) -> None:
    """Each rank runs its shard into OUT/shard-<rank>-of-<world>; rank 0 merges after a barrier."""
    from reasonseg_x.runner.distributed import barrier, setup, teardown
    from reasonseg_x.runner.evaluate import run_eval
    from reasonseg_x.runner.merge import merge_runs
    from reasonseg_x.runner.progress import make_progress_factory
    from reasonseg_x.runner.shards import shard_dirname

    use_torch = setup(env)
    try:
        config.num_shards, config.shard_id, config.score = env.world_size, env.rank, False
        progress = make_progress_factory(quiet=quiet or not env.is_main)
        outcome = run_eval(config, progress=progress, source=source)
        _summarise(outcome, prefix=f"[rank {env.rank}/{env.world_size}] ")
        shard_dirs = [Path(config.out) / shard_dirname(i, env.world_size) for i in range(env.world_size)]
        barrier(env, shard_dirs, use_torch=use_torch)
        if env.is_main:
            merged = merge_runs(shard_dirs, config.out, source=outcome.source, protocol=config.protocol,
                                strict=config.strict, seed=config.seed, fresh=config.fresh)
            _stderr(f"merged {len(merged.parts)} shards into {merged.predictions_path}")
            _print_result(merged.result, merged.out_dir, quiet=quiet)
    finally:
        teardown()


def _summarise(outcome: Any, prefix: str = "") -> None:
    stats = outcome.stats
    n = outcome.run_info.get("counts", {}).get("written", 0)
    if stats is None:
        _stderr(f"{prefix}all {n} predictions were already in {outcome.predictions_path}; nothing to run")
    else:
        resumed = f" (resumed after {outcome.already_done})" if outcome.already_done else ""
        _stderr(f"{prefix}predicted {stats.predicted} samples{resumed} -> {outcome.predictions_path}")
        if stats.errors:
            _stderr(f"{prefix}{stats.errors} sample(s) failed and were recorded as 'error' (first: "
                    f"{stats.first_errors[0]}); rerun with --retry-errors to recompute them")
        if stats.oom_splits:
            _stderr(f"{prefix}out of memory {stats.oom_splits} time(s); batch size now {stats.batch_size}")


def _print_result(result: Any, out_dir: Path, *, quiet: bool) -> None:
    from reasonseg_x.evaluators.report import print_table

    print_table(result)
    _stderr(f"wrote {Path(out_dir) / 'metrics.json'}, per_sample.jsonl, report.md, run.json")


def merge_command(
    dirs: List[Path] = typer.Argument(..., help="Shard run folders (or a folder holding shard-<i>-of-<k>/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the merged predictions and scores."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source (default: the one in run.json)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", "-p", help="Scoring protocol (default: the runs')."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Bootstrap seed (default: the runs')."),
    strict: bool = typer.Option(False, "--strict", help="A missing prediction is an error."),
    fresh: bool = typer.Option(False, "--fresh", help="Replace a merge of a different run in --out."),
) -> None:
    """Merge shard outputs (checking identity, overlaps and coverage), then score."""
    with user_errors():
        from reasonseg_x.runner.merge import merge_runs

        outcome = merge_runs(dirs, out, data=data, protocol=protocol, strict=strict, seed=seed, fresh=fresh)
        _stderr(f"merged {len(outcome.parts)} shards into {outcome.predictions_path}")
        _print_result(outcome.result, outcome.out_dir, quiet=False)


def models_command(
    name: Optional[str] = typer.Argument(None, help="Show one model's arguments in detail."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the available models (built-in and plugins) with their arguments. Imports no model."""
    with user_errors():
        from dataclasses import asdict

        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from reasonseg_x.errors import InvalidInputError
        from reasonseg_x.predictors.registry import list_predictors

        specs = list_predictors()
        if name is not None:
            specs = [s for s in specs if s.name == name]
            if not specs:
                raise InvalidInputError(f"unknown model {name!r}; known: {', '.join(s.name for s in list_predictors())}")
        if as_json:
            print(json.dumps([asdict(s) for s in specs], indent=2, default=str))
            return
        console = Console()
        if name is not None:
            spec = specs[0]
            console.print(f"[bold]{escape(spec.name)}[/bold]  {escape(spec.description)}")
            console.print(f"factory: {spec.factory}   origin: {spec.origin}"
                          + escape(f"   needs: pip install 'reasonseg-x[{spec.requires}]'" if spec.requires else ""))
            if spec.load_error:
                console.print(f"[red]failed to load: {escape(spec.load_error)}[/red]")
            table = Table("argument", "type", "default", "help")
            for arg in spec.args:
                table.add_row(arg.name, arg.type, "(required)" if arg.required else repr(arg.default),
                              escape(arg.help + (f" [{'|'.join(arg.choices)}]" if arg.choices else "")))
            console.print(table)
            if spec.path_arg:
                console.print(f"usage: --model {spec.name}:{spec.path_arg.upper()}")
            return
        table = Table("model", "description", "arguments (--model-arg KEY=VALUE)", title="reasonseg-x models")
        for spec in specs:
            args = ", ".join(f"{a.name}" + ("" if a.required else f"={a.default}") for a in spec.args)
            desc = escape(spec.description) if not spec.load_error else f"[red]failed to load: {escape(spec.load_error)}[/red]"
            label = spec.name + (f":{spec.path_arg.upper()}" if spec.path_arg else "")
            if spec.origin != "built-in":
                desc += f" [dim]({escape(spec.origin)})[/dim]"
            elif spec.requires:
                desc += f" [dim](extra: {spec.requires})[/dim]"
            table.add_row(label, desc, escape(args) or "-")
        console.print(table)
        console.print("Details: reasonseg-x models NAME. Plugins register in the entry-point group "
                      "'reasonseg_x.predictors'.")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("merge")(merge_command)
    app.command("models")(models_command)
