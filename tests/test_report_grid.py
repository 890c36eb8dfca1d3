"""report.md's worst-case grid and the chart's labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reasonseg_x.cli import app
from reasonseg_x.evaluators.records import SampleRecord
from reasonseg_x.evaluators.report import WORST_K, WORST_TILE, draw_chart, draw_worst_grid, worst_ids
from reasonseg_x.render import PRED_COLOUR

runner = CliRunner()


def _record(sample_id: str, iou: float, status: str = "ok", kind: str = "commonsense") -> SampleRecord:
    return SampleRecord(sample_id, 0, 1, iou, status, {"reasoning_type": kind})


def test_worst_ids_lowest_first_failures_first_per_type() -> None:
    records = [_record("a", 0.5), _record("b", 0.0), _record("c", 0.0, "parse_error"), _record("d", 0.9),
               _record("e", 0.1, kind="compositional")]
    rows = worst_ids(records, k=3)
    assert [r.id for r in rows["commonsense"]] == ["c", "b", "a"]
    assert [r.id for r in rows["compositional"]] == ["e"]


def test_eval_run_report_has_the_grid(tmp_path: Path) -> None:
    """A run of `empty` on mini: worst.png has one row per type, each tile a sample's picture."""
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--model", "empty", "--data", "mini", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "## Worst cases per reasoning type" in report and "](worst.png)" in report
    with Image.open(out / "worst.png") as img:
        grid = np.asarray(img.convert("RGB"))
    metrics = json.loads((out / "metrics.json").read_text())
    types = len(metrics["by_reasoning_type"])
    assert types == 4 and grid.shape[0] > types * WORST_TILE and grid.shape[1] > WORST_K * WORST_TILE
    assert len(np.unique(grid.reshape(-1, 3), axis=0)) > 200  # pictures, not blank tiles


def test_grid_draws_the_prediction(tmp_path: Path) -> None:
    """An all-foreground prediction on one sample: its tile is tinted with the prediction colour."""
    from reasonseg_x import masks
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.predictions import Prediction, PredictionSet

    source = open_source("mini")
    sample = next(iter(source.samples("test")))
    pred = Prediction(sample.id, masks.full(sample.height, sample.width))
    records = [_record(sample.id, 0.0, kind=sample.reasoning_type)]
    path = draw_worst_grid(records, source, "test", PredictionSet.from_predictions([pred]), tmp_path / "w.png", k=1)
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB")).astype(int)
    tile = rgb[30:30 + WORST_TILE, 158:158 + WORST_TILE]
    pinkish = (tile[..., 0] > tile[..., 1] + 40) & (tile[..., 2] > tile[..., 1] + 20)
    assert pinkish.mean() > 0.2
    assert tuple(PRED_COLOUR) in {tuple(p) for p in rgb.reshape(-1, 3)[::7]}  # the outline


def test_grid_failure_does_not_stop_scoring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source that cannot be read again: the scores and report are written, without the grid."""
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.evaluators import report

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise InvalidInputError("gone")

    monkeypatch.setattr(report, "draw_worst_grid", broken)
    out = tmp_path / "run"
    result = runner.invoke(app, ["eval", "--model", "empty", "--data", "mini", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert not (out / "worst.png").exists() and "Worst cases" not in (out / "report.md").read_text()


def test_chart_has_query_kind_bars_and_value_labels_clear_of_whiskers(tmp_path: Path) -> None:
    """Bars for every type and query kind; each value label lies beside its bar (outside it)."""
    metrics = {"protocol": "star", "overall": {"n": 10, "giou": 0.5, "ciou": 0.4, "giou_ci": [0.3, 0.7],
                                                "ciou_ci": [0.2, 0.6]},
               "by_reasoning_type": {"commonsense": {"n": 5, "giou": 0.9, "ciou": 0.95, "giou_ci": [0.8, 1.0],
                                                     "ciou_ci": [0.9, 1.0]}},
               "by_query_kind": {"long": {"n": 4, "giou": 0.2, "ciou": 0.25}, "short": {"n": 6, "giou": 0.7,
                                                                                       "ciou": 0.6}}}
    path = draw_chart(metrics, tmp_path / "chart.png")
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    blue = (rgb == (66, 114, 196)).all(axis=2)
    columns = np.flatnonzero(blue[-60, :])  # a row just above the axis crosses every gIoU bar
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    assert len(runs) == 4  # overall, one type, two query kinds
    dark = rgb.sum(axis=2) < 150
    for run in runs:
        x0, x1 = int(run[0]), int(run[-1])
        top = int(np.flatnonzero(blue[:, x0 + 2])[0])
        centre = (x0 + x1) // 2
        box = dark[top:-60, x0:x1 + 1].copy()
        box[:, centre - x0 - 5:centre - x0 + 6] = False  # the whisker
        assert not box.any(), "a label is drawn over its bar"
        assert dark[top - 8:top + 9, x0 - 40:x0 - 1].any(), "no value label beside the bar"


# --- worst.png tells what it shows, and costs little when scoring is repeated -------------------


def _drawn_text(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every string the grid writes on its picture, in order."""
    from PIL import ImageDraw

    written: list[str] = []
    original = ImageDraw.ImageDraw.text

    def spy(self, xy, text, *args, **kwargs):  # type: ignore[no-untyped-def]
        written.append(str(text))
        return original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    return written


