"""The lmms-eval side of the ReasonSeg-X tasks: the task class the YAML files name, the document
functions and the aggregations. Imported only by lmms-eval (the ``harness`` extra).

Why a task class: lmms-eval loads a task's documents with ``datasets.load_dataset(dataset_path)``,
which cannot open our sources (the embedded ``mini`` split, the reference download script's
folders, LISA folders); the class loads them through :func:`reasonseg_x.data.datasets_api.load_dataset`
instead, keeps the ground truth out of the documents (so the per-sample log does not carry every
mask twice), and scores each document with :func:`reasonseg_x.tasks.harness.score_answer`.
The class is a chat (``doc_to_messages``) task: models with lmms-eval's chat interface run it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from lmms_eval.api.task import ConfigurableMessagesTask

from reasonseg_x.tasks.harness import (PREDICTION_KEY, HarnessSettings, aggregate, count_predictions, prompt_text,
                                       score_answer, settings, vlm_image)

__all__ = ["ReasonSegXTask", "doc_to_visual", "doc_to_text", "doc_to_messages"]

#: columns the documents do not carry (the ground truth stays with the task, the rest is not needed)
_HIDDEN = ("target", "ignore", "queries", "meta")
_LABELS = ("reasoning_type", "query_kind")


def doc_to_visual(doc: dict[str, Any]) -> list[Any]:
    """The 840x840 frame of the document's image (every pixel format refers to it)."""
    return [vlm_image(doc["image"])]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None, *,
                answer_format: str | None = None) -> str:
    """The answer format's instruction for the query (``answer_format``: bound by the task to the one
    it parses with; unbound, ``REASONSEG_X_FORMAT`` or StAR's)."""
    return prompt_text(doc["text"], answer_format or settings().format)


def doc_to_messages(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None, *,
                    answer_format: str | None = None) -> list[dict[str, Any]]:
    """One user turn: the image, then the instruction asking for boxes (and points) in the format we parse."""
    content = [{"type": "image", "url": image} for image in doc_to_visual(doc)]
    content.append({"type": "text", "text": doc_to_text(doc, answer_format=answer_format)})
    return [{"role": "user", "content": content}]


