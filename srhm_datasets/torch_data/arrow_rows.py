"""Rows of Arrow columns as numpy arrays, without copying the columns.

* :class:`RowGather`: rows of an integer or fixed-width integer-list column, gathered
  straight from its Arrow buffers (memory-mapped for a loaded release) with one numpy
  fancy-index per batch, whatever the number of chunks; it holds O(chunks) memory;
* :func:`compact_labels`: a label column as a compact numpy array [n] (uint8 when
  nc <= 256): the one column held in memory, as it is read at random for every batch.
"""

from __future__ import annotations

import bisect

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class RowGather:
    """Gather rows of one Arrow column (scalars or fixed-width lists) without copying the column.

    The column stays in its Arrow buffers (memory-mapped for a loaded release): for each
    chunk we keep only the byte offset of its first row inside the chunk's root buffer
    (the memory map, or the allocation it came from), and :meth:`take` copies just the
    requested rows, with one numpy gather per distinct root buffer (one for a loaded
    release, whatever the number of chunks). Memory held: O(chunks), not O(rows).
    """

    def __init__(self, column, name: str, width: int | None):
        chunks = [c for c in column.chunks if len(c)] if isinstance(column, pa.ChunkedArray) else [column]
        typ = column.type
        self.scalar = not (pa.types.is_fixed_size_list(typ) or pa.types.is_list(typ) or pa.types.is_large_list(typ))
        if self.scalar and not pa.types.is_integer(typ):
            raise ValueError(f"invalid column {name!r}: type {typ} is not an int or a list of ints")
        if pa.types.is_fixed_size_list(typ):
            width = typ.list_size if width is None else width
            if typ.list_size != width:
                raise ValueError(f"invalid column {name!r}: rows have length {typ.list_size}, expected {width}")
        self.width = 1 if self.scalar else width
        flats = []
        for chunk in chunks:
            if chunk.null_count:
                raise ValueError(f"invalid column {name!r}: {chunk.null_count} null rows")
            if self.scalar:
                flats.append(chunk)
                continue
            if not pa.types.is_fixed_size_list(typ):
                lengths = pc.list_value_length(chunk).to_numpy(zero_copy_only=False)
                if width is None:
                    width = self.width = int(lengths[0])
                if not (lengths.min() == lengths.max() == width):
                    raise ValueError(
                        f"invalid column {name!r}: row lengths in [{lengths.min()}, {lengths.max()}], "
                        f"expected all {width}"
                    )
            flats.append(chunk.flatten())
        value_type = typ if self.scalar else typ.value_type
        if not pa.types.is_integer(value_type):
            raise ValueError(f"invalid column {name!r}: type {typ} is not a list of ints")
        self.dtype = np.dtype(value_type.to_pandas_dtype())
        self.width = self.width or 0
        self.row_bytes = self.width * self.dtype.itemsize
        self.starts = np.cumsum([0] + [len(c) for c in chunks]).astype(np.int64)
        roots: dict[int, int] = {}
        self.windows, root_of, base = [], [], []
        for flat in flats:
            data = flat.buffers()[1]
            root = data
            while root.parent is not None:
                root = root.parent
            key = (root.address, root.size)
            if key not in roots:
                roots[key] = len(self.windows)
                view = np.frombuffer(root, dtype=np.uint8)
                self.windows.append(np.lib.stride_tricks.sliding_window_view(view, self.row_bytes))
            root_of.append(roots[key])
            base.append(data.address - root.address + flat.offset * self.dtype.itemsize)
        self.root_of = np.array(root_of, dtype=np.int64)
        self.base = np.array(base, dtype=np.int64)
        self._lists = (self.starts.tolist(), base, root_of)  # for the one-row path

    def row(self, i: int) -> np.ndarray:
        """Physical row ``i`` (in range) as a read-only view [width] ([] for scalars) of the Arrow buffer."""
        starts, base, root_of = self._lists
        c = bisect.bisect_right(starts, i) - 1 if len(base) > 1 else 0
        out = self.windows[root_of[c]][base[c] + (i - starts[c]) * self.row_bytes].view(self.dtype)
        return out[0] if self.scalar else out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (int64 physical row indices, in range) as a new array [B, width] ([B] for scalars)."""
        if rows.size == 0 or not self.windows:
            return np.empty((rows.size,) if self.scalar else (rows.size, self.width), dtype=self.dtype)
        if len(self.base) == 1:
            offsets = self.base[0] + rows * self.row_bytes
            chunk = None
        else:
            chunk = np.searchsorted(self.starts, rows, side="right") - 1
            offsets = self.base[chunk] + (rows - self.starts[chunk]) * self.row_bytes
        if len(self.windows) == 1:
            raw = self.windows[0][offsets]
        else:  # chunks in several allocations (e.g. concatenated in-memory tables): one gather each
            raw = np.empty((rows.size, self.row_bytes), dtype=np.uint8)
            root = self.root_of[chunk]
            for k in np.unique(root):
                mask = root == k
                raw[mask] = self.windows[k][offsets[mask]]
        out = raw.view(self.dtype)
        return out[:, 0] if self.scalar else out


def compact_labels(column, nc: int) -> np.ndarray:
    """The label column (ints in 0..nc-1) as a numpy array [n]: uint8 when nc <= 256, uint16
    when nc <= 65536, else int64."""
    dtype = np.uint8 if nc <= 1 << 8 else np.uint16 if nc <= 1 << 16 else np.int64
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = np.empty(len(column), dtype=dtype)
    at = 0
    for chunk in chunks:
        if chunk.null_count:
            raise ValueError(f"invalid column 'label': {chunk.null_count} null rows")
        values = chunk.to_numpy(zero_copy_only=False)
        if len(values) and (values.min() < 0 or values.max() >= nc):
            raise ValueError(
                f"invalid column 'label': values in [{values.min()}, {values.max()}], expected [0, nc={nc})"
            )
        out[at : at + len(values)] = values
        at += len(values)
    return out
