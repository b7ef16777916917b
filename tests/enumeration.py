"""Small configs whose whole data space is enumerated: the brute-force reference of exact inference and of
the correlations."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from srhm_datasets import SRHMConfig
from srhm_datasets.generate import expand

#: RHM and SRHM (sparsity A and B) configs of L = 1..3, s = 2, 3, with data spaces small enough to enumerate.
CONFIGS = [
    SRHMConfig(L=1, s=2, s0=0, v=3, nc=2, m=2),
    SRHMConfig(L=2, s=2, s0=0, v=3, nc=3, m=2, seed=1),
    SRHMConfig(L=3, s=2, s0=0, v=2, nc=2, m=2, seed=2),
    SRHMConfig(L=2, s=3, s0=0, v=2, nc=2, m=2, seed=3),
    SRHMConfig(L=3, s=3, s0=0, v=2, nc=2, m=2, seed=4),
    SRHMConfig(L=1, s=2, s0=1, v=3, nc=2, m=2, seed=5),
    SRHMConfig(L=2, s=2, s0=1, v=2, nc=2, m=2, seed=6),
    SRHMConfig(L=2, s=2, s0=2, v=3, nc=3, m=1, seed=7),
    SRHMConfig(L=3, s=2, s0=1, v=2, nc=2, m=1, seed=8),
    SRHMConfig(L=2, s=3, s0=1, v=2, nc=2, m=1, seed=9),
    SRHMConfig(L=1, s=2, s0=1, v=3, nc=2, m=2, sparsity="B", seed=10),
    SRHMConfig(L=2, s=2, s0=1, v=2, nc=2, m=2, sparsity="B", seed=11),
    SRHMConfig(L=2, s=2, s0=2, v=3, nc=2, m=1, sparsity="B", seed=12),
    SRHMConfig(L=2, s=3, s0=1, v=2, nc=2, m=1, sparsity="B", seed=13),
    SRHMConfig(L=3, s=2, s0=1, v=2, nc=2, m=1, sparsity="B", seed=14),
]


@lru_cache(maxsize=32)
def space(cfg: SRHMConfig) -> dict:
    """Every sample of the data space once: label [P], latents [P, N], tokens [P, d]."""
    P, N, K = cfg.data_space_size, cfg.num_nodes, cfg.placements_per_node
    index = np.arange(P, dtype=np.int64)
    label = index % cfg.nc
    rest = index // cfg.nc
    synonyms, placements = np.empty((P, N), np.int64), np.empty((P, N), np.int64)
    for h in range(N):
        synonyms[:, h], rest = rest % cfg.m, rest // cfg.m
        placements[:, h], rest = rest % K, rest // K
    latents, tokens = expand(cfg, label, synonyms, placements, dtype=np.uint8)
    return {"label": label, "latents": latents, "tokens": tokens}
