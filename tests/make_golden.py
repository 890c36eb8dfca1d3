"""Write evaluators/golden/: twelve hand-built cases scored under every protocol.

    PYTHONPATH=. python tests/make_golden.py      # rewrites ground_truth.jsonl, predictions.jsonl, expected/

Run it only when a protocol rule changes on purpose; tests/test_golden.py then checks the new
numbers exactly, and the diff of expected/ shows what moved.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reasonseg_x import masks
from reasonseg_x.predictions import Prediction, prediction_to_json

GOLDEN = Path(__file__).resolve().parents[1] / "evaluators" / "golden"
PROTOCOLS = ("star", "visionreasoner", "lisa", "gres")
H, W = 6, 8
#: metrics.json keys that change with the release, not with the rules
UNSTABLE = ("version",)


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


NONE = np.zeros((H, W), dtype=bool)

#: (id, reasoning_type, query_kind, target, ignore, prediction status, prediction mask)
CASES = [
    ("g01-overlap", "function_purpose", "long", box(1, 4, 1, 5), None, "ok", box(2, 5, 2, 6)),
    ("g02-exact", "commonsense", "short", box(0, 2, 0, 8), None, "ok", box(0, 2, 0, 8)),
    ("g03-ignore-covered", "comparative_relational", "long", box(1, 3, 1, 3), box(3, 5, 1, 3), "ok", box(1, 5, 1, 3)),
    ("g04-ignore-missed", "commonsense", "long", box(0, 3, 4, 8), box(3, 4, 4, 8), "ok", box(0, 2, 4, 8)),
    ("g05-empty-target-empty-mask", "compositional", "short", NONE, None, "ok", None),
    ("g06-empty-target-false-alarm", "function_purpose", "short", NONE, None, "ok", box(0, 1, 0, 2)),
    ("g07-empty-target-no-target", "compositional", "long", NONE, None, "no_target", None),
    ("g08-empty-target-parse-error", "comparative_relational", "short", NONE, None, "parse_error", None),
    ("g09-target-parse-error", "function_purpose", "long", box(2, 6, 0, 3), None, "parse_error", None),
    ("g10-target-missing", "commonsense", "short", box(4, 6, 4, 8), None, "missing", None),
    ("g11-target-no-target", "comparative_relational", "long", box(0, 6, 7, 8), None, "no_target", None),
    ("g12-target-empty-mask", "function_purpose", "short", box(3, 5, 3, 5), None, "ok", NONE),
]


def ground_truth_lines() -> list[dict]:
    return [{"id": sid, "target": masks.encode(target), "ignore": None if ignore is None else masks.encode(ignore),
             "groups": {"reasoning_type": rtype, "query_kind": kind}}
            for sid, rtype, kind, target, ignore, _, _ in CASES]


def predictions() -> list[Prediction]:
    return [Prediction(sid, None if mask is None else masks.encode(mask), status)
            for sid, _, _, _, _, status, mask in CASES if status != "missing"]


def main() -> None:
    from reasonseg_x.evaluators.evaluator import Evaluator

    GOLDEN.mkdir(parents=True, exist_ok=True)
    (GOLDEN / "ground_truth.jsonl").write_text(
        "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in ground_truth_lines()), encoding="utf-8")
    (GOLDEN / "predictions.jsonl").write_text(
        "".join(json.dumps(prediction_to_json(p), separators=(",", ":")) + "\n" for p in predictions()),
        encoding="utf-8")
    (GOLDEN / "expected").mkdir(exist_ok=True)
    by_id = {p.id: p for p in predictions()}
    for protocol in PROTOCOLS:
        ev = Evaluator(protocol)
        truths = ground_truth_lines()
        ev.update(truths, [by_id.get(t["id"]) for t in truths])
        metrics = {k: v for k, v in ev.compute().items() if k not in UNSTABLE}
        metrics["per_sample"] = [r.to_json() for r in ev.records]
        (GOLDEN / "expected" / f"{protocol}.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
