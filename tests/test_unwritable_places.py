"""Writes the OS refuses: a read-only --out, a read-only finished run or predictions file, `show -o`
into a read-only folder, a file-size limit (``ulimit -f``) during `eval`, `score` and `show`.

Each used to end in a ``PermissionError`` / ``OSError: File too large`` traceback. Now: one line
naming the path and what to do, exit 2, and the run folder resumes once the fault is gone.

Root ignores permission bits, so a folder or file is made read-only with ``chmod`` for other users
and ``chattr +i`` for root (skipped where neither works); the size limit is real: a subprocess
under ``RLIMIT_FSIZE`` with SIGXFSZ ignored, as ``ulimit -f`` gives it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _runner_helpers import REPO_DIR, subprocess_env
from reasonseg_x.atomic import write_text_atomic, writing
from reasonseg_x.cli import app
from reasonseg_x.errors import WriteError

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and rlimits")


def _set(path: Path, on: bool) -> bool:
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222 if on else mode | 0o200)
        return True
    done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make ``paths`` unwritable (for root too), and writable again afterwards."""
    made = []
    try:
        for path in paths:
            try:
                ok = _set(path, True)
            except FileNotFoundError:
                ok = False
            if not ok:
                pytest.skip("cannot make a path read-only here (chattr +i refused)")
            made.append(path)
        probe = paths[0] / ".probe" if paths[0].is_dir() else paths[0]
        try:
            with open(probe, "ab"):
                pass
        except OSError:
            pass
        else:
            pytest.skip("the read-only mark did not stop a write here")
        finally:
            if paths[0].is_dir() and probe.exists():
                with contextlib.suppress(OSError):
                    probe.unlink()
        yield
    finally:
        for path in reversed(made):
            _set(path, False)


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _one_line_error(result, *needles: str) -> str:
    """Exit 2, no traceback, one ``error:`` line naming what the test expects."""
    output = result.output if hasattr(result, "output") else result.stdout + result.stderr
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert code == 2, output
    assert "Traceback" not in output and "PermissionError" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], output
    return errors[0]


def _eval(out: Path, *extra: str):
    return _invoke("eval", "-m", "oracle", "-d", "synth:12", "-o", str(out), "-q", *extra)


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


# -- read-only places -----------------------------------------------------------------------------

