"""Nested-list mask columns (``list<list<bool>>``) to COCO RLE, columnar.

Why: the published HF copies store each mask as H lists of W booleans. Going through Python lists
(``np.array(row["mask"])``) costs seconds per hundred masks; here a row's pixels are cut straight
out of the Arrow values buffer (bit-packed booleans are unpacked with ``np.unpackbits``), reshaped
and encoded, so no Python object per pixel or per mask row is ever created.

Also handles ``list<list<list<bool>>>`` (the training rows' per-instance ``solution_mask``: the
target is the union) and integer pixels (0/1 or 0/255; anything non-zero is foreground).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reasonseg_x import masks

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["ConvertedMask", "nested_mask_depth", "convert_mask_array"]


@dataclass(frozen=True)
class ConvertedMask:
    """One row's mask: its size and RLE counts, or the reason it could not be read."""

    height: int
    width: int
    counts: str | None
    error: str | None = None


def _is_list(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def nested_mask_depth(t: pa.DataType) -> int:
    """How many list levels wrap the pixel type (2 for ``mask``, 3 for ``solution_mask``); 0 if not a mask."""
    import pyarrow as pa

    depth = 0
    while _is_list(t):
        depth += 1
        t = t.value_type
    if pa.types.is_boolean(t) or pa.types.is_integer(t):
        return depth
    return 0


def _offsets(arr: pa.Array) -> np.ndarray:
    """List offsets (relative to the child as stored), for variable- and fixed-size lists."""
    import pyarrow as pa

    if pa.types.is_fixed_size_list(arr.type):
        size = arr.type.list_size
        return (np.arange(len(arr) + 1, dtype=np.int64) + arr.offset) * size
    return np.asarray(arr.offsets, dtype=np.int64)


class _Pixels:
    """Random access to runs of a flat boolean or integer pixel array, without a full copy."""

    def __init__(self, values: pa.Array) -> None:
        import pyarrow as pa

        self._bool = pa.types.is_boolean(values.type)
        buffers = values.buffers()
        self._offset = values.offset
        # booleans are bit-packed (LSB first); integers are plain little-endian values
        dtype = np.uint8 if self._bool else np.dtype(values.type.to_pandas_dtype())
        self._data = np.frombuffer(buffers[1], dtype=dtype) if buffers[1] is not None else np.zeros(0, dtype)
        self._nulls = None
        if values.null_count:
            self._nulls = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)

    def has_null(self, start: int, end: int) -> bool:
        return self._nulls is not None and bool(self._nulls[start:end].any())

    def take(self, start: int, end: int) -> np.ndarray:
        """Pixels ``[start, end)`` of the child array as a boolean vector."""
        if not self._bool:
            return self._data[self._offset + start:self._offset + end] != 0
        first = self._offset + start
        last = self._offset + end
        chunk = self._data[first // 8:(last + 7) // 8]
        bits = np.unpackbits(chunk, bitorder="little")
        shift = first % 8
        return bits[shift:shift + (end - start)].view(bool)


def _grids(arr: pa.Array) -> Iterator[tuple[int, int, Callable[[], np.ndarray] | None, str | None]]:
    """Per element of a ``list<list<pixel>>`` array: (h, w, pixel reader or None, error or None).

    The reader returns the element's pixels as a flat bool vector; it is deferred so a caller can
    check shapes first and unpack only what it uses.
    """
    outer = _offsets(arr)
    rows = arr.values
    inner = _offsets(rows)
    pixels = _Pixels(rows.values)
    outer_nulls = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool) if arr.null_count else None
    inner_nulls = np.asarray(rows.is_null().to_numpy(zero_copy_only=False), dtype=bool) if rows.null_count else None
    for i in range(len(arr)):
        if outer_nulls is not None and outer_nulls[i]:
            yield 0, 0, None, "mask is null"
            continue
        a, b = int(outer[i]), int(outer[i + 1])
        h = b - a
        if inner_nulls is not None and inner_nulls[a:b].any():
            yield h, 0, None, "mask has a null row"
            continue
        lengths = np.diff(inner[a:b + 1])
        w = int(lengths[0]) if h else 0
        if h and not (lengths == w).all():
            bad = int(np.argmax(lengths != w))
            yield h, w, None, f"mask rows differ in length (row 0 has {w} pixels, row {bad} has {int(lengths[bad])})"
            continue
        start, end = int(inner[a]), int(inner[b])
        if pixels.has_null(start, end):
            yield h, w, None, "mask has null pixels"
            continue
        yield h, w, (lambda s=start, e=end: pixels.take(s, e)), None


def _encode(h: int, w: int, flat: np.ndarray) -> str:
    return masks.encode(flat.reshape(h, w))["counts"]


def convert_mask_array(arr: pa.Array | pa.ChunkedArray) -> list[ConvertedMask]:
    """Convert a nested mask column (depth 2, or depth 3 = union of instances) to RLE per row."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        out: list[ConvertedMask] = []
        for chunk in arr.chunks:
            out.extend(convert_mask_array(chunk))
        return out
    depth = nested_mask_depth(arr.type)
    if depth == 2:
        return [ConvertedMask(h, w, None, err) if take is None else ConvertedMask(h, w, _encode(h, w, take()))
                for h, w, take, err in _grids(arr)]
    if depth == 3:
        return _convert_instances(arr)
    raise TypeError(f"not a nested mask column: {arr.type}")


def _convert_instances(arr: pa.Array) -> list[ConvertedMask]:
    """``list<list<list<pixel>>>``: each row's instances are OR-ed into one target."""
    bounds = _offsets(arr)
    row_nulls = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool) if arr.null_count else None
    grids = list(_grids(arr.values))
    out: list[ConvertedMask] = []
    for i in range(len(arr)):
        if row_nulls is not None and row_nulls[i]:
            out.append(ConvertedMask(0, 0, None, "mask is null"))
            continue
        members = grids[int(bounds[i]):int(bounds[i + 1])]
        if not members:
            out.append(ConvertedMask(0, 0, None, "row has no instance masks"))
            continue
        errors = [err for _, _, _, err in members if err]
        if errors:
            out.append(ConvertedMask(members[0][0], members[0][1], None, f"instance mask: {errors[0]}"))
            continue
        sizes = sorted({(h, w) for h, w, _, _ in members})
        if len(sizes) > 1:
            out.append(ConvertedMask(0, 0, None, f"instance masks differ in size: {sizes}"))
            continue
        h, w = sizes[0]
        union = np.zeros(h * w, dtype=bool)
        for _, _, take, _ in members:
            union |= take()
        out.append(ConvertedMask(h, w, _encode(h, w, union)))
    return out
