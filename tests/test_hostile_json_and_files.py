"""JSON nested absurdly deep, and special files (FIFO, /dev/zero, /dev/urandom) given as input.

Each ended in an unnamed ``RecursionError``, a hang or a ``MemoryError``; each must be one line
naming the file, or (under ``--skip-invalid``) a counted bad row.
"""

from __future__ import annotations

import json
import os
import threading

import pytest
from typer.testing import CliRunner

from _lisa_helpers import write_image, write_pair
from reasonseg_x.cli import app
from reasonseg_x.json_input import MAX_JSON_DEPTH, JSONTooDeepError, check_json_depth, loads_user_json

DEEP = 200_000


def _deep(n: int = DEEP) -> str:
    return "[" * n + "]" * n


def _lisa_with_deep_row(root):
    folder = root / "lisa" / "test"
    for i in range(3):
        write_pair(folder, f"ok{i}")
    write_image(folder / "deep.jpg", 40, 50)
    (folder / "deep.json").write_text('{"text": ["q"], "is_sentence": true, "shapes": ' + _deep() + "}")
    return root / "lisa"


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "RecursionError" not in result.output, result.output
    for needle in needles:
        assert needle in result.output, result.output


# -- the helper, from its definition --------------------------------------------------------------

def test_depth_bound_counts_brackets_outside_strings_only():
    assert loads_user_json('{"a": "' + "[" * 500 + '"}', "f") == {"a": "[" * 500}
    assert loads_user_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "f") is not None
    with pytest.raises(JSONTooDeepError, match=r"f: JSON nested deeper than 100 levels"):
        loads_user_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "f")
    with pytest.raises(JSONTooDeepError):
        check_json_depth('{"k": ' * 150 + "1" + "}" * 150, None)


def test_depth_bound_before_the_parser_even_at_200000_levels():
    with pytest.raises(JSONTooDeepError, match="x.json"):
        loads_user_json(_deep(), "x.json")


# -- through the commands -------------------------------------------------------------------------

def test_deep_lisa_json_is_named_in_eval_info_export_and_score(tmp_path):
    data = str(_lisa_with_deep_row(tmp_path))
    _one_line_error(_invoke("eval", "-m", "oracle", "-d", data, "-o", str(tmp_path / "run"), "-q"), "deep.json",
                    "nested deeper")
    _one_line_error(_invoke("data", "info", data), "deep.json", "nested deeper")
    _one_line_error(_invoke("data", "export", data, "-o", str(tmp_path / "x")), "deep.json", "nested deeper")
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": f"ok{i}", "mask": None}) + "\n" for i in range(3)))
    _one_line_error(_invoke("score", "-p", str(preds), "-d", data, "-q"), "deep.json", "nested deeper")


def test_deep_lisa_json_is_a_counted_bad_row_under_skip_invalid(tmp_path):
    data = str(_lisa_with_deep_row(tmp_path))
    run = _invoke("eval", "-m", "oracle", "-d", data, "-o", str(tmp_path / "run"), "-q", "--skip-invalid")
    assert run.exit_code == 0, run.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 3 and metrics["data"]["skipped_rows"] == 1
    assert "nested deeper" in metrics["data"]["skipped"][0]["reason"]
    info = _invoke("data", "info", data, "--skip-invalid", "--json")
    assert info.exit_code == 0, info.output
    exported = _invoke("data", "export", data, "-o", str(tmp_path / "x"), "--skip-invalid")
    assert exported.exit_code == 0 and "deep.json" in exported.output, exported.output
    scored = _invoke("score", "-p", str(tmp_path / "run"), "-d", data, "--skip-invalid", "-q")
    assert scored.exit_code == 0, scored.output


def test_deep_predictions_line_is_named_with_its_line(tmp_path):
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "x", "mask": null, "meta": ' + _deep() + "}\n")
    _one_line_error(_invoke("score", "-p", str(preds), "-d", "mini", "-q"), "preds.jsonl:1", "nested deeper")
    done = _invoke("score", "-p", str(preds), "-d", "mini", "-q", "--skip-invalid")
    assert done.exit_code == 0, done.output


def test_deep_run_json_is_named(tmp_path):
    run = tmp_path / "run"
    assert _invoke("eval", "-m", "oracle", "-o", str(run), "-q", "-n", "2").exit_code == 0
    (run / "run.json").write_text('{"identity": ' + _deep() + "}")
    _one_line_error(_invoke("eval", "-m", "oracle", "-o", str(run), "-q", "-n", "2"), "run.json", "nested deeper")


def test_deep_reference_output_file_is_named(tmp_path):
    ref = tmp_path / "output_0.json"
    ref.write_text(_deep())
    result = _invoke("score", "-p", str(ref), "-d", "mini", "-q")
    assert "Traceback" not in result.output and "RecursionError" not in result.output, result.output
    assert "output_0.json" in result.output