def test_grid_shows_each_query_and_whole_type_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under each tile its query (wrapped, at most three lines); beside each row its whole reasoning-type
    name, wrapped in its column rather than cut (open taxonomy names can be long)."""
    from reasonseg_x.data.resolve import open_source

    source = open_source("mini")
    samples = list(source.samples("test"))[:2]
    long_type = "spatial_relations_between_several_overlapping_objects_in_clutter"
    records = [_record(samples[0].id, 0.0, kind=long_type), _record(samples[1].id, 0.1, kind="commonsense")]
    written = _drawn_text(monkeypatch)
    assert draw_worst_grid(records, source, "test", None, tmp_path / "w.png", k=2) is not None
    text = " ".join(written)
    start = next(i for i, line in enumerate(written) if long_type.startswith(line) and line)
    assert "".join(written[start:start + 4]).startswith(long_type) and not any(line.endswith("~") for line in written)
    for sample in samples:
        words = sample.query.split()
        assert " ".join(words[:4]) in text, f"query of {sample.id} not drawn"


def test_wrap_breaks_at_spaces_and_underscores_and_marks_a_cut() -> None:
    from reasonseg_x.evaluators.report import _font, _wrap

    font = _font(12)
    width = font.getlength("comparative_re")  # the break goes back to the underscore
    lines = _wrap("comparative_relational", font, width, 4)
    assert lines == ["comparative_", "relational"] and all(font.getlength(line) <= width for line in lines)
    cut = _wrap("word " * 100, font, 100, 3)
    assert len(cut) == 3 and cut[-1].endswith("~") and all(font.getlength(line) <= 100 for line in cut)
    assert _wrap("a\nb\tc", font, 500, 2) == ["a b c"]


def test_grid_draws_the_ground_truth_as_an_outline(tmp_path: Path) -> None:
    """Inside a large target the tile keeps the picture's own colours (no tint); the edge is green."""
    from reasonseg_x import masks
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.render import GT_COLOUR, fit_size, scaled_mask

    source = open_source("mini")
    sample = max(source.samples("test"), key=lambda s: masks.area(s.target))
    records = [_record(sample.id, 0.0, kind=sample.reasoning_type)]
    path = draw_worst_grid(records, source, "test", None, tmp_path / "w.png", k=1)
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB")).astype(int)
    w, h = fit_size(sample.width, sample.height, WORST_TILE)
    x0 = 158 + (WORST_TILE - w) // 2
    tile = rgb[30 + WORST_TILE - h:30 + WORST_TILE, x0:x0 + w]
    plain = np.asarray(sample.image.open().resize((w, h))).astype(int)
    inside = scaled_mask(masks.decode(sample.target), w, h)

    def commonest(pixels: np.ndarray) -> tuple:
        colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
        return tuple(colours[counts.argmax()])

    # the object keeps its own colour inside the outline (before: tinted green all over)
    assert np.abs(np.subtract(commonest(tile[inside]), commonest(plain[inside]))).max() <= 3
    assert (tile == GT_COLOUR).all(axis=2).sum() > 20


def test_grid_reads_only_the_pictures_it_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a published-schema split only the shown rows have their image read (and checked)."""
    from reasonseg_x.data.hf import HFSource
    from reasonseg_x.data.resolve import open_source

    sys_path = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(sys_path))
    import bench_scoring

    data_dir, _ = bench_scoring.build_split(tmp_path, 24, 96, 128, layout="parquet")
    source = open_source(str(data_dir))
    assert isinstance(source, HFSource)
    checked: list[str] = []
    original = HFSource.image_ok
    monkeypatch.setattr(HFSource, "image_ok", lambda self, raw, gt, where: checked.append(gt.id) or
                        original(self, raw, gt, where))
    gts = list(source.ground_truth("test"))
    records = [_record(gt.id, 0.1 * (i % 7), kind=gt.groups["reasoning_type"]) for i, gt in enumerate(gts)]
    assert draw_worst_grid(records, source, "test", None, tmp_path / "w.png", k=2) is not None
    shown = {r.id for rows in worst_ids(records, 2).values() for r in rows}
    assert sorted(checked) == sorted(shown) and len(shown) == 8  # once each, not the 24 rows of the split


def test_repeated_grid_of_the_same_content_is_not_drawn_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repeated score keeps worst.png when nothing it shows changed; a changed prediction redraws it."""
    from reasonseg_x import masks
    from reasonseg_x.data.resolve import open_source
    from reasonseg_x.evaluators import report
    from reasonseg_x.predictions import Prediction, PredictionSet

    source = open_source("mini")
    sample = next(iter(source.samples("test")))
    records = [_record(sample.id, 0.0, kind=sample.reasoning_type)]
    path = tmp_path / "w.png"
    empty = PredictionSet.from_predictions([Prediction(sample.id, masks.empty(sample.height, sample.width))])
    draw_worst_grid(records, source, "test", empty, path, k=1)
    first = path.read_bytes()
    drawn: list[int] = []
    original = report._grid_tiles
    monkeypatch.setattr(report, "_grid_tiles", lambda *a, **kw: drawn.append(1) or original(*a, **kw))
    draw_worst_grid(records, source, "test", empty, path, k=1)
    assert drawn == [] and path.read_bytes() == first
    full = PredictionSet.from_predictions([Prediction(sample.id, masks.full(sample.height, sample.width))])
    draw_worst_grid(records, source, "test", full, path, k=1)
    assert drawn == [1] and path.read_bytes() != first
