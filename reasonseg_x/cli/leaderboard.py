"""``reasonseg-x submit`` and the ``reasonseg-x leaderboard`` group (manifest, score, render)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from reasonseg_x.cli._common import require_predictions_path, user_errors

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.data.source import Source
    from reasonseg_x.leaderboard.manifest import Manifest

board_app = typer.Typer(name="leaderboard", help="Push a submission bundle; host a leaderboard: write manifests, "
                        "score untrusted bundles, render the static site.", no_args_is_help=True)


def _open_source(spec: str) -> Source:
    """Resolve a data spec (kept as a module function so tests can substitute a source)."""
    from reasonseg_x.data.resolve import open_source

    return open_source(spec)


def _author_manifest(spec: str, split: str | None, run: Any = None) -> Manifest:
    """The manifest an author validates against (for a run folder on its own data: the samples the run
    covers); when the data cannot be reached, point at ``--manifest``."""
    from reasonseg_x.errors import SourceNotFoundError
    from reasonseg_x.leaderboard.manifest import manifest_from_source
    from reasonseg_x.leaderboard.runmeta import manifest_of_run

    try:
        if run is not None and spec == run.data:
            if run.partial():
                typer.echo(f"note: {run.folder} covers part of the split ({run.coverage.label()}); the bundle holds "
                           "those samples only, and a leaderboard of the whole split will refuse it", err=True)
            return manifest_of_run(run, split)
        return manifest_from_source(_open_source(spec), split)
    except SourceNotFoundError as exc:
        raise SourceNotFoundError(f"{exc}\nhint: without the data, validate against the split's published "
                                  "manifest instead: `reasonseg-x submit ... --manifest manifest.json` "
                                  "(the host writes it with `reasonseg-x leaderboard manifest`)") from None


def _flat(fields: dict) -> dict:
    """``{"tts": {"n": 32}, "meta": {"model": "star"}}`` -> ``{"tts.n": 32, "model": "star"}`` for printing."""
    out = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            out.update({(f"{key}.{k}" if key != "meta" else k): v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _canonical_protocol(name: str) -> str:
    try:
        from reasonseg_x.evaluators.protocols import get_protocol
    except ImportError:  # pragma: no cover - evaluator not installed
        return name
    return get_protocol(name).name


def submit(
    predictions: Path = typer.Argument(..., help="Predictions JSONL (one {id, mask, status} object per line), or "
                                       "the run folder of `reasonseg-x eval` holding it."),
    split: Optional[str] = typer.Option(None, "--split", help="Split the predictions are for (default: the run's, "
                                        "else the source's default split, or the manifest's)."),
    model_name: str = typer.Option(..., "--model-name", help="Name shown on the leaderboard."),
    data: Optional[str] = typer.Option(None, "--data", help="Data source spec whose split the predictions answer "
                                       "(default: the run's run.json, else reasonseg-x).", show_default=False),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Validate against this manifest JSON instead of "
                                            "opening the data (no masks needed)."),
    meta: Optional[list[str]] = typer.Option(None, "--meta", help="KEY=VALUE: base_model, parameter_count (7B), tts "
                                             "(majority_vote, or none), tts.n=32, or any other key. Repeatable. "
                                             "Defaults come from the run.json of `reasonseg-x eval` beside "
                                             "PREDICTIONS (model, checkpoint, base model, tts settings)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Protocol the results are meant for "
                                           "(default: the run's, else star).", show_default=False),
    out: Path = typer.Option(..., "--out", help="Bundle to write: a new folder, or a .tar.gz / .tgz file."),
    push: Optional[str] = typer.Option(None, "--push", help="Also open a pull request adding the bundle to this Hub "
                                       "dataset repo."),
) -> None:
    """Validate predictions against a split's manifest and write a submission bundle."""
    with user_errors():
        from reasonseg_x.errors import InvalidInputError
        from reasonseg_x.leaderboard.manifest import read_manifest
        from reasonseg_x.leaderboard.runmeta import meta_from_run, merge_meta
        from reasonseg_x.leaderboard.submission import build_submission, parse_meta

        from reasonseg_x.runner.record import recorded_run
        from reasonseg_x.runner.recorded import choose_option

        require_predictions_path(predictions)
        fields = parse_meta(meta)
        run = recorded_run(predictions)
        if run is not None:
            predictions = run.predictions
            data = choose_option("--data", data, run.data, None, run=run.folder)
            split = choose_option("--split", split, run.split, None, run=run.folder)
            protocol = choose_option("--protocol", protocol, run.protocol, None, run=run.folder)
        data, protocol = data or "reasonseg-x", protocol or "star"
        from_run = meta_from_run(predictions)
        if from_run:
            fields = merge_meta(from_run, fields)
            typer.echo(f"metadata from {run.path if run is not None else predictions.parent} (--meta overrides it): "
                       + ", ".join(f"{k}={v}" for k, v in _flat(fields).items()))
        proto = _canonical_protocol(protocol)
        if manifest is not None:
            man = read_manifest(manifest)
            if split is not None and split != man.split:
                raise InvalidInputError(f"--split {split!r} differs from the manifest's split {man.split!r}",
                                        str(manifest))
        else:
            man = _author_manifest(data, split, run)
        path, info = build_submission(predictions, man, model_name=model_name, out=out, protocol=proto, meta=fields)
        typer.echo(f"bundle written: {path} ({info.dataset.n} predictions of {man.data}:{man.split}, "
                   f"fingerprint {man.fingerprint})")
        if push:
            from reasonseg_x.leaderboard.push import push_bundle

            url = push_bundle(path, push)
            typer.echo(f"pull request opened: {url}")


