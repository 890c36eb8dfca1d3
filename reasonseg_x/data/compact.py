"""The compact format: a Hub-ready folder of parquet shards with RLE masks and encoded images.

Layout: ``data/<split>-0000K-of-0000N.parquet`` + ``README.md`` (dataset card with YAML
``configs``, ``dataset_info`` and the paper's citation). Columns: ``id``, ``image`` (the
``datasets`` Image struct ``{bytes, path}``), ``text``, ``queries``, ``query_kind`` (ClassLabel
long/short), ``reasoning_type`` (ClassLabel over the four ids, or a string column when the
taxonomy is open), ``target`` and ``ignore`` (RLE structs ``{size, counts}``; ignore nullable),
``height``, ``width``, ``source``, ``split`` and ``meta`` (JSON). The parquet schema carries the
``datasets`` features (``huggingface`` key), so ``datasets.load_dataset(DIR)`` sees Image and
ClassLabel types, and our own ``reasonseg_x`` key, which marks the folder as compact.

Why: a 1024x768 mask is ~1 KB as RLE against ~100 KB as nested bools; scoring reads only the
small columns, never the images.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonseg_x import masks
from reasonseg_x.atomic import writing
from reasonseg_x.data.record import GroundTruth, ImageRef, Sample
from reasonseg_x.data.source import Source, check_unique_ids, query_texts
from reasonseg_x.errors import InvalidInputError, InvalidMaskError, UnknownLabelError
from reasonseg_x.json_input import loads_user_json
from reasonseg_x.taxonomy import query_kinds, reasoning_types

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["write_compact", "CompactSource", "compact_schema", "samples_to_table", "sample_row", "FORMAT_NAME",
           "FORMAT_VERSION", "CITATION"]

FORMAT_NAME = "reasonseg-x-compact"
FORMAT_VERSION = 1
CITATION = """@article{star2026,
  title   = {StAR: Segment Anything Reasoner},
  journal = {arXiv preprint arXiv:2603.14382},
  year    = {2026},
  url     = {https://arxiv.org/abs/2603.14382}
}"""
_SHARD = re.compile(r"^(?P<split>.+)-(?P<k>\d{5})-of-(?P<n>\d{5})\.parquet$")
_GT_COLUMNS = ["id", "height", "width", "target", "ignore", "query_kind", "reasoning_type", "source"]


def _rle_type() -> pa.DataType:
    import pyarrow as pa

    return pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])


def _labels(open_taxonomy: bool) -> tuple[list[str], list[str] | None]:
    return query_kinds().ids, None if open_taxonomy else reasoning_types().ids


def compact_schema(*, open_taxonomy: bool = False) -> pa.Schema:
    """The Arrow schema of a compact shard, with ``datasets`` features and our format marker."""
    import pyarrow as pa

    kinds, types = _labels(open_taxonomy)
    schema = pa.schema([
        ("id", pa.string()),
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("text", pa.string()),
        ("queries", pa.list_(pa.string())),
        ("query_kind", pa.int64()),
        ("reasoning_type", pa.string() if types is None else pa.int64()),
        ("target", _rle_type()),
        ("ignore", _rle_type()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("meta", pa.string()),
    ])
    ours = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "query_kind_names": kinds, "reasoning_type_names": types}
    metadata = {b"reasonseg_x": json.dumps(ours).encode("utf-8")}
    features = datasets_features(open_taxonomy)
    if features is not None:
        metadata[b"huggingface"] = json.dumps({"info": {"features": features.to_dict()}}).encode("utf-8")
    return schema.with_metadata(metadata)


def datasets_features(open_taxonomy: bool):  # noqa: ANN202 - datasets.Features or None
    """The same columns as ``datasets`` features (Image, ClassLabel, RLE structs); None without datasets."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        return None
    kinds, types = _labels(open_taxonomy)
    rle = {"size": datasets.List(datasets.Value("int64")), "counts": datasets.Value("string")}
    return datasets.Features({
        "id": datasets.Value("string"),
        "image": datasets.Image(),
        "text": datasets.Value("string"),
        "queries": datasets.List(datasets.Value("string")),
        "query_kind": datasets.ClassLabel(names=kinds),
        "reasoning_type": datasets.Value("string") if types is None else datasets.ClassLabel(names=types),
        "target": dict(rle),
        "ignore": dict(rle),
        "height": datasets.Value("int64"),
        "width": datasets.Value("int64"),
        "source": datasets.Value("string"),
        "split": datasets.Value("string"),
        "meta": datasets.Value("string"),
    })


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def sample_row(s: Sample, *, split: str) -> dict[str, Any]:
    """One sample as a row of the compact columns, labels as strings (what ``datasets`` generators take)."""
    meta = {k: v for k, v in s.meta.items() if k != "where"}
    return {
        "id": s.id,
        "image": {"bytes": s.image.read_bytes(), "path": Path(s.image.path).name if s.image.path else None},
        "text": s.query,
        "queries": list(s.queries) or [s.query],
        "query_kind": s.query_kind,
        "reasoning_type": s.reasoning_type,
        "target": _rle_value(s.target),
        "ignore": None if s.ignore is None else _rle_value(s.ignore),
        "height": int(s.height),
        "width": int(s.width),
        "source": s.source,
        "split": s.split or split,
        "meta": json.dumps(json_safe(meta), sort_keys=True) if meta else None,
    }


def _rle_value(rle: masks.RLE) -> dict[str, Any]:
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"]}


def samples_to_table(samples: list[Sample], *, split: str, open_taxonomy: bool = False,
                     schema: pa.Schema | None = None) -> pa.Table:
    """Encode samples as one compact table (images as bytes, masks as RLE structs, labels as class indices)."""
    import pyarrow as pa

    schema = schema or compact_schema(open_taxonomy=open_taxonomy)
    kinds, types = _labels(open_taxonomy)
    cols: dict[str, list[Any]] = {name: [] for name in schema.names}
    for s in samples:
        where = str(s.meta.get("where") or s.id)
        if [int(v) for v in s.target["size"]] != [s.height, s.width]:
            raise InvalidMaskError(f"target size {s.target['size']} differs from the image size {[s.height, s.width]}",
                                   where)
        row = sample_row(s, split=split)
        row["query_kind"] = _label_index(kinds, s.query_kind, "query_kind", where)
        if types is not None:
            row["reasoning_type"] = _label_index(types, s.reasoning_type, "reasoning_type", where)
        for name in schema.names:
            cols[name].append(row[name])
    return pa.Table.from_pydict(cols, schema=schema)


def _label_index(names: list[str], label: str | None, what: str, where: str) -> int | None:
    if label is None:
        return None
    try:
        return names.index(label)
    except ValueError:
        raise InvalidInputError(f"{what} {label!r} is not one of {', '.join(names)}; export with --open-taxonomy "
                                "(open_taxonomy=True) to keep unknown labels", where) from None


def write_compact(samples_by_split: Mapping[str, Iterable[Sample]], out_dir: str | Path, *,
                  card_title: str = "ReasonSeg-X (compact export)", shard_rows: int = 1000,
                  row_group_rows: int = 100, open_taxonomy: bool = False, overwrite: bool = False,
                  description: str = "") -> dict[str, int]:
    """Write each split's samples as compact parquet shards plus a dataset card; return rows per split.

    Samples are streamed: at most one row group is held in memory. Shards are written under
    temporary names and renamed once a split is complete, so a failed export leaves no partial
    ``data/<split>-*`` set behind. Existing shards in ``out_dir/data`` are an error unless
    ``overwrite`` (they would otherwise be picked up by the README's glob).
    """
    import pyarrow.parquet as pq

    out = Path(out_dir)
    data_dir = out / "data"
    existing = sorted(data_dir.glob("*.parquet")) if data_dir.is_dir() else []
    if existing and not overwrite:
        raise InvalidInputError(f"{data_dir} already holds {len(existing)} parquet file(s); choose an empty folder "
                                "or pass --overwrite to replace them", str(out))
    for folder in (out, data_dir):
        if folder.exists() and not folder.is_dir():
            raise InvalidInputError("exists and is not a folder; --out needs a folder (new or empty)", str(folder))
    created = [f for f in (out, data_dir) if not f.exists()]
    try:
        with writing(data_dir):
            data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create the output folder: {exc.strerror or exc}", str(data_dir)) from None
    schema = compact_schema(open_taxonomy=open_taxonomy)
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    finished: dict[str, list[Path]] = {}
    try:
        for split, samples in samples_by_split.items():
            if not re.fullmatch(r"\w+(\.\w+)*", split):
                raise InvalidInputError(f"split name {split!r} is not allowed by datasets (letters, digits, _ and .)")
            temps: list[Path] = []
            seen: dict[str, str] = {}
            writer = None
            rows_in_shard = 0
            total = 0
            batch: list[Sample] = []

            def flush() -> None:
                nonlocal writer, rows_in_shard
                if not batch:
                    return
                if writer is None:
                    temp = data_dir / f".{split}-{len(temps):05d}.parquet.tmp"
                    temps.append(temp)
                    writer = pq.ParquetWriter(str(temp), schema, compression="zstd")
                writer.write_table(samples_to_table(batch, split=split, open_taxonomy=open_taxonomy, schema=schema),
                                   row_group_size=row_group_rows)
                rows_in_shard += len(batch)
                batch.clear()
                if rows_in_shard >= shard_rows:
                    writer.close()
                    writer = None
                    rows_in_shard = 0

            for sample in samples:
                check_unique_ids(seen, sample.id, str(sample.meta.get("where") or f"{split} sample {total}"))
                batch.append(sample)
                total += 1
                if len(batch) >= min(row_group_rows, shard_rows - rows_in_shard):
                    flush()
            flush()
            if writer is not None:
                writer.close()
            counts[split] = total
            finished[split] = temps
        for old in existing:
            old.unlink()
        for split, temps in finished.items():
            n = max(len(temps), 1)
            if not temps:  # an empty split still gets one (empty) shard so it loads
                temp = data_dir / f".{split}-00000.parquet.tmp"
                pq.write_table(schema.empty_table(), str(temp))
                temps.append(temp)
            sizes[split] = 0
            for k, temp in enumerate(temps):
                final = data_dir / f"{split}-{k:05d}-of-{n:05d}.parquet"
                os.replace(temp, final)
                sizes[split] += final.stat().st_size
    except BaseException:
        for temps in finished.values():
            for temp in temps:
                if temp.exists():
                    temp.unlink()
        for temp in data_dir.glob(".*.parquet.tmp"):
            temp.unlink()
        for folder in reversed(created):  # leave no empty folder behind for the next try to trip on
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    _write_card(out, counts, sizes, card_title=card_title, open_taxonomy=open_taxonomy, description=description)
    return counts


def _write_card(out: Path, counts: dict[str, int], sizes: dict[str, int], *, card_title: str, open_taxonomy: bool,
                description: str) -> None:
    import yaml

    header: dict[str, Any] = {
        "license": "other",
        "task_categories": ["image-segmentation"],
        "tags": ["reasoning-segmentation", "reasonseg-x", "rle"],
        "pretty_name": card_title,
    }
    configs = {"default": {"data_files": [{"split": s, "path": f"data/{s}-*"} for s in counts]}}
    try:
        from datasets.info import DatasetInfo, DatasetInfosDict
        from datasets.splits import SplitDict, SplitInfo
        from datasets.utils.metadata import MetadataConfigs
        from huggingface_hub import DatasetCardData

        split_dict = SplitDict()
        for split, n in counts.items():
            split_dict.add(SplitInfo(name=split, num_examples=n, num_bytes=sizes.get(split, 0)))
        info = DatasetInfo(features=datasets_features(open_taxonomy), splits=split_dict,
                           dataset_size=sum(sizes.values()))
        card = DatasetCardData(**header)
        DatasetInfosDict({"default": info}).to_dataset_card_data(card)
        MetadataConfigs(configs).to_dataset_card_data(card)
        yaml_text = card.to_yaml()
    except ImportError:  # pragma: no cover - datasets is a core dependency
        header["configs"] = [{"config_name": "default", **configs["default"]}]
        yaml_text = yaml.safe_dump(header, sort_keys=False)
    rows = "\n".join(f"| {s} | {n} |" for s, n in counts.items())
    body = f"""# {card_title}

{description or "A compact export of a reasoning-segmentation benchmark made with reasonseg-x."}

Masks are COCO run-length encodings (`{{"size": [h, w], "counts": str}}`, column-major, as
`pycocotools` writes them); `target` is the union of all target instances and `ignore` the region
excluded by the LISA convention (null when the source has none). Images are the original encoded
bytes. `reasoning_type` uses the four-way ReasonSeg-X taxonomy and `query_kind` LISA's
long/short queries.

| split | rows |
|---|---|
{rows}

Load it with `datasets.load_dataset("<this folder>")`, or score on it with
`reasonseg-x score --data <this folder> ...`.

## Citation

```bibtex
{CITATION}
```
"""
    (out / "README.md").write_text(f"---\n{yaml_text.strip()}\n---\n\n{body}", encoding="utf-8")


# --- reading ---------------------------------------------------------------------------------


class CompactSource(Source):
    """Reads a compact folder back, streaming by row group; ground truth never touches images."""

    id_rule = "id"

    def __init__(self, root: str | Path, *, spec: str = "", skip_invalid: bool = False, open_taxonomy: bool = False,
                 default_source: str | None = None, files_by_split: Mapping[str, list[Path]] | None = None) -> None:
        super().__init__(skip_invalid=skip_invalid)
        self.root = Path(root)
        self.spec = spec or str(root)
        self.open_taxonomy = open_taxonomy
        self._default_source = default_source
        self._taxonomy = reasoning_types(open=open_taxonomy)
        if files_by_split is None:
            from reasonseg_x.data.layout import detect_layout

            layout = detect_layout(self.root)
            if layout is None or layout.kind != "compact":
                raise InvalidInputError("not a reasonseg-x compact folder (no data/<split>-*.parquet with the "
                                        "reasonseg_x schema marker)", str(self.root))
            files_by_split = layout.files
        self._files = {split: [Path(f) for f in files] for split, files in files_by_split.items()}

    def splits(self) -> list[str]:
        return list(self._files)

    def files(self, split: str | None = None) -> list[Path]:
        return list(self._files[self.resolve_split(split)])

    def num_samples(self, split: str | None = None) -> int:
        if self.skip_invalid:
            return super().num_samples(split)
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files(split))

    def ground_truth(self, split: str | None = None) -> Iterator[GroundTruth]:
        for _row, gt, _where in self._rows(self.resolve_split(split), _GT_COLUMNS):
            yield gt

    def samples(self, split: str | None = None) -> Iterator[Sample]:
        split = self.resolve_split(split)
        for row, gt, where in self._rows(split, None):
            image = row.get("image") or {}
            if not image.get("bytes"):
                self.reject("row has no image bytes", where)
                continue
            if not self.image_ok(image["bytes"], gt, where):
                continue
            texts = self._queries(row, where)
            if texts is None:
                continue
            query, queries = texts
            try:
                meta = loads_user_json(row["meta"], None) if row.get("meta") else {}
            except ValueError:
                meta = {}
            meta["where"] = where
            yield Sample(id=gt.id, image=ImageRef(data=image["bytes"], path=image.get("path"), where=where),
                         query=query, height=gt.height, width=gt.width,
                         target=gt.target, ignore=gt.ignore, queries=queries,
                         query_kind=gt.groups.get("query_kind"), reasoning_type=gt.groups.get("reasoning_type"),
                         source=gt.groups.get("source"), split=split, meta=meta)

    def _queries(self, row: dict[str, Any], where: str) -> tuple[str, tuple[str, ...]] | None:
        """(the query, every phrasing) of a row; a missing column or unreadable text is a bad row."""
        try:
            if "text" not in row and "queries" not in row:
                raise InvalidInputError("the shard has no 'text' or 'queries' column", where)
            text = query_texts(row["text"], "text", where)[0] if row.get("text") is not None else None
            queries = query_texts(row["queries"], "queries", where) if row.get("queries") else None
            if text is None and queries is None:
                raise InvalidInputError("the row has no query text ('text' and 'queries' are empty)", where)
            return text or queries[0], queries or (text,)  # type: ignore[index, return-value]
        except InvalidInputError as exc:
            self.reject(exc.reason, where)
            return None

    def _rows(self, split: str, columns: list[str] | None) -> Iterator[tuple[dict[str, Any], GroundTruth, str]]:
        import pyarrow.parquet as pq

        seen: dict[str, str] = {}
        for path in self._files[split]:
            try:
                pf = pq.ParquetFile(path)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
                raise InvalidInputError(f"not a readable parquet file: {exc}", str(path)) from None
            kinds, types = self._label_names(pf.schema_arrow, path)
            wanted = [c for c in (columns or pf.schema_arrow.names) if c in pf.schema_arrow.names]
            missing = {"id", "height", "width", "target"} - set(wanted)
            if missing:
                raise InvalidInputError(f"compact shard lacks column(s) {', '.join(sorted(missing))}", str(path))
            index = 0
            for batch in pf.iter_batches(batch_size=256, columns=wanted):
                for row in batch.to_pylist():
                    where = f"{path}:row {index}"
                    index += 1
                    gt = self._ground_truth_of(row, kinds, types, where, seen)
                    if gt is not None:
                        yield row, gt, where

    def _label_names(self, schema: pa.Schema, path: Path) -> tuple[list[str], list[str] | None]:
        try:
            ours = loads_user_json((schema.metadata or {})[b"reasonseg_x"], None)
            return list(ours["query_kind_names"]), ours.get("reasoning_type_names")
        except (KeyError, ValueError, TypeError):
            raise InvalidInputError("compact shard has no readable reasonseg_x schema metadata", str(path)) from None

    def _ground_truth_of(self, row: dict[str, Any], kinds: list[str], types: list[str] | None, where: str,
                         seen: dict[str, str]) -> GroundTruth | None:
        try:
            sample_id = row.get("id")
            if not sample_id:
                raise InvalidInputError("row has no id", where)
            height, width = int(row["height"]), int(row["width"])
            target = masks.validate_rle(row.get("target"), expected_size=(height, width), where=where)
            ignore = None
            if row.get("ignore") is not None:
                ignore = masks.validate_rle(row["ignore"], expected_size=(height, width), where=where)
            groups: dict[str, str] = {}
            kind = _from_index(kinds, row.get("query_kind"), "query_kind", where)
            rtype = row.get("reasoning_type")
            rtype = _from_index(types, rtype, "reasoning_type", where) if types is not None else rtype
            rtype = self._taxonomy.resolve(rtype)
            for key, value in (("reasoning_type", rtype), ("query_kind", kind),
                               ("source", row.get("source") or self._default_source)):
                if value is not None:
                    groups[key] = value
            check_unique_ids(seen, sample_id, where)
        except (InvalidInputError, UnknownLabelError, TypeError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, InvalidInputError) else str(exc)
            if isinstance(exc, UnknownLabelError):
                reason = str(exc)
            self.reject(reason, where)
            return None
        return GroundTruth(sample_id, height, width, target, ignore, groups)


def _from_index(names: list[str] | None, value: Any, what: str, where: str) -> str | None:
    if value is None:
        return None
    if names is None or isinstance(value, str):
        return str(value)
    if not isinstance(value, int) or not 0 <= value < len(names):
        raise InvalidInputError(f"{what} class index {value!r} is out of range 0..{len(names) - 1}", where)
    return names[value]
