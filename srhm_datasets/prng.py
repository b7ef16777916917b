"""Counter-based pseudorandomness: every random number is a hash of its coordinates.

All randomness in the package (rules, the sampler, perturbations) is derived by
hashing (seed, purpose, position) with the splitmix64 finaliser in wrapping uint64
arithmetic. Nothing depends on a stateful generator, a numpy version's stream or a
call order, which is what makes row i of a split a pure function of i.
"""

from __future__ import annotations

import hashlib

import numpy as np

_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser of a uint64 array (a bijection of uint64, good avalanche)."""
    x = x + _GOLDEN
    x = (x ^ (x >> _S30)) * _C1
    x = (x ^ (x >> _S27)) * _C2
    return x ^ (x >> _S31)


def derive_key(seed: int, *purpose: object) -> int:
    """A 64-bit key for one use of one seed, e.g. ``derive_key(seed, "rules", k)``.

    sha256 of the repr keeps keys for different purposes independent.
    """
    text = repr((int(seed),) + tuple(purpose)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


def hash_with(key: int, x: np.ndarray) -> np.ndarray:
    """Keyed hash of a uint64/int64 array: mix64(mix64(x) ^ key)."""
    with np.errstate(over="ignore"):
        return mix64(mix64(np.asarray(x).astype(np.uint64)) ^ np.uint64(key))


def below(h: np.ndarray, n: int) -> np.ndarray:
    """Map uint64 hashes to ints in [0, n) (int64); bias < n / 2**64."""
    return (h % np.uint64(n)).astype(np.int64)
