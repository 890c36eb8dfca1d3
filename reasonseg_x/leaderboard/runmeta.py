"""What a submission takes from the run folder of ``reasonseg-x eval``: its metadata, and the samples
it covers.

Authors forget ``--meta tts=...``: a StAR run with 32 sampled answers submitted without it would
be listed as a greedy model. When the predictions file sits in a run folder, the model, checkpoint,
base model and test-time-scaling settings are taken from the run; ``--meta`` still wins. The
predictions are validated against the manifest of the samples the run covers (its run record's
rule), so the bundle holds the n and fingerprint of the run's metrics.json.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.runner.record import RunRecord, open_run_data, read_record

if TYPE_CHECKING:  # pragma: no cover
    from reasonseg_x.leaderboard.manifest import Manifest

__all__ = ["meta_from_run", "merge_meta", "manifest_of_run"]

#: sampling settings that describe a test-time-scaling run, copied into ``tts`` when present
_TTS_SETTINGS = ("temperature", "top_p", "top_k", "seed", "cluster_agg_mode")


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, str) and len(value) > 200)


def meta_from_run(predictions: str | os.PathLike[str]) -> dict[str, Any]:
    """Fields for :func:`~reasonseg_x.leaderboard.submission.build_submission` from ``run.json``
    beside ``predictions`` (``{}`` when there is none or it is not a model run)."""
    record = read_record(Path(predictions).parent, lenient=True)  # a damaged one is the runner's business
    if record is None:
        return _harness_meta(predictions)
    model = record.model
    if not isinstance(model.get("name"), str) or model["name"].startswith("predictions"):
        return {}
    args = model.get("args") if isinstance(model.get("args"), dict) else {}
    out: dict[str, Any] = {"meta": {"model": model["name"]}}
    if isinstance(args.get("checkpoint"), str):
        out["meta"]["checkpoint"] = args["checkpoint"]
    if isinstance(args.get("base_model"), str):
        out["base_model"] = args["base_model"]
    out["meta"].update(_answer_format(record.info, args))
    n = args.get("tts")
    n = int(n) if isinstance(n, str) and n.strip().isdigit() else n  # an unconverted "-a tts=32"
    if isinstance(n, int) and not isinstance(n, bool) and n > 1:
        tts: dict[str, Any] = {"method": str(args.get("aggregator") or "majority_vote"), "n": n}
        tts.update({k: args[k] for k in _TTS_SETTINGS if k in args and _scalar(args[k])})
        out["tts"] = tts
    return out


def _answer_format(run: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """``answer_format`` and ``zero_shot`` of a zero-shot run (``eval --model vlm``): the format the
    predictor reported (``auto`` resolved), else the one asked for; the board shows them beside the
    model so a zero-shot number is not read as a fine-tuned one."""
    sessions = run.get("sessions") if isinstance(run.get("sessions"), list) else []
    reported = next((s["predictor"] for s in reversed(sessions) if isinstance(s, dict)
                     and isinstance(s.get("predictor"), dict)), {})
    described = reported.get("answer_format") if isinstance(reported.get("answer_format"), dict) else {}
    name = described.get("name") if isinstance(described.get("name"), str) else args.get("format")
    out: dict[str, Any] = {}
    if isinstance(name, str) and name and _scalar(name):
        out["answer_format"] = name
    if reported.get("zero_shot") is True:
        out["zero_shot"] = True
    return out


def _harness_meta(predictions: str | os.PathLike[str]) -> dict[str, Any]:
    """``answer_format`` of an lmms-eval per-sample log of our tasks (the format each line records,
    docs/harness.md), so its row names the format the model was asked in; ``{}`` for other files."""
    from reasonseg_x.predictions import harness_origin

    fmt = (harness_origin(predictions) or {}).get("format")
    return {"meta": {"answer_format": fmt}} if fmt and _scalar(fmt) else {}


def merge_meta(from_run: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (from ``--meta``) over ``from_run``; ``tts`` settings and ``meta`` keys merge one by one."""
    out = {**from_run, **{k: v for k, v in given.items() if k not in ("meta", "tts")}}
    out["meta"] = {**from_run.get("meta", {}), **given.get("meta", {})}
    if "tts" in given and given["tts"] is None:  # --meta tts=none: the author says no scaling
        out["tts"] = None
    elif "tts" in given or "tts" in from_run:
        out["tts"] = {**from_run.get("tts", {}), **given.get("tts", {})}
    return out


def manifest_of_run(run: RunRecord, split: str | None = None) -> Manifest:
    """The manifest of the samples ``run`` covers, its data read as the run read it."""
    from reasonseg_x.leaderboard.manifest import manifest_from_source

    source, chosen = open_run_data(run, split=split)
    return manifest_from_source(source, chosen)
