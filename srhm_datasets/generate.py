"""Rows of a split (format.md §3-§5): permuted digits, then one gather per level.

``expand`` turns (label, synonyms, placements) into latents and tokens top-down: at
depth k the symbols of the s**k informative nodes select their productions
(``rules[k][symbol, r]``) and their children's slots (``placement_slots[q]``); each
node carries the first input position of the block it owns. The last level is one
more gather: every (symbol, r, q) at depth L-1 has a precomputed S-token patch
(``leaf_patches``), copied whole into an all-blank token matrix.

``generate`` computes the same rows by a fused path (``_expand_into``, pinned to
``expand`` by tests): blocks of rows go node-major from the permuted digits straight
into the output arrays, one take per child and depth and one scatter of the tokens,
through scratch arrays reused from block to block (``sampler.Scratch``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from .config import SPLITS, ParameterTypeError, SRHMConfig, require, require_choice, require_int
from .rules import placement_slots, sample_rules
from .sampler import Scratch, check_config, check_range, node_digits

CHUNK = 1 << 14  # rows per internal block: bounds temporaries (cache-sized), unit of threading
CHUNK_ENTRIES = 1 << 21  # ... and at most this many digits + tokens per block (wide rows give short blocks)
MAX_PATCH_TABLE = 1 << 24  # entries of the leaf patch table, above which leaves are scattered one by one

COLUMNS = ("tokens", "label", "latents", "synonyms", "placements")


def smallest_uint(max_value: int) -> np.dtype:
    """The smallest of uint8/16/32/64 that holds max_value."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"invalid value {max_value}: exceeds uint64")


def column_dtypes(cfg: SRHMConfig) -> dict[str, np.dtype]:
    """Numpy dtype of each column of ``generate`` (format.md §4)."""
    return {
        "tokens": np.dtype(np.uint8 if cfg.v < 255 else np.uint16),
        "label": np.dtype(np.int64),
        "latents": smallest_uint(max(cfg.nc, cfg.v) - 1),
        "synonyms": smallest_uint(cfg.m - 1),
        "placements": smallest_uint(cfg.placements_per_node - 1),
    }


def column_shapes(cfg: SRHMConfig, n: int) -> dict[str, tuple[int, ...]]:
    """Shape of each column of ``n`` rows: tokens [n, d], label [n], the rest [n, N]."""
    wide = (n, cfg.num_nodes)
    return {"tokens": (n, cfg.d), "label": (n,), "latents": wide, "synonyms": wide, "placements": wide}


def column_bounds(cfg: SRHMConfig) -> dict[str, int]:
    """Largest value of each column: tokens v (the blank), label nc-1, latents max(nc, v)-1, ..."""
    return {
        "tokens": cfg.v,
        "label": cfg.nc - 1,
        "latents": max(cfg.nc, cfg.v) - 1,
        "synonyms": cfg.m - 1,
        "placements": cfg.placements_per_node - 1,
    }


