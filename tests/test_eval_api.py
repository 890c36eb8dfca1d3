"""score_predictions / write_outputs: honest counts, clear errors, complete deterministic outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from _eval_helpers import make_case, predictions_for, write_jsonl
from reasonseg_x import masks
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.evaluators.api import score_predictions, write_outputs
from reasonseg_x.predictions import Prediction


def test_missing_is_a_counted_failure_or_strict_error(tmp_path):
    source, arrays = make_case(10)
    path = write_jsonl(tmp_path / "p.jsonl", predictions_for(arrays, drop=("s003", "s007")))
    result = score_predictions(source, None, path, n_resamples=0)
    counts = result.metrics["counts"]
    assert counts["n"] == 10 and counts["missing"] == 2
    rec = {r.id: r for r in result.records}["s003"]
    assert rec.status == "missing" and rec.I == 0 and rec.U == masks.area(source._samples[3].target)
    with pytest.raises(InvalidInputError, match="2 sample"):
        score_predictions(source, None, path, strict=True)


def test_counts_by_status(tmp_path):
    source, arrays = make_case(6, p_empty=0.0)
    preds = predictions_for(arrays)
    preds[0] = Prediction("s000", None, status="parse_error")
    preds[1] = Prediction("s001", None, status="error")
    preds[2] = Prediction("s002", None, status="no_target")
    preds[3] = Prediction("s003", None, status="ok")
    path = write_jsonl(tmp_path / "p.jsonl", [*preds, preds[4]])
    counts = score_predictions(source, None, path, n_resamples=0).metrics["counts"]
    assert {k: counts[k] for k in ("parse_error", "error", "no_target", "empty_prediction", "duplicate")} == \
        {"parse_error": 1, "error": 1, "no_target": 1, "empty_prediction": 1, "duplicate": 1}


def test_size_mismatch_names_id_and_line_unless_resize(tmp_path):
    source, arrays = make_case(3)
    preds = predictions_for(arrays)
    target = arrays["s001"][0]
    big = np.repeat(np.repeat(target, 2, axis=0), 2, axis=1)
    preds[1] = Prediction("s001", masks.encode(big))
    path = write_jsonl(tmp_path / "p.jsonl", preds)
    with pytest.raises(InvalidInputError, match=r"p.jsonl:2.*'s001'.*size"):
        score_predictions(source, None, path)
    resized = score_predictions(source, None, path, resize=True, n_resamples=0)
    rec = {r.id: r for r in resized.records}["s001"]
    assert rec.resized and rec.iou == 1.0 or rec.U == 0
    from reasonseg_x.evaluators.report import render_markdown

    assert resized.metrics["predictions"]["resized"] == 1 and "1 prediction mask(s)" in render_markdown(resized.metrics)
    skipped = score_predictions(source, None, path, skip_invalid=True, n_resamples=0)
    assert skipped.metrics["counts"]["invalid"] == 1


def test_unknown_id_is_an_error_naming_the_line(tmp_path):
    source, arrays = make_case(3)
    path = write_jsonl(tmp_path / "p.jsonl", [*predictions_for(arrays), Prediction("ghost", None)])
    with pytest.raises(InvalidInputError, match=r"p.jsonl:4.*'ghost'"):
        score_predictions(source, None, path)
    result = score_predictions(source, None, path, skip_invalid=True, n_resamples=0)
    assert result.metrics["counts"]["unknown_id"] == 1
    assert result.metrics["problems"][0]["kind"] == "unknown_id"


def test_invalid_lines_become_counted_failures(tmp_path):
    source, arrays = make_case(4)
    path = write_jsonl(tmp_path / "p.jsonl", predictions_for(arrays, drop=("s002",)))
    with path.open("a") as fh:
        fh.write('{"id": "s002", "mask": {"size": [1, 1], "counts": "5"}}\n{oops\n')
    with pytest.raises(InvalidInputError, match="p.jsonl:4"):
        score_predictions(source, None, path)
    result = score_predictions(source, None, path, skip_invalid=True, n_resamples=0)
    counts = result.metrics["counts"]
    assert counts["invalid"] == 1 and counts["missing"] == 0 and counts["invalid_lines_without_id"] == 1
    assert {r.id: r.status for r in result.records}["s002"] == "invalid"


def test_png_folder_predictions(tmp_path):
    source, arrays = make_case(4)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for sid, (_, _, pred) in arrays.items():
        Image.fromarray(pred.astype(np.uint8) * 255).save(folder / f"{sid}.png")
    from_png = score_predictions(source, None, folder, n_resamples=0)
    from_list = score_predictions(source, None, predictions_for(arrays), n_resamples=0)
    assert from_png.metrics["overall"] == from_list.metrics["overall"]


def test_outputs_complete_and_deterministic(tmp_path):
    source, arrays = make_case(24, with_ignore=True)
    path = write_jsonl(tmp_path / "p.jsonl", predictions_for(arrays, drop=("s001",)))
    first = write_outputs(score_predictions(source, None, path, seed=3, n_resamples=300), tmp_path / "a")
    second = write_outputs(score_predictions(source, None, path, seed=3, n_resamples=300), tmp_path / "b")
    for key in first:
        assert first[key].read_bytes() == second[key].read_bytes(), key
    m = json.loads(first["metrics"].read_text())
    assert m["protocol"] == "star" and m["version"] and m["data"]["fingerprint"].startswith("sha256:")
    assert m["data"]["split"] == "test" and m["data"]["spec"] == "memory"
    overall = m["overall"]
    assert set(overall) >= {"n", "giou", "ciou", "giou_ci", "ciou_ci", "precision"}
    assert list(overall["precision"]) == ["0.5", "0.6", "0.7", "0.8", "0.9"]
    assert list(m["by_reasoning_type"]) == ["function_purpose", "commonsense", "comparative_relational",
                                            "compositional"]
    assert set(m["by_query_kind"]) == {"long", "short"} and m["by_source"] == {"memory": m["overall"]}
    assert set(m["counts"]) >= {"n", "missing", "parse_error", "no_target", "error", "empty_prediction",
                                "duplicate", "invalid"}
    assert m["bootstrap"] == {**m["bootstrap"], "n_resamples": 300, "seed": 3, "level": 0.95}
    for group in [overall, *m["by_reasoning_type"].values()]:
        for key in ("giou", "ciou"):
            assert 0.0 <= group[key] <= 1.0
            lo, hi = group[f"{key}_ci"]
            assert 0.0 <= lo <= hi <= 1.0
    lines = first["per_sample"].read_text().splitlines()
    assert len(lines) == 24 and set(json.loads(lines[0])) >= {"id", "I", "U", "iou", "status", "groups"}
    report = first["report"].read_text()
    assert "| Overall | 24 |" in report and "C/KI commonsense" in report
    assert first["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fingerprint_matches_source():
    source, arrays = make_case(5)
    result = score_predictions(source, None, predictions_for(arrays), n_resamples=0)
    source._fingerprints.clear()
    assert result.metrics["data"]["fingerprint"] == source.fingerprint("test")


def test_scoring_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; import reasonseg_x.evaluators.api, reasonseg_x.evaluators.compare, "
            "reasonseg_x.evaluators.reference_outputs, reasonseg_x.cli.score; "
            "bad = [m for m in ('torch', 'transformers', 'matplotlib', 'pandas') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_gres_extras_in_metrics_and_report(tmp_path):
    source, arrays = make_case(20, p_empty=0.5)
    preds = predictions_for(arrays)
    result = score_predictions(source, None, preds, protocol="gres", n_resamples=50)
    g = result.metrics["gres"]
    assert g["TP"] + g["FN"] + g["TN"] + g["FP"] == 20 and 0 <= g["n_acc"] <= 1 and 0 <= g["t_acc"] <= 1
    paths = write_outputs(result, tmp_path / "g")
    assert "N-acc" in paths["report"].read_text()


def test_empty_split_does_not_crash(tmp_path):
    from _eval_helpers import MemorySource

    result = score_predictions(MemorySource([]), None, [], n_resamples=100)
    assert result.metrics["overall"]["n"] == 0 and result.metrics["overall"]["giou_ci"] is None
    write_outputs(result, tmp_path / "e")


def test_an_empty_predictions_file_is_an_error(tmp_path):
    source, _ = make_case(3)
    (tmp_path / "e.jsonl").write_text("\n\n")
    for skip in (False, True):
        with pytest.raises(InvalidInputError, match=r"e.jsonl.*no prediction.*all 3 samples"):
            score_predictions(source, None, tmp_path / "e.jsonl", skip_invalid=skip)


def test_skipped_source_rows_reach_every_view(tmp_path):
    import io

    from rich.console import Console

    from reasonseg_x.data.source import SkippedRow
    from reasonseg_x.evaluators.report import print_table, render_markdown

    source, arrays = make_case(3)
    source.skipped.append(SkippedRow("data/test.parquet:row 7", "image is not decodable"))
    result = score_predictions(source, None, predictions_for(arrays), n_resamples=0)
    assert result.metrics["data"]["skipped_rows"] == 1 and result.metrics["overall"]["n"] == 3
    report = render_markdown(result.metrics)
    assert "1 skipped source row(s)" in report and "data/test.parquet:row 7" in report and "not in n" in report
    buf = io.StringIO()
    print_table(result, Console(file=buf, width=120))
    assert "skipped (--skip-invalid)" in buf.getvalue() and "image is not decodable" in buf.getvalue()


def test_contradictions_and_unlabelled_samples_are_told(tmp_path):
    from reasonseg_x.evaluators.records import read_records, write_records
    from reasonseg_x.evaluators.report import render_markdown

    source, arrays = make_case(4, p_empty=0.0)
    source._samples[1] = source._samples[1].__class__(**{**source._samples[1].__dict__, "reasoning_type": None})
    preds = predictions_for(arrays)
    preds[0] = Prediction("s000", preds[0].mask, status="no_target")  # says nothing matches, sends a mask
    result = score_predictions(source, None, preds, n_resamples=0)
    m = result.metrics
    assert m["counts"]["mask_ignored"] == 1 and {r.id: r.I for r in result.records}["s000"] == 0
    assert sum(g["n"] for g in m["by_reasoning_type"].values()) == 3 and m["unlabelled"]["reasoning_type"] == 1
    report = render_markdown(m)
    assert "carried a non-empty mask" in report and "1 sample(s) have no reasoning type" in report
    write_records(result.records, tmp_path / "ps.jsonl")
    assert read_records(tmp_path / "ps.jsonl", "star").records[0].mask_ignored


def test_hostile_labels_and_reasons_are_shown_in_report_md_never_rendered():
    """Open-taxonomy type names, source rows and reasons come from the data: report.md shows them
    as written (rendered by a CommonMark+tables parser) and none becomes HTML, a link or a cell."""
    from markdown_it import MarkdownIt

    from reasonseg_x.data.source import SkippedRow
    from reasonseg_x.evaluators.report import render_markdown

    hostile = "<img src=x onerror=alert(1)>|*bold*[link](javascript:alert(2))"
    source, arrays = make_case(4, p_empty=0.0)
    source._samples[0] = source._samples[0].__class__(**{**source._samples[0].__dict__, "reasoning_type": hostile})
    source.skipped.append(SkippedRow("rows`<script>alert(3)</script>", "bad <b>row</b>\n| x |"))
    report = render_markdown(score_predictions(source, None, predictions_for(arrays), n_resamples=0).metrics)
    html = MarkdownIt("commonmark").enable("table").render(report)
    assert "<img" not in html and "<script" not in html and "<b>" not in html and "<a " not in html
    assert "<em>" not in html and "<strong>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;|*bold*[link](javascript:alert(2))" in html  # shown as written
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html and "bad &lt;b&gt;row&lt;/b&gt; | x |" in html
    first_table = html.split("</table>")[0]
    assert all(row.count("<td") == 6 for row in first_table.split("<tr>")[2:])  # no cell was split


def test_markdown_escapes_keep_ordinary_names_readable():
    from reasonseg_x._html import md_code, md_text

    assert md_text("P/F function_purpose") == "P/F function_purpose"
    assert md_text("_x_ a|b") == "\\_x\\_ a\\|b"
    assert md_code("a``b") == "```a``b```" and md_code("`x") == "`` `x ``" and md_code("p") == "`p`"


def test_hints_for_transposed_masks_and_stray_whitespace(tmp_path):
    source, arrays = make_case(3)
    target = arrays["s001"][0]
    preds = predictions_for(arrays)
    preds[1] = Prediction("s001", masks.encode(target.T.copy()))
    path = write_jsonl(tmp_path / "t.jsonl", preds)
    for resize in (False, True):
        with pytest.raises(InvalidInputError, match=r"t.jsonl:2.*swapped.*transposed"):
            score_predictions(source, None, path, resize=resize)
    path = write_jsonl(tmp_path / "w.jsonl", [Prediction("s000 ", None)])
    with pytest.raises(InvalidInputError, match="'s000' is: stray whitespace"):
        score_predictions(source, None, path)