# -- special files --------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_score_refuses_a_fifo_without_opening_it(tmp_path):
    fifo = tmp_path / "preds.jsonl"
    os.mkfifo(fifo)
    result = _invoke("score", "-p", str(fifo), "-d", "mini", "-q")
    _one_line_error(result, str(fifo), "FIFO")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_score_refuses_endless_devices(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    _one_line_error(_invoke("score", "-p", device, "-d", "mini", "-q"), device, "character device")


@pytest.mark.timeout(30)
def test_eval_predictions_model_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "p.jsonl"
    os.mkfifo(fifo)
    _one_line_error(_invoke("eval", "-m", f"predictions:{fifo}", "-o", str(tmp_path / "run"), "-q"), "FIFO")


@pytest.mark.timeout(60)
def test_an_endless_line_is_refused_at_the_line_bound(tmp_path, monkeypatch):
    """A regular file can still hold one endless line (a zero-filled disk image): it is read as a stream
    and refused once a line passes the bound, never read whole."""
    import reasonseg_x.predictions as predictions

    monkeypatch.setattr(predictions, "MAX_LINE_BYTES", 1 << 16)
    preds = tmp_path / "zeros.jsonl"
    preds.write_bytes(b'{"id": "a", "mask": null}\n' + b"\0" * (1 << 18))
    _one_line_error(_invoke("score", "-p", str(preds), "-d", "mini", "-q"), "zeros.jsonl:2", "longer than")


@pytest.mark.timeout(30)
def test_fifo_with_a_writer_is_refused_too(tmp_path):
    """Not only a blocked open: a pipe is never a predictions file (it cannot be read twice)."""
    fifo = tmp_path / "p.jsonl"
    os.mkfifo(fifo)

    def writer() -> None:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    _one_line_error(_invoke("score", "-p", str(fifo), "-d", "mini", "-q"), "FIFO")


@pytest.mark.timeout(30)
def test_a_run_json_that_is_a_fifo_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "run.json")
    _one_line_error(_invoke("eval", "-m", "oracle", "-o", str(run), "-q", "-n", "2"), "run.json", "FIFO")


def _run_whose_predictions_file_is_a_fifo(tmp_path):
    run = tmp_path / "run"
    assert _invoke("eval", "-m", "oracle", "-o", str(run), "-q", "-n", "2").exit_code == 0
    (run / "predictions.jsonl").unlink()
    os.mkfifo(run / "predictions.jsonl")
    return run


@pytest.mark.timeout(30)
def test_a_run_folder_whose_predictions_file_is_a_fifo_is_refused(tmp_path):
    run = _run_whose_predictions_file_is_a_fifo(tmp_path)
    _one_line_error(_invoke("eval", "-m", "oracle", "-o", str(run), "-q", "-n", "2"), "predictions.jsonl", "FIFO")


@pytest.mark.timeout(30)
def test_score_of_a_run_folder_whose_predictions_file_is_a_fifo_says_so(tmp_path):
    """Not "no <id>.png mask files": the folder is a run, its predictions.jsonl is no regular file."""
    run = _run_whose_predictions_file_is_a_fifo(tmp_path)
    _one_line_error(_invoke("score", "-p", str(run), "-q"), str(run / "predictions.jsonl"), "FIFO",
                    "not a regular file")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fifo_name", ["q.json", "q.jpg"])
def test_a_lisa_file_that_is_a_fifo_is_named_as_such(tmp_path, fifo_name):
    """Not "image has no annotation file" (the FIFO used to be skipped as no file at all), never a hang."""
    folder = tmp_path / "lisa" / "test"
    for i in range(2):
        write_pair(folder, f"ok{i}")
    write_pair(folder, "q")
    (folder / fifo_name).unlink()
    os.mkfifo(folder / fifo_name)
    data = str(tmp_path / "lisa")
    _one_line_error(_invoke("data", "info", data), fifo_name, "FIFO", "not a regular file")
    _one_line_error(_invoke("eval", "-m", "oracle", "-d", data, "-o", str(tmp_path / "run"), "-q"), fifo_name,
                    "FIFO")
    run = _invoke("eval", "-m", "oracle", "-d", data, "-o", str(tmp_path / "run"), "-q", "--skip-invalid")
    assert run.exit_code == 0, run.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 2 and metrics["data"]["skipped_rows"] == 1
    assert "FIFO" in metrics["data"]["skipped"][0]["reason"]


@pytest.mark.timeout(60)
def test_replay_answers_file_bounds_nesting_and_refuses_a_fifo(tmp_path):
    pytest.importorskip("lmms_eval")
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.models.reasonseg_x_replay import read_answers

    deep = tmp_path / "answers.jsonl"
    deep.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": ' + _deep() + "}\n")
    with pytest.raises(InvalidInputError, match=r"answers.jsonl:2: .*nested deeper"):
        read_answers(deep)
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="FIFO"):
        read_answers(fifo)
