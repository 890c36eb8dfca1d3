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
