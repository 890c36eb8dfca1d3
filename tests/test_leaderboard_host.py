"""Host side: scoring untrusted bundles into SQLite, idempotency, rejections, the CLI, and push."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _leaderboard_helpers import FakeSource, file_member, make_bundle, prediction_lines, tar_bytes, write_jsonl
from typer.testing import CliRunner

from reasonseg_x.leaderboard.bundle import PREDICTIONS_FILE, SUBMISSION_FILE, open_bundle
from reasonseg_x.leaderboard.host import GroundTruthContext, score_bundle, score_bundles
from reasonseg_x.leaderboard.push import PushError, push_bundle
from reasonseg_x.leaderboard.safety import UnsafeBundleError
from reasonseg_x.leaderboard.store import LeaderboardStore, result_rows

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def source() -> FakeSource:
    return FakeSource(16)


@pytest.fixture()
def context(source: FakeSource) -> GroundTruthContext:
    return GroundTruthContext.load(source, "test")


def test_score_store_and_resubmit_idempotently(tmp_path: Path, source: FakeSource, context: GroundTruthContext) -> None:
    perfect = make_bundle(tmp_path, source, name="perfect")
    half = make_bundle(tmp_path, source, name="half", quality=0.5, out="half.tar.gz")
    with LeaderboardStore(tmp_path / "lb.sqlite") as store:
        first = score_bundles([perfect, half], context, store)
        assert [o.status for o in first] == ["verified", "verified"]
        assert first[0].giou == pytest.approx(1.0) and first[0].ciou == pytest.approx(1.0)
        assert first[1].giou < 1.0
        again = score_bundles([perfect, half], context, store)
        assert [o.status for o in again] == ["unchanged", "unchanged"]
        assert [o.submission_id for o in again] == [o.submission_id for o in first]
        assert store.count("submissions") == 2 and store.count("evaluations") == 2
        rescored = score_bundle(half, context, store, rescore=True)
        assert rescored.status == "verified" and rescored.evaluation_id == first[1].evaluation_id
        assert store.count("evaluations") == 2
        entries = {e.model_name: e for e in store.entries()}
        assert set(entries["perfect"].results["reasoning_type"]) == {"function_purpose", "commonsense",
                                                                    "comparative_relational", "compositional"}
        assert entries["perfect"].results["overall"][""]["n"] == 16
        assert entries["half"].gt_fingerprint == source.fingerprint("test")
    conn = sqlite3.connect(tmp_path / "lb.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 2 * 6  # overall, 4 types, 1 source


@pytest.mark.parametrize("break_it, reason", [
    (lambda rows, src: rows.pop(), "missing ids"),
    (lambda rows, src: rows.append({"id": "intruder", "mask": None, "status": "ok"}), "unknown ids"),
    (lambda rows, src: rows[0].update(mask={"size": [1, 1], "counts": "1"}), "size differs"),
    (lambda rows, src: rows[0].update(mask={"size": [2, 2], "counts": "?"}), "invalid RLE"),
])
def test_host_rejects_bundles_that_do_not_fit(tmp_path: Path, source: FakeSource, context: GroundTruthContext,
                                              break_it, reason: str) -> None:
    """A bundle built with a doctored manifest still gets re-validated by the host."""
    rows = prediction_lines(source)
    break_it(rows, source)
    folder = _doctored_bundle(tmp_path, source, "".join(json.dumps(r) + "\n" for r in rows).encode())
    with LeaderboardStore(tmp_path / "lb.sqlite") as store:
        outcome = score_bundle(folder, context, store)
        assert outcome.status == "rejected" and reason in outcome.reason
        assert store.count("submissions") == 0
        assert store.rejections()[0]["source_name"] == folder.name


def _doctored_bundle(tmp_path: Path, source: FakeSource, body: bytes) -> Path:
    """A bundle whose predictions were replaced after submit, with a matching checksum (as an attacker would)."""
    import hashlib

    folder = make_bundle(tmp_path, source)
    (folder / PREDICTIONS_FILE).write_bytes(body)
    doc = json.loads((folder / SUBMISSION_FILE).read_text())
    doc["files"][PREDICTIONS_FILE] = {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    (folder / SUBMISSION_FILE).write_text(json.dumps(doc))
    return folder


@pytest.mark.parametrize("line, reason", [
    ('{"id": "s000", "mask": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper"),
    ('{"id": "s000", "mask": null, "status": "ok", "meta": {"n": ' + "9" * 5000 + "}}", "number of 5000"),
    ('{"id": "s000", "mask": null, "status": "ok", "meta": {"x": NaN}}', "not allowed"),
    ('{"id": "s000", "mask": {"size": [1e9, 1e9], "counts": "0"}, "status": "ok"}', "'s000' (predictions.jsonl:1: RLE"),
    ('{"id": "s000", "mask": {"size": [99999, 99999], "counts": "0"}, "status": "ok"}', "out of range"),
    ('{"id": ["s000"], "mask": null}', "malformed lines"),
    ('"just a string"', "malformed lines"),
    ('{"id": "s000", "mask": {"size": [2, 2], "counts": {"$ref": 1}}, "status": "ok"}', "invalid RLE"),
])
def test_host_rejects_hostile_prediction_lines(tmp_path: Path, source: FakeSource, context: GroundTruthContext,
                                               line: str, reason: str) -> None:
    rows = [json.dumps(r) for r in prediction_lines(source)[1:]]
    folder = _doctored_bundle(tmp_path, source, ("\n".join([line, *rows]) + "\n").encode())
    with LeaderboardStore(tmp_path / "lb.sqlite") as store:
        outcome = score_bundle(folder, context, store)
        assert outcome.status == "rejected" and reason in outcome.reason, outcome.reason
        assert store.count("submissions") == 0


def test_host_rejects_other_dataset_and_hostile_archives(tmp_path: Path, source: FakeSource,
                                                         context: GroundTruthContext) -> None:
    other = make_bundle(tmp_path, FakeSource(16, seed=5), out="other")
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(tar_bytes([file_member("../../escape.json", b"{}")]))
    pickled = tmp_path / "pickled.tar.gz"
    pickled.write_bytes(tar_bytes([file_member(SUBMISSION_FILE, b"{}"), file_member("model.pkl", b"\x80\x04N.")]))
    work = tmp_path / "scratch"
    work.mkdir()
    with LeaderboardStore(tmp_path / "lb.sqlite") as store:
        outcomes = score_bundles([other, evil, pickled, tmp_path / "absent.tar.gz"], context, store, workdir=work)
        assert [o.status for o in outcomes] == ["rejected"] * 4
        assert "host's ground truth" in outcomes[0].reason
        assert "climbs out" in outcomes[1].reason
        assert "not an allowed file type" in outcomes[2].reason
        assert "not found" in outcomes[3].reason
        assert len(store.rejections()) == 4 and store.rejections()[1]["file_sha256"]
    assert not (tmp_path / "escape.json").exists() and not (tmp_path.parent / "escape.json").exists()
    assert list(work.iterdir()) == []  # scratch folders are removed


def test_copied_predictions_are_pointed_out(tmp_path: Path, source: FakeSource, context: GroundTruthContext) -> None:
    """The same predictions under another name are scored (it may be a fair re-upload) but flagged."""
    original = make_bundle(tmp_path, source, name="original", quality=0.5, out="a")
    copy = make_bundle(tmp_path, source, name="copycat", quality=0.5, out="b")
    with LeaderboardStore(tmp_path / "lb.sqlite") as store:
        first, second = score_bundles([original, copy], context, store)
    assert first.reason == "" and second.status == "verified"
    assert second.reason == f"same predictions as submission {first.submission_id} ('original')"


def test_result_rows_flatten_metrics() -> None:
    metrics = {"overall": {"n": 3, "giou": 0.5, "ciou": 0.4, "giou_ci": [0.1, 0.9], "ciou_ci": None},
               "by_reasoning_type": {"commonsense": {"n": 3, "giou": 0.5, "ciou": float("nan")}},
               "counts": {"ok": 3}}
    rows = result_rows(metrics)
    assert rows[0] == ("overall", "", 3, 0.5, 0.4, 0.1, 0.9, None, None)
    assert rows[1] == ("reasoning_type", "commonsense", 3, 0.5, None, None, None, None, None)


def test_store_refuses_a_non_database(tmp_path: Path) -> None:
    from reasonseg_x.errors import InvalidInputError

    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InvalidInputError, match="not a usable leaderboard database"):
        LeaderboardStore(bad)


# --- CLI -------------------------------------------------------------------------------------


@pytest.fixture()
def cli(monkeypatch: pytest.MonkeyPatch, source: FakeSource):  # type: ignore[no-untyped-def]
    import reasonseg_x.cli.leaderboard as module
    from reasonseg_x.cli import app

    monkeypatch.setattr(module, "_open_source", lambda spec: source if spec == "fake" else FakeSource(16, seed=9))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_cli_submit_score_render(tmp_path: Path, source: FakeSource, cli) -> None:  # type: ignore[no-untyped-def]
    preds = write_jsonl(tmp_path / "p.jsonl", prediction_lines(source))
    result = cli("submit", preds, "--split", "test", "--model-name", "My Model", "--data", "fake",
                 "--meta", "params=7B", "--meta", "base_model=Qwen2.5-VL-7B-Instruct", "--out", tmp_path / "b.tar.gz")
    assert result.exit_code == 0, result.output
    assert "bundle written" in result.output
    result = cli("leaderboard", "manifest", "--data", "fake", "--out", tmp_path / "manifest.json")
    assert result.exit_code == 0, result.output
    result = cli("submit", preds, "--manifest", tmp_path / "manifest.json", "--model-name", "Via manifest",
                 "--out", tmp_path / "b2")
    assert result.exit_code == 0, result.output
    db = tmp_path / "lb.sqlite"
    result = cli("leaderboard", "score", tmp_path / "b.tar.gz", tmp_path / "b2", "--gt", "fake", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.output.count("verified") == 2 and "gIoU 100.0" in result.output
    result = cli("leaderboard", "score", tmp_path / "b.tar.gz", "--gt", "fake", "--db", db)
    assert result.exit_code == 0 and "unchanged" in result.output
    result = cli("leaderboard", "list", "--db", db)
    assert result.exit_code == 0 and "My Model" in result.output and "gIoU 100.0" in result.output
    cli("leaderboard", "score", tmp_path / "p.jsonl", "--gt", "fake", "--db", db)
    result = cli("leaderboard", "list", "--db", db, "--rejections")
    assert result.exit_code == 0 and "p.jsonl: " in result.output
    result = cli("leaderboard", "render", "--db", db, "--out", tmp_path / "site")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "site" / "index.html").read_text()
    assert "My Model" in html and "StAR-32B + MV" in html


def test_cli_list_shows_every_protocol(tmp_path: Path, source: FakeSource, cli) -> None:  # type: ignore[no-untyped-def]
    """One bundle scored under two protocols: two evaluations, both listed with their protocol."""
    bundle = make_bundle(tmp_path, source)
    db = tmp_path / "lb.sqlite"
    for protocol in ("star", "lisa"):
        assert cli("leaderboard", "score", bundle, "--gt", "fake", "--db", db, "--protocol", protocol).exit_code == 0
    result = cli("leaderboard", "list", "--db", db)
    assert result.exit_code == 0 and "[star]" in result.output and "[lisa]" in result.output
    with LeaderboardStore(db) as store:
        assert [e.protocol for e in store.entries()] == ["star", "lisa"]
        assert [e.protocol for e in store.entries(protocol="lisa")] == ["lisa"]


def test_cli_submit_reads_the_run_folder(tmp_path: Path, source: FakeSource,
                                         cli) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"model": {"name": "star", "args": {"tts": 8, "top_p": 0.9}}}))
    preds = write_jsonl(run / "predictions.jsonl", prediction_lines(source))
    result = cli("submit", preds, "--model-name", "m", "--data", "fake", "--meta", "tts.seed=7",
                 "--out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert "metadata from" in result.output and "tts.n=8" in result.output
    doc = json.loads((tmp_path / "b" / SUBMISSION_FILE).read_text())
    assert doc["tts"] == {"method": "majority_vote", "n": 8, "top_p": 0.9, "seed": 7}
    assert doc["meta"] == {"model": "star"}


def test_cli_submit_lists_offending_ids(tmp_path: Path, source: FakeSource, cli) -> None:  # type: ignore[no-untyped-def]
    rows = prediction_lines(source)[3:] + [{"id": "ghost", "mask": None, "status": "ok"}]
    preds = write_jsonl(tmp_path / "p.jsonl", rows)
    result = cli("submit", preds, "--model-name", "m", "--data", "fake", "--out", tmp_path / "b")
    assert result.exit_code == 2
    assert "3 missing ids" in result.output and "'s000'" in result.output and "'ghost'" in result.output
    assert not (tmp_path / "b").exists()


def test_cli_submit_without_the_data_points_at_manifest(tmp_path: Path, source: FakeSource,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       cli) -> None:  # type: ignore[no-untyped-def]
    import reasonseg_x.cli.leaderboard as module
    from reasonseg_x.errors import SourceNotFoundError

    class Unreachable(FakeSource):
        def samples(self, split=None):  # type: ignore[no-untyped-def]
            raise SourceNotFoundError("cannot reach the Hub (no network?)")
            yield

    monkeypatch.setattr(module, "_open_source", lambda spec: Unreachable(4))
    preds = write_jsonl(tmp_path / "p.jsonl", prediction_lines(source))
    result = cli("submit", preds, "--model-name", "m", "--out", tmp_path / "b")
    assert result.exit_code == 2 and "no network" in result.output and "--manifest manifest.json" in result.output


def test_cli_push_an_existing_bundle(tmp_path: Path, source: FakeSource, monkeypatch: pytest.MonkeyPatch,
                                     cli) -> None:  # type: ignore[no-untyped-def]
    """`leaderboard push` is what the offline `submit --push` message tells the author to run later."""
    bundle = make_bundle(tmp_path, source)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = cli("leaderboard", "push", bundle, "--repo", "org/subs")
    assert result.exit_code == 2 and "offline mode is on" in result.output
    assert f"reasonseg-x leaderboard push {bundle} --repo org/subs" in result.output
    result = cli("leaderboard", "push", tmp_path / "absent", "--repo", "org/subs")
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.parametrize("args, message", [
    (["leaderboard", "render", "--out", "{file}"], "must be a folder, but this is a file"),
    (["leaderboard", "render", "--out", "{file}/site"], "lies below"),
    (["leaderboard", "manifest", "--data", "fake", "--out", "{file}/m.json"], "lies below"),
    (["leaderboard", "manifest", "--data", "fake", "--out", "{dir}"], "must be a file, but this is a folder"),
    (["leaderboard", "score", "{bundle}", "--gt", "fake", "--db", "{dir}/x.sqlite", "--workdir", "{file}"],
     "must be a folder, but this is a file"),
    (["leaderboard", "score", "{bundle}", "--gt", "fake", "--db", "{file}/x.sqlite"], "lies below"),
    (["leaderboard", "score", "{bundle}", "--gt", "fake", "--db", "{dir}"], "must be a file, but this is a folder"),
    (["submit", "{preds}", "--data", "fake", "--model-name", "m", "--out", "{file}/b"], "lies below"),
    (["submit", "{preds}", "--data", "fake", "--model-name", "m", "--out", "{file}/b.tar.gz"], "lies below"),
])
def test_cli_output_paths_that_cannot_be_written(tmp_path: Path, source: FakeSource, cli, args: list[str],
                                                message: str) -> None:  # type: ignore[no-untyped-def]
    """One line naming the path, never a NotADirectoryError traceback (QA bug list, item 2)."""
    values = {"file": tmp_path / "afile", "dir": tmp_path / "adir", "bundle": make_bundle(tmp_path, source),
              "preds": write_jsonl(tmp_path / "p.jsonl", prediction_lines(source))}
    values["file"].write_text("x")
    values["dir"].mkdir()
    result = cli(*[a.format(**values) for a in args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert list(values["dir"].iterdir()) == []  # refused before anything was created
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an OSError


def test_cli_score_exit_code_on_rejection(tmp_path: Path, source: FakeSource, cli) -> None:  # type: ignore[no-untyped-def]
    bundle = make_bundle(tmp_path, source)
    result = cli("leaderboard", "score", bundle, "--gt", "other", "--db", tmp_path / "lb.sqlite")
    assert result.exit_code == 1 and "rejected" in result.output


# --- push ------------------------------------------------------------------------------------


def test_push_offline_fails_at_once_and_keeps_the_bundle(tmp_path: Path, source: FakeSource,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = make_bundle(tmp_path, source)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(PushError, match="offline mode is on") as info:
        push_bundle(bundle, "org/submissions")
    assert time.monotonic() - start < 1.0
    assert str(bundle) in str(info.value) and (bundle / SUBMISSION_FILE).is_file()


def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode off, also in huggingface_hub's constant, which it reads from the environment once
    at import (a test before this one may have imported it with HF_HUB_OFFLINE=1 set)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_push_unreachable_endpoint_fails_fast(tmp_path: Path, source: FakeSource,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bundle = make_bundle(tmp_path, source)
    _online(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(PushError, match="cannot reach"):
        push_bundle(bundle, "org/submissions")
    assert time.monotonic() - start < 5.0 and (bundle / PREDICTIONS_FILE).is_file()


def test_push_does_not_wait_on_a_hanging_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS is outside the socket timeout: a resolver that never answers must not hold the author."""
    import socket

    from reasonseg_x.leaderboard.push import check_online

    _online(monkeypatch)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: time.sleep(3) or [(0, 0, 0, "", ("127.0.0.1", 9))])
    start = time.monotonic()
    with pytest.raises(PushError, match="cannot resolve hub.example within 0.2 s"):
        check_online("https://hub.example", timeout=0.2)
    assert time.monotonic() - start < 1.5