def test_eval_into_a_read_only_parent_names_the_folder(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    with read_only(parent):
        line = _one_line_error(_eval(parent / "run"), str(parent / "run"), "write somewhere else")
    assert "no prediction was written" in line


def test_eval_into_a_read_only_existing_folder_names_it(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with read_only(out):
        _one_line_error(_eval(out), str(out), "make it writable")


def test_rerun_of_a_read_only_finished_run_then_resumes(tmp_path):
    out = tmp_path / "run"
    assert _eval(out).exit_code == 0
    before = (out / "predictions.jsonl").read_bytes()
    with read_only(out):
        line = _one_line_error(_eval(out), str(out), "kept in")
    assert (out / "predictions.jsonl").read_bytes() == before
    assert "rerunning the same command resumes" in line
    again = _eval(out)
    assert again.exit_code == 0, again.output
    assert (out / "predictions.jsonl").read_bytes() == before


def test_read_only_predictions_file_of_a_partial_run_then_resumes(tmp_path):
    out = tmp_path / "run"
    assert _eval(out, "-n", "4").exit_code == 0
    predictions = out / "predictions.jsonl"
    with read_only(predictions):
        _one_line_error(_eval(out), str(predictions), "make it writable", "kept in")
        _one_line_error(_eval(out, "--fresh"), str(predictions))
    assert len(_ids(predictions)) == 4
    done = _eval(out)
    assert done.exit_code == 0, done.output
    assert len(set(_ids(predictions))) == 12


def _finished_run_and_folder(tmp_path: Path, name: str) -> tuple[Path, Path]:
    out = tmp_path / "run"
    assert _eval(out).exit_code == 0
    (tmp_path / name).mkdir()
    return out, tmp_path / name


def test_score_into_a_read_only_folder(tmp_path):
    out, scores = _finished_run_and_folder(tmp_path, "scores")
    with read_only(scores):
        _one_line_error(_invoke("score", "-p", str(out / "predictions.jsonl"), "-d", "synth:12", "-o", str(scores),
                                "-q"), str(scores))
    with read_only(out):
        _one_line_error(_invoke("score", "-p", str(out), "-o", str(out), "-q"), str(out))


def test_show_into_a_read_only_folder(tmp_path):
    out, ro = _finished_run_and_folder(tmp_path, "ro")
    with read_only(ro):
        _one_line_error(_invoke("show", str(out), "-o", str(ro / "viewer"), "-q", "-j", "1"), str(ro / "viewer"))
        _one_line_error(_invoke("show", str(out), "-o", str(ro), "-q", "-j", "1"), str(ro))


def test_data_export_into_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        _one_line_error(_invoke("data", "export", "mini", "-o", str(ro / "x")), str(ro / "x"), "write somewhere else")


# -- a file-size limit, for real ------------------------------------------------------------------

def _limited(limit_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def _cli(args: list[str], *, limit: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reasonseg_x.cli", *args], cwd=REPO_DIR, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=_limited(limit) if limit else None)


@pytest.mark.timeout(600)
def test_file_size_limit_during_eval_then_resume(tmp_path):
    out = tmp_path / "run"
    args = ["eval", "-m", "oracle", "-d", "synth:120", "-o", str(out), "-q"]
    stopped = _cli(args, limit=8192)
    _one_line_error(stopped, str(out / "predictions.jsonl"), "ulimit -f", "kept in")
    assert (out / "predictions.jsonl").stat().st_size <= 8192
    done = _cli(args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(set(_ids(out / "predictions.jsonl"))) == 120
    assert json.loads((out / "metrics.json").read_text())["overall"]["giou"] == 1.0


@pytest.mark.timeout(600)
def test_file_size_limit_during_show_export_and_score(tmp_path):
    out = tmp_path / "run"
    assert _eval(out).exit_code == 0
    _one_line_error(_cli(["show", str(out), "-o", str(tmp_path / "viewer"), "-q", "-j", "1"], limit=4096),
                    str(tmp_path / "viewer"), "ulimit -f")
    _one_line_error(_cli(["data", "export", "synth:40", "-o", str(tmp_path / "export")], limit=4096),
                    str(tmp_path / "export"), "ulimit -f")
    before = (out / "per_sample.jsonl").read_bytes()
    _one_line_error(_cli(["score", "-p", str(out), "-o", str(out), "-q"], limit=1024), str(out), "ulimit -f")
    assert (out / "per_sample.jsonl").read_bytes() == before  # replaced whole or not at all


def _torn_pictures(folder: Path) -> list[str]:
    """Every PNG/JPEG under ``folder`` (temporaries too) that does not decode whole."""
    from PIL import Image

    torn = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and (path.suffix in (".png", ".jpg") or ".png.tmp-" in path.name
                               or ".jpg.tmp-" in path.name):
            try:
                with Image.open(path) as img:
                    img.load()
            except OSError:
                torn.append(str(path.relative_to(folder)))
    return torn


@pytest.mark.timeout(600)
def test_file_size_limit_never_leaves_a_torn_picture(tmp_path):
    """chart.png (~15 kB), worst.png (~110 kB) and the viewer's JPEGs (~10-20 kB) cut at 12 kB: each
    is written whole or not at all, and the error names the picture."""
    out = tmp_path / "run"
    assert _eval(out).exit_code == 0
    scored = tmp_path / "scored"
    _one_line_error(_cli(["score", "-p", str(out), "-o", str(scored), "-q"], limit=12_000), str(scored), ".png",
                    "ulimit -f")
    assert _torn_pictures(scored) == []
    viewer = tmp_path / "viewer"
    _one_line_error(_cli(["show", str(out), "-o", str(viewer), "-q", "-j", "1"], limit=12_000), str(viewer),
                    ".jpg", "ulimit -f")
    assert _torn_pictures(viewer) == []
    assert _torn_pictures(out) == []


# -- the mechanism, from its definition -----------------------------------------------------------

def test_writing_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(WriteError) as caught:
        write_text_atomic(target, "{}")
    assert str(caught.value).startswith(f"cannot write {target}: ")
    assert "free some space" in str(caught.value)
    assert not list(tmp_path.iterdir())  # the temporary is gone


def test_writing_leaves_other_errors_alone(tmp_path):
    with pytest.raises(FileNotFoundError):
        with writing(tmp_path / "x"):
            raise FileNotFoundError(errno.ENOENT, "gone", "elsewhere")


def test_an_os_write_refusal_no_layer_worded_still_ends_in_one_line(tmp_path, monkeypatch):
    import reasonseg_x.evaluators.api as api

    out = tmp_path / "run"
    assert _eval(out).exit_code == 0

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(api, "write_outputs", refuse)
    _one_line_error(_invoke("score", "-p", str(out), "-o", str(tmp_path / "o"), "-q"), str(tmp_path / "o"),
                    "write somewhere else")
