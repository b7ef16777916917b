"""No sample twice in a config (format.md §8.9), exactly, in 8 bytes a row.

``srhm verify`` keeps one 64-bit fingerprint per row of a split (``perturb.fingerprint``
of its (label, synonyms, placements)), sorted: the only state that grows with a split.
Rows whose fingerprints are equal (within a split, or between two) are suspects; their
exact keys are then read again from the shards (``blocks``: a callable returning the
split's column blocks anew), so a count is exact: a fingerprint collision of two
distinct samples (probability about n**2 / 2**65) costs a second read, never a false
report, and a real duplicate is never missed (equal samples have equal fingerprints).
Memory beyond the fingerprints: the smaller split of a pair (a search), and the suspects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ..perturb import fingerprint

Blocks = Callable[[], Iterable[dict]]


def surplus(sorted_fps: np.ndarray, blocks: Blocks) -> int:
    """Rows of a split that repeat another row's (label, synonyms, placements): rows - distinct samples.

    ``sorted_fps``: the split's row fingerprints [n] uint64, sorted; ``blocks`` re-reads its rows.

    Examples
    --------
    >>> from srhm_datasets import SRHMConfig, generate
    >>> rows = generate(SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, seed=0), "train", 0, 5)
    >>> twice = {c: np.concatenate([rows[c], rows[c][:2]]) for c in rows}  # rows 0 and 1 again
    >>> surplus(np.sort(fingerprint(twice)), lambda: [twice])
    2
    """
    same = sorted_fps[1:] == sorted_fps[:-1]
    suspects = np.unique(sorted_fps[1:][same])
    del same
    if not suspects.size:
        return 0
    keys = _keys(blocks(), suspects)
    return len(keys) - len(np.unique(keys))


def shared(sorted_x: np.ndarray, sorted_y: np.ndarray, blocks_x: Blocks, blocks_y: Blocks) -> int:
    """Distinct samples in both of two splits (their sorted fingerprints, and their re-readers).

    Examples
    --------
    >>> from srhm_datasets import SRHMConfig, generate
    >>> cfg = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, seed=0)
    >>> train, test = generate(cfg, "train", 0, 50), generate(cfg, "test", 0, 10)
    >>> shared(np.sort(fingerprint(train)), np.sort(fingerprint(test)), lambda: [train], lambda: [test])
    0
    >>> leak = {c: np.concatenate([test[c], train[c][:3]]) for c in test}  # 3 train rows in test
    >>> shared(np.sort(fingerprint(train)), np.sort(fingerprint(leak)), lambda: [train], lambda: [leak])
    3
    """
    small, large = (sorted_x, sorted_y) if len(sorted_x) <= len(sorted_y) else (sorted_y, sorted_x)
    at = np.minimum(np.searchsorted(large, small), max(len(large) - 1, 0))
    suspects = np.unique(small[large[at] == small]) if len(large) else small[:0]
    if not suspects.size:
        return 0
    keys_x, keys_y = np.unique(_keys(blocks_x(), suspects)), np.unique(_keys(blocks_y(), suspects))
    if not (keys_x.size and keys_y.size):  # the shards changed since the first read
        return 0
    return len(np.intersect1d(keys_x, keys_y, assume_unique=True))


def _keys(blocks: Iterable[dict], suspects: np.ndarray) -> np.ndarray:
    """The exact (label, synonyms, placements) of the rows whose fingerprint is a suspect, one
    opaque row each (equal rows compare equal)."""
    found = []
    for cols in blocks:
        hit = np.isin(fingerprint(cols), suspects)
        if hit.any():
            key = np.column_stack([cols["label"][hit], cols["synonyms"][hit], cols["placements"][hit]])
            key = np.ascontiguousarray(key, dtype=np.uint64)
            found.append(key.view(np.dtype((np.void, 8 * key.shape[1]))).reshape(-1))
    return np.concatenate(found) if found else np.empty(0, dtype=np.void)


__all__ = ["shared", "surplus"]
