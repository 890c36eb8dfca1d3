"""``reasonseg-x show``: build the static case viewer of a run (or two runs side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reasonseg_x.cli._common import user_errors


def show(
    run: Path = typer.Argument(..., help="Run folder (of eval or score --out), its predictions.jsonl, or another "
                                         "predictions file (with --data)."),
    run2: Optional[Path] = typer.Argument(None, help="A second run on the same data: shown side by side, sorted "
                                                     "by IoU difference (B - A)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the viewer (index.html, thumbs/, full/)."),
    data: Optional[str] = typer.Option(None, "--data", "-d",
                                       help="Data source (default: the one the run recorded in run.json/metrics.json)."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split (default: the run's)."),
    protocol: Optional[str] = typer.Option(None, "--protocol",
                                           help="Protocol to score a bare predictions file (default: the run's, else star)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Drawing processes (default: CPUs)."),
    thumb: int = typer.Option(320, "--thumb", help="Thumbnail size: longer side in pixels."),
    full: int = typer.Option(1600, "--full", help="Full view size: longer side in pixels (never enlarged)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace what --out holds (another run's viewer, "
                                                              "other files); a viewer of the same runs is rebuilt."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a static case viewer: every sample with its masks, answer and score, worst first."""
    with user_errors(output=out):
        from reasonseg_x.viewer.build import build_viewer

        page = build_viewer(run, out, run2=run2, data=data, split=split, protocol=protocol, workers=workers,
                            thumb_side=thumb, full_side=full, progress=not quiet, overwrite=overwrite,
                            on_note=lambda note: typer.echo(f"note: {note}", err=True))
        typer.echo(f"wrote {page} (open it in a browser; no server needed)")


def register(app: typer.Typer) -> None:
    app.command("show")(show)
