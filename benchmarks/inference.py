"""Exact inference: posteriors per second, against the BP of AntonioScl/minimal_diffusion_rhm (a benchmark, not a test).

Posteriors (class and every leaf) of a batch of noisy rows, one thread, best of ``--repeat``:

* ours (``inference.posteriors``) on Fig. 1 (L=s=s0=2, v=nc=m=10), the RHM L=3, s=2,
  v=nc=m=8 and an L=3 SRHM (s0=2, v=nc=m=10, d=216);
* the anchor ``BpRhm.run_BP_from_evidence`` (datasets/BP_utils.py, torch, float32) on the
  RHM config with our rules, imported from a checkout under ``$SRHM_ANCHORS`` as in
  ``benchmarks/anchors.py``; its class and leaf marginals are compared with ours (its
  noise n is our eps = n (v-1)/v);
* ``optimal_figures`` (``srhm optimal``) on the 20,000-row test split of Fig. 1, tasks
  ``class`` (noise 0.1) and ``next``.

    SRHM_ANCHORS=/work/anchors .venv/bin/python benchmarks/inference.py [--batch 1000] [--repeat 3] [--clock cpu]

(numpy's BLAS threads: set ``OPENBLAS_NUM_THREADS=1`` for one thread.)

Target: ours at least the anchor's rate on the RHM config (ratio >= 1).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anchors import FIG1, L3, RHM, checkout, import_anchor  # noqa: E402

from srhm_datasets import generate, sample_rules  # noqa: E402
from srhm_datasets.config import require_int  # noqa: E402
from srhm_datasets.inference import posteriors  # noqa: E402
from srhm_datasets.optimal import optimal_figures  # noqa: E402

NOISE = 0.1  # the anchor's n: a token kept with probability 1 - n + n/v


def best(fn, repeat: int, clock) -> float:
    """Best time of fn() on ``clock`` over ``repeat`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


def noisy_rows(cfg, n: int) -> np.ndarray:
    """Test rows with the anchor's channel applied (seeded), int64 [n, d]."""
    tokens = generate(cfg, "test", 0, n)["tokens"].astype(np.int64)
    rng = np.random.default_rng(0)
    redraw = (rng.random(tokens.shape) < NOISE) & (tokens != cfg.v)
    tokens[redraw] = rng.integers(0, cfg.v, redraw.sum())
    return tokens


def ours_eps(cfg) -> float:
    return NOISE * (cfg.v - 1) / cfg.v


def anchor_bp(module, cfg):
    """The anchor's BpRhm built on our rules (its classes = its vocabulary: nc = v)."""
    bp_utils = importlib.import_module(module.__name__ + ".BP_utils")
    rules = {k: torch.tensor(table) for k, table in enumerate(sample_rules(cfg))}
    return bp_utils.BpRhm(cfg.v, cfg.s, cfg.m, cfg.L, rules)


def compare(bp, cfg, evidence: np.ndarray) -> float:
    """Largest difference between the anchor's class and leaf marginals and ours."""
    marginals = bp.run_BP_from_evidence(torch.tensor(evidence), noise=NOISE)
    post = posteriors(cfg, evidence, ours_eps(cfg))
    label = marginals[0][:, :, 0].T.double().numpy()
    leaves = marginals[cfg.L].permute(1, 2, 0).double().numpy()
    return max(np.abs(label - post.label).max(), np.abs(leaves - post.tokens[..., : cfg.v]).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--split-rows", type=int, default=20000)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    try:
        for name in ("batch", "repeat", "split_rows"):
            require_int(f"--{name.replace('_', '-')}", getattr(args, name), 1)
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(1)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    folder, commit = checkout("sclocchi")
    anchor = None
    if folder:
        try:
            anchor = import_anchor("sclocchi", folder)
        except Exception as err:  # noqa: BLE001 - any error of foreign code at import
            folder, commit = None, f"{commit}: import failed ({type(err).__name__}: {err})"
    print(f"anchor sclocchi: minimal_diffusion_rhm {commit if folder else 'SKIPPED: ' + commit}")
    print(f"batch = {args.batch} rows, 1 thread, best of {args.repeat}, {args.clock} clock, noise n = {NOISE}")
    rates = {}
    for name, cfg in (("Fig1", FIG1), ("RHM L3", RHM), ("SRHM L3 d=216", L3)):
        evidence = noisy_rows(cfg, args.batch)
        seconds = best(lambda cfg=cfg, e=evidence: posteriors(cfg, e, ours_eps(cfg)), args.repeat, clock)
        rates[f"ours {name}"] = args.batch / seconds
        print(f"{'ours ' + name:<24}{rates[f'ours {name}']:>14,.0f} posteriors/s  ({cfg.name})", flush=True)
    if anchor is not None:
        bp, evidence = anchor_bp(anchor, RHM), noisy_rows(RHM, args.batch)
        seconds = best(lambda: bp.run_BP_from_evidence(torch.tensor(evidence), noise=NOISE), args.repeat, clock)
        rates["anchor RHM L3"] = args.batch / seconds
        print(f"{'anchor RHM L3':<24}{rates['anchor RHM L3']:>14,.0f} posteriors/s", flush=True)
        print(f"largest |anchor - ours| (class and leaves, float32 anchor): {compare(bp, RHM, evidence):.2e}")
        ratio = rates["ours RHM L3"] / rates["anchor RHM L3"]
        print(f"\nRHM L3 ours / anchor: {ratio:.2f} (needed 1.0: {'ok' if ratio >= 1.0 else 'MISSED'})")
    for task, noise in (("class", 0.1), ("next", 0.0)):
        t = clock()
        figures = optimal_figures(FIG1, task, "test", args.split_rows, noise=noise)
        seconds = clock() - t
        print(
            f"srhm optimal fig1 --task {task} --noise {noise}: {figures['rows']:,} rows in {seconds:.1f} s "
            f"(expected error {figures['expected_error']:.4f})"
        )


if __name__ == "__main__":
    main()
