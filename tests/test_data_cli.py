"""``reasonseg-x data info`` and ``reasonseg-x data export``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import _datahf_helpers as h
from reasonseg_x.cli import app
from reasonseg_x.data.resolve import open_source


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONSEG_X_CACHE", str(tmp_path / "cache"))


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_info_prints_tables_and_json(tmp_path):
    h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(5), "val": h.make_rows(2, seed=3)})
    result = _run("data", "info", str(tmp_path / "hub"))
    assert result.exit_code == 0, result.output
    assert "sample ids from: ann_id" in result.output and "C/KI" in result.output and "24/24/24" in result.output
    result = _run("data", "info", str(tmp_path / "hub"), "--split", "test", "--json")
    info = json.loads(result.output)
    (split,) = info["splits"]
    assert split["samples"] == 5 and split["no_target"] == 1 and split["height"] == {"min": 24, "median": 24.0,
                                                                                     "max": 24}
    assert split["reasoning_type"]["function_purpose"] == 2 and info["skipped"] == []
    src = open_source(str(tmp_path / "hub"))
    assert (split["fingerprint"], split["input_fingerprint"]) == (src.fingerprint("test"), src.input_fingerprint("test"))


def test_info_reports_skipped_rows_and_errors_cleanly(tmp_path):
    rows = h.make_rows(4)
    rows[1]["reasoning_type"] = "mystery"
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    result = _run("data", "info", str(tmp_path / "hub"))
    assert result.exit_code == 2 and "row 1" in result.stderr and "mystery" in result.stderr
    result = _run("data", "info", str(tmp_path / "hub"), "--skip-invalid", "--json")
    info = json.loads(result.output)
    assert info["splits"][0]["samples"] == 3 and info["skipped"][0]["where"].endswith(":row 1")


def test_info_checks_images_counts_each_bad_row_once_and_export_agrees(tmp_path):
    rows = h.make_rows(5)
    rows[1]["reasoning_type"] = "mystery"
    rows[3]["image"] = {"bytes": h.png_bytes()[:-30], "path": None}  # truncated: only the end marker tells
    h.write_hub_folder(tmp_path / "hub", {"test": rows})
    result = _run("data", "info", str(tmp_path / "hub"), "--open-taxonomy")
    assert result.exit_code == 2 and ":row 3: truncated image" in result.stderr
    info = json.loads(_run("data", "info", str(tmp_path / "hub"), "--skip-invalid", "--json").output)
    assert info["splits"][0]["samples"] == 3
    assert sorted(row["where"].rsplit(":", 1)[1] for row in info["skipped"]) == ["row 1", "row 3"]
    unchecked = json.loads(_run("data", "info", str(tmp_path / "hub"), "--skip-invalid", "--json",
                                "--no-check-images").output)
    assert unchecked["splits"][0]["samples"] == 4
    result = _run("data", "export", str(tmp_path / "hub"), "--skip-invalid", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0 and "test: 3 samples" in result.output and "skipped 2 invalid row(s)" in result.stderr


def test_export_to_an_existing_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = _run("data", "export", "mini", "--out", str(tmp_path / "afile"))
    assert result.exit_code == 2 and "exists and is not a folder" in result.stderr and "Traceback" not in result.output


def test_export_then_info_gives_the_same_numbers(tmp_path):
    h.write_hub_folder(tmp_path / "hub", {"test": h.make_rows(5)})
    result = _run("data", "export", str(tmp_path / "hub"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "data" / "test-00000-of-00001.parquet").is_file()
    before = json.loads(_run("data", "info", str(tmp_path / "hub"), "--json").output)
    after = json.loads(_run("data", "info", str(tmp_path / "out"), "--json").output)
    for key in ("samples", "reasoning_type", "query_kind", "height", "width", "no_target", "with_ignore", "fingerprint"):
        assert before["splits"][0][key] == after["splits"][0][key]
    result = _run("data", "export", str(tmp_path / "hub"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "already holds" in result.stderr


def test_unknown_source_is_a_one_line_error():
    result = _run("data", "info", "definitely-not-a-source")
    assert result.exit_code == 2 and "accepted data specs" in result.stderr


def test_info_on_a_known_name_describes_the_splits_that_are_available(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    h.dataset(h.make_rows(3)).save_to_disk(str(tmp_path / "data" / "ReasonSegX_test"))
    monkeypatch.setenv("REASONSEG_X_DATA", str(tmp_path / "data"))
    result = _run("data", "info", "reasonseg-x", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert [s["name"] for s in info["splits"]] == ["test"] and set(info["unavailable"]) == {"train", "val"}
    assert info["splits"][0]["source"] == {"reasonseg-x": 3}
    result = _run("data", "info", "reasonseg-x", "--split", "val")
    assert result.exit_code == 2 and "HF_HUB_OFFLINE" in result.stderr
    result = _run("data", "export", "reasonseg-x", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0 and "test: 3 samples" in result.stdout
    assert "split train not available, not exported" in result.stderr and "split val not available" in result.stderr
    result = _run("data", "export", "reasonseg-x", "--split", "val", "--out", str(tmp_path / "out2"))
    assert result.exit_code == 2 and "HF_HUB_OFFLINE" in result.stderr and not (tmp_path / "out2").exists()


def test_export_one_split_skipping_bad_rows(tmp_path):
    rows = h.make_rows(4)
    rows[2]["img_width"] = 7
    h.write_hub_folder(tmp_path / "hub", {"test": rows, "val": h.make_rows(2, seed=5)})
    result = _run("data", "export", str(tmp_path / "hub"), "--out", str(tmp_path / "out"), "--split", "test",
                  "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "test: 3 samples" in result.stdout and "skipped 1 invalid row" in result.stderr
    assert [p.name for p in (tmp_path / "out" / "data").iterdir()] == ["test-00000-of-00001.parquet"]
