"""Stream selected columns of a parquet or Arrow file, batch by batch.

Why: a published split is one or a few files holding images and nested masks; reading a column
subset by row group (parquet) or memory-mapping the Arrow IPC file of a ``save_to_disk`` folder
keeps peak memory at one batch and never touches the columns a caller does not need.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from reasonseg_x.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["read_schema", "iter_batches", "count_rows"]

#: row groups decoded ahead by worker threads (pyarrow releases the GIL while decoding)
_PREFETCH_THREADS = 2


def _open_ipc(path: Path):  # noqa: ANN202 - returns a pyarrow IPC reader
    import pyarrow as pa

    source = pa.memory_map(str(path), "r")
    try:
        return pa.ipc.open_stream(source)
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_file(source)


def read_schema(path: Path) -> pa.Schema:
    """The file's schema (with its metadata); a file that is neither parquet nor Arrow raises."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.suffix == ".parquet":
            return pq.read_schema(path)
        return _open_ipc(path).schema
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInputError(f"not a readable {path.suffix.lstrip('.') or 'data'} file: {exc}", str(path)) from None


def count_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    reader = _open_ipc(path)
    if hasattr(reader, "num_record_batches"):
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    return sum(b.num_rows for b in reader)


#: nested values (pixels) decoded per parquet batch: pyarrow's repetition/definition levels cost
#: ~5 bytes per value, so this bounds the decoder's scratch memory to ~40 MB per thread
_VALUES_PER_BATCH = 8 * 1024 * 1024


def _batch_rows(pf, columns: Sequence[str], group: int) -> int:  # noqa: ANN001 - a pyarrow ParquetFile
    """Rows per batch so that one batch decodes about ``_VALUES_PER_BATCH`` leaf values."""
    meta = pf.metadata.row_group(group)
    rows = max(meta.num_rows, 1)
    wanted = set(columns)
    values = 0
    for j in range(meta.num_columns):
        column = meta.column(j)
        if column.path_in_schema.split(".")[0] in wanted:
            values = max(values, column.num_values)
    per_row = max(values // rows, 1)
    return int(min(max(_VALUES_PER_BATCH // per_row, 1), 4096))


def _read_row_group(path: Path, group: int, columns: Sequence[str]) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    size = _batch_rows(pf, columns, group)
    batches = list(pf.iter_batches(batch_size=size, row_groups=[group], columns=list(columns), use_threads=False))
    if not batches:
        return pf.schema_arrow.empty_table().select(list(columns))
    return pa.Table.from_batches(batches)


def iter_batches(path: Path, columns: Sequence[str], *, prefetch: bool = True) -> Iterator[pa.Table]:
    """Yield tables of ``columns`` in row order, one row group (parquet) or record batch (Arrow) each.

    Parquet row groups are decoded in small batches (bounded decoder memory) by two worker threads
    while the caller works on the previous group.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.suffix == ".parquet":
            groups = pq.ParquetFile(path).metadata.num_row_groups
            if not prefetch or groups < 2:
                for i in range(groups):
                    yield _read_row_group(path, i, columns)
                return
            with ThreadPoolExecutor(_PREFETCH_THREADS) as pool:
                pending = [pool.submit(_read_row_group, path, i, columns) for i in range(min(groups, _PREFETCH_THREADS))]
                for i in range(groups):
                    table = pending.pop(0).result()
                    nxt = i + _PREFETCH_THREADS
                    if nxt < groups:
                        pending.append(pool.submit(_read_row_group, path, nxt, columns))
                    yield table
            return
        reader = _open_ipc(path)
        wanted = list(columns)
        batches = ((reader.get_batch(i) for i in range(reader.num_record_batches))
                   if hasattr(reader, "num_record_batches") else iter(reader))
        for batch in batches:
            yield pa.Table.from_batches([batch]).select(wanted)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInputError(f"cannot read {path.suffix.lstrip('.')} data: {exc}", str(path)) from None