def test_push_opens_a_dataset_pull_request(tmp_path: Path, source: FakeSource) -> None:
    calls = []

    class FakeApi:
        def upload_folder(self, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(("folder", kwargs))
            return type("Commit", (), {"pr_url": "https://hub/pr/1"})()

        def upload_file(self, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(("file", kwargs))
            raise RuntimeError("401 unauthorized")

    folder = make_bundle(tmp_path, source)
    assert push_bundle(folder, "org/subs", api=FakeApi()) == "https://hub/pr/1"
    kind, kwargs = calls[0]
    assert kind == "folder" and kwargs["repo_type"] == "dataset" and kwargs["create_pr"] is True
    digest = open_bundle(folder, tmp_path / "w").digest
    assert kwargs["repo_id"] == "org/subs" and kwargs["path_in_repo"] == f"submissions/model-a-{digest[:12]}"
    archive = make_bundle(tmp_path, source, name="My model / v2", out="b.tar.gz")
    with pytest.raises(PushError, match="401 unauthorized.*left at.*leaderboard push"):
        push_bundle(archive, "org/subs", api=FakeApi())
    assert archive.is_file() and calls[1][1]["path_in_repo"].startswith("submissions/My-model-v2-")
    assert calls[1][1]["path_in_repo"].endswith(".tar.gz")
    broken = make_bundle(tmp_path, source, out="broken")
    (broken / PREDICTIONS_FILE).write_text("tampered\n")
    with pytest.raises(UnsafeBundleError, match="sha256|declares"):  # nothing broken is uploaded
        push_bundle(broken, "org/subs", api=FakeApi())
    assert len(calls) == 2


def test_cli_submit_push_offline_in_a_fresh_process(tmp_path: Path, source: FakeSource) -> None:
    """Through the real entry point: HF_HUB_OFFLINE=1 fails at once, exit 2, bundle kept."""
    manifest_path = tmp_path / "manifest.json"
    from reasonseg_x.leaderboard.manifest import manifest_from_source, write_manifest

    write_manifest(manifest_from_source(source, "test"), manifest_path)
    preds = write_jsonl(tmp_path / "p.jsonl", prediction_lines(source))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "reasonseg_x.cli", "submit", str(preds), "--manifest",
                           str(manifest_path), "--model-name", "m", "--out", str(tmp_path / "b"), "--push", "org/s"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "offline mode is on" in proc.stderr and "left at" in proc.stderr
    assert (tmp_path / "b" / SUBMISSION_FILE).is_file()
    assert time.monotonic() - start < 30


def test_two_connections_store_one_row(tmp_path: Path, source: FakeSource, context: GroundTruthContext) -> None:
    """Two host processes scoring the same bundle into one database: one submission row."""
    bundle = make_bundle(tmp_path, source)
    db = tmp_path / "lb.sqlite"
    with LeaderboardStore(db) as a, LeaderboardStore(db) as b:
        first, second = score_bundle(bundle, context, a), score_bundle(bundle, context, b)
        assert (first.status, second.status) == ("verified", "unchanged")
        assert a.count("submissions") == b.count("submissions") == 1


def test_oversized_predictions_in_a_folder_bundle(tmp_path: Path, source: FakeSource,
                                                  context: GroundTruthContext) -> None:
    from reasonseg_x.leaderboard.safety import Limits

    bundle = make_bundle(tmp_path, source)
    with LeaderboardStore(tmp_path / "lb.sqlite") as store:
        outcome = score_bundle(bundle, context, store, limits=Limits(max_member_bytes=200))
    assert outcome.status == "rejected" and "the limit is 200" in outcome.reason


@pytest.mark.parametrize("spec", ["synth:40", "mini"])
def test_end_to_end_on_a_real_source(tmp_path: Path, spec: str) -> None:
    """submit -> leaderboard score -> render through the real entry point and data resolver."""
    resolve = pytest.importorskip("reasonseg_x.data.resolve")
    from reasonseg_x.errors import SourceNotFoundError

    try:
        real = resolve.open_source(spec)
    except SourceNotFoundError as exc:
        pytest.skip(f"{spec} not available: {exc}")
    split = real.default_split()
    rows = [{"id": gt.id, "mask": gt.target, "status": "ok"} for gt in real.ground_truth(split)]
    preds = write_jsonl(tmp_path / "p.jsonl", rows)

    def run(*args: object) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "reasonseg_x.cli", *map(str, args)], capture_output=True,
                              text=True, cwd=REPO, timeout=120)

    done = run("submit", preds, "--split", split, "--model-name", "target replay", "--data", spec,
               "--out", tmp_path / "b.tar.gz")
    assert done.returncode == 0, done.stderr
    done = run("leaderboard", "score", tmp_path / "b.tar.gz", "--gt", spec, "--split", split,
               "--db", tmp_path / "lb.sqlite")
    assert done.returncode == 0 and "verified" in done.stdout, done.stderr
    done = run("leaderboard", "render", "--db", tmp_path / "lb.sqlite", "--out", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "site" / "data.json").read_text())
    entry = next(e for e in data["entries"] if e["kind"] == "verified")
    assert entry["overall"]["n"] == len(rows) and entry["overall"]["giou"] > 90


