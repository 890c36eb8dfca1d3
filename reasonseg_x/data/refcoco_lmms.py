"""lmms-lab's RefCOCO / RefCOCO+ / RefCOCOg parquet: COCO polygons and several sentences per object.

Schema (the ``lmms-lab/RefCOCO``, ``lmms-lab/RefCOCOplus`` and ``lmms-lab/RefCOCOg`` dataset
repos, as the lmms-eval and evalscope ``refcoco`` tasks read them): ``question_id`` (string),
``image`` ({bytes, path}), ``question`` (a captioning prompt, not the expression), ``answer`` (the
referring expressions of the object, a list of strings), ``segmentation`` (the COCO polygon, flat
``[x1, y1, x2, y2, ...]``; a list of such polygons is accepted too), ``bbox`` (COCO ``[x, y, w,
h]``), ``iscrowd``, ``file_name``.

Each expression becomes its own sample, ``<question_id>_<k>`` (k = the sentence's position), so
ids are stable and readable; the target is the polygon rasterised the COCO way (pycocotools), at
the size the image header gives. Scoring reads image headers, never pixels.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from reasonseg_x import masks
from reasonseg_x.data.arrow_io import iter_batches, read_schema
from reasonseg_x.data.record import GroundTruth, ImageRef, Sample
from reasonseg_x.data.source import Source, check_unique_ids
from reasonseg_x.errors import InvalidInputError

__all__ = ["LmmsRefcocoSource", "is_lmms_refcoco", "polygon_target"]

#: the columns that identify the schema
REQUIRED = ("question_id", "image", "answer", "segmentation")


def is_lmms_refcoco(path: Path) -> bool:
    """Whether a parquet/arrow file has lmms-lab's RefCOCO columns."""
    names = set(read_schema(path).names)
    return all(c in names for c in REQUIRED)


def _polygons(value: Any, where: str) -> list[list[float]]:
    """A flat polygon or a list of them, as lists of floats; fewer than 3 points is an error."""
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidInputError("segmentation is empty or not a polygon list", where)
    polys = [list(value)] if not isinstance(value[0], (list, tuple)) else [list(p) for p in value]
    out = []
    for k, poly in enumerate(polys):
        if len(poly) % 2 or len(poly) < 6:
            raise InvalidInputError(f"segmentation polygon {k} has {len(poly) / 2:g} point(s); a polygon needs at "
                                    "least 3", where)
        try:
            out.append([float(v) for v in poly])
        except (TypeError, ValueError):
            raise InvalidInputError(f"segmentation polygon {k} holds a non-number", where) from None
    return out


def polygon_target(value: Any, height: int, width: int, where: str) -> dict[str, Any]:
    """The COCO rasterisation (pycocotools ``frPyObjects`` + merge) of the polygon(s) as our RLE."""
    return masks.from_polygons(_polygons(value, where), height, width)


class LmmsRefcocoSource(Source):
    """Splits of lmms-lab RefCOCO-family files (``files_by_split``), one sample per expression."""

    def __init__(self, files_by_split: Mapping[str, Sequence[Path]], *, spec: str = "", skip_invalid: bool = False,
                 source_tag: str | None = None) -> None:
        super().__init__(skip_invalid=skip_invalid)
        if not files_by_split:
            raise InvalidInputError("no data files found", spec or None)
        self.spec = spec
        self.id_rule = "question_id + '_' + sentence index"
        self._files = {split: [Path(f) for f in files] for split, files in files_by_split.items()}
        self._tag = source_tag

    def splits(self) -> list[str]:
        return list(self._files)

    def files(self, split: str | None = None) -> list[Path]:
        return list(self._files[self.resolve_split(split)])

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        for sample in self._rows(self.resolve_split(split), with_image=False):
            yield sample.ground_truth()

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        return self._rows(self.resolve_split(split), with_image=True)

    def _rows(self, split: str, *, with_image: bool) -> Iterator[Sample]:
        from reasonseg_x.data.images import probe_image

        seen: dict[str, str] = {}
        for path in self._files[split]:
            names = set(read_schema(path).names)
            missing = [c for c in REQUIRED if c not in names]
            if missing:
                raise InvalidInputError(f"not lmms-lab's RefCOCO schema: no {', '.join(missing)} column", str(path))
            row = 0
            for table in iter_batches(path, list(REQUIRED)):
                for record in table.to_pylist():
                    where = f"{path}:row {row}"
                    row += 1
                    try:
                        raw = _image_bytes(record["image"], path, where)
                        probe = probe_image(raw, where)
                        target = polygon_target(record["segmentation"], probe.height, probe.width, where)
                        sentences = _sentences(record["answer"], where)
                        qid = str(record["question_id"] or "").strip()
                        if not qid:
                            raise InvalidInputError("question_id is empty", where)
                    except InvalidInputError as exc:
                        self.reject(exc.reason, where)
                        continue
                    for k, sentence in enumerate(sentences):
                        sample_id = f"{qid}_{k}"
                        check_unique_ids(seen, sample_id, where)
                        yield Sample(id=sample_id, image=ImageRef(data=raw if with_image else None, where=where),
                                     query=sentence, queries=(sentence,), height=probe.height, width=probe.width,
                                     target=target, query_kind="short", source=self._tag, split=split,
                                     meta={"question_id": qid, "sentence": k})


def _image_bytes(value: Any, path: Path, where: str) -> bytes:
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("path"):
            image = Path(value["path"])
            image = image if image.is_absolute() else path.parent / image
            try:
                return image.read_bytes()
            except OSError as exc:
                raise InvalidInputError(f"cannot read the image {image}: {exc.strerror or exc}", where) from None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise InvalidInputError("row has no image bytes", where)


def _sentences(value: Any, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else list(value or [])
    sentences = [s.strip() for s in items if isinstance(s, str) and s.strip()]
    if not sentences:
        raise InvalidInputError("answer holds no referring expression", where)
    return sentences
