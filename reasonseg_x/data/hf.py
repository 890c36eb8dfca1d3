"""The published HF schema: ReasonSeg-X, ReasonSeg, ReasonSeg-R, MUSE and MMR as parquet or arrow.

Evaluation rows hold ``image``, ``text``, ``mask`` (list<list<bool>>, H x W), ``image_id``,
``ann_id``, ``img_height``, ``img_width``, ``reasoning_type`` and sometimes extra columns
(``bbox``...). Training rows hold ``id``, ``problem`` and per-instance ``solution_mask`` instead.

The masks are converted to RLE column-wise (:mod:`reasonseg_x.data.nested_masks`) once per file
content and cached (:mod:`reasonseg_x.data.cache`), so :meth:`HFSource.ground_truth` reads no
image and, the second time, not even the parquet file. Images stay encoded bytes until opened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x.data.arrow_io import iter_batches, read_schema
from reasonseg_x.data.nested_masks import convert_mask_array, nested_mask_depth
from reasonseg_x.data.record import GroundTruth, ImageRef, Sample
from reasonseg_x.data.source import Source, query_texts
from reasonseg_x.errors import InvalidInputError, UnknownLabelError
from reasonseg_x.json_input import loads_user_json
from reasonseg_x.taxonomy import query_kinds, reasoning_types

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["HFSource", "convert_ground_truth", "ID_COLUMNS"]

#: id columns in order of preference (the first present whose values are unique in the split wins)
ID_COLUMNS = ("ann_id", "image_id", "id")
_TEXT_COLUMNS = ("text", "problem", "query", "sentence", "question")
_MASK_COLUMNS = ("mask", "solution_mask", "masks", "gt_mask")
_HEIGHT_COLUMNS = ("img_height", "height")
_WIDTH_COLUMNS = ("img_width", "width")
_IMAGE_COLUMNS = ("image", "img")
#: the converted-ground-truth cache entry's version; bump when its columns or meaning change
_CACHE_VERSION = 2  # 2: list ids read as 50_60 (was "[50, 60]")


def _first_present(names: Sequence[str], candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if c in names), None)


@dataclass(frozen=True)
class _Columns:
    """Which physical columns of a file play which role."""

    mask: str
    text: str | None
    height: str | None
    width: str | None
    image: str | None
    reasoning: str | None
    is_sentence: str | None
    query_kind: str | None
    ids: tuple[str, ...]
    all: tuple[str, ...]

    @classmethod
    def of(cls, schema: pa.Schema, where: str) -> _Columns:
        names = list(schema.names)
        mask = next((c for c in _MASK_COLUMNS if c in names and nested_mask_depth(schema.field(c).type) in (2, 3)), None)
        if mask is None:
            raise InvalidInputError(
                "not the published HF schema: no nested-bool mask column (mask or solution_mask); "
                f"columns: {', '.join(names)}", where)
        return cls(
            mask=mask,
            text=_first_present(names, _TEXT_COLUMNS),
            height=_first_present(names, _HEIGHT_COLUMNS),
            width=_first_present(names, _WIDTH_COLUMNS),
            image=_first_present(names, _IMAGE_COLUMNS),
            reasoning="reasoning_type" if "reasoning_type" in names else None,
            is_sentence="is_sentence" if "is_sentence" in names else None,
            query_kind="query_kind" if "query_kind" in names else None,
            ids=tuple(c for c in ID_COLUMNS if c in names),
            all=tuple(names),
        )


def _as_strings(column: pa.ChunkedArray | pa.Array) -> list[str | None]:
    """Column values as readable strings: ints as digits, a list id (MMR's ``ann_id`` ``[50, 60]``)
    as its items joined by ``_`` (``50_60``), an empty list as null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_pylist()
    try:
        return pc.cast(column, pa.string()).to_pylist()
    except pa.ArrowException:
        return [_readable_id(v) for v in column.to_pylist()]


def _readable_id(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        parts = [_readable_id(v) for v in value]
        return "_".join(p for p in parts if p is not None) or None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, float)) else json.dumps(value, sort_keys=True)