def test_a_scorer_crash_is_logged_and_the_batch_goes_on(tmp_path: Path, source: FakeSource,
                                                        context: GroundTruthContext) -> None:
    calls = []

    def flaky(src, split, predictions, protocol):  # type: ignore[no-untyped-def]
        calls.append(len(predictions))
        if len(calls) == 1:
            raise KeyError("boom")
        from reasonseg_x.leaderboard.host import evaluator_scorer

        return evaluator_scorer(src, split, predictions, protocol)

    bundles = [make_bundle(tmp_path, source, out="a"), make_bundle(tmp_path, source, name="b", out="b")]
    with LeaderboardStore(tmp_path / "lb.sqlite") as store:
        outcomes = score_bundles(bundles, context, store, scorer=flaky)
        assert [o.status for o in outcomes] == ["error", "verified"]
        assert "KeyError" in outcomes[0].reason and store.count("submissions") == 1


def test_copied_predictions_are_flagged_in_the_table(tmp_path: Path, source: FakeSource,
                                                     context: GroundTruthContext) -> None:
    """The board's entry of a copy names whose predictions it carries (the original is not flagged)."""
    import shutil

    from reasonseg_x.leaderboard.site import board_data, render_site

    original = make_bundle(tmp_path, source, name="original", quality=0.5, out="a")
    copy = make_bundle(tmp_path, source, name="copycat", quality=0.5, out="b")
    with LeaderboardStore(tmp_path / "lb.sqlite") as store:
        score_bundles([original, copy], context, store)
        entries = {e["model"]: e for e in board_data(store, reported=False)["entries"]}
    assert entries["copycat"]["same_predictions_as"] == "original"
    assert "same_predictions_as" not in entries["original"]
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("chromium is not installed: the rendered table is not checked")
    page = render_site(tmp_path / "lb.sqlite", tmp_path / "site", reported=False)
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=90,
                         env={**os.environ, "HOME": str(tmp_path)}).stdout
    assert dom.count("same predictions as original") == 1
