"""The generator beside the public reference generators (a benchmark, not a test).

Each generator is called through its own entry point, one thread, P rows (default 10**6),
in one process, and timed as the best of ``--repeat`` runs; the targets are printed as
ratios of rates measured in this same run:

* RHM L=3, s=2, v=nc=m=8 (d=8): ours (``generate``; tokens, then one-hot / whiten float32
  [P, v, d] with ``torch_data.encoding.encode``, block by block as a stream consumer)
  against the official RHM code (pcsl-epfl/hierarchy-learning, ``RandomHierarchyModel``,
  input_format long / onehot / onehot + whitening) and AntonioScl/minimal_diffusion_rhm
  (``RandomHierarchyModel``, without replacement and its i.i.d. mode);
* Fig. 1 (L=s=s0=2, v=nc=m=10, seed 1) and L=3 (d=216) against an RNG-fill proxy: numpy's
  ``Generator.integers`` filling arrays of the same shapes and dtypes as ``generate``'s output;
* a config whose data space is beyond 2**64 (L=4, s=2, s0=1, v=nc=m=16: 2**94) against a
  config of the same d in int64 (m=2: 2**49).

No anchor code is in this repository: the anchors are imported from checkouts in the
folder named by ``$SRHM_ANCHORS`` (sub-folders ``hierarchy-learning`` and
``minimal_diffusion_rhm``), e.g.::

    git --git-dir=<bare clone> worktree add $SRHM_ANCHORS/hierarchy-learning <commit>
    SRHM_ANCHORS=/work/anchors .venv/bin/python benchmarks/anchors.py [--P 1000000] [--clock cpu]

A missing checkout, or one whose import fails, is reported and its rows skipped. ``--clock
cpu`` times with the process's CPU time instead of the wall clock (for a machine loaded by
other work).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.config import require_int
from srhm_datasets.generate import column_bounds, column_dtypes, column_shapes
from srhm_datasets.torch_data.encoding import encode, torch_tokens

ENV = "SRHM_ANCHORS"
ANCHORS = {"pcsl": "hierarchy-learning", "sclocchi": "minimal_diffusion_rhm"}
BLOCK = 1 << 16  # rows per generate call of the streamed rows
RHM = SRHMConfig(L=3, s=2, s0=0, v=8, nc=8, m=8)
FIG1 = SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, seed=1)
L3 = SRHMConfig(L=3, s=2, s0=2, v=10, nc=10, m=10, seed=1)
BIG = SRHMConfig(L=4, s=2, s0=1, v=16, nc=16, m=16)  # P_max = 2**94
BIG_INT64 = SRHMConfig(L=4, s=2, s0=1, v=16, nc=16, m=2)  # same d = 256, P_max = 2**49


def checkout(name: str) -> tuple[Path | None, str]:
    """(folder, commit) of an anchor checkout, or (None, why it is missing)."""
    root = os.environ.get(ENV)
    if not root:
        return None, f"${ENV} is not set"
    folder = Path(root) / ANCHORS[name]
    if not (folder / "datasets" / "__init__.py").is_file():
        return None, f"no checkout at {folder}"
    git = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    return folder, git.stdout.strip() if git.returncode == 0 else "commit unknown (not a git checkout)"


def import_anchor(name: str, folder: Path):
    """The checkout's ``datasets`` package, imported under a private name (both anchors call it ``datasets``)."""
    package = f"_anchor_{name}"
    spec = importlib.util.spec_from_file_location(
        package, folder / "datasets" / "__init__.py", submodule_search_locations=[str(folder / "datasets")]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    spec.loader.exec_module(module)
    return module


def ours(cfg: SRHMConfig, P: int, encoding: str | None = None) -> None:
    """Train rows 0..P-1 block by block, one thread; each block encoded when ``encoding`` is given."""
    for a in range(0, P, BLOCK):
        tokens = generate(cfg, "train", a, min(P, a + BLOCK), workers=1)["tokens"]
        if encoding:
            encode(torch_tokens(tokens), cfg.v, encoding, torch.float32)


def rng_fill(cfg: SRHMConfig, P: int) -> None:
    """The proxy: numpy's RNG filling arrays of generate's shapes and dtypes for P rows."""
    rng, dtypes, bounds = np.random.default_rng(0), column_dtypes(cfg), column_bounds(cfg)
    for column, shape in column_shapes(cfg, P).items():
        rng.integers(0, bounds[column] + 1, size=shape, dtype=dtypes[column])


def pcsl(module, P: int, input_format: str, whitening: int = 0) -> None:
    module.RandomHierarchyModel(
        num_features=8, m=8, num_layers=3, num_classes=8, s=2, seed=0, max_dataset_size=P, train=True,
        testsize=0, input_format=input_format, whitening=whitening,
    )  # fmt: skip


def sclocchi(module, P: int, input_format: str, replacement: bool = False) -> None:
    module.RandomHierarchyModel(
        num_features=8, num_classes=8, num_synonyms=8, tuple_size=2, num_layers=3, seed_rules=0, seed_sample=1,
        train_size=P, test_size=0, input_format=input_format, replacement=replacement,
    )  # fmt: skip


def rate(fn, P: int, repeat: int, clock) -> float:
    """Rows per second of fn() producing P rows: best of ``repeat`` runs after one warm-up run (caches, allocator)."""
    fn(P)
    best = float("inf")
    for _ in range(repeat):
        t = clock()
        fn(P)
        best = min(best, clock() - t)
    return P / best


def cases(anchors: dict) -> list[tuple[str, object]]:
    """(name, fn(P)) of every generator measured; anchors without a checkout are left out."""
    rows = [
        ("ours RHM tokens", lambda P: ours(RHM, P)),
        ("ours RHM onehot", lambda P: ours(RHM, P, "onehot")),
        ("ours RHM whiten", lambda P: ours(RHM, P, "whiten")),
    ]
    if "pcsl" in anchors:
        m = anchors["pcsl"]
        rows += [
            ("pcsl RHM tokens", lambda P, m=m: pcsl(m, P, "long")),
            ("pcsl RHM onehot", lambda P, m=m: pcsl(m, P, "onehot")),
            ("pcsl RHM whiten", lambda P, m=m: pcsl(m, P, "onehot", whitening=1)),
        ]
    if "sclocchi" in anchors:
        m = anchors["sclocchi"]
        rows += [
            ("sclocchi RHM tokens", lambda P, m=m: sclocchi(m, P, "long")),
            ("sclocchi RHM onehot", lambda P, m=m: sclocchi(m, P, "onehot")),
            ("sclocchi RHM tokens iid", lambda P, m=m: sclocchi(m, P, "long", replacement=True)),
        ]
    for name, cfg in (("Fig1", FIG1), ("L3 d=216", L3)):
        rows += [
            (f"ours {name}", lambda P, cfg=cfg: ours(cfg, P)),
            (f"proxy {name}", lambda P, cfg=cfg: rng_fill(cfg, P)),
        ]
    rows += [("ours 2^94 d=256", lambda P: ours(BIG, P)), ("ours 2^49 d=256", lambda P: ours(BIG_INT64, P))]
    return rows


TARGETS = [  # (what, numerator, denominator, required ratio)
    ("RHM tokens vs pcsl", "ours RHM tokens", "pcsl RHM tokens", 2.0),
    ("RHM onehot vs pcsl", "ours RHM onehot", "pcsl RHM onehot", 2.0),
    ("RHM whiten vs pcsl", "ours RHM whiten", "pcsl RHM whiten", 2.0),
    ("RHM tokens vs sclocchi", "ours RHM tokens", "sclocchi RHM tokens", None),
    ("RHM tokens vs sclocchi iid", "ours RHM tokens", "sclocchi RHM tokens iid", None),
    ("Fig1 vs RNG-fill proxy", "ours Fig1", "proxy Fig1", 1.0),
    ("L3 d=216 vs RNG-fill proxy", "ours L3 d=216", "proxy L3 d=216", 0.5),
    ("2^94 vs int64 config, d=256", "ours 2^94 d=256", "ours 2^49 d=256", 0.5),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--P", type=int, default=10**6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    try:  # rates of 0 rows or 0 runs would divide by zero in the ratios
        for name in ("P", "repeat"):
            require_int(f"--{name}", getattr(args, name), 1)
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(1)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    anchors = {}
    for name in ANCHORS:
        folder, commit = checkout(name)
        if folder:
            try:  # a checkout whose imports fail (a dependency missing here) is skipped like a missing one
                anchors[name] = import_anchor(name, folder)
            except Exception as err:  # noqa: BLE001 - any error of foreign code at import
                folder, commit = None, f"{commit}: import failed ({type(err).__name__}: {err})"
        print(f"anchor {name}: {ANCHORS[name]} {commit if folder else 'SKIPPED: ' + commit}")
    print(f"P = {args.P:,} rows, 1 thread, best of {args.repeat}, {args.clock} clock")
    rates = {}
    for name, fn in cases(anchors):
        rates[name] = rate(fn, args.P, args.repeat, clock)
        print(f"{name:<28}{rates[name]:>14,.0f} samples/s", flush=True)
    print(f"\n{'target':<30}{'ratio':>8}{'needed':>8}")
    for what, num, den, needed in TARGETS:
        if num in rates and den in rates:
            ratio = rates[num] / rates[den]
            mark = "" if needed is None else f"{needed:>8.1f}" + ("  ok" if ratio >= needed else "  MISSED")
            print(f"{what:<30}{ratio:>8.2f}{mark}")


if __name__ == "__main__":
    main()
