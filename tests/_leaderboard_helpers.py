"""Shared fixtures of the leaderboard tests: a tiny in-memory source, predictions and bundles."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_x import masks
from reasonseg_x.data.record import ImageRef, Sample
from reasonseg_x.data.source import Source

TYPES = ("function_purpose", "commonsense", "comparative_relational", "compositional")


class FakeSource(Source):
    """``n`` small samples with rectangle targets, a reasoning type each, in one ``test`` split."""

    def __init__(self, n: int = 12, seed: int = 0, spec: str | None = None) -> None:
        super().__init__()
        self.spec = spec or f"fake:{n}:{seed}"
        rng = np.random.default_rng(seed)
        self._samples = []
        for i in range(n):
            h, w = int(rng.integers(16, 40)), int(rng.integers(16, 40))
            m = np.zeros((h, w), dtype=bool)
            y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
            m[y0:y0 + int(rng.integers(2, h // 2 + 1)), x0:x0 + int(rng.integers(2, w // 2 + 1))] = True
            self._samples.append(Sample(id=f"s{i:03d}", image=ImageRef(data=b""), query=f"query {i}", height=h,
                                        width=w, target=masks.encode(m), reasoning_type=TYPES[i % 4], split="test"))

    def splits(self) -> list[str]:
        return ["test"]

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        self.resolve_split(split)
        yield from self._samples


def prediction_lines(source: Source, *, quality: float = 1.0, seed: int = 1) -> list[dict[str, Any]]:
    """One prediction per sample: the target itself, or a degraded copy (rows cut) when quality < 1."""
    rng = np.random.default_rng(seed)
    out = []
    for gt in source.ground_truth("test"):
        mask = masks.decode(gt.target)
        if quality < 1.0:
            keep = rng.random(mask.shape[0]) < quality
            mask = mask & keep[:, None]
        out.append({"id": gt.id, "mask": masks.encode(mask), "status": "ok"})
    return out


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def make_bundle(tmp: Path, source: Source, *, name: str = "model-a", quality: float = 1.0, out: str = "bundle",
                meta: dict[str, Any] | None = None) -> Path:
    from reasonseg_x.leaderboard.manifest import manifest_from_source
    from reasonseg_x.leaderboard.submission import build_submission

    preds = write_jsonl(tmp / f"{out}-preds.jsonl", prediction_lines(source, quality=quality))
    path, _ = build_submission(preds, manifest_from_source(source, "test"), model_name=name, out=tmp / out,
                               meta=meta)
    return path


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], compression: str = "gz") -> bytes:
    """A tar archive made of hand-crafted headers (for attack tests)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compression}" if compression else "w") as archive:
        for info, data in members:
            if data is None:
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip archive of ``(name or ZipInfo, data)`` members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buf.getvalue()


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info, data


def tree_listing(folder: Path) -> list[str]:
    """Every path under ``folder`` (relative), to prove nothing was written where it should not be."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
