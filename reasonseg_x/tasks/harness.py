"""What the lmms-eval tasks do with a model's text, without importing lmms-eval.

Why a separate module: the harness only carries the text; everything that decides a score is
ours and must be the same as ``reasonseg-x eval`` / ``score``: the answer format's prompt and
parser (:mod:`reasonseg_x.star.answer.formats`), its coordinate frame, a segmenter (``box`` by
default, so the harness needs no SAM; any SAM by name), and the :class:`~reasonseg_x.evaluators.
Evaluator` for the per-sample records and their aggregation under a named protocol.

Settings come from the environment, because lmms-eval passes no per-run options to a task, and
from lmms-eval's model name: ``REASONSEG_X_FORMAT`` (default: the format of ``baselines/formats.yaml``
whose ``models`` names the lmms-eval model, else ``star``), ``REASONSEG_X_SEGMENTER`` (default
``box``), ``REASONSEG_X_SEGMENTER_DEVICE`` (default ``auto``), ``REASONSEG_X_PROTOCOL`` (default
``star``) and ``REASONSEG_X_MODEL_FAMILY`` (the ``model`` frame of the ``star`` format: ``qwen2.5``,
``qwen3`` or ``qwen2``; default the lmms-eval model's family, else ``qwen2.5``). See docs/harness.md.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: the key of each lmms-eval per-sample log line that holds our predictions-file line
#: (the reader in reasonseg_x/predictions.py unwraps it)
from reasonseg_x.predictions import HARNESS_KEY as PREDICTION_KEY

__all__ = ["HarnessSettings", "settings", "lmms_model_family", "prompt_text", "vlm_image", "score_answer", "aggregate",
           "count_predictions", "PREDICTION_KEY", "METRICS"]

#: the per-sample metric keys each document returns (the same record under each)
METRICS = ("gIoU", "cIoU")


@dataclass(frozen=True)
class HarnessSettings:
    format: str = "star"
    segmenter: str = "box"
    segmenter_device: str = "auto"
    protocol: str = "star"
    model_family: str = "qwen2.5"
    #: the lmms-eval model the format was chosen for (None: not known)
    model: str | None = None
    #: why this format: ``REASONSEG_X_FORMAT``, ``formats.yaml`` (its ``models`` name the model) or ``default``
    format_source: str = "default"


#: lmms-eval model-name prefixes -> the checkpoint family whose coordinate rule the ``star`` format uses
_FAMILY_PREFIXES = (("qwen3", "qwen3"), ("qwen2_5", "qwen2.5"), ("qwen2_vl", "qwen2"))


def lmms_model_family(model: str | None) -> str | None:
    """The Qwen-VL family of an lmms-eval model name (``qwen3_vl`` -> ``qwen3``), or None."""
    return next((family for prefix, family in _FAMILY_PREFIXES if (model or "").startswith(prefix)), None)


def settings(model: str | None = None) -> HarnessSettings:
    """The settings of this process for the lmms-eval model ``model`` (environment variables first,
    checked: a typo is an error naming it; then the model's own format and family)."""
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.evaluators.protocols import get_protocol
    from reasonseg_x.star.answer.formats import format_of_lmms_model, get_format
    from reasonseg_x.star.segment.segmenters import resolve_segmenter

    env = os.environ
    model = model if isinstance(model, str) and model else None
    if env.get("REASONSEG_X_FORMAT"):
        fmt, source = env["REASONSEG_X_FORMAT"], "REASONSEG_X_FORMAT"
    else:
        native = format_of_lmms_model(model)
        fmt, source = (native.name, "formats.yaml") if native is not None else ("star", "default")
    out = HarnessSettings(fmt, env.get("REASONSEG_X_SEGMENTER") or "box",
                          env.get("REASONSEG_X_SEGMENTER_DEVICE") or "auto", env.get("REASONSEG_X_PROTOCOL") or "star",
                          env.get("REASONSEG_X_MODEL_FAMILY") or lmms_model_family(model) or "qwen2.5",
                          model, source)
    get_format(out.format)
    resolve_segmenter(out.segmenter)
    get_protocol(out.protocol)
    if out.model_family not in ("qwen2.5", "qwen3", "qwen2"):
        raise InvalidInputError(f"REASONSEG_X_MODEL_FAMILY must be qwen2.5, qwen3 or qwen2, got {out.model_family!r}")
    return out


def prompt_text(query: str, fmt: str) -> str:
    """The instruction for one query in the answer format ``fmt``."""
    from reasonseg_x.star.answer.formats import get_format

    return get_format(fmt).build_prompt(query)


def vlm_image(image: Any) -> Any:
    """The picture the model is shown: RGB, resized to the 840x840 frame every pixel format refers to."""
    from reasonseg_x.star.answer.prompts import to_vlm_frame

    return to_vlm_frame(image)


_LOCK = threading.Lock()  # lmms-eval may score documents in threads; a segmenter holds one image


@lru_cache(maxsize=4)
def _segmenter(spec: str, device: str) -> Any:
    from reasonseg_x.star.segment.segmenters import load_segmenter, needs_device

    if not needs_device(spec):
        return load_segmenter(spec, device=None)
    from reasonseg_x.star.device import resolve_device

    return load_segmenter(spec, device=resolve_device(device))


def _mask(objects: Sequence[Any], height: int, width: int, image: Any, opts: HarnessSettings) -> Any:
    """The union of the objects' masks (answer_prompts, as the pipeline; SAM gets the original image)."""
    import numpy as np

    from reasonseg_x.star.segment.base import answer_prompts
    from reasonseg_x.star.segment.segmenters import PreparedImage

    segmenter = _segmenter(opts.segmenter, opts.segmenter_device)
    with _LOCK:
        if opts.segmenter == "box":
            segmenter.set_image(PreparedImage((height, width), None))  # a box needs no pixels
        else:
            if image is None:
                raise ValueError(f"segmenter {opts.segmenter!r} needs the image")
            segmenter.set_image(image.convert("RGB"))
        found = segmenter.segment_unique(answer_prompts(objects))
        return np.logical_or.reduce([found.mask(i) for i in range(len(objects))])


def score_answer(text: Any, truth: Mapping[str, Any], *, image: Any = None, opts: HarnessSettings | None = None,
                 data: str | None = None, split: str | None = None) -> dict[str, Any]:
    """One document: the model's text -> our predictions-file line and the Evaluator's per-sample record.

    ``truth``: ``{"id", "target" (RLE), "ignore" (RLE or None), "reasoning_type", "query_kind", "source"}``.
    Returns ``{PREDICTION_KEY: line, "gIoU": record, "cIoU": record}`` (each record carries the protocol).
    """
    from reasonseg_x import masks as rle
    from reasonseg_x.evaluators.evaluator import Evaluator
    from reasonseg_x.predictions import Prediction, prediction_to_json
    from reasonseg_x.star.answer.formats import get_format, read_answer

    opts = opts or settings()
    height, width = (int(v) for v in truth["target"]["size"])
    fmt = get_format(opts.format)
    if isinstance(text, (list, tuple)):  # lmms-eval hands a list of responses per request
        text = text[0] if text else None
    parsed, objects = read_answer(fmt, text if isinstance(text, str) else None, width, height,
                                  model_family=opts.model_family)
    meta = {"format": fmt.name, "prompt": fmt.prompt_template, "segmenter": opts.segmenter, "protocol": opts.protocol}
    if fmt.frame == "model":  # the star format's numbers follow the checkpoint family's rule
        meta["model_family"] = opts.model_family
    if opts.model is not None:
        meta["lmms_model"] = opts.model
    meta.update({k: v for k, v in (("data", data), ("split", split)) if v is not None})
    if parsed.status == "parse_error" and parsed.error:
        meta["error"] = str(parsed.error)[:500]
    status, mask = parsed.status, None
    if parsed.status == "ok":
        try:
            mask = rle.encode(_mask(objects, height, width, image, opts))
        except Exception as exc:  # noqa: BLE001 - a failing segmenter is this sample's error, not the run's
            status, meta["error"] = "error", f"{type(exc).__name__}: {exc}"[:500]
    line = prediction_to_json(Prediction(id=str(truth["id"]), mask=mask, status=status,
                                         raw_text=text if isinstance(text, str) else None, meta=meta))
    evaluator = Evaluator(opts.protocol, taxonomy=_taxonomy())
    gt = {k: truth.get(k) for k in ("id", "target", "ignore", "reasoning_type", "query_kind", "source")}
    evaluator.update(gt, line)
    record = {**evaluator.records[0].to_json(), "protocol": evaluator.protocol.name}
    return {PREDICTION_KEY: line, **{name: record for name in METRICS}}


@lru_cache(maxsize=1)
def _taxonomy() -> Any:
    from reasonseg_x.taxonomy import reasoning_types

    return reasoning_types(open=True)


def aggregate(items: Sequence[Mapping[str, Any]], metric: str, group: str | None = None) -> float:
    """gIoU or cIoU (``metric`` ``giou`` / ``ciou``, a fraction as in metrics.json) over the records,
    overall or for one reasoning type, computed by the Evaluator; NaN when the group has no sample."""
    from reasonseg_x.evaluators.evaluator import Evaluator
    from reasonseg_x.evaluators.records import RecordSet, SampleRecord

    records = [SampleRecord.from_json(dict(item), f"lmms-eval record {n}") for n, item in enumerate(items)]
    protocols = {str(item.get("protocol", "star")) for item in items} or {"star"}
    if len(protocols) != 1:
        raise ValueError(f"records of several protocols cannot be aggregated: {sorted(protocols)}")
    protocol = protocols.pop()
    evaluator = Evaluator(protocol, taxonomy=_taxonomy(), n_resamples=0)
    evaluator.merge(RecordSet(evaluator.protocol.name, records))
    metrics = evaluator.compute()
    block = metrics["overall"] if group is None else metrics.get("by_reasoning_type", {}).get(group)
    if not block or block.get(metric) is None:
        return math.nan
    return float(block[metric])


def count_predictions(items: Sequence[Mapping[str, Any]]) -> int:
    """How many documents the log holds a prediction for."""
    return len(items)
