"""backend=openai against a real local HTTP server (tests/_openai_server.py, 127.0.0.1, free port):
request shape, faults (retried or counted, nothing lost, the key never written), end to end on
mini with the box segmenter, equal to the same scripted answers through the in-process path."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("reasonseg_x.evaluators.api")

from _openai_server import SCRIPT, SERVED_MODEL, ScriptedOpenAIServer, scripted_answer  # noqa: E402

from reasonseg_x.errors import InvalidInputError  # noqa: E402
from reasonseg_x.runner.evaluate import EvalConfig, run_eval  # noqa: E402

KEY = "sk-test-9f8e7d6c5b4a"
TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
pytestmark = pytest.mark.timeout(120)


def _image(width=300, height=200):
    from PIL import Image

    return Image.new("RGB", (width, height), (40, 90, 160))


def _vlm(server, **kw):
    from reasonseg_x.star.generation.openai_backend import OpenAIVLM

    kw.setdefault("retry_base_delay", 0.01)
    return OpenAIVLM(server.url if hasattr(server, "url") else server, **kw)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _no_key_in(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the API key was written to {path}"


# ----------------------------------------------------------------------------- the client

def test_requests_carry_the_frame_the_prompt_n_and_sampling_parameters():
    prompts = ["find the cat", "find the dog"]
    with ScriptedOpenAIServer(expect={"model": SERVED_MODEL, "n": 3, "temperature": 0.7, "top_p": 0.8,
                                      "max_tokens": 99}) as server:
        vlm = _vlm(server, api_key=KEY)
        try:
            out = vlm.generate([_image(), _image(50, 400)], prompts, n=3, do_sample=True, temperature=0.7,
                               top_p=0.8, seed=11, max_new_tokens=99)
            info = vlm.run_info()
        finally:
            vlm.close()
    assert server.problems == []
    assert out == [[scripted_answer(p, 11 + k) for k in range(3)] for p in prompts]
    assert {r["image_size"] for r in server.requests} == {(840, 840)} and {r["seed"] for r in server.requests} == {11}
    assert server.authorizations == {f"Bearer {KEY}"}
    assert info["n_honoured"] is True and info["reported_models"] == ["org/served-star-7b"]
    assert info["request"] == {"n": 3, "max_tokens": 99, "temperature": 0.7, "top_p": 0.8, "seed": "per query"}
    assert KEY not in json.dumps(info) and KEY not in repr(vlm._client)


def test_greedy_requests_are_temperature_zero_without_a_seed_and_jpeg_is_a_choice():
    with ScriptedOpenAIServer(expect={"n": 1, "temperature": 0.0, "top_p": 1.0}) as server:
        vlm = _vlm(server, image_format="jpeg")
        try:
            assert vlm.generate([_image()], ["a"], n=1) == [[scripted_answer("a", None)]]
        finally:
            vlm.close()
    assert server.problems == [] and "seed" not in server.requests[0]


@pytest.mark.parametrize("faults, reason, retries", [
    (["429"], "429", 1),
    (["500", "500"], "500", 2),
    (["malformed"], "malformed", 1),
    (["deep"], "malformed", 1),
    (["drop"], "connection", 1),
])
def test_transient_faults_are_retried_and_the_answers_are_the_same(faults, reason, retries):
    with ScriptedOpenAIServer(faults=faults) as server:
        vlm = _vlm(server)
        try:
            assert vlm.generate([_image()], ["q"], n=2, do_sample=True, seed=5) == \
                [[scripted_answer("q", 5), scripted_answer("q", 6)]]
            stats = vlm.run_info()
        finally:
            vlm.close()
    assert stats["retries"] == retries and stats["retry_reasons"] == {reason: retries} and stats["failed"] == 0


def test_a_reply_after_the_timeout_is_retried():
    with ScriptedOpenAIServer(faults=["sleep:1.5"]) as server:
        vlm = _vlm(server, request_timeout=0.5)
        try:
            assert vlm.generate([_image()], ["q"]) == [[scripted_answer("q", None)]]
            assert vlm.run_info()["retry_reasons"] == {"timeout": 1}
        finally:
            vlm.close()


def test_a_connection_refused_at_first_is_retried_until_the_server_is_up():
    port = _free_port()
    server = ScriptedOpenAIServer(port=port)
    timer = threading.Timer(0.4, server.start)
    timer.start()
    try:
        vlm = _vlm(f"http://127.0.0.1:{port}/v1", max_attempts=10, retry_base_delay=0.2)
        try:
            assert vlm.served_model == SERVED_MODEL  # the model list came back after the refusals
            assert vlm.run_info()["retry_reasons"]["connection"] >= 1
            assert vlm.generate([_image()], ["q"]) == [[scripted_answer("q", None)]]
        finally:
            vlm.close()
    finally:
        timer.join()
        server.stop()


def test_a_server_that_ignores_n_is_topped_up_with_single_requests():
    with ScriptedOpenAIServer(honour_n=False) as server:
        vlm = _vlm(server, max_concurrency=4)
        try:
            out = vlm.generate([_image()] * 3, ["a", "b", "c"], n=4, do_sample=True, seed=100)
            info = vlm.run_info()
        finally:
            vlm.close()
    # the same answers as a server honouring n: request k of a query carries seed + k
    assert out == [[scripted_answer(p, 100 + k) for k in range(4)] for p in "abc"]
    assert info["n_honoured"] is False and info["short_replies"] >= 1
    assert sorted(r["seed"] for r in server.requests if r["prompt"] == "a") == [100, 101, 102, 103]


def test_empty_content_is_an_answer_that_counts():
    with ScriptedOpenAIServer(faults=["empty"]) as server:
        vlm = _vlm(server)
        try:
            assert vlm.generate([_image()], ["q"]) == [[""]]
            assert vlm.run_info()["empty_answers"] == 1 and vlm.run_info()["retries"] == 0
        finally:
            vlm.close()


def test_a_request_that_keeps_failing_is_that_rows_error_with_the_servers_message_and_no_key():
    from reasonseg_x.star.generation.openai_client import RequestFailed

    with ScriptedOpenAIServer(faults=["500"] * 3 + ["400"], echo_key=KEY) as server:
        vlm = _vlm(server, max_attempts=3, api_key=KEY, max_concurrency=1)
        try:
            rows = {}  # one query at a time: the n-th fault meets the n-th request
            for prompt in "abc":
                [(_, rows[prompt], _)] = list(vlm.generate_stream([_image()], [prompt]))
            info = vlm.run_info()
        finally:
            vlm.close()
    failed = [t for t in rows.values() if isinstance(t, RequestFailed)]
    assert len(failed) == 2 and len(rows) == 3  # the third row still got its answer
    messages = sorted(str(f) for f in failed)
    assert "HTTP 400" in messages[0] and "scripted 400" in messages[0] and "gave up" not in messages[0]
    assert "HTTP 500" in messages[1] and "scripted 500" in messages[1] and "gave up after 3 attempts" in messages[1]
    assert all(KEY not in m and "***" in m for m in messages)
    assert info["failed"] == 2 and info["attempts"] == 1 + 3 + 1 + 1  # models + 3 x 500 + 400 + the good one


def test_which_model_is_asked_when_the_server_serves_several():
    with ScriptedOpenAIServer(models=["a", "b"]) as server:
        with pytest.raises(InvalidInputError, match="served_model"):
            _vlm(server)


# ----------------------------------------------------------------------------- options

def test_options_need_an_endpoint_and_the_box_segmenter_resolves():
    from reasonseg_x.predictors.registry import load_predictor
    from reasonseg_x.star.segment.segmenters import needs_device, resolve_segmenter

    with pytest.raises(InvalidInputError, match="base_url"):
        load_predictor("star", backend="openai", segmenter="box")
    with pytest.raises(InvalidInputError, match="max_concurrency"):
        load_predictor("star", backend="openai", base_url="http://127.0.0.1:9/v1", max_concurrency="0")
    assert resolve_segmenter("box") == ("box", "") and needs_device("box") is False


def test_coords_choose_the_family():
    from reasonseg_x.star.generation.openai_backend import coords_family

    assert coords_family("grid1000", style="star", model_id="x")[0] == "qwen3"
    assert coords_family("pixels", style="star", model_id="StAR-8B")[0] == "qwen2.5"
    assert coords_family("auto", style="star", model_id="sj9909/StAR-8B")[0] == "qwen3"
    assert coords_family("auto", style="star", model_id="Qwen/Qwen3-VL-8B-Instruct")[0] == "qwen3"
    assert coords_family("auto", style="visionreasoner", model_id="qwen3-anything")[0] == "qwen2.5"
    assert coords_family("auto", style="star", model_id="star-7b")[0] == "qwen2.5"
    assert coords_family("auto", style="star", model_id="star /data/star8b")[0] == "qwen3"


def test_coords_auto_reads_the_served_root_vllm_lists():
    with ScriptedOpenAIServer(root="/models/StAR-8B-merged") as server:
        vlm = _vlm(server)
        try:
            assert vlm.family == "qwen3" and "StAR-8B" in vlm.run_info()["coords_reason"]
        finally:
            vlm.close()


def test_box_segmenter_fills_boxes_inclusively():
    import numpy as np

    from reasonseg_x.star.segment.segmenters import Prompt, load_segmenter

    seg = load_segmenter("box", device=None)
    seg.set_image(_image(10, 8))
    masks, scores = seg.segment([Prompt(box=(2, 1, 4, 3)), Prompt(points=((5.0, 5.0),)), Prompt(box=(-5, -5, 99, 99))])
    expected = np.zeros((8, 10), bool)
    expected[1:4, 2:5] = True
    assert np.array_equal(masks[0], expected) and not masks[1].any() and masks[2].all()
    assert scores.tolist() == [1.0, 0.0, 1.0]


# ----------------------------------------------------------------------------- end to end on mini

def _metrics(folder: Path) -> dict:
    m = json.loads((folder / "metrics.json").read_text())
    return {k: m[k] for k in ("overall", "by_reasoning_type", "counts")}


def _served(server, out: Path, *, retry_errors=False, batch_size=None, **args) -> object:
    model_args = {"backend": "openai", "base_url": server.url, "segmenter": "box", **args}
    return run_eval(EvalConfig(model="star", out=out, model_args=model_args, retry_errors=retry_errors,
                               batch_size=batch_size))


@pytest.mark.parametrize("tts, honour_n", [(1, True), (4, True), (4, False)])
def test_mini_end_to_end_equals_the_in_process_path(tmp_path, monkeypatch, tts, honour_n):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    local = run_eval(EvalConfig(model="_openai_server:ScriptedInProcessStar", out=tmp_path / "local",
                                model_args={"tts": tts}))
    expect = {"model": SERVED_MODEL, "n": tts} if honour_n else {"model": SERVED_MODEL}
    with ScriptedOpenAIServer(honour_n=honour_n, expect=expect) as server:
        served = _served(server, tmp_path / "served", tts=tts)
    assert server.problems == []
    assert served.stats.predicted == local.stats.predicted == 48 and served.stats.errors == 0
    assert _metrics(tmp_path / "served") == _metrics(tmp_path / "local")
    session = json.loads((tmp_path / "served" / "run.json").read_text())["sessions"][-1]
    assert session["predictor"]["served_model"] == SERVED_MODEL
    assert session["predictor"]["n_honoured"] == (None if tts == 1 else honour_n)
    _no_key_in(tmp_path / "served")


def test_mini_with_faults_loses_nothing_and_retry_errors_completes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", KEY)
    # one query at a time, one request in flight: the n-th fault meets the n-th request
    faults = ["429", "ok", "500", "500", "ok", "malformed", "ok", "drop", "ok", "empty",
              "500", "500", "500", "400"]
    run_eval(EvalConfig(model="_openai_server:ScriptedInProcessStar", out=tmp_path / "local"))
    args = {"max_attempts": 3, "api_key_env": "MY_KEY", "max_concurrency": 1}
    with ScriptedOpenAIServer(faults=faults, echo_key=KEY) as server:
        first = _served(server, tmp_path / "served", batch_size=1, **args)
    assert server.problems == [] and not server.faults
    # the 500s that outlast 3 attempts and the 400 are two samples' errors; everything else was retried
    assert first.stats.predicted == 48
    lines = {p["id"]: p for p in map(json.loads, (tmp_path / "served" / "predictions.jsonl").read_text().splitlines())}
    errors = [p for p in lines.values() if p["status"] == "error"]
    assert len(lines) == 48 and len(errors) == 2
    assert all("scripted" in p["meta"]["error"] and "***" in p["meta"]["error"] for p in errors)
    info = json.loads((tmp_path / "served" / "run.json").read_text())["sessions"][-1]["predictor"]
    assert info["retry_reasons"] == {"429": 1, "500": 4, "malformed": 1, "connection": 1}
    assert info["empty_answers"] == 1 and info["failed"] == 2
    _no_key_in(tmp_path / "served")
    with ScriptedOpenAIServer() as server:
        second = _served(server, tmp_path / "served", retry_errors=True, **args)
    assert second.stats.predicted == 2 and len(server.requests) == 2
    assert json.loads((tmp_path / "served" / "run.json").read_text())["counts"]["statuses"].get("error", 0) == 0
    _no_key_in(tmp_path / "served")
    # the same predictions as in-process, but for the one answer the server emptied (a parse error)
    served = {p["id"]: p for p in map(json.loads, (tmp_path / "served" / "predictions.jsonl").read_text().splitlines())}
    mine = {p["id"]: p for p in map(json.loads, (tmp_path / "local" / "predictions.jsonl").read_text().splitlines())}
    differ = [i for i in mine if (served[i]["status"], served[i].get("mask")) != (mine[i]["status"], mine[i].get("mask"))]
    assert len(differ) <= 1 and all(served[i]["status"] == "parse_error" for i in differ)


def test_a_core_install_runs_an_endpoint_end_to_end_without_torch(tmp_path):
    """backend=openai + segmenter=box in a subprocess where importing torch/transformers fails."""
    script = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'torchvision', 'peft', 'sam2', 'accelerate'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from reasonseg_x.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_DIR), str(TESTS_DIR)]), "OPENAI_API_KEY": KEY}
    with ScriptedOpenAIServer() as server:
        proc = subprocess.run([sys.executable, "-c", script, "eval", "--model", "star", "-a", "backend=openai",
                               "-a", f"base_url={server.url}", "-a", "segmenter=box", "--data", "mini",
                               "--out", str(tmp_path / "run"), "--quiet"],
                              env=env, capture_output=True, text=True, timeout=100, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.problems == [] and len(server.requests) == 48
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["counts"]["n"] == 48
    assert KEY not in proc.stdout + proc.stderr
    _no_key_in(tmp_path / "run")


def test_mini_with_the_tiny_sam_equals_the_in_process_path(tmp_path, monkeypatch):
    """The models extra: SAM (a tiny SAM 2) segments the served answers as they arrive."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from _star_tiny import build_sam2

    sam = str(build_sam2(tmp_path / "sam2"))
    local = run_eval(EvalConfig(model="_openai_server:ScriptedInProcessStar", out=tmp_path / "local",
                                model_args={"tts": 2, "segmenter": sam}, limit=8))
    with ScriptedOpenAIServer() as server:
        served = run_eval(EvalConfig(model="star", out=tmp_path / "served", limit=8, model_args={
            "backend": "openai", "base_url": server.url, "segmenter": sam, "device": "cpu", "tts": 2}))
    assert server.problems == [] and served.stats.errors == 0 and local.stats.predicted == served.stats.predicted == 8
    assert _metrics(tmp_path / "served") == _metrics(tmp_path / "local")


