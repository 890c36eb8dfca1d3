"""``reasonseg-x data rl-export``: a split as rows that TRL and veRL train on as they are.

Two parquet files per split (written by ``datasets``, so the image column stays an image):

- ``OUT/trl/<split>.parquet``: ``prompt`` (one user message, the StAR training instruction),
  ``image``, ``truth`` (:func:`reasonseg_x.rewards.encode_truth`'s string), ``id``, ``query``.
  TRL's ``GRPOTrainer`` puts the image before the text and hands ``truth`` and ``image`` to
  ``Reward.for_trl()``.
- ``OUT/verl/<split>.parquet``: veRL's RL dataset layout: ``data_source``, ``prompt`` (the user
  message with StAR's ``<image>`` placeholder), ``images``, ``ability``, ``reward_model``
  (``{"style": "rule", "ground_truth": truth}``) and ``extra_info`` (split, index, id).

The instruction is StAR's training wording (its ``verl/utils/rl_dataset.py``): stage 1 is the
``star_refcoco`` template and stage 2 the ``star_muse_mmr`` template of
:mod:`reasonseg_x.star.answer.prompts`, with the query lower-cased and only "." stripped, as
that file does. Images go out at 840 x 840 by default (StAR trains on that frame; the masks
follow with a nearest-neighbour resize), or at their own size with ``frame=None``.

Objects of the truth: a source whose rows carry StAR's ``solution`` (JSON boxes and points in
the 840 frame, the ReasonSeg-X train split) gives one object per entry, its mask being the target
inside its box; any other source gives one object, the whole target (docs/rewards.md section 4).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_x import masks as rle
from reasonseg_x.errors import InvalidInputError
from reasonseg_x.rewards.truth import encode_truth

__all__ = ["rl_export", "training_prompt", "sample_truth", "TRAINING_STYLES"]

#: training stage -> the prompt template StAR's RL dataset uses
TRAINING_STYLES = {1: "star_refcoco", 2: "star_muse_mmr"}
_SOLUTION_FRAME = 840


def training_prompt(query: str, stage: int = 1) -> str:
    """StAR's training instruction for ``query`` (without the image placeholder)."""
    from reasonseg_x.star.answer.prompts import PROMPT_TEMPLATES

    if stage not in TRAINING_STYLES:
        raise InvalidInputError(f"stage must be 1 or 2, got {stage!r}", "rl-export")
    template = PROMPT_TEMPLATES[TRAINING_STYLES[stage]]
    return template.text.format(Question=query.lower().strip("."), Answer=template.answer_example)


def _solution(sample: Any) -> list[dict[str, Any]] | None:
    raw = sample.meta.get("solution")
    if not isinstance(raw, str):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, list) or not all(isinstance(o, dict) and "bbox_2d" in o for o in data):
        return None
    return data


def sample_truth(sample: Any, size: tuple[int, int]) -> str:
    """The encoded truth of ``sample`` at ``size`` (height, width)."""
    height, width = size
    target = sample.target
    if [int(v) for v in target["size"]] != [height, width]:
        target = rle.resize_nearest(target, height, width)
    union = rle.decode(target)
    solution = _solution(sample)
    if not solution or not union.any():
        return encode_truth([union] if union.any() else [], size=[height, width], id=sample.id)
    fx, fy = width / _SOLUTION_FRAME, height / _SOLUTION_FRAME
    masks, boxes, points = [], [], []
    for obj in solution:
        x1, y1, x2, y2 = (float(v) for v in obj["bbox_2d"])
        box = [x1 * fx, y1 * fy, x2 * fx, y2 * fy]
        inside = np.zeros_like(union)
        c1, r1 = max(int(box[0]), 0), max(int(box[1]), 0)
        inside[r1:int(box[3]) + 1, c1:int(box[2]) + 1] = True
        mask = union & inside
        if not mask.any():
            continue
        point = obj.get("point_2d")
        masks.append(mask)
        boxes.append(box)
        points.append([float(point[0]) * fx, float(point[1]) * fy] if isinstance(point, list) and len(point) == 2
                      else list(rle.bbox(mask)[:2]))
    if not masks:
        return encode_truth([union], size=[height, width], id=sample.id)
    return encode_truth(masks, boxes=boxes, points=points, size=[height, width], id=sample.id)


