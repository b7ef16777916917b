"""Row-index batches of a map-style dataset, sharded over distributed ranks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from .world import resolve_world


class SRHMBatchSampler(Sampler):
    """Batches of row indices (int64 numpy arrays [B]), sharded like ``DistributedSampler``.

    Each epoch the rows 0..num_rows-1 are ordered (a seeded permutation of
    ``seed + epoch`` when ``shuffle``, else in order), padded by wrapping around to a
    multiple of ``world_size`` (as ``DistributedSampler`` does, so every rank takes the
    same number of steps), and rank r takes positions r, r + world_size, ...; its rows
    are then cut into batches of ``batch_size`` (the last one shorter unless
    ``drop_last``). ``rank`` / ``world_size`` default to an initialised
    ``torch.distributed``, else 0 / 1. ``set_epoch(e)`` changes the shuffle.
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
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"invalid parameter batch_size={batch_size!r}: must be an int >= 1")
        if not isinstance(num_rows, int) or num_rows < 0:
            raise ValueError(f"invalid parameter num_rows={num_rows!r}: must be an int >= 0")
        self.num_rows = num_rows
        self.batch_size = batch_size
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
