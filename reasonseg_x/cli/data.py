"""``reasonseg-x data export`` and ``reasonseg-x data info``: look at a source and re-publish it compactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from reasonseg_x.cli._common import user_errors

data_app = typer.Typer(help="Inspect a data source or export it in the compact, Hub-ready format.",
                       no_args_is_help=True)

_SOURCE_HELP = ("Data source: mini, synth:N[:SEED], a local folder or file (compact, HF parquet, save_to_disk, "
                "LISA), a known name (reasonseg-x, reasonseg, reasonseg-r, muse, mmr) or a Hub id owner/name.")


@data_app.command("export")
def export(
    source: str = typer.Argument(..., help=_SOURCE_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write data/<split>-*.parquet and README.md into."),
    split: Optional[list[str]] = typer.Option(None, "--split", "-s", help="Split(s) to export (default: all)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Leave bad rows out (counted) instead of stopping."),
    open_taxonomy: bool = typer.Option(False, "--open-taxonomy",
                                       help="Keep unknown reasoning-type labels (stored as strings)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace parquet shards already in OUT/data."),
    shard_rows: int = typer.Option(1000, "--shard-rows", min=1, help="Rows per parquet shard."),
    title: str = typer.Option("ReasonSeg-X (compact export)", "--title", help="Title of the dataset card."),
) -> None:
    """Write SOURCE as compact parquet (RLE masks, image bytes) plus a dataset card; loads with datasets."""
    with user_errors(output=out):
        from reasonseg_x.data.compact import write_compact
        from reasonseg_x.data.resolve import open_source
        from reasonseg_x.errors import SourceNotFoundError

        src = open_source(source, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
        names = [src.resolve_split(s) for s in split] if split else src.splits()
        streams, unavailable = {}, {}
        for name in names:
            try:  # a known name opens (downloads) each split here
                streams[name] = src.samples(name)
            except SourceNotFoundError as exc:
                if split or len(names) == 1:
                    raise
                unavailable[name] = str(exc)
        if not streams:
            raise SourceNotFoundError(next(iter(unavailable.values())))
        for name, reason in unavailable.items():
            typer.echo(f"split {name} not available, not exported (--split picks splits): {reason}", err=True)
        counts = write_compact(streams, out, card_title=title, shard_rows=shard_rows, open_taxonomy=open_taxonomy,
                               overwrite=overwrite, description=f"Exported from `{source}` with reasonseg-x.")
        for name, n in counts.items():
            typer.echo(f"{name}: {n} samples")
        if src.skipped:
            typer.echo(f"skipped {len(src.skipped)} invalid row(s):", err=True)
            for row in src.skipped[:20]:
                typer.echo(f"  {row.where}: {row.reason}", err=True)
            if len(src.skipped) > 20:
                typer.echo(f"  ... and {len(src.skipped) - 20} more (`reasonseg-x data info SOURCE --skip-invalid "
                           "--json` lists them all)", err=True)
        typer.echo(f"wrote {out}")


@data_app.command("info")
def info(
    source: str = typer.Argument(..., help=_SOURCE_HELP),
    split: Optional[list[str]] = typer.Option(None, "--split", "-s", help="Split(s) to describe (default: all)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Count bad rows instead of stopping."),
    open_taxonomy: bool = typer.Option(False, "--open-taxonomy", help="Keep unknown reasoning-type labels."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    check_images: bool = typer.Option(True, "--check-images/--no-check-images",
                                      help="Check every stored image (header and completeness; reads the image "
                                           "bytes, decodes no pixels)."),
) -> None:
    """Samples per split, reasoning type and query kind; id rule; image sizes; empty targets; skipped rows."""
    with user_errors():
        from reasonseg_x.data.info import describe
        from reasonseg_x.data.resolve import open_source

        src = open_source(source, skip_invalid=skip_invalid, open_taxonomy=open_taxonomy)
        summary = describe(src, list(split) if split else None, check_images=check_images)
        if as_json:
            typer.echo(json.dumps(summary.to_dict(), indent=2))
            return
        _print_summary(summary)


@data_app.command("rl-export")
def rl_export(
    source: str = typer.Argument(..., help=_SOURCE_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for trl/<split>.parquet and verl/<split>.parquet."),
    split: str = typer.Option("train", "--split", "-s", help="Split to export."),
    stage: int = typer.Option(1, "--stage", help="StAR training stage whose prompt wording to use (1 or 2)."),
    frame: int = typer.Option(840, "--frame", help="Square size images and masks are resized to (0: keep their size)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="Export the first N samples only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files already there."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Leave bad rows out (counted) instead of stopping."),
) -> None:
    """Write SOURCE's split as RL training rows (prompt, image, encoded truth) for TRL and veRL."""
    with user_errors():
        from reasonseg_x.rewards.export import rl_export as export_rows

        done = export_rows(source, out, split=split, stage=stage, frame=frame or None, limit=limit,
                           overwrite=overwrite, skip_invalid=skip_invalid)
        for layout, path in done["files"].items():
            typer.echo(f"{layout}: {path} ({done['rows']} rows, stage {stage})")
        if done["skipped"]:
            typer.echo(f"skipped {done['skipped']} invalid row(s)", err=True)