def _rows(source: Any, split: str, stage: int, frame: int | None, limit: int | None) -> Iterator[dict[str, Any]]:
    from reasonseg_x.star.answer.prompts import to_vlm_frame

    for index, sample in enumerate(source.samples(split)):
        if limit is not None and index >= limit:
            return
        image = to_vlm_frame(sample.image.open(), (frame, frame) if frame else None)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        yield {"id": sample.id, "query": sample.query, "prompt_text": training_prompt(sample.query, stage),
               "image": {"bytes": buffer.getvalue(), "path": None}, "truth": sample_truth(sample, (image.height, image.width)),
               "index": index}


def rl_export(source: str | Any, out: str | Path, *, split: str = "train", stage: int = 1, frame: int | None = 840,
              limit: int | None = None, overwrite: bool = False, skip_invalid: bool = False) -> dict[str, Any]:
    """Write ``OUT/trl/<split>.parquet`` and ``OUT/verl/<split>.parquet``; returns what was written."""
    from datasets import Dataset, Features, Image, Sequence, Value

    from reasonseg_x.output_paths import prepare_folder

    if isinstance(source, str):
        from reasonseg_x.data.resolve import open_source

        spec, source = source, open_source(source, skip_invalid=skip_invalid)
    else:
        spec = getattr(source, "spec", None) or type(source).__name__
    training_prompt("", stage)  # a bad stage fails before any image is read
    if frame is not None and frame <= 0:
        raise InvalidInputError(f"frame must be a positive size or None, got {frame}", "rl-export")
    name = source.resolve_split(split)
    out = Path(out)
    targets = {layout: out / layout / f"{name}.parquet" for layout in ("trl", "verl")}
    for path in targets.values():
        if path.exists() and not overwrite:
            raise InvalidInputError(f"{path} exists; pass --overwrite to replace it", "rl-export")
        prepare_folder(path.parent, "--out")
    rows = list(_rows(source, name, stage, frame, limit))
    if not rows:
        raise InvalidInputError(f"split {name!r} of {spec} has no samples to export", "rl-export")
    trl = Dataset.from_list([{"id": r["id"], "query": r["query"], "prompt": [{"role": "user", "content": r["prompt_text"]}],
                              "image": r["image"], "truth": r["truth"]} for r in rows],
                            features=Features({"id": Value("string"), "query": Value("string"),
                                               "prompt": [{"role": Value("string"), "content": Value("string")}],
                                               "image": Image(), "truth": Value("string")}))
    verl = Dataset.from_list([{"data_source": "reasonseg-x", "prompt": [{"role": "user", "content": "<image>\n" + r["prompt_text"]}],
                               "images": [r["image"]], "ability": "reasoning-segmentation",
                               "reward_model": {"style": "rule", "ground_truth": r["truth"]},
                               "extra_info": {"split": name, "index": r["index"], "id": r["id"]}} for r in rows],
                             features=Features({"data_source": Value("string"),
                                                "prompt": [{"role": Value("string"), "content": Value("string")}],
                                                "images": Sequence(Image()), "ability": Value("string"),
                                                "reward_model": {"style": Value("string"), "ground_truth": Value("string")},
                                                "extra_info": {"split": Value("string"), "index": Value("int64"),
                                                               "id": Value("string")}}))
    import datasets

    from reasonseg_x.atomic import atomic_path

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar per tiny file is noise in a command's output
    try:
        for layout, dataset in (("trl", trl), ("verl", verl)):
            with atomic_path(targets[layout]) as tmp:
                dataset.to_parquet(str(tmp))
    finally:
        if bars:
            datasets.enable_progress_bars()
    skipped = len(getattr(source, "skipped", ()) or ())
    return {"split": name, "rows": len(rows), "stage": stage, "frame": frame, "skipped": skipped,
            "files": {k: str(v) for k, v in targets.items()}}
