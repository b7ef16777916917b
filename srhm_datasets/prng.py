"""Counter-based pseudorandomness: every random number is a hash of its coordinates.

All randomness in the package (rules, the sampler, perturbations) is derived by
hashing (seed, purpose, position) with the splitmix64 finaliser in wrapping uint64
arithmetic. Nothing depends on a stateful generator, a numpy version's stream or a
call order, which is what makes row i of a split a pure function of i.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .config import require, require_int

MAX_KEY = 2**64 - 1

_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser of a uint64 array (a bijection of uint64, good avalanche).

    Raises ValueError for any other dtype (numpy would silently promote int64 to float64).
    """
    if getattr(x, "dtype", None) != np.uint64:  # hot path: the message is built only on failure
        require(False, "x.dtype", str(getattr(x, "dtype", type(x).__name__)), "uint64")
    if not isinstance(x, np.ndarray) or x.ndim == 0:  # a numpy scalar: a numpy scalar back
        return mix64(np.reshape(x, 1))[0]
    out = np.add(x, _GOLDEN)
    return mix64_inplace(out, np.empty_like(out))


def mix64_inplace(out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """The rest of ``mix64`` once ``out`` holds ``x + golden``: in place in ``out`` (uint64), returns out.

    ``tmp``: uint64 scratch of out's shape. No temporaries are allocated (the fast
    paths of the sampler fuse the addition with the key).
    """
    for shift, mult in ((_S30, _C1), (_S27, _C2)):
        np.right_shift(out, shift, out=tmp)
        np.bitwise_xor(out, tmp, out=out)
        np.multiply(out, mult, out=out)
    np.right_shift(out, _S31, out=tmp)
    return np.bitwise_xor(out, tmp, out=out)


def derive_key(seed: int, *purpose: object) -> int:
    """A 64-bit key for one use of one seed, e.g. ``derive_key(seed, "rules", k)``.

    sha256 of the repr keeps keys for different purposes independent.
    """
    text = repr((require_int("seed", seed),) + tuple(purpose)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


def hash_with(key: int, x: np.ndarray) -> np.ndarray:
    """Keyed hash of an integer array (any shape) with a key in [0, 2**64): mix64(mix64(x) ^ key), uint64."""
    key = require_int("key", key, 0, MAX_KEY)
    x = np.asarray(x)
    require(x.dtype.kind in "iu", "x.dtype", str(x.dtype), "an integer dtype")
    with np.errstate(over="ignore"):
        return mix64(mix64(x.astype(np.uint64)) ^ np.uint64(key))


def below(h: np.ndarray, n: int) -> np.ndarray:
    """Map uint64 hashes to ints in [0, n) (int64), 1 <= n < 2**63; bias < n / 2**64."""
    n = require_int("n", n, 1, 2**63 - 1)
    return (h % np.uint64(n)).astype(np.int64)
