"""Column types of a published split (format.md §4, §6), in Arrow and in ``datasets`` terms.

One source for the Parquet schema, the card's ``dataset_info.features`` and the
checks of ``verify``. Columns, in order: ``tokens`` [d] (uint8 if v < 255 else
uint16), ``label`` (ClassLabel, nc names "0".."nc-1", int64 storage), ``latents``,
``synonyms``, ``placements`` [N] (smallest unsigned type); ``probe`` adds
``synonym_tokens`` and ``diffeo_tokens`` [L][d] (index l-1 for level l).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa

from ..config import SRHMConfig
from ..generate import column_dtypes
from ..probe import PROBE_COLUMNS


def class_names(cfg: SRHMConfig) -> list[str]:
    """ClassLabel names: "0" .. "nc-1" (so ``int2str(i) == str(i)``)."""
    return [str(i) for i in range(cfg.nc)]


def _arrow_type(dtype: np.dtype) -> pa.DataType:
    return pa.from_numpy_dtype(np.dtype(dtype))


@lru_cache(maxsize=256)
def arrow_schema(cfg: SRHMConfig, split: str) -> pa.Schema:
    """Arrow schema of a split, with the ``huggingface`` features metadata."""
    return hf_features(cfg, split).arrow_schema


def hf_features(cfg: SRHMConfig, split: str):
    """``datasets.Features`` of a split (imports ``datasets``)."""
    import datasets

    dtypes = column_dtypes(cfg)
    tok = datasets.Value(str(dtypes["tokens"]))
    feats = {
        "tokens": datasets.List(tok, length=cfg.d),
        "label": datasets.ClassLabel(names=class_names(cfg)),
    }
    for name in ("latents", "synonyms", "placements"):
        feats[name] = datasets.List(datasets.Value(str(dtypes[name])), length=cfg.num_nodes)
    if split == "probe":
        for name in PROBE_COLUMNS:
            feats[name] = datasets.List(datasets.List(tok, length=cfg.d), length=cfg.L)
    return datasets.Features(feats)


def yaml_features(cfg: SRHMConfig, split: str) -> list[dict]:
    """The card's ``dataset_info.features`` list for a split (datasets' YAML form)."""
    return hf_features(cfg, split)._to_yaml_list()


def to_arrow(cfg: SRHMConfig, columns: dict, split: str) -> pa.Table:
    """An Arrow table from numpy columns: 1-D -> scalar, [n, a] and [n, a, b] -> fixed-size lists.

    Zero-copy where numpy allows; the schema is ``arrow_schema(cfg, split)``.
    """
    schema = arrow_schema(cfg, split)
    arrays = []
    for field in schema:
        values = np.ascontiguousarray(columns[field.name])
        arr = pa.array(values.reshape(-1), type=_arrow_type(values.dtype))
        for size in reversed(values.shape[1:]):
            arr = pa.FixedSizeListArray.from_arrays(arr, size)
        arrays.append(arr.cast(field.type) if arr.type != field.type else arr)
    return pa.Table.from_arrays(arrays, schema=schema)


def from_arrow(table: pa.Table | pa.RecordBatch) -> dict[str, np.ndarray]:
    """Numpy columns [n, ...] of a table of scalar and fixed-size-list columns (inverse of ``to_arrow``)."""
    out = {}
    for name in table.column_names:
        col = table.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        shape = [len(col)]
        typ = col.type
        while pa.types.is_fixed_size_list(typ):
            shape.append(typ.list_size)
            col = col.flatten()
            typ = typ.value_type
        out[name] = col.to_numpy(zero_copy_only=False).reshape(shape)
    return out
