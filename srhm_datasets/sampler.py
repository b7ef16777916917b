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
  walking back into [0, P_max).
* ``P_max >= 2**62``: the digits are packed into several limbs, each a product of
  whole digits (or prime factors of a digit too large to balance) below 2**60, and an
  unbalanced Feistel updates one limb per round from a hash of all the others. No
  big-integer arithmetic happens per sample: the global index (< 2**62) fills the low
  limbs and each permuted limb is peeled into its digits with int64 div/mod.
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
from .prng import derive_key, hash_with, mix64

TABLE_MAX = 2**20  # spaces up to this size use an explicit permutation table
LIMB_BITS = 60  # limbs of multi-limb spaces stay below 2**LIMB_BITS
ROUNDS_PER_LIMB = 3  # Feistel passes over the limbs (at least 6 rounds)


# ---- permutations of [0, n) for n < 2**62 ----------------------------------------


@lru_cache(maxsize=16)
def _table(n: int, key: int) -> np.ndarray:
    order = np.argsort(hash_with(key, np.arange(n, dtype=np.uint64)), kind="stable")
    return order.astype(np.int64)


def _feistel(limbs: list[np.ndarray], radices: list[int], key: int) -> list[np.ndarray]:
    """Unbalanced Feistel over limbs: x_j <- (x_j + F(round, other limbs)) mod D_j.

    Every round is invertible whatever F is, so the map is a bijection of the product
    of the radices. ``limbs`` are uint64 arrays with limbs[j] < radices[j] < 2**62.
    """
    t = len(limbs)
    rounds = max(6, ROUNDS_PER_LIMB * t)
    round_keys = [np.uint64(derive_key(key, "round", rnd)) for rnd in range(rounds)]
    limbs = list(limbs)  # rounds rebind limbs[j]; the caller's arrays are never written
    with np.errstate(over="ignore"):
        for rnd in range(rounds):
            j = rnd % t
            h = round_keys[rnd]
            for i in range(t):
                if i != j:
                    h = mix64(h ^ limbs[i])
            D = np.uint64(radices[j])
            limbs[j] = (limbs[j] + h % D) % D
    return limbs


def check_indices(name: str, index, n: int) -> np.ndarray:
    """``index`` as an int64 array, else ValueError naming it unless every value lies in [0, n)."""
    index = np.asarray(index)
    require(index.dtype.kind in "iu", f"{name}.dtype", str(index.dtype), "an integer dtype")
    if index.size:
        require(int(index.min()) >= 0, f"min({name})", int(index.min()), ">= 0")
        require(int(index.max()) < n, f"max({name})", int(index.max()), f"< {format_count(n)}")
    return index.astype(np.int64, copy=False)


def permute_int(index: np.ndarray, n: int, key: int) -> np.ndarray:
    """A keyed bijection of [0, n), 1 <= n < 2**62, applied to an integer array of indices in [0, n).

    Returns int64 of the same shape. Raises ValueError naming ``n`` or ``index`` when out of range.
    """
    n = require_int("n", n, 1, RADIX_BOUND - 1)
    index = check_indices("index", index, n)
    if n <= TABLE_MAX:
        return _table(n, key)[index]
    a = math.isqrt(n - 1) + 1
    b = -(-n // a)
    out = index.astype(np.uint64)
    todo = np.arange(out.size)
    ua = np.uint64(a)
    while todo.size:  # cycle walking: re-apply until the value falls in [0, n)
        lo, hi = _feistel([out[todo] % ua, out[todo] // ua], [a, b], key)
        out[todo] = lo + hi * ua
        todo = todo[out[todo] >= np.uint64(n)]
    return out.astype(np.int64)


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
        out.append(rest % np.uint64(D))
        rest = rest // np.uint64(D)
    return out


def _peel(limbs: list[np.ndarray], lay: Layout) -> np.ndarray:
    """Decode limb values into the digit matrix [n, len(digit_radices)] (int64)."""
    n = limbs[0].shape[0]
    digits = np.zeros((n, len(lay.digit_radices)), dtype=np.int64)
    for x, pieces in zip(limbs, lay.limbs):
        x = x.astype(np.int64)
        for digit, radix, weight in pieces:
            x, piece = np.divmod(x, radix)
            digits[:, digit] += piece * weight if weight != 1 else piece
    return digits


def permuted_digits(cfg: SRHMConfig, g: np.ndarray) -> np.ndarray:
    """Digit vectors [n, 1 + 2N] of the samples at global indices g (int64 array).

    Columns: label, then (synonym r, placement q) of each internal node in heap order.
    Raises ValueError unless 0 <= g < min(P_max, 2**62).
    """
    lay = layout(cfg)
    key = derive_key(cfg.seed, "sampler")
    g = check_indices("g", g, min(cfg.data_space_size, MAX_ROWS))
    if len(lay.radices) == 1:
        limbs = [permute_int(g, lay.radices[0], key).astype(np.uint64)]
    else:
        limbs = _feistel(_split_index(g, lay.radices), list(lay.radices), key)
    return _peel(limbs, lay)


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


def split_digits(cfg: SRHMConfig, split: str, start: int, stop: int) -> np.ndarray:
    """Digit vectors of rows start..stop-1 of a split (see ``permuted_digits``)."""
    start, stop = check_range(check_config(cfg), split, start, stop)
    offset = cfg.split_offset(split)
    return permuted_digits(cfg, np.arange(offset + start, offset + stop, dtype=np.int64))