def _as_ints(column: pa.ChunkedArray | pa.Array) -> list[int | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(column, pa.int64()).to_pylist()
    except pa.ArrowException:
        return [None] * len(column)


def convert_ground_truth(path: Path) -> pa.Table:
    """The scoring view of one published-schema file, one row per input row (cached by content).

    Columns: ``row``, the raw id columns (``ann_id``, ``image_id``, ``id``, as strings or null),
    ``img_height``/``img_width`` (null when absent), ``mask_height``/``mask_width``, ``counts``
    (RLE counts, null when the mask is unreadable), ``error`` and the raw ``reasoning_type`` and
    ``query_kind`` labels. The image column is never read.
    """
    from reasonseg_x.data.cache import cached_table

    return cached_table(path, "hf-gt", _CACHE_VERSION, lambda: _convert_file(path))


def _convert_file(path: Path) -> pa.Table:
    import pyarrow as pa

    where = str(path)
    cols = _Columns.of(read_schema(path), where)
    wanted = [c for c in (cols.mask, cols.height, cols.width, cols.reasoning, cols.is_sentence, cols.query_kind, *cols.ids)
              if c is not None]
    out: dict[str, list[Any]] = {k: [] for k in ("row", *ID_COLUMNS, "img_height", "img_width", "mask_height",
                                                 "mask_width", "counts", "error", "reasoning_type", "query_kind")}
    row = 0
    for table in iter_batches(path, wanted):
        n = table.num_rows
        converted = convert_mask_array(table.column(cols.mask))
        out["row"].extend(range(row, row + n))
        row += n
        for key in ID_COLUMNS:
            out[key].extend(_as_strings(table.column(key)) if key in cols.ids else [None] * n)
        out["img_height"].extend(_as_ints(table.column(cols.height)) if cols.height else [None] * n)
        out["img_width"].extend(_as_ints(table.column(cols.width)) if cols.width else [None] * n)
        out["mask_height"].extend(m.height for m in converted)
        out["mask_width"].extend(m.width for m in converted)
        out["counts"].extend(m.counts for m in converted)
        out["error"].extend(m.error for m in converted)
        out["reasoning_type"].extend(_as_strings(table.column(cols.reasoning)) if cols.reasoning else [None] * n)
        if cols.query_kind:
            out["query_kind"].extend(_as_strings(table.column(cols.query_kind)))
        elif cols.is_sentence:
            out["query_kind"].extend(None if v is None else ("long" if v else "short")
                                     for v in table.column(cols.is_sentence).to_pylist())
        else:
            out["query_kind"].extend([None] * n)
    types = {"row": pa.int64(), "img_height": pa.int64(), "img_width": pa.int64(), "mask_height": pa.int64(),
             "mask_width": pa.int64()}
    meta = {b"columns": json.dumps(list(cols.all)).encode("utf-8")}
    return pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in out.items()}).replace_schema_metadata(meta)


@dataclass(frozen=True)
class _Row:
    """A kept row: where it is and its ground truth."""

    file_index: int
    row: int
    gt: GroundTruth


