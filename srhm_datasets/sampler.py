"""A keyed pseudorandom permutation of the data space, and split offsets (format.md §5).

A sample is the digit vector (label, r_0, q_0, r_1, q_1, ..., r_{N-1}, q_{N-1}) with
radices (nc, m, K, m, K, ...): the data space is their product, of size P_max. Row i
of split X is the sample ``decode(permute(offset(X) + i))``.

Why splits are disjoint and duplicate-free for every P_max: ``permute`` is a
bijection of [0, P_max) (each Feistel round below is invertible, and cycle walking
restricted to [0, P) of a bijection of a superset is a bijection of [0, P)), and
``decode`` is the mixed-radix bijection from [0, P_max) to digit vectors. Splits are
disjoint ranges of global indices, so their samples are distinct by construction;
``train[:P]`` is the image of a prefix, a pseudorandom sample without replacement.

Two regimes, both vectorised over a batch of int64 indices:

* ``P_max < 2**62``: the index is one int64. Tiny spaces (<= 2**20) use an explicit
  permutation (argsort of keyed hashes, exact uniformity). Larger ones use a balanced
  two-limb Feistel on [0, a*b) with a*b >= P_max, a ~ b ~ sqrt(P_max), and cycle
  walking back into [0, P_max). When a, b <= ``ROUND_TABLE_MAX`` each round function
  (a hash of the other limb only) is tabulated once: a round is one look-up.
* ``P_max >= 2**62``: the digits are packed into several limbs, each a product of
  whole digits (or prime factors of a digit too large to balance) below 2**60, and an
  unbalanced Feistel updates one limb per round from a hash of all the others. No
  big-integer arithmetic happens per sample: the global index (< 2**62) fills the low
  limbs and each permuted limb is peeled into its digits with int64 div/mod.

All passes are in place over preallocated arrays (``Scratch``, reused block after block
by ``generate``); remainders are taken as x - (x // D) * D (numpy vectorises division
by a scalar, not its remainder). Same bits as the plain expressions, pinned by tests.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np

from .config import (
    MAX_ROWS,
    RADIX_BOUND,
    SPLITS,
    SRHMConfig,
    check_config,
    format_count,
    require,
    require_choice,
    require_int,
)
from .prng import _GOLDEN, derive_key, hash_with, mix64, mix64_inplace

TABLE_MAX = 2**20  # spaces up to this size use an explicit permutation table
LIMB_BITS = 60  # limbs of multi-limb spaces stay below 2**LIMB_BITS
ROUNDS_PER_LIMB = 3  # Feistel passes over the limbs (at least 6 rounds)
ROUND_TABLE_MAX = 2**16  # two-limb Feistels with both radices up to this tabulate their round functions


class Scratch:
    """Arrays reused from one block of rows to the next (one Scratch per thread).

    ``generate`` runs block after block through the same buffers, so a block allocates
    (and the kernel maps and zeroes) no fresh memory: page faults were half its time.
    ``array(name, shape, dtype)`` returns a view of the buffer called ``name``, grown
    when too small; its previous contents are undefined. Distinct names never overlap.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        size = math.prod(shape) * dtype.itemsize
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype=np.uint8)
        return buffer[:size].view(dtype).reshape(shape)

    def copy(self, name: str, values: np.ndarray, dtype) -> np.ndarray:
        """``values`` copied (cast) into the buffer called ``name``."""
        out = self.array(name, np.shape(values), dtype)
        np.copyto(out, values, casting="unsafe")
        return out

    def iota(self, n: int) -> np.ndarray:
        """0, 1, ..., n-1 as intp, computed when n exceeds the largest n asked so far (callers only read it)."""
        known = self._buffers.get("iota")
        if known is None or known.size < n * np.dtype(np.intp).itemsize:
            self.array("iota", (n,), np.intp)[:] = np.arange(n)
        return self.array("iota", (n,), np.intp)


# ---- permutations of [0, n) for n < 2**62 ----------------------------------------


@lru_cache(maxsize=16)
def _table(n: int, key: int) -> np.ndarray:
    order = np.argsort(hash_with(key, np.arange(n, dtype=np.uint64)), kind="stable")
    return order.astype(np.int64)


