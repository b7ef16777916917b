"""Production rules (format.md §2) and placement tables (format.md §3).

``rules[k]`` has shape [n_k, m, s] (n_0 = nc, n_k = v for k >= 1): ``rules[k][a, r]`` is
the r-th production of symbol a at depth k, an s-tuple of symbols in [0, v). The
n_k*m tuples of a depth are the first n_k*m images of a keyed permutation of the v**s
tuples, i.e. a pseudorandom draw without replacement: every tuple has at most one
parent. Tuples are read as base-v numbers, child 0 the most significant digit.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from .config import (
    MAX_D,
    MAX_S,
    RADIX_BOUND,
    SPARSITIES,
    SRHMConfig,
    placement_count,
    require,
    require_choice,
    require_int,
)
from .prng import derive_key
from .sampler import check_config, permute_int


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def tuple_digits(codes: np.ndarray, v: int, s: int) -> np.ndarray:
    """Base-v digits [..., s] (int64) of tuple codes, child 0 the most significant; v**s < 2**62."""
    v, s = require_int("v", v, 1), require_int("s", s, 1, MAX_S)
    require(v**s < RADIX_BOUND, "v**s", v**s, "< 2**62")
    powers = v ** np.arange(s - 1, -1, -1, dtype=np.int64)
    return (np.asarray(codes, dtype=np.int64)[..., None] // powers) % v


@lru_cache(maxsize=64)
def _rules(cfg: SRHMConfig) -> tuple[np.ndarray, ...]:
    tables = []
    for k in range(cfg.L):
        parents = cfg.nc if k == 0 else cfg.v
        codes = permute_int(np.arange(parents * cfg.m), cfg.v**cfg.s, derive_key(cfg.seed, "rules", k))
        tables.append(_readonly(tuple_digits(codes, cfg.v, cfg.s).reshape(parents, cfg.m, cfg.s)))
    return tuple(tables)


def sample_rules(cfg: SRHMConfig) -> list[np.ndarray]:
    """The production rules of a config (format.md §2).

    ``rules[k][a, r]`` is the r-th production of symbol a at depth k: an s-tuple of
    symbols in ``[0, v)``. The tuples of one depth are distinct (an unambiguous grammar),
    and the tables are a pure function of (parameters, seed).

    Parameters
    ----------
    cfg : SRHMConfig
        The config.

    Returns
    -------
    list of numpy.ndarray
        L read-only int64 arrays; ``rules[k]`` has shape [n_k, m, s] with ``n_0 = nc``
        and ``n_k = v`` for k >= 1.

    Raises
    ------
    TypeError
        ``cfg`` is not an SRHMConfig.

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> rules = srhm.sample_rules(srhm.get_config("demo"))
    >>> [r.shape for r in rules], rules[0].dtype
    ([(4, 4, 2), (4, 4, 2)], dtype('int64'))
    >>> rules[0][0, 0].tolist()  # class 0's first production: two level-1 symbols
    [0, 3]
    """
    return list(_rules(check_config(cfg)))


def placement_slots(s: int, s0: int, sparsity: str) -> np.ndarray:
    """Slot of each child per placement index (format.md §3): int64 [K, s], read-only.

    A: child i sits at slot i*(s0+1) + o_i, q = sum_i o_i (s0+1)**(s-1-i).
    B: the q-th order-preserving s-subset of the S = s(s0+1) slots, in the order of
    ``itertools.combinations(range(S), s)``.
    Raises ValueError for arguments outside SRHMConfig's bounds (table of at most 2**22 entries).
    """
    s, s0 = require_int("s", s, 2, MAX_S), require_int("s0", s0, 0, MAX_D // 2 - 1)
    placement_count(s, s0, require_choice("sparsity", sparsity, SPARSITIES))
    return _placement_slots(s, s0, sparsity)


@lru_cache(maxsize=64)
def _placement_slots(s: int, s0: int, sparsity: str) -> np.ndarray:
    if sparsity == "A":
        q = np.arange((s0 + 1) ** s)
        offsets = tuple_digits(q, s0 + 1, s)
        slots = offsets + np.arange(s) * (s0 + 1)
    else:
        slots = np.array(list(itertools.combinations(range(s * (s0 + 1)), s)), dtype=np.int64)
    return _readonly(slots.astype(np.int64))