class HFSource(Source):
    """Splits of published-schema files (parquet or ``save_to_disk`` arrow).

    ``files_by_split`` maps each split to its data files in order. ``source_tags`` gives the
    ``source`` group of each split (or one tag for all). ``split_names`` renames splits found on
    disk (the published eval repos keep their rows in ``test``).
    """

    def __init__(self, files_by_split: Mapping[str, Sequence[Path]], *, spec: str = "", skip_invalid: bool = False,
                 open_taxonomy: bool = False, source_tags: Mapping[str, str] | str | None = None) -> None:
        super().__init__(skip_invalid=skip_invalid)
        if not files_by_split:
            raise InvalidInputError("no data files found", spec or None)
        self.spec = spec
        self.open_taxonomy = open_taxonomy
        self._files = {split: [Path(f) for f in files] for split, files in files_by_split.items()}
        self._tags = source_tags
        self._taxonomy = reasoning_types(open=open_taxonomy)
        self._rows: dict[str, list[_Row]] = {}
        self._id_rules: dict[str, str] = {}
        #: per split, why the id rule is not the first id column (``data info`` shows it)
        self.id_rule_notes: dict[str, str] = {}
        self.id_rule = "ann_id"

    # -- Source API -----------------------------------------------------------------------------

    def splits(self) -> list[str]:
        return list(self._files)

    def files(self, split: str | None = None) -> list[Path]:
        return list(self._files[self.resolve_split(split)])

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        for kept in self._index(self.resolve_split(split)):
            yield kept.gt

    def num_samples(self, split: str | None = None) -> int:
        return len(self._index(self.resolve_split(split)))

    def id_rule_of(self, split: str | None = None) -> str:
        split = self.resolve_split(split)
        self._index(split)
        return self._id_rules[split]

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        return self._samples(split, None)

    def samples_of(self, split: str | None, ids: Iterable[str]) -> Iterator[Sample]:
        """Only the rows of ``ids`` have their image read and checked."""
        return self._samples(split, set(ids))

    def _samples(self, split: str | None, ids: set[str] | None) -> Iterator[Sample]:
        split = self.resolve_split(split)
        rows = self._index(split)
        by_file: dict[int, dict[int, GroundTruth]] = {}
        for kept in rows:
            if ids is None or kept.gt.id in ids:
                by_file.setdefault(kept.file_index, {})[kept.row] = kept.gt
        for file_index, path in enumerate(self._files[split]):
            wanted = by_file.get(file_index)
            if not wanted:
                continue
            yield from self._file_samples(split, file_index, path, wanted)

    # -- internals ------------------------------------------------------------------------------

    def _tag(self, split: str) -> str | None:
        if self._tags is None or isinstance(self._tags, str):
            return self._tags
        return self._tags.get(split)

    def _index(self, split: str) -> list[_Row]:
        if split in self._rows:
            return self._rows[split]
        tables = [(i, path, convert_ground_truth(path)) for i, path in enumerate(self._files[split])]
        rule = self._choose_id_rule(split, tables)
        self._id_rules[split] = rule
        self.id_rule = rule
        seen: dict[str, str] = {}
        kept: list[_Row] = []
        tag = self._tag(split)
        for file_index, path, table in tables:
            columns = {name: table.column(name).to_pylist() for name in table.column_names}
            for k, row in enumerate(columns["row"]):
                where = f"{path}:row {row}"
                gt = self._row_ground_truth(columns, k, row, path, rule, tag, where, seen)
                if gt is not None:
                    kept.append(_Row(file_index, row, gt))
        self._rows[split] = kept
        return kept

    def _choose_id_rule(self, split: str, tables: list[tuple[int, Path, pa.Table]]) -> str:
        present = [c for c in ID_COLUMNS
                   if all(c in loads_user_json((t.schema.metadata or {}).get(b"columns", b"[]"), None) for _, _, t in tables)]
        for k, column in enumerate(present):
            values = [v for _, _, t in tables for v in t.column(column).to_pylist()]
            if all(v not in (None, "") for v in values) and len(set(values)) == len(values):
                if k:  # say why the preferred columns were passed over (data info prints it)
                    self.id_rule_notes[split] = f"{', '.join(present[:k])} not unique or not always set"
                return column
        if not present:
            self.id_rule_notes[split] = "no ann_id, image_id or id column: <file stem>_<row>"
            return "file/row"
        if self.skip_invalid:
            return present[0]
        first = present[0]
        seen: dict[str, str] = {}
        for _, path, table in tables:
            for row, value in zip(table.column("row").to_pylist(), table.column(first).to_pylist()):
                where = f"{path}:row {row}"
                if value in (None, ""):
                    raise InvalidInputError(f"row has no {first}", where)
                if value in seen:
                    raise InvalidInputError(
                        f"duplicate {first} {value!r} (first at {seen[value]}); no id column "
                        f"({', '.join(present)}) is unique in split {split!r}", where)
                seen[value] = where
        return first  # pragma: no cover - unreachable: some column had a duplicate

    def _row_ground_truth(self, columns: dict[str, list[Any]], k: int, row: int, path: Path, rule: str,
                          tag: str | None, where: str, seen: dict[str, str]) -> GroundTruth | None:
        if rule == "file/row":
            sample_id = f"{path.stem}_{row:05d}"
        else:
            sample_id = columns[rule][k]
            if sample_id in (None, ""):
                self.reject(f"row has no {rule}", where)
                return None
        if sample_id in seen:
            self.reject(f"duplicate sample id {sample_id!r} (first at {seen[sample_id]})", where)
            return None
        error = columns["error"][k]
        if error:
            self.reject(error, where)
            return None
        mh, mw = columns["mask_height"][k], columns["mask_width"][k]
        height = columns["img_height"][k] if columns["img_height"][k] is not None else mh
        width = columns["img_width"][k] if columns["img_width"][k] is not None else mw
        if (mh, mw) != (height, width):
            self.reject(f"mask size {mh}x{mw} differs from the image size {height}x{width} (img_height x img_width)",
                        where)
            return None
        groups: dict[str, str] = {}
        try:
            reasoning = self._taxonomy.resolve(columns["reasoning_type"][k])
            kind = query_kinds().resolve(columns["query_kind"][k])
        except UnknownLabelError as exc:
            self.reject(str(exc), where)
            return None
        for key, value in (("reasoning_type", reasoning), ("query_kind", kind), ("source", tag)):
            if value is not None:
                groups[key] = value
        seen[sample_id] = where
        target = {"size": [int(mh), int(mw)], "counts": columns["counts"][k]}
        return GroundTruth(sample_id, int(height), int(width), target, None, groups)  # type: ignore[arg-type]

    def _file_samples(self, split: str, file_index: int, path: Path, wanted: dict[int, GroundTruth]) -> Iterator[Sample]:
        cols = _Columns.of(read_schema(path), str(path))
        heavy = {cols.mask, "solution_mask", "masks", "gt_mask"}
        names = [c for c in cols.all if c not in heavy]
        row = 0
        for table in iter_batches(path, names):
            data = {name: table.column(name) for name in names if name != cols.image}
            images = table.column(cols.image) if cols.image else None
            plain = {name: col.to_pylist() for name, col in data.items()}
            for k in range(table.num_rows):
                index = row + k
                gt = wanted.get(index)
                if gt is None:
                    continue
                where = f"{path}:row {index}"
                queries = self._queries(plain, k, cols, where)
                if queries is None:
                    continue
                image = self._image_ref(images, k, path, where)
                if image is None or not self.image_ok(image.read_bytes(), gt, where):
                    continue
                yield self._sample(gt, image, plain, k, cols, split, where, queries)
            row += table.num_rows

    def _image_ref(self, images: pa.ChunkedArray | None, k: int, path: Path, where: str) -> ImageRef | None:
        if images is None:
            self.reject("row has no image column", where)
            return None
        value = images[k].as_py()
        data: bytes | None = None
        image_path: str | None = None
        if isinstance(value, dict):
            data, image_path = value.get("bytes"), value.get("path")
        elif isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, str):
            image_path = value
        if data is None and image_path:
            candidate = Path(image_path)
            if not candidate.is_absolute():
                candidate = path.parent / candidate
            if not candidate.is_file():
                self.reject(f"image has no bytes and its path {image_path!r} does not exist", where)
                return None
            return ImageRef(path=str(candidate), where=where)
        if not data:
            self.reject("image is empty", where)
            return None
        return ImageRef(data=data, path=image_path, where=where)

    def _queries(self, plain: dict[str, list[Any]], k: int, cols: _Columns, where: str) -> tuple[str, ...] | None:
        """The row's query texts; a missing column or unreadable text is a bad row (raised, or counted)."""
        try:
            if cols.text is None:
                raise InvalidInputError(f"no query column ({', '.join(_TEXT_COLUMNS)}); the file has: "
                                        f"{', '.join(cols.all)}", where)
            return query_texts(plain[cols.text][k], cols.text, where)
        except InvalidInputError as exc:
            self.reject(exc.reason, where)
            return None

    def _sample(self, gt: GroundTruth, image: ImageRef, plain: dict[str, list[Any]], k: int, cols: _Columns,
                split: str, where: str, queries: tuple[str, ...]) -> Sample:
        meta: dict[str, Any] = {"where": where}
        skip = {cols.text, cols.height, cols.width, cols.reasoning, cols.is_sentence, cols.query_kind}
        for name, values in plain.items():
            if name not in skip:
                meta[name] = values[k]
        return Sample(
            id=gt.id, image=image, query=queries[0] if queries else "", height=gt.height, width=gt.width,
            target=gt.target, ignore=gt.ignore, queries=queries, query_kind=gt.groups.get("query_kind"),
            reasoning_type=gt.groups.get("reasoning_type"), source=gt.groups.get("source"), split=split, meta=meta)