def test_the_png_frame_is_lossless():
    import base64
    import io

    import numpy as np
    from PIL import Image

    from reasonseg_x.star.generation.openai_backend import image_data_url

    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    url = image_data_url(image, frame=(61, 29))
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.mode == "RGB" and decoded.size == (61, 29)
    assert np.array_equal(np.asarray(decoded), np.asarray(image.resize((61, 29), Image.BILINEAR)))


def test_a_run_killed_mid_way_resumes_without_losing_or_repeating_a_sample(tmp_path):
    """kill -9 while requests are in flight; the rerun (against a new server) predicts only the rest."""
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_DIR), str(TESTS_DIR)])}
    out = tmp_path / "run"
    predictions = out / "predictions.jsonl"
    with ScriptedOpenAIServer(faults=["sleep:0.1"] * 48) as server:
        proc = subprocess.Popen([sys.executable, "-m", "reasonseg_x.cli", "eval", "--model", "star",
                                 "-a", "backend=openai", "-a", f"base_url={server.url}", "-a", "segmenter=box",
                                 "-a", "max_concurrency=2", "--batch-size", "4", "--data", "mini", "--out", str(out),
                                 "--quiet"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if predictions.exists() and len(predictions.read_bytes().splitlines()) >= 8:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    written = len(predictions.read_bytes().splitlines())
    assert 8 <= written < 48
    local = run_eval(EvalConfig(model="_openai_server:ScriptedInProcessStar", out=tmp_path / "local"))
    with ScriptedOpenAIServer() as server:
        resumed = _served(server, out, max_concurrency=2)
    assert resumed.already_done == written and resumed.stats.predicted == 48 - written
    ids = [json.loads(line)["id"] for line in predictions.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 48
    assert _metrics(out) == _metrics(tmp_path / "local") and local.stats.predicted == 48


def test_answers_are_segmented_as_they_arrive_not_after_the_last_request():
    """SAM overlaps generation: with one slow request, the others' queries are segmented meanwhile."""
    import io
    import time

    from reasonseg_x.data.record import ImageRef
    from reasonseg_x.predictors.protocol import Query
    from reasonseg_x.star.segment.box_segmenter import BoxSegmenter
    from reasonseg_x.star.predictor import StarPredictor

    class Recording(BoxSegmenter):
        def __init__(self):
            super().__init__()
            self.times = []

        def set_image(self, image):
            self.times.append(time.perf_counter())
            return super().set_image(image)

    def query(i):
        buf = io.BytesIO()
        _image(64 + i, 48).save(buf, "PNG")
        return Query(id=f"q{i}", image=ImageRef(data=buf.getvalue(), where=f"q{i}"),
                     text=f"query {i} object", height=48, width=64 + i)

    queries = [query(i) for i in range(12)]
    segmenter = Recording()
    # every prompt here scripts an answer with a box (so each query is segmented)
    with ScriptedOpenAIServer(faults=["sleep:1.5"], answer=lambda prompt, seed: SCRIPT[0]) as server:
        vlm = _vlm(server, max_concurrency=4)
        try:
            predictor = StarPredictor("unused", vlm=vlm, segmenter=segmenter)
            started = time.perf_counter()
            outputs = predictor.predict(queries)
            took = time.perf_counter() - started
        finally:
            vlm.close()
    assert [o.status for o in outputs] == ["ok"] * 12 and took >= 1.5
    early = [t - started for t in segmenter.times if t - started < 1.4]
    assert len(early) >= 10, f"only {len(early)} of 12 queries were segmented before the slow reply came"


# ----------------------------------------------------------------------------- secrets and hostile servers

def _key_forms(key: str) -> list[str]:
    """The key as written and the obvious encodings the "echo" fault sends (docs/serving.md)."""
    import base64
    import urllib.parse

    return [key, key[::-1], urllib.parse.quote(key, safe=""), base64.b64encode(f"Bearer {key}".encode()).decode()[8:]]


def _no_key_form_in(folder: Path, key: str = KEY) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for form in _key_forms(key):
                assert form.encode() not in data, f"the API key ({form}) was written to {path}"


def test_a_key_the_server_echoes_in_answers_is_masked_in_every_obvious_form():
    with ScriptedOpenAIServer(faults=["echo"], echo_key=KEY) as server:
        vlm = _vlm(server, api_key=KEY)
        try:
            [[answer]] = vlm.generate([_image()], ["q"])
            info = vlm.run_info()
        finally:
            vlm.close()
    assert server.problems == [] and answer.startswith(scripted_answer("q", None))
    assert not any(form in answer for form in _key_forms(KEY)) and answer.count("***") == 4
    assert not any(form in json.dumps(info) for form in _key_forms(KEY)) and info["reported_models"] == [
        "org/served-star-7b+***"]


def test_a_short_key_is_masked_as_written_and_its_encodings_left_alone():
    from reasonseg_x.redaction import Redactor, secret_variants

    assert secret_variants("EMPTY") == ["EMPTY"]  # vLLM's customary placeholder key
    assert Redactor(["EMPTY"])("key EMPTY, ytpme YTPME") == "key ***, ytpme YTPME"
    assert Redactor([None, ""])("untouched") == "untouched"


def test_an_echoed_key_reaches_neither_predictions_nor_the_viewer_nor_a_bundle(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from reasonseg_x.cli import app
    from reasonseg_x.viewer import build_viewer

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ScriptedOpenAIServer(faults=["echo"] * 48, echo_key=KEY) as server:  # all of mini: a bundle needs it
        result = run_eval(EvalConfig(model="star", out=tmp_path / "run", model_args={
            "backend": "openai", "base_url": server.url, "segmenter": "box", "tts": 2}))  # tts keeps raw_text
    assert result.stats.predicted == 48 and not server.faults
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    texts = [c["raw_text"] for row in rows for c in row["meta"]["candidates"]]
    assert len(texts) == 96 and all(" key *** reversed *** url *** b64 " in text for text in texts)
    build_viewer(tmp_path / "run", tmp_path / "viewer")
    bundle = CliRunner().invoke(app, ["submit", str(tmp_path / "run" / "predictions.jsonl"), "--model-name", "echo",
                                      "--out", str(tmp_path / "bundle")])
    assert bundle.exit_code == 0, bundle.output
    assert (tmp_path / "viewer" / "index.html").is_file() and (tmp_path / "bundle" / "predictions.jsonl").is_file()
    _no_key_form_in(tmp_path)


def test_credentials_in_base_url_are_sent_but_never_recorded_or_printed(tmp_path):
    import base64

    with ScriptedOpenAIServer(faults=["400"], echo_key="pa55word-xyz") as server:
        url = server.url.replace("http://", "http://alice:pa55word-xyz@")
        result = run_eval(EvalConfig(model="star", out=tmp_path / "run", limit=2, model_args={
            "backend": "openai", "base_url": url, "segmenter": "box", "max_concurrency": 1}))
        proc = subprocess.run([sys.executable, "-m", "reasonseg_x.cli", "eval", "--model", "star", "-a", "backend=openai",
                               "-a", f"base_url={url.replace(str(server.port), str(_free_port()))}", "-a",
                               "segmenter=box", "-a", "max_attempts=1", "--data", "mini", "--out", str(tmp_path / "x")],
                              env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_DIR), str(TESTS_DIR)])},
                              capture_output=True, text=True, timeout=100, cwd=tmp_path)
    assert server.authorizations == {"Basic " + base64.b64encode(b"alice:pa55word-xyz").decode()}
    assert result.stats.predicted == 2 and result.stats.statuses == {"error": 1, "ok": 1}
    recorded = "".join(p.read_text() for p in (tmp_path / "run").iterdir() if p.suffix in (".json", ".jsonl"))
    assert "pa55word" not in recorded and "alice" not in recorded
    assert f"http://127.0.0.1:{server.port}/v1" in recorded and "scripted 400 (key ***)" in recorded
    assert proc.returncode != 0 and "served_model" in proc.stderr
    assert "pa55word" not in proc.stdout + proc.stderr and "alice" not in proc.stdout + proc.stderr


