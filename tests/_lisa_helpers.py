"""Writers of small LISA-format fixtures (images + JSON) for the LISA reader tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def write_image(path: Path, height: int, width: int, *, kind: str = "ok", orientation: int | None = None) -> Path:
    """A real JPEG (``ok``), random bytes (``corrupt``) or a JPEG cut in half (``truncated``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "corrupt":
        path.write_bytes(b"this is not a jpeg at all" * 10)
        return path
    rng = np.random.default_rng(height * 1000 + width)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(path, format="JPEG", exif=exif)
    else:
        img.save(path, format="JPEG", quality=90)
    if kind == "truncated":
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    return path


def write_annotation(path: Path, *, shapes: list[dict[str, Any]], text: Any = ("what is it?",),
                     is_sentence: Any = True, encoding: str = "utf-8", raw: bytes | None = None,
                     **extra: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        path.write_bytes(raw)
        return path
    data = {"text": list(text) if isinstance(text, (list, tuple)) else text, "is_sentence": is_sentence,
            "shapes": shapes, **extra}
    path.write_bytes(json.dumps(data, ensure_ascii=False).encode(encoding))
    return path


def square(x0: float, y0: float, x1: float, y1: float, label: str = "target") -> dict[str, Any]:
    return {"label": label, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "shape_type": "polygon"}


def write_pair(folder: Path, stem: str, *, height: int = 40, width: int = 50, image: str = "ok",
               shapes: list[dict[str, Any]] | None = None, **annotation: Any) -> tuple[Path, Path]:
    img = write_image(folder / f"{stem}.jpg", height, width, kind=image)
    ann = write_annotation(folder / f"{stem}.json", shapes=shapes if shapes is not None else [square(5, 5, 20, 15)],
                           **annotation)
    return img, ann
