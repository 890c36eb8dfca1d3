"""``reasonseg-x score`` and ``reasonseg-x compare``: thin wrappers over ``reasonseg_x.evaluators``.

Heavy imports happen inside the commands so ``reasonseg-x --help`` stays fast.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from reasonseg_x.cli._common import require_predictions_path, user_errors


def score(
    predictions: Path = typer.Option(..., "--predictions", "-p",
                                     help="Predictions JSONL, a run folder holding predictions.jsonl, a folder of "
                                          "binary <id>.png masks, or reference output_*.json file(s)."),
    data: Optional[str] = typer.Option(None, "--data", "-d",
                                       help="Data source: mini, synth:N, a local folder, a Hub id or known name. "
                                            "Optional for a run folder (its run.json's) and reference "
                                            "output_*.json files."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split to score (default: the source's test split)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="star | visionreasoner (segzero) | lisa | gres "
                                           "(default: a run folder's, else star).", show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Folder for metrics.json, per_sample.jsonl, report.md, chart.png, worst.png."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the scores in --out even though they belong "
                                   "to other predictions."),
    strict: bool = typer.Option(False, "--strict", help="A missing prediction is an error instead of a failure."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Score bad prediction lines as counted failures, and skip malformed "
                                           "data rows (counted, listed by file), instead of stopping."),
    resize: bool = typer.Option(False, "--resize", help="Resize masks of another size to the image (nearest)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    open_taxonomy: bool = typer.Option(False, "--open-taxonomy",
                                       help="Keep unknown reasoning-type labels as their own groups."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print the table."),
) -> None:
    """Score predictions on a split: gIoU / cIoU overall and per reasoning type, with 95% CIs."""
    with user_errors(output=out), contextlib.ExitStack() as held:
        from reasonseg_x.evaluators.reference_outputs import looks_like_reference_outputs, score_reference_outputs

        from reasonseg_x.runner.evaluate import holding_run_folder
        from reasonseg_x.runner.record import open_run_data, recorded_run
        from reasonseg_x.runner.recorded import check_scores_target

        require_predictions_path(predictions)
        run = recorded_run(predictions)
        if run is not None:
            data, split, protocol = _run_options(run, data, split, protocol)
            open_taxonomy = open_taxonomy or run.open_taxonomy
        elif data is None:  # an lmms-eval per-sample log of our tasks records its data (docs/harness.md)
            from reasonseg_x.predictions import harness_origin

            origin = harness_origin(predictions) or {}
            data, split, protocol = origin.get("data"), split or origin.get("split"), protocol or origin.get("protocol")
        protocol = protocol or "star"
        if out is not None and not overwrite:
            check_scores_target(out, run.predictions if run is not None else predictions)
        if out is not None:  # a running eval's folder is refused: its predictions are still being written
            held.enter_context(holding_run_folder(out))
        source = None
        if run is not None and data is not None:  # the samples the run covers, read as the run read them
            source, split = open_run_data(run, data=data, split=split, skip_invalid=skip_invalid,
                                          open_taxonomy=open_taxonomy)
        elif data is not None:
            from reasonseg_x.data.resolve import open_source

            source = open_source(data, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
        reference = looks_like_reference_outputs(predictions)
        if reference:
            result = score_reference_outputs(predictions, protocol=protocol, source=source, split=split,
                                             strict=strict, skip_invalid=skip_invalid, seed=seed,
                                             n_resamples=bootstrap)
        else:
            if source is None:
                from reasonseg_x.errors import InvalidInputError

                raise InvalidInputError("--data is required to score masks (it holds the ground truth)")
            from reasonseg_x.evaluators.api import score_predictions

            result = score_predictions(source, split, predictions, protocol=protocol, strict=strict,
                                       skip_invalid=skip_invalid, resize=resize, seed=seed, n_resamples=bootstrap)
        if out is not None:
            from reasonseg_x.evaluators.api import write_outputs

            write_outputs(result, out, source=None if reference else source)
        if not quiet:
            from reasonseg_x.evaluators.report import print_table

            print_table(result)
            if out is not None:
                written = [n for n in ("per_sample.jsonl", "report.md", "chart.png", "worst.png")
                           if (Path(out) / n).exists()]
                typer.echo(f"wrote {out}/metrics.json, {', '.join(written)}")


def _run_options(run, data: Optional[str], split: Optional[str],
                protocol: Optional[str]) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """--data, --split and --protocol, defaulting to what the run folder's run.json records."""
    from reasonseg_x.runner.recorded import choose_option

    return (choose_option("--data", data, run.data, None, run=run.folder),
            choose_option("--split", split, run.split, None, run=run.folder),
            choose_option("--protocol", protocol, run.protocol, None, run=run.folder))


def compare(
    run_a: Path = typer.Argument(..., help="Scored run folder A (baseline)."),
    run_b: Path = typer.Argument(..., help="Scored run folder B (the challenger); deltas are B - A."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the comparison (.json, else Markdown)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Paired bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print the table."),
) -> None:
    """Paired comparison of two runs on the same data: delta gIoU / cIoU with 95% CI and p-value."""
    with user_errors():
        import json

        from reasonseg_x.evaluators.compare import (compare_runs, load_run, print_comparison,
                                                    render_comparison_markdown)

        result = compare_runs(load_run(run_a), load_run(run_b), n_resamples=bootstrap, seed=seed)
        if out is not None:
            from reasonseg_x.errors import InvalidInputError

            text = (json.dumps(result, indent=2) + "\n" if out.suffix.lower() == ".json"
                    else render_comparison_markdown(result))
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise InvalidInputError(f"cannot write the comparison: {exc.strerror or exc}", str(out)) from None
        if not quiet:
            print_comparison(result)
            if out is not None:
                typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("score")(score)
    app.command("compare")(compare)
