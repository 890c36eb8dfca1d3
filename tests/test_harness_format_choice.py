"""The lmms-eval task asks each model in its own answer format (issue 21): the format whose
``models`` in baselines/formats.yaml name lmms-eval's model, else StAR's; ``REASONSEG_X_FORMAT``
wins. The same format writes the prompt and reads the answer, and each predictions line records it.
Needs the ``harness`` extra (skips without it)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("lmms_eval") is None:  # no import at collection: lmms-eval is slow to import
    pytest.skip("the harness extra (lmms-eval) is not installed", allow_module_level=True)

TASKS = Path(__file__).resolve().parents[1] / "reasonseg_x" / "tasks"


@pytest.fixture(autouse=True)
def _pil_settings_restored(monkeypatch):
    """Importing lmms_eval.tasks turns on PIL's LOAD_TRUNCATED_IMAGES process-wide; other test modules
    check that truncated images are reported, so it is put back after each test here."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", ImageFile.LOAD_TRUNCATED_IMAGES)


@pytest.fixture
def mini_config(_pil_settings_restored):
    from lmms_eval import utils

    return utils.load_yaml_config(yaml_path=str(TASKS / "reasonseg_x_mini.yaml"), mode="full")


def _task(config, model_name):
    from reasonseg_x.tasks.lmms_task import ReasonSegXTask

    return ReasonSegXTask(config=dict(config), model_name=model_name)


def _prompt(task, doc):
    (turn,) = task.doc_to_messages(doc)
    return [part["text"] for part in turn["content"] if part["type"] == "text"]


def test_qwen2_5_vl_is_asked_and_read_in_its_own_format(mini_config, monkeypatch):
    from reasonseg_x import masks as rle
    from reasonseg_x.star.answer.formats import get_format
    from reasonseg_x.tasks.harness import PREDICTION_KEY

    monkeypatch.delenv("REASONSEG_X_FORMAT", raising=False)
    monkeypatch.delenv("REASONSEG_X_SEGMENTER", raising=False)
    task = _task(mini_config, "qwen2_5_vl")
    doc = task.test_docs()[0]
    native = get_format("qwen2.5-native")
    assert _prompt(task, doc) == [native.build_prompt(doc["text"])]
    assert task.doc_to_text(doc) == native.build_prompt(doc["text"])

    height, width = task._truth[doc["id"]]["target"]["size"]
    box = [84, 168, 420, 504]  # pixels of the 840x840 frame the model sees
    answer = "```json\n" + json.dumps([{"bbox_2d": box, "label": "thing"}]) + "\n```"
    out = task.process_results(doc, [answer])
    line = out[PREDICTION_KEY]
    assert line["status"] == "ok"
    assert line["meta"]["format"] == "qwen2.5-native" and line["meta"]["prompt"] == native.prompt_template
    assert line["meta"]["lmms_model"] == "qwen2_5_vl"
    # pixels frame: int(v * size / 840 + .5), the box segmenter fills x1..x2, y1..y2 inclusive
    x1, x2 = (int(v * width / 840 + 0.5) for v in (box[0], box[2]))
    y1, y2 = (int(v * height / 840 + 0.5) for v in (box[1], box[3]))
    expected = np.zeros((height, width), bool)
    expected[y1:y2 + 1, x1:x2 + 1] = True
    assert np.array_equal(rle.decode(line["mask"]), expected)


def test_an_unknown_model_gets_star(mini_config, monkeypatch):
    from reasonseg_x.star.answer.formats import get_format
    from reasonseg_x.tasks.harness import PREDICTION_KEY

    monkeypatch.delenv("REASONSEG_X_FORMAT", raising=False)
    monkeypatch.delenv("REASONSEG_X_MODEL_FAMILY", raising=False)
    for name in ("reasonseg_x_replay", None):
        task = _task(mini_config, name)
        doc = task.test_docs()[0]
        assert _prompt(task, doc) == [get_format("star").build_prompt(doc["text"])]
        meta = task.process_results(doc, ["no idea"])[PREDICTION_KEY]["meta"]
        assert meta["format"] == "star" and meta["model_family"] == "qwen2.5"


def test_the_environment_variable_wins(mini_config, monkeypatch):
    from reasonseg_x.star.answer.formats import get_format
    from reasonseg_x.tasks.harness import PREDICTION_KEY

    monkeypatch.setenv("REASONSEG_X_FORMAT", "internvl")
    task = _task(mini_config, "qwen2_5_vl")
    doc = task.test_docs()[0]
    assert _prompt(task, doc) == [get_format("internvl").build_prompt(doc["text"])]
    assert task.process_results(doc, ["no idea"])[PREDICTION_KEY]["meta"]["format"] == "internvl"
    # the star format on a Qwen3-VL reads its numbers with the Qwen3 rule
    monkeypatch.setenv("REASONSEG_X_FORMAT", "star")
    monkeypatch.delenv("REASONSEG_X_MODEL_FAMILY", raising=False)
    meta = _task(mini_config, "qwen3_vl").process_results(doc, ["no idea"])[PREDICTION_KEY]["meta"]
    assert meta["format"] == "star" and meta["model_family"] == "qwen3"


def test_lmms_eval_task_manager_passes_its_model(monkeypatch):
    """lmms-eval builds a ``class:`` task without the model name: the task finds it on the TaskManager."""
    from lmms_eval.tasks import TaskManager, get_task_dict

    monkeypatch.delenv("REASONSEG_X_FORMAT", raising=False)
    manager = TaskManager(include_path=str(TASKS), include_defaults=False, model_name="qwen3_vl")
    task = get_task_dict(["reasonseg_x_mini"], manager, "chat")["reasonseg_x_mini"]
    assert task._opts.format == "qwen3-native"
    doc = task.test_docs()[0]
    assert _prompt(task, doc)[0].startswith("Locate every object that")
