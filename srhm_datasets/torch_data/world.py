"""Distributed rank and world size of the current process (explicit or torch.distributed)."""

from __future__ import annotations

import torch

from ..config import require_int


def resolve_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the explicit values, else those of an initialised
    ``torch.distributed`` process group, else ``(0, 1)``.

    Raises ``ValueError`` unless ``world_size >= 1`` and ``0 <= rank < world_size``.
    """
    if rank is None or world_size is None:
        dist = torch.distributed
        initialised = dist.is_available() and dist.is_initialized()
        if world_size is None:
            world_size = dist.get_world_size() if initialised else 1
        if rank is None:
            rank = dist.get_rank() if initialised else 0
    world_size = require_int("world_size", world_size, 1)
    return require_int("rank", rank, 0, world_size - 1, f"rank < world_size = {world_size}"), world_size
