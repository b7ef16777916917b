"""Generator throughput and memory (a benchmark, not a test).

For each config: samples/s of ``generate`` for P = 10**6 rows, produced block by block
as a consumer would stream them, peak traced memory for P = 10**5 and 10**6 (flat
in P), and the ratio against a straightforward per-sample Python generator (random
module, one tree per sample, i.i.d.) run in the same process on a smaller P.

    .venv/bin/python benchmarks/generate.py [--P 1000000] [--workers 2]
"""

from __future__ import annotations

import argparse
import functools
import random
import time
import tracemalloc

from srhm_datasets import SRHMConfig, generate, sample_rules
from srhm_datasets.rules import placement_slots

CONFIGS = {
    "Fig. 1 (L=2, s0=2, v=10)": SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, seed=1),
    "L=3, s0=2, v=10 (d=216)": SRHMConfig(L=3, s=2, s0=2, v=10, nc=10, m=10, seed=1),
    "L=4, s0=1, v=16 (P_max=2^94)": SRHMConfig(L=4, s=2, s0=1, v=16, nc=16, m=16),
}
BLOCK = 1 << 16


def naive_rows(cfg: SRHMConfig, P: int, seed: int = 0) -> list[list[int]]:
    """The per-sample baseline: expand one tree at a time in Python."""
    rng = random.Random(seed)
    rules = [t.tolist() for t in sample_rules(cfg)]
    slots = placement_slots(cfg.s, cfg.s0, cfg.sparsity).tolist()
    K = cfg.placements_per_node

    def fill(tokens: list[int], symbol: int, depth: int, start: int) -> None:
        if depth == cfg.L:
            tokens[start] = symbol
            return
        children = rules[depth][symbol][rng.randrange(cfg.m)]
        block = cfg.S ** (cfg.L - depth - 1)
        for child, slot in zip(children, slots[rng.randrange(K)]):
            fill(tokens, child, depth + 1, start + slot * block)

    rows = []
    for _ in range(P):
        tokens = [cfg.blank] * cfg.d
        fill(tokens, rng.randrange(cfg.nc), 0, 0)
        rows.append(tokens)
    return rows


def stream(cfg: SRHMConfig, P: int, workers: int) -> int:
    """Generate train rows 0..P-1 block by block; returns a checksum so nothing is skipped."""
    total = 0
    for a in range(0, P, BLOCK):
        total += int(generate(cfg, "train", a, min(P, a + BLOCK), workers=workers)["label"][-1])
    return total


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--P", type=int, default=10**6)
    parser.add_argument("--naive-P", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"{'config':<30}{'samples/s':>12}{'naive/s':>10}{'ratio':>8}{'MiB@1e5':>9}{'MiB@P':>8}")
    for name, cfg in CONFIGS.items():
        P = min(args.P, cfg.split_sizes()["train"])
        generate(cfg, "train", 0, 1000)  # warm the rule and table caches
        t = time.perf_counter()
        stream(cfg, P, args.workers)
        fast = P / (time.perf_counter() - t)
        t = time.perf_counter()
        naive_rows(cfg, args.naive_P)
        slow = args.naive_P / (time.perf_counter() - t)
        small = peak_mib(functools.partial(stream, cfg, min(P, 10**5), args.workers))
        large = peak_mib(functools.partial(stream, cfg, P, args.workers))
        print(f"{name:<30}{fast:>12,.0f}{slow:>10,.0f}{fast / slow:>8.0f}{small:>9.1f}{large:>8.1f}")


if __name__ == "__main__":
    main()