def _print_summary(summary) -> None:  # noqa: ANN001 - a SourceSummary
    from rich.console import Console
    from rich.table import Table

    from reasonseg_x.taxonomy import query_kinds, reasoning_types

    console = Console()
    console.print(f"[bold]{summary.spec}[/bold] ({summary.kind}); sample ids from: {summary.id_rule}")
    overview = Table(title="Splits")
    for col in ("split", "samples", "height min/med/max", "width min/med/max", "no target", "with ignore"):
        overview.add_column(col, justify="right" if col != "split" else "left")
    for s in summary.splits:
        h = "/".join(f"{s.height[k]:g}" for k in ("min", "median", "max")) if s.height else "-"
        w = "/".join(f"{s.width[k]:g}" for k in ("min", "median", "max")) if s.width else "-"
        overview.add_row(s.name, str(s.samples), h, w, str(s.no_target), str(s.with_ignore))
    console.print(overview)
    for attr, title, taxonomy in (("reasoning_type", "Reasoning type", reasoning_types(open=True)),
                                  ("query_kind", "Query kind", query_kinds()),
                                  ("source", "Source", None)):
        labels: list[str] = []
        for s in summary.splits:
            labels.extend(k for k in getattr(s, attr) if k not in labels)
        if labels == ["(none)"]:
            continue
        table = Table(title=title)
        table.add_column(title.lower())
        for s in summary.splits:
            table.add_column(s.name, justify="right")
        for label in labels:
            name = label
            if taxonomy is not None and label in taxonomy:
                cat = taxonomy.category(label)
                name = f"{cat.code} {cat.name}" if cat.code != cat.id else label
            table.add_row(name, *(str(getattr(s, attr).get(label, 0)) for s in summary.splits))
        console.print(table)
    for s in summary.splits:  # what a run or a paper can quote to say "this exact ground truth"
        console.print(f"fingerprints of {s.name}: ground truth {s.fingerprint}, inputs {s.input_fingerprint}")
    for name, reason in summary.unavailable.items():
        console.print(f"[yellow]split {name} not available:[/yellow] {reason}")
    if summary.skipped:
        table = Table(title=f"Skipped rows ({len(summary.skipped)})")
        table.add_column("where", overflow="fold", ratio=2)
        table.add_column("reason", overflow="fold", ratio=3)
        for row in summary.skipped[:50]:
            table.add_row(row["where"], row["reason"])
        console.print(table)
        if len(summary.skipped) > 50:
            console.print(f"... and {len(summary.skipped) - 50} more (--json lists them all)")
    else:
        console.print("skipped rows: 0")


def register(app: typer.Typer) -> None:
    """Attach the ``data`` command group to the root app."""
    app.add_typer(data_app, name="data")