def test_a_short_secret_is_masked_as_a_word_not_inside_other_words():
    """A URL's one-letter user name must not garble messages ("gave up" -> "gave ***p")."""
    from reasonseg_x.redaction import Redactor

    redact = Redactor(["u", "pw"])
    assert redact("connection failed (gave up after 5 attempts) as u:pw") == \
        "connection failed (gave up after 5 attempts) as ***:***"


def test_userinfo_is_stripped_from_urls_and_from_messages_that_quote_them():
    from reasonseg_x.redaction import scrub_urls, strip_userinfo

    assert strip_userinfo("http://u:p@host:8000/v1") == "http://host:8000/v1"
    assert strip_userinfo("https://u:p@ss@host/v1?a=b@c") == "https://host/v1?a=b@c"
    assert strip_userinfo("see http://a:b@h/v1 and mail a@b") == "see http://h/v1 and mail a@b"
    assert scrub_urls({"x": ["ftp://me@h", 3], "y": None}) == {"x": ["ftp://h", 3], "y": None}


def test_a_redirect_to_another_origin_is_not_followed():
    from reasonseg_x.star.generation.openai_client import RequestFailed

    with ScriptedOpenAIServer() as elsewhere, ScriptedOpenAIServer(faults=["redirect"],
                                                                   redirect_to=elsewhere.url) as server:
        vlm = _vlm(server, api_key=KEY)
        try:
            [(_, failure, _)] = list(vlm.generate_stream([_image()], ["q"]))
            info = vlm.run_info()
        finally:
            vlm.close()
    assert isinstance(failure, RequestFailed) and "another origin" in str(failure)
    assert elsewhere.url in str(failure) and elsewhere.requests == [] and elsewhere.paths == []
    assert info["attempts"] == 2 and info["failed"] == 1  # the model list, then one try: not retried


