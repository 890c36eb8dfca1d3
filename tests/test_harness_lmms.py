"""lmms-eval's real CLI on the ``reasonseg_x_mini`` task with the replay model registered through
``LMMS_EVAL_PLUGINS``: its numbers equal ``reasonseg-x score`` on its per-sample log (read as it is,
no ``--data``), and both equal ``reasonseg-x eval`` on the same answers served by an endpoint,
overall and per reasoning type. Needs the ``harness`` extra (skips without it)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("lmms_eval") is None:  # no import here: lmms-eval takes ~10 s to import
    pytest.skip("the harness extra (lmms-eval) is not installed", allow_module_level=True)
pytest.importorskip("httpx")
typer_testing = pytest.importorskip("typer.testing")

REPO = Path(__file__).resolve().parents[1]
TYPES = ("function_purpose", "commonsense", "comparative_relational", "compositional")
pytestmark = pytest.mark.timeout(600)


def _answers() -> dict[str, str]:
    """query -> a StAR-format answer (right box, shifted box, no target, garbage), keyed by query so
    that an endpoint, which sees only the prompt, answers the same text."""
    from reasonseg_x import masks as rle
    from reasonseg_x.data.resolve import open_source

    out: dict[str, str] = {}
    for n, s in enumerate(open_source("mini").samples("test")):
        if s.query in out:
            continue
        m = rle.decode(s.target)
        if n % 6 == 5:
            out[s.query] = "I am not sure."
        elif not m.any() or n % 6 == 4:
            out[s.query] = "<think>nothing</think><answer>[]</answer>"
        else:
            ys, xs = np.nonzero(m)
            shift = 40 * (n % 3)
            box = [round(float(v)) for v in (xs.min() * 840 / s.width + shift, ys.min() * 840 / s.height,
                                              xs.max() * 840 / s.width + shift, ys.max() * 840 / s.height)]
            obj = {"label": "x", "bbox_2d": box, "point_2d": box[:2]}
            out[s.query] = f"<think>step {n}</think><answer>{json.dumps([obj])}</answer>"
    return out


def _run_lmms_eval(tmp_path: Path, answers: dict[str, str]) -> tuple[dict, Path]:
    from reasonseg_x.data.resolve import open_source

    answers_file = tmp_path / "answers.jsonl"
    answers_file.write_text("".join(json.dumps({"id": s.id, "text": answers[s.query]}) + "\n"
                                    for s in open_source("mini").samples("test")))
    out = tmp_path / "lmms"
    # no REASONSEG_X_FORMAT: the replay model is in no format's ``models``, so the task asks in StAR's
    env = {**{k: v for k, v in os.environ.items() if k != "REASONSEG_X_FORMAT"}, "LMMS_EVAL_PLUGINS": "reasonseg_x", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf"), "TOKENIZERS_PARALLELISM": "false"}
    tasks_dir = subprocess.run([sys.executable, "-m", "reasonseg_x.tasks"], env=env, capture_output=True, text=True,
                               check=True).stdout.strip()
    assert Path(tasks_dir) == REPO / "reasonseg_x" / "tasks"
    proc = subprocess.run([sys.executable, "-m", "lmms_eval", "--model", "reasonseg_x_replay", "--model_args",
                           f"answers={answers_file}", "--tasks", "reasonseg_x_mini", "--include_path", tasks_dir,
                           "--log_samples", "--output_path", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(next(out.rglob("*_results.json")).read_text())["results"]["reasonseg_x_mini"]
    return results, next(out.rglob("*_samples_reasonseg_x_mini.jsonl"))


def _served_eval(tmp_path: Path, answers: dict[str, str], monkeypatch) -> dict:
    from _openai_server import ScriptedOpenAIServer

    from reasonseg_x.runner.evaluate import EvalConfig, run_eval
    from reasonseg_x.star.answer.formats import get_format

    by_prompt = {get_format("star").build_prompt(q): a for q, a in answers.items()}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ScriptedOpenAIServer(answer=lambda prompt, seed: by_prompt[prompt]) as server:
        run_eval(EvalConfig(model="vlm", out=tmp_path / "served", data="mini", model_args={
            "backend": "openai", "base_url": server.url, "format": "star", "coords": "pixels", "segmenter": "box"}))
    assert server.problems == []
    return json.loads((tmp_path / "served" / "metrics.json").read_text())


def test_lmms_eval_numbers_equal_reasonseg_x_score_per_reasoning_type(tmp_path, monkeypatch):
    from reasonseg_x.cli import app

    answers = _answers()
    lmms, samples = _run_lmms_eval(tmp_path, answers)

    scored = tmp_path / "scored"
    result = typer_testing.CliRunner().invoke(app, ["score", "--predictions", str(samples), "--out", str(scored),
                                                    "--bootstrap", "0", "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    ours = json.loads((scored / "metrics.json").read_text())
    assert (ours["data"]["spec"], ours["data"]["split"]) == ("mini", "test")  # from the log, no --data
    served = _served_eval(tmp_path, answers, monkeypatch)

    assert lmms["predictions,none"] == 48 == ours["overall"]["n"] == served["overall"]["n"]
    for metric in ("giou", "ciou"):
        name = {"giou": "gIoU", "ciou": "cIoU"}[metric]
        assert lmms[f"{name},none"] == ours["overall"][metric] == served["overall"][metric]
        for kind in TYPES:
            assert lmms[f"{name}_{kind},none"] == ours["by_reasoning_type"][kind][metric] \
                == served["by_reasoning_type"][kind][metric], (metric, kind)
    assert ours["counts"]["parse_error"] == served["counts"]["parse_error"] > 0
    assert ours["counts"]["no_target"] == served["counts"]["no_target"] > 0
    # the log is a predictions file as it is: each line's prediction carries the format and the data
    first = json.loads(samples.read_text().splitlines()[0])
    assert first["predictions"]["meta"]["format"] == "star" and first["predictions"]["meta"]["data"] == "mini"
    # the CLI's --model reached the task, which found no format listing it (formats.yaml `models`)
    assert first["predictions"]["meta"]["lmms_model"] == "reasonseg_x_replay"


@pytest.fixture(autouse=True)
def _pil_settings_restored(monkeypatch):
    """Importing lmms_eval.tasks turns on PIL's LOAD_TRUNCATED_IMAGES process-wide; other test
    modules check that truncated images are reported, so it is put back after each test here."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", ImageFile.LOAD_TRUNCATED_IMAGES)