def _scored_by_the_task(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    raise TypeError("ReasonSeg-X documents are scored by ReasonSegXTask.process_results (it holds the ground truth)")


def _building_model_name() -> str | None:
    """The model name of the lmms-eval ``TaskManager`` building this task: lmms-eval 0.7.3 constructs a
    ``class:`` task with its config alone (``TaskManager._load_individual_task_or_group``), although the
    manager holds the ``--model`` name (docs/harness.md)."""
    from lmms_eval.tasks import TaskManager

    frame = inspect.currentframe()
    try:
        while frame is not None:
            owner = frame.f_locals.get("self")
            if isinstance(owner, TaskManager):
                name = getattr(owner, "model_name", None)
                return name if isinstance(name, str) else None
            frame = frame.f_back
        return None
    finally:
        del frame


_ANNOUNCED: set[tuple[str, str | None, str]] = set()


def _announce(opts: HarnessSettings) -> None:
    """Say once per process which format the tasks ask in, and why (a group builds many tasks)."""
    key = (opts.format, opts.model, opts.format_source)
    if key in _ANNOUNCED:
        return
    _ANNOUNCED.add(key)
    from loguru import logger  # lmms-eval's logger

    why = {"REASONSEG_X_FORMAT": "set by REASONSEG_X_FORMAT",
           "formats.yaml": f"the format baselines/formats.yaml lists for lmms-eval model {opts.model!r}",
           "default": f"no format of baselines/formats.yaml lists lmms-eval model {opts.model!r}"}[opts.format_source]
    family = f", coordinates of the {opts.model_family} family" if opts.format == "star" else ""
    logger.info(f"ReasonSeg-X tasks: answer format {opts.format!r}{family} ({why}; REASONSEG_X_FORMAT overrides)")


class ReasonSegXTask(ConfigurableMessagesTask):
    """A ReasonSeg-X (or related) split as an lmms-eval task: ``dataset_path`` is our data spec
    (``mini``, ``reasonseg-x``, ``muse``, a local folder...), ``test_split`` its split.

    The answer format is chosen once, here, for the model (``REASONSEG_X_FORMAT``, else the format of
    ``baselines/formats.yaml`` whose ``models`` name it, else ``star``) and bound into the task's
    ``doc_to_text`` / ``doc_to_messages``, so the prompt and :meth:`process_results` use the same one."""

    def __init__(self, data_dir: Any = None, cache_dir: Any = None, download_mode: Any = None,
                 config: dict[str, Any] | None = None, model_name: str | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}  # TaskConfig has no such field
        # lmms-eval takes the metric names as they are only when a task has its own process_results
        config.setdefault("process_results", _scored_by_the_task)
        self._opts = settings(model_name or _building_model_name())
        for key, fn in (("doc_to_text", doc_to_text), ("doc_to_messages", doc_to_messages)):
            config[key] = functools.partial(fn, answer_format=self._opts.format)
        _announce(self._opts)
        super().__init__(data_dir, cache_dir, download_mode, config, model_name or self._opts.model)

    def download(self, dataset_kwargs: dict[str, Any] | None = None) -> None:
        import datasets

        from reasonseg_x.data.datasets_api import load_dataset

        from PIL import ImageFile

        kwargs = dict(dataset_kwargs or {})
        split = self.config.test_split
        # importing lmms_eval.tasks turns on PIL's LOAD_TRUNCATED_IMAGES for the whole process; our
        # loaders report a truncated image as an error naming the row, so it is off while they read
        truncated, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            ds = load_dataset(str(self.DATASET_PATH), split, skip_invalid=bool(kwargs.get("skip_invalid")),
                              open_taxonomy=bool(kwargs.get("open_taxonomy")))
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = truncated
        labels = {}
        for name in _LABELS:
            feature = ds.features[name]
            values = ds[name]
            labels[name] = ([feature.int2str(v) if v is not None else None for v in values]
                            if isinstance(feature, datasets.ClassLabel) else list(values))
        truth = ds.select_columns(["id", "target", "ignore", "source"])
        self._truth = {}
        for n, row in enumerate(truth):
            self._truth[row["id"]] = {**row, **{name: labels[name][n] for name in _LABELS}}
        self._rows = {sample_id: n for n, sample_id in enumerate(self._truth)}
        docs = ds.remove_columns([c for c in (*_HIDDEN, *_LABELS) if c in ds.column_names])
        for name in _LABELS:
            docs = docs.add_column(name, labels[name])
        self.dataset = datasets.DatasetDict({split: docs})
        self.dataset_no_image = datasets.DatasetDict({split: docs.remove_columns(["image"])})

    def _image(self, doc: dict[str, Any]) -> Any:
        if self._opts.segmenter == "box":
            return None
        image = doc.get("image")
        if image is None:  # documents without media: read it from the task's own copy
            image = self.dataset[self.config.test_split][self._rows[doc["id"]]]["image"]
        return image

    def process_results(self, doc: dict[str, Any], results: list[Any], full_docs: Any = None) -> dict[str, Any]:
        """The model's text -> our predictions line (under ``predictions``) and the Evaluator's record
        (under every score metric the task lists)."""
        scored = score_answer(results[0] if results else None, self._truth[doc["id"]], image=self._image(doc),
                              opts=self._opts, data=str(self.DATASET_PATH), split=self.config.test_split)
        record = scored["gIoU"]
        return {name: scored[PREDICTION_KEY] if name == PREDICTION_KEY else record for name in self._metric_fn_list}


# --- aggregations (lmms-eval calls each with the list of one metric's per-document values) ---------

def predictions(items: list[dict[str, Any]]) -> int:
    return count_predictions(items)


def _aggregation(metric: str, reasoning_type: str | None = None) -> Callable[[list[dict[str, Any]]], float]:
    """The aggregation of ``metric`` (overall, or of one reasoning type), named as the YAML files name it
    (``!function reasonseg_x.tasks.lmms_task.giou_commonsense``: a module attribute, picklable by name)."""
    name = metric if reasoning_type is None else f"{metric}_{reasoning_type}"

    def aggregation(items: list[dict[str, Any]]) -> float:
        return aggregate(items, metric, reasoning_type)

    aggregation.__name__ = aggregation.__qualname__ = name
    aggregation.__module__ = __name__
    return aggregation


giou = _aggregation("giou")
ciou = _aggregation("ciou")
giou_function_purpose = _aggregation("giou", "function_purpose")
ciou_function_purpose = _aggregation("ciou", "function_purpose")
giou_commonsense = _aggregation("giou", "commonsense")
ciou_commonsense = _aggregation("ciou", "commonsense")
giou_comparative_relational = _aggregation("giou", "comparative_relational")
ciou_comparative_relational = _aggregation("ciou", "comparative_relational")
giou_compositional = _aggregation("giou", "compositional")
ciou_compositional = _aggregation("ciou", "compositional")
