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
from typer.core import TyperCommand

from reasonseg_x.cli._common import user_errors

__all__ = ["register"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def eval_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name (see `reasonseg-x models`; "
                                        "`oracle` checks the pipeline), predictions:PATH, or an importable "
                                        "package.module:Factory.", show_default=False),
    model_arg: List[str] = typer.Option([], "--model-arg", "-a", help="Model argument KEY=VALUE (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder: predictions.jsonl, run.json, "
                                       "metrics.json, ... [default: runs/<model>-<data>[-<split>], printed at start]",
                                       show_default=False),
    data: str = typer.Option("mini", "--data", "-d", help="Data source: mini, synth:N[:SEED], a folder, a Hub id."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split (default: the source's test/val)."),
    protocol: str = typer.Option("star", "--protocol", help="star, visionreasoner (segzero), lisa, gres."),
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
    open_taxonomy: bool = typer.Option(False, "--open-taxonomy", help="Accept reasoning types the taxonomy does not "
                                       "know (kept as their own groups) instead of stopping."),
) -> None:
    """Run a model over a split, resumably, then score it like `reasonseg-x score` (plus run.json).

    After a crash or a kill, rerun the same command: it resumes where it stopped.

    Under torchrun / accelerate launch, rank R runs shard R into OUT/shard-R-of-N; rank 0 merges and scores into OUT.
    """
    with user_errors(output=out):
        from reasonseg_x.errors import InvalidInputError, WriteError
        from reasonseg_x.predictors.registry import bind_arguments, parse_model_args
        from reasonseg_x.runner.distributed import detect
        from reasonseg_x.runner.evaluate import EvalConfig, resolve_out

        if model is None:
            raise InvalidInputError("no --model given: try `reasonseg-x eval --model oracle` (the ground truth, a "
                                    "check of the whole pipeline), or list the models with `reasonseg-x models`")
        if num_shards is not None and num_shards < 1:
            raise InvalidInputError(f"--num-shards must be >= 1, got {num_shards}")
        if (num_shards is None) != (shard_id is None) and not (num_shards == 1 and shard_id is None):
            raise InvalidInputError("--num-shards and --shard-id go together (e.g. --num-shards 4 --shard-id 0)")
        env = detect()
        if env is not None and num_shards is not None and num_shards > 1:
            raise InvalidInputError(f"launched with WORLD_SIZE={env.world_size}: the ranks are the shards; "
                                    "drop --num-shards/--shard-id")
        config = EvalConfig(model=model, out=out, model_args=parse_model_args(model_arg), data=data, split=split,
                            protocol=protocol, batch_size=batch_size, limit=limit, seed=seed,
                            num_shards=num_shards or 1, shard_id=shard_id or 0, fresh=fresh, strict=strict,
                            skip_invalid=skip_invalid, open_taxonomy=open_taxonomy, retry_errors=retry_errors)
        bound = bind_arguments(config.model, config.model_args)
        config.out = resolve_out(config, bound)
        if out is None and (env is None or env.is_main):
            _stderr(f"run folder: {config.out} (the default for this model and data; --out chooses another)")
        _terminate_like_ctrl_c()
        try:
            if env is not None:
                _eval_distributed(config, env, quiet=quiet, bound=bound)
            else:
                _eval_single(config, quiet=quiet, bound=bound)
        except KeyboardInterrupt:
            _stderr(_interrupted_message(Path(config.out)))
            raise typer.Exit(code=130) from None
        except WriteError as exc:
            kept = (f"the predictions written so far are kept in {config.out}, and rerunning the same command "
                    "resumes" if _kept_predictions(Path(config.out)) else "no prediction was written yet")
            raise exc.with_note(kept) from None


def _kept_predictions(out: Path) -> bool:
    """Whether the run folder (or one of its shards) holds at least one complete prediction."""
    from reasonseg_x.runner.store import holds_predictions

    return any(holds_predictions(p) for p in (out / "predictions.jsonl", *out.glob("shard-*-of-*/predictions.jsonl")))


def _interrupted_message(out: Path) -> str:
    """What Ctrl-C kept: the predictions written so far, or nothing (stopped while the data was prepared)."""
    if not _kept_predictions(out):
        return ("interrupted before any prediction was written: nothing was kept; rerun the same command to "
                "start")
    return f"interrupted: the predictions written so far are kept in {out}; rerun the same command to resume"


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (a cluster's preemption or time limit, torchrun stopping its workers) ends the run as
    Ctrl-C does: run.json says ``interrupted`` and the message says how to resume."""
    import signal
    import threading

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _eval_single(config: Any, *, quiet: bool, source: Any = None, bound: Any = None) -> None:
    from reasonseg_x.runner.evaluate import run_eval
    from reasonseg_x.runner.progress import make_progress_factory

    outcome = run_eval(config, progress=make_progress_factory(quiet=quiet), source=source, bound=bound)
    _summarise(outcome)
    if outcome.result is not None:
        _stop_if_nothing_predicted(outcome.result, outcome.run_dir, outcome.predictions_path)
        _print_result(outcome.result, outcome.run_dir)


#: ``eval``/``merge`` exit status when the run finished but not one sample could be predicted
EXIT_NOTHING_PREDICTED = 1


def _stop_if_nothing_predicted(result: Any, out_dir: Path, predictions: Path) -> None:
    """Every sample recorded as 'error' (an endpoint that is down, a model that fails on every input):
    a table of zeros would read as a score, so say why instead and exit 1 (the files are written)."""
    from reasonseg_x.runner.store import first_error, read_stored_lines

    counts = result.metrics.get("counts") or {}
    n = counts.get("n", 0)
    if not n or counts.get("error", 0) != n:
        return
    first = first_error(read_stored_lines(predictions)) if Path(predictions).is_file() else None
    _stderr(f"error: no sample could be predicted: all {n} are recorded as 'error'"
            + (f" (first: {first})" if first else "")
            + f"; the scores in {out_dir} count them as failures. Fix the cause, then rerun the same command "
            "with --retry-errors")
    raise typer.Exit(code=EXIT_NOTHING_PREDICTED)


def _eval_distributed(config: Any, env: Any, *, quiet: bool, source: Any = None, bound: Any = None) -> None:
    """Each rank runs its shard into OUT/shard-<rank>-of-<world>; rank 0 merges after a barrier."""
    from reasonseg_x.runner.distributed import run_distributed
    from reasonseg_x.runner.progress import make_progress_factory

    merged = run_distributed(config, env, progress=make_progress_factory(quiet=quiet or not env.is_main),
                             source=source, bound=bound,
                             on_shard=lambda outcome: _summarise(outcome, prefix=f"[rank {env.rank}/{env.world_size}] "))
    if merged is not None:
        _stderr(f"merged {len(merged.parts)} shards into {merged.predictions_path}")
        _stop_if_nothing_predicted(merged.result, merged.out_dir, merged.predictions_path)
        _print_result(merged.result, merged.out_dir)


def _summarise(outcome: Any, prefix: str = "") -> None:
    stats = outcome.stats
    n = outcome.run_info.get("counts", {}).get("written", 0)
    if stats is None:
        _stderr(f"{prefix}all {n} predictions were already in {outcome.predictions_path}; nothing to run")
    else:
        resumed = f" (resumed after {outcome.already_done})" if outcome.already_done else ""
        _stderr(f"{prefix}predicted {stats.predicted} samples{resumed} -> {outcome.predictions_path}")
        failed = stats.statuses.get("error", 0)
        if failed:
            _stderr(f"{prefix}{failed} sample(s) failed and were recorded as 'error' (first: "
                    f"{stats.first_errors[0]}); rerun with --retry-errors to recompute them")
        if stats.declared_missing:
            _stderr(f"{prefix}{len(stats.declared_missing)} sample(s) have no prediction (e.g. "
                    f"{stats.declared_missing[0]!r}): nothing written for them, scored as missing")
        if stats.oom_splits:
            _stderr(f"{prefix}out of memory {stats.oom_splits} time(s); batch size now {stats.batch_size}")
    errors = outcome.run_info.get("counts", {}).get("statuses", {}).get("error", 0)
    if errors and (stats is None or stats.statuses.get("error", 0) < errors):
        _stderr(f"{prefix}{errors} sample(s) in {outcome.predictions_path} are recorded as 'error'; "
                "rerun with --retry-errors to recompute them")
    skipped = list(getattr(outcome.source, "skipped", None) or [])
    if skipped and outcome.result is None:  # otherwise the score table lists them
        first = skipped[0]
        _stderr(f"{prefix}skipped {len(skipped)} bad data row(s) (--skip-invalid), left out of the run and the "
                f"scores; first: {first.where}: {first.reason}")


def _print_result(result: Any, out_dir: Path, *, table: bool = True) -> None:
    from reasonseg_x.evaluators.report import print_table

    if table:
        print_table(result)
    from reasonseg_x.runner.record import RUN_FILE

    names = [n for n in ("per_sample.jsonl", "report.md", "chart.png", "worst.png", RUN_FILE)
             if (Path(out_dir) / n).exists()]
    _stderr(f"wrote {Path(out_dir) / 'metrics.json'}, {', '.join(names)}")


def merge_command(
    dirs: List[Path] = typer.Argument(..., metavar="DIR", help="Shard run folders, or the folder holding "
                                      "their shard-<i>-of-<k>/ subfolders."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the merged predictions and scores "
                                       "(default: the shards' parent folder).", show_default=False),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source (default: the one in run.json)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Scoring protocol (default: the runs')."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Bootstrap seed (default: the runs')."),
    strict: bool = typer.Option(False, "--strict", help="A missing prediction is an error."),
    fresh: bool = typer.Option(False, "--fresh", help="Replace a merge of a different run in --out."),
    open_taxonomy: bool = typer.Option(False, "--open-taxonomy", help="Accept unknown reasoning types "
                                       "(default: as the shards were run)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print the table."),
) -> None:
    """Merge shard outputs (checking identity, overlaps and coverage), then score."""
    with user_errors(output=out):
        from reasonseg_x.runner.merge import default_merge_out, merge_runs

        if out is None:
            out = default_merge_out(dirs)
            _stderr(f"merging into {out} (the shards' parent folder; --out chooses another)")
        outcome = merge_runs(dirs, out, data=data, protocol=protocol, strict=strict, seed=seed, fresh=fresh,
                             open_taxonomy=True if open_taxonomy else None)
        _stderr(f"merged {len(outcome.parts)} shards into {outcome.predictions_path}")
        _stop_if_nothing_predicted(outcome.result, outcome.out_dir, outcome.predictions_path)
        _print_result(outcome.result, outcome.out_dir, table=not quiet)


def models_command(
    name: Optional[str] = typer.Argument(None, help="Show one model's arguments in detail."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the available models (built-in and plugins) with their arguments. Imports no model."""
    with user_errors():
        from dataclasses import asdict

        from reasonseg_x.predictors.registry import canonical_name, list_predictors, unknown_model

        specs = list_predictors()
        if name is not None:
            wanted = canonical_name(name.partition(":")[0], [s.name for s in specs])
            chosen = [s for s in specs if s.name == wanted]
            if not chosen:
                raise unknown_model(name, [s.name for s in specs])
            specs = chosen
        if as_json:
            print(json.dumps([asdict(s) for s in specs], indent=2, default=str))
        elif name is not None:
            print("\n".join(_describe_model(specs[0], _width())))
        else:
            width = _width()
            for spec in specs:
                print("\n".join(_model_summary(spec, width)))
            print("\nRun one: reasonseg-x eval --model NAME [--model-arg KEY=VALUE ...]; "
                  "details: reasonseg-x models NAME.\nPlugins register in the entry-point group 'reasonseg_x.predictors'.")


def _width() -> int:
    import shutil

    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))


def _model_summary(spec: Any, width: int) -> list[str]:
    """One line of description (wrapped only when the terminal is narrow), then the arguments."""
    import textwrap

    label = spec.name + (f":{spec.path_arg.upper()}" if spec.path_arg else "")
    text = f"failed to load: {spec.load_error}" if spec.load_error else spec.description
    if spec.origin != "built-in":
        text += f" [{spec.origin}]"
    elif spec.requires:
        text += f" [extra: {spec.requires}]"
    lines = textwrap.wrap(text, width, initial_indent=f"{label:<18} ", subsequent_indent=" " * 19,
                          break_on_hyphens=False) or [label]
    args = ", ".join(a.name + ("" if a.required else f"={a.default}") for a in spec.args if a.name != spec.path_arg)
    if args:
        lines += textwrap.wrap(args, width, initial_indent=" " * 19 + "args: ", subsequent_indent=" " * 25,
                               break_on_hyphens=False)
    return lines


def _describe_model(spec: Any, width: int) -> list[str]:
    import textwrap

    lines = [f"{spec.name}: {spec.description}"]
    if spec.load_error:
        lines.append(f"  failed to load: {spec.load_error}")
    lines.append(f"  factory: {spec.factory} ({spec.origin})")
    if spec.requires:
        lines.append(f"  install: pip install 'reasonseg-x[{spec.requires}]'")
    usage = f"{spec.name}:{spec.path_arg.upper()}" if spec.path_arg else spec.name
    lines.append(f"  usage:   reasonseg-x eval --model {usage}" + (" [--model-arg KEY=VALUE ...]" if spec.args else ""))
    if spec.args:
        lines.append("  arguments:")
    for arg in spec.args:
        lines.append(f"    {arg.describe()}" + (f"  [{' | '.join(arg.choices)}]" if arg.choices else ""))
        if arg.help:
            lines += textwrap.wrap(arg.help, width, initial_indent=" " * 8, subsequent_indent=" " * 8)
    return lines


def _model_named_in(args: List[str]) -> Optional[str]:
    """The value of ``--model``/``-m`` among raw command-line tokens (any order relative to ``--help``)."""
    for i, token in enumerate(args):
        if token in ("--model", "-m"):
            return args[i + 1] if i + 1 < len(args) else None
        if token.startswith("--model="):
            return token.partition("=")[2]
        if token.startswith("-m") and not token.startswith("--") and len(token) > 2:
            return token[2:]
    return None


class _EvalCommand(TyperCommand):
    """``eval --model NAME --help`` appends that model's arguments, as ``reasonseg-x models NAME`` shows them."""

    def parse_args(self, ctx: Any, args: List[str]) -> List[str]:
        ctx.meta["reasonseg_x.model"] = _model_named_in(list(args))
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super().format_help(ctx, formatter)
        name = ctx.meta.get("reasonseg_x.model")
        if not name:
            return
        from reasonseg_x.predictors.registry import canonical_name, list_predictors, unknown_model

        specs = list_predictors()
        wanted = canonical_name(name.partition(":")[0], [s.name for s in specs])
        chosen = [s for s in specs if s.name == wanted]
        if not chosen:
            typer.echo(f"\n--model {name}: {unknown_model(name, [s.name for s in specs])}")
            return
        typer.echo("\nModel " + "\n".join(_describe_model(chosen[0], _width())))


def register(app: typer.Typer) -> None:
    app.command("eval", cls=_EvalCommand)(eval_command)
    app.command("merge")(merge_command)
    app.command("models")(models_command)