def test_a_redirect_within_the_endpoint_is_followed():
    with ScriptedOpenAIServer(faults=["redirect-here"]) as server:
        vlm = _vlm(server)
        try:
            assert vlm.generate([_image()], ["q"]) == [[scripted_answer("q", None)]]
        finally:
            vlm.close()
    assert server.paths == ["/v1/chat/completions", "/alt/v1/chat/completions"] and server.problems == []


def test_a_gzip_encoded_reply_is_read_and_one_that_does_not_inflate_is_retried():
    with ScriptedOpenAIServer(faults=["gzip", "bad-gzip"]) as server:
        vlm = _vlm(server, max_concurrency=1)
        try:
            assert vlm.generate([_image()], ["q"]) == [[scripted_answer("q", None)]]
            assert vlm.run_info()["retries"] == 0
            assert vlm.generate([_image()], ["r"]) == [[scripted_answer("r", None)]]
            assert vlm.run_info()["retry_reasons"] == {"malformed": 1}
        finally:
            vlm.close()


def test_a_gzip_bomb_is_given_up_at_the_bound_without_inflating_it():
    import tracemalloc

    from _openai_server import _bomb

    from reasonseg_x.star.generation.openai_client import MAX_REPLY_BYTES, RequestFailed

    assert len(_bomb(96)) < 2**20  # built before the count starts
    with ScriptedOpenAIServer(faults=["bomb"], bomb_mib=96) as server:
        vlm = _vlm(server)
        try:
            tracemalloc.start()
            try:
                [(_, failure, _)] = list(vlm.generate_stream([_image()], ["q"]))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            info = vlm.run_info()
        finally:
            vlm.close()
    assert isinstance(failure, RequestFailed) and "larger than 32 MiB" in str(failure)
    assert peak < MAX_REPLY_BYTES + 16 * 2**20, f"{peak / 2**20:.0f} MiB held for a 96 MiB bomb"
    assert info["attempts"] == 2 and info["failed"] == 1


def test_an_answer_past_the_limit_is_cut_with_a_marker_and_counted():
    from reasonseg_x.star.generation.openai_backend import ANSWER_LIMIT_FLOOR, answer_limit

    assert answer_limit(1024) == ANSWER_LIMIT_FLOOR == 65536 and answer_limit(16384) == 16 * 16384
    with ScriptedOpenAIServer(faults=["huge", "ok"], huge_chars=3_000_000) as server:
        vlm = _vlm(server, max_concurrency=1)
        try:
            [[cut], [whole]] = [vlm.generate([_image()], [p]) [0] for p in ("q", "r")]
            info = vlm.run_info()
        finally:
            vlm.close()
    assert cut.startswith(scripted_answer("q", None)) and len(cut) < ANSWER_LIMIT_FLOOR + 100
    assert cut.endswith(f" [... {len(scripted_answer('q', None)) + 1 + 3_000_000 - ANSWER_LIMIT_FLOOR} "
                        "characters cut by reasonseg-x]")
    assert whole == scripted_answer("r", None) and info["truncated_answers"] == 1