def test_the_entry_point_payload_registers_the_chat_model():
    """pyproject's ``lmms_eval.models`` entry point: lmms-eval's registry resolves the chat class."""
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    from reasonseg_x.models import lmms_eval_manifests

    registry = ModelRegistryV2()
    for manifest in registry._coerce_payload_to_manifests(lmms_eval_manifests):
        registry.register_manifest(manifest)
    cls = registry.get_model_class("reasonseg_x_replay")
    assert cls.__name__ == "ReplayAnswers" and cls.is_simple is False
    tomllib = pytest.importorskip("tomllib")
    entry = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["lmms_eval.models"]
    assert entry == {"reasonseg_x": "reasonseg_x.models:lmms_eval_manifests"}


def test_every_task_and_group_is_indexed_and_names_a_catalogued_split():
    import yaml
    from lmms_eval.tasks import TaskManager

    from reasonseg_x._resources import shipped_file

    tasks_dir = REPO / "reasonseg_x" / "tasks"
    manager = TaskManager(include_path=str(tasks_dir), include_defaults=False)
    files = sorted(tasks_dir.glob("reasonseg_x_*.yaml"))
    names = {p.stem for p in files}
    assert names | {"reasonseg_x", "reasonseg_x_related", "reasonseg_x_refcoco"} == set(manager.all_tasks)
    catalog = yaml.safe_load(shipped_file("annotations", "catalog.yaml").read_text())
    for path in files:
        text = path.read_text()
        spec = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("dataset_path:"))
        split = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("test_split:"))
        assert spec == "mini" or split in catalog[spec]["splits"], path.name
        typed = "gIoU_compositional" in text
        assert typed == (spec in ("mini", "reasonseg-x")), path.name  # per-type metrics where the types exist


def test_every_aggregation_the_task_files_name_is_a_module_attribute_of_that_name():
    """The YAML files name aggregations by module path (``!function ...lmms_task.giou_commonsense``):
    each exists under that name, pickles by it, and scores its own metric and reasoning type."""
    import pickle
    import re

    import reasonseg_x.tasks.lmms_task as lmms_task

    named = {m for p in (REPO / "reasonseg_x" / "tasks").glob("*.yaml")
             for m in re.findall(r"aggregation: !function reasonseg_x\.tasks\.lmms_task\.(\w+)", p.read_text())}
    assert {"giou", "ciou", *(f"{m}_{t}" for m in ("giou", "ciou") for t in TYPES)} <= named
    calls = []
    for name in sorted(named):
        function = getattr(lmms_task, name)
        assert function.__name__ == name and pickle.loads(pickle.dumps(function)) is function
        if name != "predictions":
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(lmms_task, "aggregate", lambda items, metric, group=None: calls.append((metric, group)))
                function([])
            metric, _, group = name.partition("_")
            assert calls[-1] == (metric, group or None), name
