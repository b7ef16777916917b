"""Row-index batches of a map-style dataset, sharded over distributed ranks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from ..config import require_int
from .world import resolve_world


class SRHMBatchSampler(Sampler):
    """Batches of row indices (int64 numpy arrays [B]), sharded like ``DistributedSampler``.

    The default index order of :meth:`SRHMDataset.loader`. Each epoch the rows
    ``0..num_rows-1`` are ordered (a seeded permutation of ``seed + epoch`` when
    ``shuffle``, else in order), padded by wrapping around to a multiple of
    ``world_size`` (as ``DistributedSampler`` does, so every rank takes the same number
    of steps), and rank r takes positions r, r + world_size, ...; its rows are then cut
    into batches of ``batch_size`` (the last one shorter unless ``drop_last``).
    ``set_epoch(e)`` changes the shuffle.

    Parameters
    ----------
    num_rows : int
        Rows of the dataset (``>= 0``).
    batch_size : int
        Rows per batch (``>= 1``).
    shuffle : bool
        A seeded permutation each epoch.
    seed : int
        Seed of the permutation.
    drop_last : bool
        Drop a last batch shorter than ``batch_size``.
    rank, world_size : int or None
        The shard; default those of an initialised ``torch.distributed``, else 0 / 1.

    Raises
    ------
    TypeError
        ``num_rows`` or ``batch_size`` not an int.
    ValueError
        ``num_rows < 0``, ``batch_size < 1``, or not ``0 <= rank < world_size``.

    Examples
    --------
    >>> from srhm_datasets.torch import SRHMBatchSampler
    >>> [b.tolist() for b in SRHMBatchSampler(10, 4)]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    >>> [b.tolist() for b in SRHMBatchSampler(10, 4, rank=1, world_size=2)]
    [[1, 3, 5, 7], [9]]
    """

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.num_rows = require_int("num_rows", num_rows, 0)
        self.batch_size = require_int("batch_size", batch_size, 1)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.rank, self.world_size = resolve_world(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of this epoch (with ``shuffle``)."""
        self.epoch = int(epoch)

    @property
    def rows_per_rank(self) -> int:
        """Rows this rank takes per epoch (padding included)."""
        return -(-self.num_rows // self.world_size)

    def rank_indices(self) -> np.ndarray:
        """The row indices [rows_per_rank] of this rank for the current epoch, in order."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_rows)
        else:
            order = np.arange(self.num_rows, dtype=np.int64)
        total = self.rows_per_rank * self.world_size
        if total > self.num_rows:
            order = np.resize(order, total)  # wrap around, like DistributedSampler's padding
        return order[self.rank :: self.world_size].astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        rows = self.rank_indices()
        stop = len(rows) - len(rows) % self.batch_size if self.drop_last else len(rows)
        for a in range(0, stop, self.batch_size):
            yield rows[a : a + self.batch_size]

    def __len__(self) -> int:
        n = self.rows_per_rank
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
