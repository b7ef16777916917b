"""Rows of a split (SPEC 3-5): permuted digits, then one gather per level.

``expand`` turns (label, synonyms, placements) into latents and tokens top-down: at
depth k the symbols of the s**k informative nodes select their productions
(``rules[k][symbol, r]``) and their children's slots (``placement_slots[q]``); each
node carries the first input position of the block it owns. The last level is one
more gather: every (symbol, r, q) at depth L-1 has a precomputed S-token patch
(``leaf_patches``), copied whole into an all-blank token matrix.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from .config import SRHMConfig
from .rules import placement_slots, sample_rules
from .sampler import check_range, split_digits

CHUNK = 1 << 15  # rows per internal block: bounds temporaries, unit of threading
MAX_PATCH_TABLE = 1 << 24  # entries of the leaf patch table, above which leaves are scattered one by one

COLUMNS = ("tokens", "label", "latents", "synonyms", "placements")


def smallest_uint(max_value: int) -> np.dtype:
    """The smallest of uint8/16/32/64 that holds max_value."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"invalid value {max_value}: exceeds uint64")


def column_dtypes(cfg: SRHMConfig) -> dict[str, np.dtype]:
    """Numpy dtype of each column of ``generate`` (SPEC 4)."""
    return {
        "tokens": np.dtype(np.uint8 if cfg.v < 255 else np.uint16),
        "label": np.dtype(np.int64),
        "latents": smallest_uint(max(cfg.nc, cfg.v) - 1),
        "synonyms": smallest_uint(cfg.m - 1),
        "placements": smallest_uint(cfg.placements_per_node - 1),
    }


@lru_cache(maxsize=64)
def leaf_patches(cfg: SRHMConfig, dtype: np.dtype) -> np.ndarray | None:
    """The S tokens under every depth-(L-1) node: [n_{L-1}*m*K, S], row (a*m + r)*K + q.

    Row u holds the children of symbol a by production r at the slots of placement q,
    blanks elsewhere. None when the table would exceed ``MAX_PATCH_TABLE`` entries.
    """
    rules = sample_rules(cfg)[cfg.L - 1].reshape(-1, cfg.s)  # row a*m + r
    K = cfg.placements_per_node
    if rules.shape[0] * K * cfg.S > MAX_PATCH_TABLE:
        return None
    u = np.arange(rules.shape[0] * K)
    table = np.full((u.size, cfg.S), cfg.blank, dtype=dtype)
    slots = placement_slots(cfg.s, cfg.s0, cfg.sparsity)
    np.put_along_axis(table, slots[u % K], rules[u // K].astype(dtype), axis=1)
    table.setflags(write=False)
    return table


def expand(cfg: SRHMConfig, label, synonyms, placements, dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Latents [n, N] (int64) and tokens [n, d] (``dtype``) of samples given by their indices.

    label: [n]; synonyms, placements: [n, N] in heap order.
    """
    rules = [table.reshape(-1, cfg.s) for table in sample_rules(cfg)]  # row a*m + r
    slots = placement_slots(cfg.s, cfg.s0, cfg.sparsity)
    patches = leaf_patches(cfg, np.dtype(dtype))
    synonyms = np.asarray(synonyms, dtype=np.int64)
    placements = np.asarray(placements, dtype=np.int64)
    n = synonyms.shape[0]
    symbols = np.asarray(label, dtype=np.int64).reshape(n, 1)
    # first input position of each node's block, counted from the start of the batch
    start = (np.arange(n, dtype=np.int64) * cfg.d).reshape(n, 1)
    latents = np.empty((n, cfg.num_nodes), dtype=np.int64)
    for k in range(cfg.L):
        nodes = slice(cfg.depth_nodes(k).start, cfg.depth_nodes(k).stop)
        latents[:, nodes] = symbols
        if k == cfg.L - 1 and patches is not None:  # copy whole leaf patches
            leaf = (symbols * cfg.m + synonyms[:, nodes]) * cfg.placements_per_node + placements[:, nodes]
            tokens = np.full((n, cfg.d), cfg.blank, dtype=dtype)
            tokens.reshape(-1, cfg.S)[start // cfg.S] = patches[leaf]
            return latents, tokens
        block = cfg.S ** (cfg.L - k - 1)  # size of the block owned by one slot
        children = rules[k][symbols * cfg.m + synonyms[:, nodes]]  # [n, s**k, s]
        start = (start[:, :, None] + slots[placements[:, nodes]] * block).reshape(n, -1)
        symbols = children.reshape(n, -1)
    tokens = np.full((n, cfg.d), cfg.blank, dtype=dtype)
    tokens.reshape(-1)[start] = symbols
    return latents, tokens


def _fill(cfg: SRHMConfig, split: str, start: int, stop: int, out: dict, at: int) -> None:
    digits = split_digits(cfg, split, start, stop)
    label, synonyms, placements = digits[:, 0], digits[:, 1::2], digits[:, 2::2]
    latents, tokens = expand(cfg, label, synonyms, placements, dtype=out["tokens"].dtype)
    rows = slice(at, at + stop - start)
    for name, values in zip(COLUMNS, (tokens, label, latents, synonyms, placements)):
        out[name][rows] = values


def generate(cfg: SRHMConfig, split: str, start: int = 0, stop: int | None = None, workers: int | None = None) -> dict:
    """Rows start..stop-1 of a split as a dict of numpy arrays (SPEC 4, 9).

    tokens [n, d] (uint8 if v < 255 else uint16, blank = v), label [n] int64,
    latents / synonyms / placements [n, N] in the smallest unsigned dtype, heap order.
    Row i is a pure function of (cfg, split, i): any chunking or number of
    ``workers`` (threads; default: all cores) gives the same rows.
    """
    if stop is None:
        stop = cfg.split_sizes().get(split, 0)
    check_range(cfg, split, start, stop)
    n = stop - start
    dtypes = column_dtypes(cfg)
    shapes = {"tokens": (n, cfg.d), "label": (n,), "latents": (n, cfg.num_nodes)}
    out = {c: np.empty(shapes.get(c, (n, cfg.num_nodes)), dtype=dtypes[c]) for c in COLUMNS}
    chunks = [(a, min(a + CHUNK, stop)) for a in range(start, stop, CHUNK)]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(chunks) <= 1:
        for a, b in chunks:
            _fill(cfg, split, a, b, out, a - start)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda ab: _fill(cfg, split, ab[0], ab[1], out, ab[0] - start), chunks))
    return out
