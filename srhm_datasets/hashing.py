"""The content hash of a split (format.md §8), one implementation for every caller.

For each column, in sorted name order: h_col = sha256 of its values as little-endian
int64, row-major, rows in split order (list columns flattened row after row). The
split's hash is sha256 of the UTF-8 lines ``<name>:<h_col hex>\\n``. Rows may be fed
in any chunking: the hash depends only on the values and their order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

from .config import require

#: Most bytes of int64 values widened at once while hashing (the rest of a block waits its turn).
HASH_CHUNK_BYTES = 1 << 20


class SplitHasher:
    """Streaming content hash: ``update`` with consecutive row blocks, then ``hexdigest``."""

    def __init__(self) -> None:
        self._columns: dict[str, hashlib._Hash] = {}

    def update(self, columns: dict) -> None:
        """Feed the next rows: a dict column name -> integer array-like [rows, ...].

        Raises ValueError for a non-dict, a column that is not integer (or bool) typed
        (floats would be truncated silently), or a set of columns other than the first call's.
        Memory beside the arrays given: at most ``HASH_CHUNK_BYTES`` (plus one row's int64 values
        when a row is wider than that), whatever their dtype and size.

        Examples
        --------
        >>> import numpy as np
        >>> whole, parts = SplitHasher(), SplitHasher()
        >>> tokens = np.arange(12, dtype=np.uint8).reshape(4, 3)
        >>> whole.update({"tokens": tokens})
        >>> parts.update({"tokens": tokens[:1]}); parts.update({"tokens": tokens[1:]})
        >>> whole.hexdigest() == parts.hexdigest()
        True
        """
        require(isinstance(columns, Mapping), "columns", columns, "a dict of column arrays")
        if self._columns and set(columns) != set(self._columns):
            raise ValueError(f"invalid columns {sorted(columns)}: expected {sorted(self._columns)}")
        for name, values in columns.items():
            values = _integer_array(name, values)
            digest = self._columns.setdefault(name, hashlib.sha256())
            for chunk in _int64_chunks(values):
                digest.update(chunk)

    def hexdigest(self) -> str:
        """``sha256:<hex>`` of the rows fed so far."""
        text = "".join(f"{name}:{self._columns[name].hexdigest()}\n" for name in sorted(self._columns))
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _integer_array(name: str, values) -> np.ndarray:
    try:
        values = np.asarray(values)
    except (TypeError, ValueError):  # ragged nested lists
        values = np.asarray(None)
    require(values.dtype.kind in "iub", f"columns[{name!r}].dtype", str(values.dtype), "an integer dtype")
    return values


def _int64_chunks(values: np.ndarray):
    """``values`` as little-endian int64, row-major, in consecutive pieces of at most
    ``HASH_CHUNK_BYTES`` (whole rows; one row when a row is wider), copied into one reused buffer."""
    if values.ndim == 0 or values.dtype == np.dtype("<i8") and values.flags.c_contiguous:
        yield np.ascontiguousarray(values, dtype="<i8").reshape(-1)
        return
    step = max(1, HASH_CHUNK_BYTES // (8 * max(1, values[:1].size)))
    buffer = np.empty((min(step, len(values)),) + values.shape[1:], dtype="<i8")
    for a in range(0, len(values), step):
        part = values[a : a + step]
        np.copyto(buffer[: len(part)], part, casting="unsafe")
        yield buffer[: len(part)].reshape(-1)


def content_hash(columns: dict) -> str:
    """Content hash of a whole split given as a dict of column arrays."""
    hasher = SplitHasher()
    hasher.update(columns)
    return hasher.hexdigest()


def rules_hash(rules: list) -> str:
    """``sha256:<hex>`` of rule tables: sha256 of their compact JSON (nested lists).

    ``rules`` is ``sample_rules(cfg)`` or the ``rules`` list of a rules file; both give
    the same hash. It identifies a task instance in results files and leaderboards.
    """
    tables = [np.asarray(t).tolist() for t in rules]
    text = json.dumps(tables, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