def _feistel(limbs: list[np.ndarray], radices: list[int], key: int, scratch: Scratch | None = None) -> list[np.ndarray]:
    """Unbalanced Feistel over limbs: x_j <- (x_j + F(round, other limbs)) mod D_j.

    Every round is invertible whatever F is, so the map is a bijection of the product
    of the radices. ``limbs`` are uint64 arrays with limbs[j] < radices[j] < 2**62;
    F(round, others) = mix64(... mix64(round_key ^ x_i) ^ x_i' ...) over the other limbs
    in order. In-place passes over ``scratch`` arrays (returned); the caller's arrays are never written.
    """
    t, scratch = len(limbs), scratch or Scratch()
    shape = np.shape(limbs[0])
    limbs = [scratch.copy(f"limb{j}", x, np.uint64) for j, x in enumerate(limbs)]
    h, tmp = scratch.array("h", shape, np.uint64), scratch.array("tmp", shape, np.uint64)
    for rnd, round_key in enumerate(round_keys(key, max(6, ROUNDS_PER_LIMB * t))):
        j = rnd % t
        h.fill(round_key)  # F starts from the round key
        for i in range(t):
            if i != j:
                np.bitwise_xor(h, limbs[i], out=h)
                np.add(h, _GOLDEN, out=h)
                mix64_inplace(h, tmp)
        _mod_inplace(h, radices[j], tmp)
        _add_mod(limbs[j], h, radices[j], tmp)
    return limbs


def _mod_inplace(x: np.ndarray, D: int, tmp: np.ndarray) -> None:
    """x <- x % D for uint64 x (numpy's vectorised division by a scalar is faster than its remainder)."""
    np.floor_divide(x, np.uint64(D), out=tmp)
    np.multiply(tmp, np.uint64(D), out=tmp)
    np.subtract(x, tmp, out=x)


def _add_mod(x: np.ndarray, y: np.ndarray, D: int, tmp: np.ndarray) -> None:
    """x <- (x + y) % D for uint64 x, y < D < 2**63: one conditional subtraction (min with the wrapped x - D)."""
    np.add(x, y, out=x)
    np.subtract(x, np.uint64(D), out=tmp)
    np.minimum(x, tmp, out=x)


def sampler_key(cfg: SRHMConfig) -> int:
    """The key of a config's permutation of its data space (format.md §5.3)."""
    return derive_key(cfg.seed, "sampler")


@lru_cache(maxsize=64)
def round_keys(key: int, rounds: int) -> tuple[int, ...]:
    """The key of each Feistel round: derive_key(key, "round", r)."""
    return tuple(derive_key(key, "round", rnd) for rnd in range(rounds))


@lru_cache(maxsize=16)
def _round_tables(a: int, b: int, key: int) -> tuple[np.ndarray, ...]:
    """F of each round of the two-limb Feistel on [0, a) x [0, b), as tables indexed by the other limb.

    Round r updates limb j = r % 2 by ``mix64(round_key ^ other) % D_j``: with one other
    limb F depends on its value only, so it is tabulated once (``ROUND_TABLE_MAX``).
    """
    radices = (a, b)
    tables = []
    for rnd, round_key in enumerate(round_keys(key, max(6, 2 * ROUNDS_PER_LIMB))):
        j = rnd % 2
        other = np.arange(radices[1 - j], dtype=np.uint64)
        table = mix64(other ^ np.uint64(round_key)) % np.uint64(radices[j])
        table.setflags(write=False)
        tables.append(table)
    return tuple(tables)


def _feistel2(lo: np.ndarray, hi: np.ndarray, a: int, b: int, key: int, scratch: Scratch | None = None) -> None:
    """``_feistel([lo, hi], [a, b], key)`` in place, by table look-ups; a, b <= ROUND_TABLE_MAX."""
    limbs, radices, scratch = (lo, hi), (a, b), scratch or Scratch()
    f, tmp = scratch.array("f", lo.shape, np.uint64), scratch.array("tmp", lo.shape, np.uint64)
    for rnd, table in enumerate(_round_tables(a, b, key)):
        j = rnd % 2
        np.take(table, limbs[1 - j].view(np.int64), out=f, mode="clip")  # clip: no copy of out (indices < a, b)
        _add_mod(limbs[j], f, radices[j], tmp)


def check_indices(name: str, index, n: int) -> np.ndarray:
    """``index`` as an int64 array, else ValueError naming it unless every value lies in [0, n)."""
    index = np.asarray(index)
    require(index.dtype.kind in "iu", f"{name}.dtype", str(index.dtype), "an integer dtype")
    if index.size:
        low, high = int(index.min()), int(index.max())
        require(low >= 0, f"min({name})", low, ">= 0")
        if high >= n:  # the bound's text is built only on failure (a hot path)
            require(False, f"max({name})", high, f"< {format_count(n)}")
    return index.astype(np.int64, copy=False)


def permute_int(index: np.ndarray, n: int, key: int) -> np.ndarray:
    """A keyed bijection of [0, n), 1 <= n < 2**62, applied to an integer array of indices in [0, n).

    Returns int64 of the same shape. Raises ValueError naming ``n`` or ``index`` when out of range.
    """
    n = require_int("n", n, 1, RADIX_BOUND - 1)
    index = check_indices("index", index, n)
    if n <= TABLE_MAX:
        return _table(n, key)[index]
    return _permute(index.astype(np.uint64).reshape(-1), n, key, Scratch()).view(np.int64).reshape(index.shape)


