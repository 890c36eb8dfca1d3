"""Small published-schema fixtures for the data-layer tests (built with ``datasets`` itself)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

H, W = 24, 32
TYPES = ("function_purpose", "commonsense", "comparative_relational", "compositional")


def png_bytes(height: int = H, width: int = W, seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_mask(seed: int, height: int = H, width: int = W, empty: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), dtype=bool)
    if not empty:
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
        mask[y:y + rng.integers(2, 8), x:x + rng.integers(2, 10)] = True
    return mask


def make_rows(n: int = 6, *, seed: int = 0, extra: bool = False) -> list[dict[str, Any]]:
    """Evaluation rows in the published schema (``mask`` as nested bool lists)."""
    rows = []
    for i in range(n):
        row = {
            "image": {"bytes": png_bytes(seed=seed + i), "path": None},
            "text": f"query number {i}",
            "mask": make_mask(seed + i, empty=(i == n - 1)).tolist(),
            "image_id": f"img{seed + i:03d}",
            "ann_id": f"ann{seed + i:03d}",
            "img_height": H,
            "img_width": W,
            "reasoning_type": TYPES[i % 4],
        }
        if extra:
            row["bbox"] = [1.0, 2.0, 3.0, 4.0]
        rows.append(row)
    return rows


def features(extra: bool = False):  # noqa: ANN201
    import datasets

    spec = {
        "image": datasets.Image(),
        "text": datasets.Value("string"),
        "mask": datasets.List(datasets.List(datasets.Value("bool"))),
        "image_id": datasets.Value("string"),
        "ann_id": datasets.Value("string"),
        "img_height": datasets.Value("int64"),
        "img_width": datasets.Value("int64"),
        "reasoning_type": datasets.Value("string"),
    }
    if extra:
        spec["bbox"] = datasets.List(datasets.Value("float32"))
    return datasets.Features(spec)


def dataset(rows: list[dict[str, Any]]):  # noqa: ANN201
    import datasets

    return datasets.Dataset.from_list(rows, features=features("bbox" in rows[0]))


def write_hub_folder(root: Path, splits: dict[str, list[dict[str, Any]]], *, readme: bool = True) -> Path:
    """A Hub-style folder: ``data/<split>-00000-of-00001.parquet`` + README ``configs``."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        dataset(rows).to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    if readme:
        lines = ["---", "configs:", "- config_name: default", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: data/{split}-*"]
        lines += ["---", "", "# fixture", ""]
        (root / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return root


def expected_counts(rows: list[dict[str, Any]]) -> dict[str, str]:
    from reasonseg_x import masks

    return {r["ann_id"]: masks.encode(np.array(r["mask"], dtype=bool))["counts"] for r in rows}


def open_hf(path: Path, **kwargs: Any):  # noqa: ANN201
    from reasonseg_x.data.resolve import open_local

    return open_local(path, **kwargs)


def write_lisa_folder(root: Path, n: int = 3) -> Path:
    """A LISA folder ``val/<stem>.jpg`` + ``<stem>.json`` with a target and an ignore polygon."""
    import json

    from PIL import Image

    split = root / "val"
    split.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (W, H), (10 * i, 20, 30)).save(split / f"img_{i}.jpg")
        shapes = [{"label": "target", "points": [[2 + i, 2], [12 + i, 2], [12 + i, 10], [2 + i, 10]]},
                  {"label": "ignore", "points": [[16, 12], [26, 12], [26, 20]]}]
        (split / f"img_{i}.json").write_text(json.dumps(
            {"text": [f"what is {i}", f"alt {i}"], "is_sentence": bool(i % 2), "shapes": shapes}), encoding="utf-8")
    return root
