"""`score --skip-invalid` skips malformed data rows as `eval --skip-invalid` does: counted, listed by
file, the rest scored."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from _lisa_helpers import write_pair
from reasonseg_x.cli import app


def _bad_lisa_folder(root):
    folder = root / "lisa" / "test"
    for i in range(4):
        write_pair(folder, f"ok{i}")
    write_pair(folder, "trunc", image="truncated")
    write_pair(folder, "enc", raw=b'{"text": ["\x81\x8d\x90\x9d"], "is_sentence": true, "shapes": []}')
    write_pair(folder, "tiny", shapes=[{"label": "target", "points": [[1, 1], [5, 5]], "shape_type": "polygon"}])
    return root / "lisa"


def test_score_skip_invalid_skips_bad_data_rows_like_eval(tmp_path):
    data = _bad_lisa_folder(tmp_path)
    run = CliRunner().invoke(app, ["eval", "-m", "oracle", "-d", str(data), "-o", str(tmp_path / "run"),
                                   "--skip-invalid", "-q"])
    assert run.exit_code == 0, run.output
    bare = tmp_path / "p.jsonl"  # predictions outside their run folder: nothing says the rows were skipped
    bare.write_bytes((tmp_path / "run" / "predictions.jsonl").read_bytes())
    stopped = CliRunner().invoke(app, ["score", "-p", str(bare), "-d", str(data), "-q"])
    assert stopped.exit_code == 2 and "enc.json" in stopped.output
    as_run = CliRunner().invoke(app, ["score", "-p", str(tmp_path / "run"), "-q", "-o", str(tmp_path / "again")])
    assert as_run.exit_code == 0, as_run.output  # the run folder reads its data as the run did
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["overall"]["n"] == 4
    done = CliRunner().invoke(app, ["score", "-p", str(tmp_path / "run" / "predictions.jsonl"), "-d", str(data),
                                    "--skip-invalid", "-o", str(tmp_path / "scores")])
    assert done.exit_code == 0, done.output
    assert "3 skipped source row(s)" in done.output
    metrics = json.loads((tmp_path / "scores" / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 4 and metrics["overall"]["giou"] == 1.0
    assert metrics["data"]["skipped_rows"] == 3
    reasons = {row["where"].rsplit("/", 1)[-1]: row["reason"] for row in metrics["data"]["skipped"]}
    assert set(reasons) == {"enc.json", "tiny.json", "trunc.jpg"}
    assert "UTF-8" in reasons["enc.json"] and "at least 3" in reasons["tiny.json"] and "truncated" in reasons["trunc.jpg"]