def _permute(x: np.ndarray, n: int, key: int, scratch: Scratch) -> np.ndarray:
    """``permute_int`` of 1-d uint64 x (overwritten) for TABLE_MAX < n < 2**62, without checks; uint64 in scratch."""
    a = math.isqrt(n - 1) + 1
    b = -(-n // a)
    out = _feistel_pass(x, a, b, key, scratch)
    todo = np.flatnonzero(out >= np.uint64(n))
    while todo.size:  # cycle walking: re-apply until the value falls in [0, n) (few values: own scratch)
        again = _feistel_pass(out[todo], a, b, key, Scratch())
        out[todo] = again
        todo = todo[again >= np.uint64(n)]
    return out


def _feistel_pass(x: np.ndarray, a: int, b: int, key: int, scratch: Scratch) -> np.ndarray:
    """One application of the two-limb Feistel to x < a*b (uint64, overwritten): lo + hi*a after the rounds."""
    hi, tmp = scratch.array("hi", x.shape, np.uint64), scratch.array("tmp", x.shape, np.uint64)
    np.floor_divide(x, np.uint64(a), out=hi)
    lo = np.subtract(x, np.multiply(hi, np.uint64(a), out=tmp), out=x)
    if max(a, b) <= ROUND_TABLE_MAX:
        _feistel2(lo, hi, a, b, key, scratch)
    else:
        lo, hi = _feistel([lo, hi], [a, b], key, scratch)
    np.multiply(hi, np.uint64(a), out=hi)
    return np.add(hi, lo, out=hi)


# ---- the data space ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layout:
    """How the digits of a sample are packed into limbs.

    ``limbs[j]`` lists (digit, radix, weight) pieces, least significant first: the
    limb's value is peeled piece by piece (x % radix, x //= radix) and each piece adds
    ``piece * weight`` to its digit. ``radices[j]`` is the limb's radix.
    """

    digit_radices: tuple[int, ...]
    limbs: tuple[tuple[tuple[int, int, int], ...], ...]
    radices: tuple[int, ...]


def _digit_radices(cfg: SRHMConfig) -> tuple[int, ...]:
    node = (cfg.m, cfg.placements_per_node)
    return (cfg.nc,) + node * cfg.num_nodes


def _factor(n: int) -> list[int]:
    """Prime factors of n (trial division; n is a small radix), ascending."""
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def layout(cfg: SRHMConfig) -> Layout:
    """The limb layout of a config's data space (one limb when P_max < 2**62)."""
    return _layout(check_config(cfg))


@lru_cache(maxsize=64)
def _layout(cfg: SRHMConfig) -> Layout:
    radices = _digit_radices(cfg)
    P = cfg.data_space_size
    if P < 2**62:
        pieces = tuple((i, r, 1) for i, r in enumerate(radices) if r > 1)
        return Layout(radices, (pieces,), (P,))
    # Multi-limb: split any digit larger than a third of the space's bits into prime
    # factors (so no limb is forced to be tiny), then pack greedily toward equal limbs.
    bits = math.log2(P)
    n_limbs = max(2, math.ceil(bits / LIMB_BITS))
    target = bits / n_limbs
    pieces = []
    for i, r in enumerate(radices):
        if r == 1:
            continue
        parts = _factor(r) if math.log2(r) > bits / 3 else [r]
        weight = 1
        for p in parts:
            pieces.append((i, p, weight))
            weight *= p
    limbs, current, size = [], [], 1
    for piece in pieces:
        grown = size * piece[1]
        if current and (grown >= 2**LIMB_BITS or math.log2(grown) > target + 0.5 * math.log2(piece[1])):
            limbs.append((tuple(current), size))
            current, size = [], 1
        current.append(piece)
        size *= piece[1]
    limbs.append((tuple(current), size))
    return Layout(radices, tuple(limb for limb, _ in limbs), tuple(s for _, s in limbs))


def _split_index(g: np.ndarray, radices: tuple[int, ...]) -> list[np.ndarray]:
    """Write int64 indices g (< 2**62) in the limb radices, least significant first."""
    out, rest = [], g.astype(np.uint64)
    for D in radices:
        quotient = np.floor_divide(rest, np.uint64(D))
        out.append(np.subtract(rest, quotient * np.uint64(D), out=rest))  # rest % D, by the faster division
        rest = quotient
    return out


def _peel(limbs: list[np.ndarray], lay: Layout, scratch: Scratch | None = None) -> np.ndarray:
    """Decode limb values (uint64) into the digits, node-major: [len(digit_radices), n] int64 (in scratch).

    One division by a scalar per piece except the last of a limb (what is left is the
    piece); a digit made of one piece is written, not added; each digit is a contiguous row.
    """
    scratch, n = scratch or Scratch(), limbs[0].shape[0]
    digits = scratch.array("digits", (len(lay.digit_radices), n), np.int64)
    written = set()
    for x, pieces in zip(limbs, lay.limbs):
        x = scratch.copy("peel_x", x, np.uint64)
        rest, tmp = scratch.array("peel_rest", (n,), np.uint64), scratch.array("peel_tmp", (n,), np.uint64)
        for i, (digit, radix, weight) in enumerate(pieces):
            if i < len(pieces) - 1:
                np.floor_divide(x, np.uint64(radix), out=rest)
                np.subtract(x, np.multiply(rest, np.uint64(radix), out=tmp), out=x)  # x <- the piece
            piece = x.view(np.int64) if weight == 1 else np.multiply(x.view(np.int64), weight, out=tmp.view(np.int64))
            np.add(digits[digit], piece, out=digits[digit]) if digit in written else np.copyto(digits[digit], piece)
            written.add(digit)
            x, rest = rest, x
    for digit in set(range(len(lay.digit_radices))) - written:  # radix-1 digits
        digits[digit] = 0
    return digits


def permuted_digits(cfg: SRHMConfig, g: np.ndarray) -> np.ndarray:
    """Digit vectors [n, 1 + 2N] (int64) of the samples at global indices g (int64 array).

    Columns: label, then (synonym r, placement q) of each internal node in heap order.
    The array is the transpose of a C-contiguous [1 + 2N, n]: ``.T`` gives each digit
    as a contiguous row. Raises ValueError unless 0 <= g < min(P_max, 2**62).
    """
    g = check_indices("g", g, min(check_config(cfg).data_space_size, MAX_ROWS))
    return node_digits(cfg, g.astype(np.uint64), Scratch()).T


def node_digits(cfg: SRHMConfig, g: np.ndarray, scratch: Scratch) -> np.ndarray:
    """``permuted_digits(cfg, g).T`` without checks: g uint64 [n] in range (overwritten), result in scratch."""
    lay = _layout(cfg)
    key = sampler_key(cfg)
    if len(lay.radices) > 1:
        limbs = _feistel(_split_index(g, lay.radices), list(lay.radices), key, scratch)
    elif lay.radices[0] <= TABLE_MAX:
        limbs = [_table(lay.radices[0], key)[g.view(np.int64)].view(np.uint64)]
    else:
        limbs = [_permute(g, lay.radices[0], key, scratch)]
    return _peel(limbs, lay, scratch)


def check_range(cfg: SRHMConfig, split: str, start: int, stop: int) -> tuple[int, int]:
    """(start, stop) as Python ints; ValueError unless rows start..stop-1 exist in the split.

    numpy integers are accepted; bools, floats and None are not.
    """
    size = cfg.split_sizes()[require_choice("split", split, SPLITS)]
    start, stop = require_int("start", start), require_int("stop", stop)
    if not (0 <= start <= stop <= size):
        raise ValueError(
            f"invalid parameters start={start}, stop={stop}: must satisfy 0 <= start <= stop <= "
            f"{size} (the rows of split {split!r} of {cfg.name})"
        )
    return start, stop


def split_limit(cfg: SRHMConfig, split: str) -> int:
    """Rows of ``split`` that exist: its size, or for ``train`` every row up to the end of the
    data space (min(P_max, 2**62) minus test and probe: rows beyond the published train size
    continue the same permutation, disjoint from test and probe).

    Raises ValueError naming ``split`` unless it is train, test or probe.

    Examples
    --------
    >>> from srhm_datasets.catalog import CATALOG
    >>> cfg = CATALOG["demo"]
    >>> split_limit(cfg, "test") == cfg.split_sizes()["test"]
    True
    >>> split_limit(cfg, "train") == cfg.data_space_size - cfg.split_offset("train")
    True
    """
    check_config(cfg)
    if require_choice("split", split, SPLITS) != "train":
        return cfg.split_sizes()[split]
    return min(cfg.data_space_size, MAX_ROWS) - cfg.split_offset("train")


def split_digits(cfg: SRHMConfig, split: str, start: int, stop: int) -> np.ndarray:
    """Digit vectors of rows start..stop-1 of a split (see ``permuted_digits``)."""
    start, stop = check_range(check_config(cfg), split, start, stop)
    offset = cfg.split_offset(split)
    return permuted_digits(cfg, np.arange(offset + start, offset + stop, dtype=np.int64))