def check_batch(cfg: SRHMConfig, batch, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named columns of a batch as integer arrays, checked against cfg (format.md §4).

    Each must be present, integer-typed, shaped as ``column_shapes`` (n from the label,
    or the first column) and within 0..``column_bounds``: a batch of another config is
    refused. Raises ValueError naming the column, e.g. ``batch['tokens']``. Cost: one
    vectorised min and max per column.
    """
    require(isinstance(batch, Mapping), "batch", batch, "a dict of column arrays", ParameterTypeError)
    arrays = {}
    for name in columns:
        require(name in batch, "batch", sorted(map(str, batch)), f"a dict with the column {name!r}")
        arrays[name] = check_column(cfg, name, batch[name])
    n = arrays[columns[0]].shape[0] if arrays[columns[0]].ndim else 0
    for name, values in arrays.items():
        shape = column_shapes(cfg, n)[name]
        require(values.shape == shape, f"batch[{name!r}].shape", values.shape, f"== {shape} for {cfg.name}")
    return arrays


def check_column(cfg: SRHMConfig, name: str, values) -> np.ndarray:
    """One column as an integer array whose values lie in 0..column_bounds(cfg)[name]."""
    try:
        values = np.asarray(values)
    except (TypeError, ValueError):  # ragged nested lists
        values = np.asarray(None)
    require(values.dtype.kind in "iu", f"batch[{name!r}].dtype", str(values.dtype), "an integer dtype")
    high = column_bounds(cfg)[name]
    if values.size:
        require(int(values.min()) >= 0, f"min(batch[{name!r}])", int(values.min()), ">= 0")
        require(int(values.max()) <= high, f"max(batch[{name!r}])", int(values.max()), f"<= {high} for {cfg.name}")
    return values


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
    """Latents [n, N] (int64) and tokens [n, d] (``dtype``) of samples given by their indices (format.md §3-§4).

    label: [n] in [0, nc); synonyms: [n, N] in [0, m); placements: [n, N] in [0, K), in
    heap order; ``dtype``: an integer dtype that holds v. Raises ValueError naming the
    argument whose shape, dtype or values do not fit cfg.
    """
    check_config(cfg)
    batch = check_batch(
        cfg, {"label": label, "synonyms": synonyms, "placements": placements}, ("label", "synonyms", "placements")
    )
    return _expand(cfg, batch["label"], batch["synonyms"], batch["placements"], token_dtype(cfg, dtype))


def token_dtype(cfg: SRHMConfig, dtype) -> np.dtype:
    """``dtype`` as a numpy integer dtype that holds the blank v, else ValueError naming ``dtype``."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    ok = dtype is not None and dtype.kind in "iu" and np.iinfo(dtype).max >= cfg.v
    require(ok, "dtype", dtype, f"an integer dtype that holds v = {cfg.v}")
    return dtype


def _expand(cfg: SRHMConfig, label, synonyms, placements, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``expand`` without the checks: arguments known to fit cfg."""
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
        width = cfg.s ** (k + 1)  # nodes at depth k+1 (explicit: n may be 0)
        start = (start[:, :, None] + slots[placements[:, nodes]] * block).reshape(n, width)
        symbols = children.reshape(n, width)
    tokens = np.full((n, cfg.d), cfg.blank, dtype=dtype)
    tokens.reshape(-1)[start] = symbols
    return latents, tokens


def _fill(cfg: SRHMConfig, split: str, start: int, stop: int, out: dict, at: int, scratch: Scratch) -> None:
    """Rows start..stop-1 of a split written straight into ``out[c][at:at + stop - start]``."""
    n = stop - start
    g = np.add(scratch.iota(n), cfg.split_offset(split) + start, out=scratch.array("g", (n,), np.intp))
    digits = node_digits(cfg, g.view(np.uint64), scratch)  # [1 + 2N, n]: one contiguous row per digit
    rows = slice(at, at + n)
    label, synonyms, placements = digits[0], digits[1::2], digits[2::2]
    out["label"][rows] = label
    out["synonyms"][rows] = synonyms.T
    out["placements"][rows] = placements.T
    _expand_into(cfg, label, synonyms, placements, out["latents"][rows].T, out["tokens"][rows], scratch)


@lru_cache(maxsize=64)
def _depth_tables(cfg: SRHMConfig, dtype: np.dtype) -> tuple[tuple[slice, tuple, tuple], ...]:
    """Per depth k: (its nodes' heap slice, children, slots), children[c] / slots[c] for child c.

    children[c] = rules[k][:, :, c] flattened (row a*m + r): intp at depths < L-1 (they
    index the next depth's rules), ``dtype`` (the tokens') at the last depth;
    slots[c] = placement_slots[:, c] (row q), intp. Read-only contiguous arrays.
    """
    slots = placement_slots(cfg.s, cfg.s0, cfg.sparsity)
    tables = []
    for k, rules in enumerate(sample_rules(cfg)):
        children = rules.reshape(-1, cfg.s).astype(dtype if k == cfg.L - 1 else np.intp)
        pair = tuple(tuple(np.ascontiguousarray(t[:, c]) for c in range(cfg.s)) for t in (children, slots))
        for table in pair[0] + pair[1]:
            table.setflags(write=False)
        nodes = cfg.depth_nodes(k)
        tables.append((slice(nodes.start, nodes.stop), *pair))
    return tuple(tables)


def _expand_into(cfg: SRHMConfig, label, synonyms, placements, latents, tokens: np.ndarray, scratch: Scratch) -> None:
    """``_expand`` written into ``latents`` [N, n] and ``tokens`` [n, d] (C-contiguous), node-major.

    label [n], synonyms / placements [N, n] int64 (rows of the digits, heap order);
    latents may be a transposed view of an [n, N] output, of any integer dtype. Top-down,
    every array [nodes, n]: at depth k and child c one take of the child's symbol (rules
    row a*m + r) and one of its slot (row q); a node's block number b gives its child's
    b*S + slot. At depth L block numbers are token positions: one scatter into the
    all-blank tokens. Depth-k arrays are kept child-major, axes (c_k, ..., c_1, row):
    node c_1 s**(k-1) + ... + c_k of the depth in heap order, so each take writes a
    contiguous block; heap-ordered rows are seen through transposed views.
    """
    n = tokens.shape[0]
    tokens.fill(cfg.blank)
    symbols = label.reshape(1, n)
    blocks = scratch.array("blocks", (1, n), np.intp)  # block number of each node within its row
    blocks.fill(0)
    for k, (nodes, children, slots) in enumerate(_depth_tables(cfg, tokens.dtype)):
        shape = (cfg.s,) * k + (n,)
        np.copyto(_child_major(latents[nodes], cfg.s, k), symbols.reshape(shape), casting="unsafe")
        index = np.multiply(symbols.reshape(shape), cfg.m, out=scratch.array("index", shape, np.intp))
        np.add(index, _child_major(synonyms[nodes], cfg.s, k), out=index)
        np.multiply(blocks, cfg.S, out=blocks)
        kids = scratch.array(f"kids{k % 2}", (cfg.s,) + shape, children[0].dtype)
        kid_blocks = scratch.array(f"kid_blocks{k % 2}", (cfg.s,) + shape, np.intp)
        for c in range(cfg.s):
            np.take(children[c], index, out=kids[c], mode="clip")  # clip: no copy of out (indices in range)
        for c, slot in enumerate(_slots_of(placements[nodes], slots, k, scratch)):
            np.add(blocks.reshape(shape), slot, out=kid_blocks[c])
        symbols, blocks = kids, kid_blocks
    row_start = np.multiply(scratch.iota(n), cfg.d, out=scratch.array("row_start", (n,), np.intp))
    np.add(blocks, row_start, out=blocks)  # token positions in the flat block
    np.reshape(tokens, -1, copy=False)[blocks] = symbols


def _slots_of(placements: np.ndarray, slots: tuple[np.ndarray, ...], k: int, scratch: Scratch):
    """The slot of each child c of the depth-k nodes, c = 0..s-1: child-major arrays, or ints when K = 1."""
    if slots[0].size == 1:  # one placement (s0 = 0): every child's slot is fixed
        yield from (int(table[0]) for table in slots)
        return
    q = scratch.copy("q", _child_major(placements, len(slots), k), np.intp)
    slot = scratch.array("slot", q.shape, np.intp)
    for table in slots:
        yield np.take(table, q, out=slot, mode="clip")


def _child_major(rows: np.ndarray, s: int, k: int) -> np.ndarray:
    """Heap-ordered rows [s**k, n] of depth k as a view [c_k, ..., c_1, n] (ValueError if no view exists)."""
    split = np.reshape(rows, (s,) * k + rows.shape[-1:], copy=False)
    return split.transpose(*range(k - 1, -1, -1), k)


def generate(cfg: SRHMConfig, split: str, start: int = 0, stop: int | None = None, workers: int | None = None) -> dict:
    """Rows ``start..stop-1`` of a split, as a dict of numpy arrays (format.md §4, §5).

    Row i is a pure function of (cfg, split, i): any chunking or number of ``workers``
    gives the same rows, and the published splits hold exactly these rows.

    Parameters
    ----------
    cfg : SRHMConfig
        The config (:func:`srhm_datasets.get_config` gives one from a name).
    split : {"train", "test", "probe"}
        The split (format.md §5.1; ``cfg.split_sizes()`` gives their sizes).
    start, stop : int
        Rows ``start <= i < stop`` of the split; ``stop=None`` is the split's end.
    workers : int or None
        Threads (default: all cores); the rows do not depend on it.

    Returns
    -------
    dict of str to numpy.ndarray
        ``tokens`` [n, d] (uint8 if v < 255, else uint16; the blank is ``v``),
        ``label`` [n] int64, and the latent tree: ``latents``, ``synonyms``,
        ``placements`` [n, N] in the smallest unsigned dtype, heap order (format.md §4.1).

    Raises
    ------
    TypeError
        ``cfg`` not an SRHMConfig, or an argument of the wrong type.
    ValueError
        ``split`` not a split, or not ``0 <= start <= stop <=`` the split's size, or
        ``workers < 1``.

    Notes
    -----
    The returned arrays are the only allocation that grows with ``stop - start``:
    internal blocks hold at most ``CHUNK`` rows and ``CHUNK_ENTRIES`` values.

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> cfg = srhm.get_config("demo")
    >>> rows = srhm.generate(cfg, "train", 0, 4)
    >>> rows["tokens"].shape, rows["tokens"].dtype, rows["label"].tolist()
    ((4, 16), dtype('uint8'), [1, 1, 2, 3])
    >>> rows["tokens"][0]  # the blank token is v = 4
    array([1, 4, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 1, 4, 4, 1], dtype=uint8)
    >>> bool((srhm.generate(cfg, "train", 2, 4)["tokens"] == rows["tokens"][2:]).all())  # row i is row i
    True
    """
    check_config(cfg)
    stop = cfg.split_sizes()[require_choice("split", split, SPLITS)] if stop is None else stop
    start, stop = check_range(cfg, split, start, stop)
    workers = (os.cpu_count() or 1) if workers is None else require_int("workers", workers, 1)
    n = stop - start
    dtypes = column_dtypes(cfg)
    out = {c: np.empty(shape, dtype=dtypes[c]) for c, shape in column_shapes(cfg, n).items()}
    rows = max(1, min(CHUNK, CHUNK_ENTRIES // (cfg.d + 2 * cfg.num_nodes + 1)))
    chunks = [(a, min(a + rows, stop)) for a in range(start, stop, rows)]
    if workers == 1 or len(chunks) <= 1:
        for a, b in chunks:
            _fill_block(cfg, split, a, b, out, a - start)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda ab: _fill_block(cfg, split, ab[0], ab[1], out, ab[0] - start), chunks))
    return out


_IDLE: list[Scratch] = []  # scratch arrays not in use, kept from call to call and shared by all threads
_IDLE_LOCK = threading.Lock()


def _fill_block(cfg: SRHMConfig, split: str, start: int, stop: int, out: dict, at: int) -> None:
    """``_fill`` with an idle Scratch, returned afterwards: a stream of ``generate`` calls maps no fresh memory.

    As many Scratch exist as blocks ever ran at once (the most workers used); each holds
    a few block-sized arrays, bounded by CHUNK and CHUNK_ENTRIES, not by P.
    """
    with _IDLE_LOCK:
        scratch = _IDLE.pop() if _IDLE else Scratch()
    try:
        _fill(cfg, split, start, stop, out, at, scratch)
    finally:
        with _IDLE_LOCK:
            _IDLE.append(scratch)