@board_app.command("push")
def push_cmd(
    bundle: Path = typer.Argument(..., help="A bundle written by `reasonseg-x submit` (folder or .tar.gz)."),
    repo: str = typer.Option(..., "--repo", help="Hub dataset repo of submissions (ORG/NAME)."),
) -> None:
    """Open a pull request adding a bundle to the submissions repo (e.g. after an offline `submit`)."""
    with user_errors():
        from reasonseg_x.leaderboard.push import push_bundle

        typer.echo(f"pull request opened: {push_bundle(bundle, repo)}")


@board_app.command("manifest")
def manifest_cmd(
    data: str = typer.Option(..., "--data", help="Data source spec (the private ground truth)."),
    split: Optional[str] = typer.Option(None, "--split", help="Split (default: the source's default)."),
    out: Path = typer.Option(..., "--out", help="Manifest JSON to write (ids, sizes, fingerprint; no masks)."),
) -> None:
    """Write a split's public manifest, so authors can validate submissions without the masks."""
    with user_errors():
        from reasonseg_x.leaderboard.manifest import manifest_from_source, write_manifest

        man = manifest_from_source(_open_source(data), split)
        write_manifest(man, out)
        typer.echo(f"manifest written: {out} ({len(man)} samples, {man.fingerprint})")


@board_app.command("score")
def score_cmd(
    bundles: list[Path] = typer.Argument(..., help="Bundles to score: folders or .tar.gz / .tar / .zip archives."),
    gt: str = typer.Option(..., "--gt", help="Data source spec of the private ground truth."),
    split: Optional[str] = typer.Option(None, "--split", help="Split (default: the source's default)."),
    db: Path = typer.Option(..., "--db", help="SQLite leaderboard database (created if absent)."),
    protocol: str = typer.Option("star", "--protocol", help="Protocol the host scores with."),
    rescore: bool = typer.Option(False, "--rescore", help="Score again bundles already in the database."),
    workdir: Optional[Path] = typer.Option(None, "--workdir", help="Scratch folder for extraction (default: temp)."),
) -> None:
    """Score untrusted bundles against the ground truth and store the results (idempotent)."""
    with user_errors():
        from reasonseg_x.leaderboard.host import GroundTruthContext, score_bundles
        from reasonseg_x.output_paths import prepare_folder
        from reasonseg_x.leaderboard.store import LeaderboardStore

        proto = _canonical_protocol(protocol)
        if workdir is not None:  # a bad scratch folder would fail every bundle: say so once, up front
            prepare_folder(workdir, "the scratch folder (--workdir)")
        context = GroundTruthContext.load(_open_source(gt), split)
        with LeaderboardStore(db) as store:
            outcomes = score_bundles(bundles, context, store, protocol=proto, rescore=rescore, workdir=workdir)
        for o in outcomes:
            if o.status in ("rejected", "error"):
                print(f"{o.status:<10} {o.source}: {o.reason}", file=sys.stderr)
            else:
                score = ""
                if o.giou is not None and o.ciou is not None:
                    score = f"gIoU {100 * o.giou:.1f} cIoU {100 * o.ciou:.1f}"
                note = f" [note: {o.reason}]" if o.reason and o.status == "verified" else ""
                typer.echo(f"{o.status:<10} {o.source}: {o.model_name} (submission {o.submission_id}, {proto}) "
                           f"{score}{note}")
        if any(o.status in ("rejected", "error") for o in outcomes):
            raise typer.Exit(code=1)


