"""``reasonseg-x reward RUN --preset NAME``: what a training reward makes of a run's recorded answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from reasonseg_x.cli._common import user_errors


def reward(
    run: Path = typer.Argument(..., help="Run folder (of eval) or its predictions.jsonl."),
    preset: str = typer.Option("star-stage1", "--preset", "-p",
                               help="star-stage1 | star-stage2 | visionreasoner | segzero | metric."),
    segmenter: str = typer.Option("box", "--segmenter",
                                  help="Masks for the mask terms: box (no weights) or a SAM (sam2.1-hiera-large, ...)."),
    coords: str = typer.Option("qwen2.5", "--coords",
                               help="How answer numbers map to the image: qwen2.5 (840 frame, the runs' default), "
                                    "qwen3, qwen2, qwen3-reference, pixels."),
    no_target: Optional[str] = typer.Option(None, "--no-target",
                                            help="reference | reward-empty (metric: also protocol); default: the "
                                                 "preset's own."),
    device: str = typer.Option("cpu", "--device", help="Device of a SAM segmenter (cpu, cuda, cuda:1)."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Data source (default: the run's)."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split (default: the run's)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="Score the first N samples only."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Score every answer the run recorded: per-term means, share unreadable, correlation with IoU."""
    with user_errors():
        from reasonseg_x.rewards.report import reward_report

        options = {"no_target": no_target} if no_target else {}
        report = reward_report(run, preset, data=data, split=split, segmenter=segmenter, coords=coords, limit=limit,
                               device=device, **options)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
            return
        info = report["reward"]
        typer.echo(f"{info['preset']} on {report['answers']} answers of {report['samples']} samples "
                   f"({report['data']} {report['split']}; coords {info['coords']}, no-target {info['no_target']}, "
                   f"segmenter {info['segmenter']})")
        low, high = info["bounds"]
        typer.echo(f"  total mean {report['total_mean']:.3f}  (range {low:g}..{high:g})")
        for key, value in report["terms"].items():
            typer.echo(f"  {key:<20} {value:.3f}")
        typer.echo(f"  unreadable answers   {report['unreadable_share']:.1%}")
        corr = report["correlation_with_iou"]
        typer.echo(f"  correlation with IoU ({report['protocol']}): "
                   + (f"{corr:+.3f} over {report['correlated_samples']} samples" if corr is not None
                      else "n/a (fewer than two samples, or a constant reward or IoU)"))
        for reason, count in report["reasons"]:
            typer.echo(f"  reason x{count}: {reason}")
        if report["samples_without_answer"]:
            typer.echo(f"  not scored: {report['samples_without_answer']} of {report['samples_covered']} samples have "
                       "no recorded answer text", err=True)
        for where in report["unreadable_lines"][:5]:
            typer.echo(f"  unreadable prediction line: {where}", err=True)
        if len(report["unreadable_lines"]) > 5:
            typer.echo(f"  ... {len(report['unreadable_lines']) - 5} more unreadable lines", err=True)


def register(app: typer.Typer) -> None:
    app.command("reward")(reward)