@board_app.command("render")
def render_cmd(
    db: Optional[Path] = typer.Option(None, "--db", help="SQLite leaderboard database (omit for reported rows only)."),
    out: Path = typer.Option(..., "--out", help="Folder to write index.html and data.json into."),
    protocol: str = typer.Option("star", "--protocol", help="Show evaluations of this protocol."),
    reported: bool = typer.Option(True, "--reported/--no-reported", help="Include the paper's Table 1 rows."),
) -> None:
    """Write the static leaderboard site (self-contained index.html, works from file://)."""
    with user_errors():
        from reasonseg_x.leaderboard.site import render_site

        page = render_site(db, out, protocol=_canonical_protocol(protocol), reported=reported)
        typer.echo(f"site written: {page}")


@board_app.command("viewers")
def viewers_cmd(
    bundles: list[Path] = typer.Argument(..., help="Bundles already scored into --db (folders or archives)."),
    gt: str = typer.Option(..., "--gt", help="Data source spec of the ground truth they were scored on."),
    out: Path = typer.Option(..., "--out", help="The site folder: viewers go to OUT/viewers/<key>/."),
    db: Path = typer.Option(..., "--db", help="SQLite leaderboard database."),
    split: Optional[str] = typer.Option(None, "--split", help="Split (default: the source's default)."),
    protocol: str = typer.Option("star", "--protocol", help="Protocol the viewers score with."),
    workdir: Optional[Path] = typer.Option(None, "--workdir", help="Scratch folder for extraction (default: temp)."),
) -> None:
    """Build the case viewer of each verified bundle into the site; `render` then links them.

    A viewer shows the ground truth beside each prediction: publish it only for public data."""
    with user_errors():
        from reasonseg_x.errors import InvalidInputError
        from reasonseg_x.leaderboard.store import LeaderboardStore
        from reasonseg_x.leaderboard.viewers import build_bundle_viewers

        if not db.is_file():
            raise InvalidInputError("leaderboard database not found", str(db))
        with LeaderboardStore(db) as store:
            outcomes = build_bundle_viewers(bundles, gt, out, store, split=split,
                                            protocol=_canonical_protocol(protocol), workdir=workdir)
        for o in outcomes:
            line = f"{o.status:<8} {o.source}" + (f": {o.link}" if o.link else "") + (f": {o.reason}" if o.reason else "")
            print(line, file=sys.stderr if o.status == "rejected" else sys.stdout)
        if any(o.status == "rejected" for o in outcomes):
            raise typer.Exit(code=1)


@board_app.command("list")
def list_cmd(
    db: Path = typer.Option(..., "--db", help="SQLite leaderboard database."),
    rejections: bool = typer.Option(False, "--rejections", help="List refused bundles and why, instead."),
) -> None:
    """Print the stored evaluations (or the refused bundles) of a leaderboard database."""
    with user_errors():
        from reasonseg_x.errors import InvalidInputError
        from reasonseg_x.leaderboard.store import LeaderboardStore

        if not db.is_file():
            raise InvalidInputError("leaderboard database not found", str(db))
        with LeaderboardStore(db) as store:
            if rejections:
                for r in store.rejections():
                    typer.echo(f"{r['rejected_at']}  {r['source_name']}: {r['reason']}")
                return
            for e in store.entries(protocol=None):
                overall = e.results.get("overall", {}).get("", {})
                g, c = overall.get("giou"), overall.get("ciou")
                score = f"gIoU {100 * g:5.1f} cIoU {100 * c:5.1f}" if g is not None and c is not None else "-"
                typer.echo(f"{e.submission_id:>4}  {e.model_name[:40]:<40}  {e.gt_spec}:{e.gt_split} [{e.protocol}]  "
                           f"n={overall.get('n', 0)}  {score}  {e.scored_at}")


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.add_typer(board_app, name="leaderboard")
