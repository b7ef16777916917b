"""Loader throughput: a published split -> encoded batches [B, v, d], fast path vs naive.

For each config (the paper's Fig. 1 config, d=36, and an L=3 s0=2 config, d=216) a
release folder is built in a temporary directory (``srhm_datasets.release.build_release``,
or with ``--rows`` that many train rows written with ``datasets``' ``to_parquet``), loaded with
``datasets.load_dataset`` through ``SRHMDataset``, and read shuffled in batches of B:

* ``naive``: ``DataLoader(ds, batch_size=B, shuffle=True)``: index one row, one-hot it
  on the CPU, default collate;
* ``fast``: ``ds.loader(B, shuffle=True)`` (one numpy gather of uint8 tokens per batch)
  + ``ds.to_device(batch, "cpu")`` (encode the whole batch on the CPU);
* ``fast-uint8``: the same loader without encoding: the CPU-side cost when the batch
  is encoded on the GPU;
* ``fast-cuda`` (only with CUDA): uint8 batch pinned, moved and encoded on the GPU;
* ``stream``: ``SRHMStream(cfg, batch_size=B)`` generating rows on the fly, encoded
  on the CPU.

Usage::

    .venv/bin/python benchmarks/loader.py [--batch-size 1024] [--seconds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.catalog import CATALOG, release_name
from srhm_datasets.release.build import build_release
from srhm_datasets.release.features import hf_features
from srhm_datasets.torch import SRHMDataset, SRHMStream

CONFIGS = {
    "fig1": CATALOG["fig1"],
    "L3_s0-2": SRHMConfig(L=3, s=2, s0=2, v=10, nc=10, m=10, sparsity="A", seed=1),
}


def build_with_parquet(cfg: SRHMConfig, root: Path, name: str, rows: int) -> None:
    """A format.md §8 folder with one train config: README YAML + <name>/train-*.parquet (the release's features)."""
    import datasets

    (root / name).mkdir(parents=True)
    ds = datasets.Dataset.from_dict(generate(cfg, "train", 0, rows), features=hf_features(cfg, "train"))
    ds.to_parquet(str(root / name / "train-00000-of-00001.parquet"))
    (root / "README.md").write_text(
        f"---\nconfigs:\n- config_name: {name}\n  data_files:\n  - split: train\n    path: "
        f"{name}/train-*.parquet\n---\n"
    )


def build(cfg: SRHMConfig, root: Path, rows: int | None) -> tuple[Path, str, str]:
    """Build a release folder; returns (folder, config name, how it was built).

    rows None: the whole release (``build_release``); else only that many train rows
    (the release builder writes whole splits).
    """
    if rows is None:
        build_release([cfg], root / "release", progress=False)
        return root / "release", release_name(cfg), "srhm_datasets.release.build_release"
    build_with_parquet(cfg, root / "release", release_name(cfg), rows)
    return root / "release", release_name(cfg), f"datasets.to_parquet ({rows} rows)"


def measure(batches, seconds: float, max_samples: int) -> float:
    """Samples/s over an iterator of batch sizes, after one warm-up batch."""
    it = iter(batches)
    next(it)
    n, t0 = 0, time.perf_counter()
    for b in it:
        n += b
        if time.perf_counter() - t0 > seconds or n >= max_samples:
            break
    return n / (time.perf_counter() - t0)


def epochs(make, epochs=1000):
    """Iterate ``make()`` again and again (a loader's epochs)."""
    for _ in range(epochs):
        yield from make()


def bench_config(key: str, cfg: SRHMConfig, batch_size: int, seconds: float, rows: int | None, tmp: Path) -> dict:
    t0 = time.perf_counter()
    folder, name, how = build(cfg, tmp / key, rows)
    ds = SRHMDataset(folder, name, split="train", load_kwargs={"cache_dir": str(tmp / key / "cache")})
    build_s = time.perf_counter() - t0
    B = batch_size
    fast_loader = ds.loader(batch_size=B, shuffle=True, drop_last=True)
    naive_loader = DataLoader(ds, batch_size=B, shuffle=True, drop_last=True)

    def fast():
        for batch in fast_loader:
            x, y = ds.to_device(batch, device="cpu")
            yield x.shape[0]

    def fast_uint8():
        for batch in fast_loader:
            yield batch["tokens"].shape[0]

    def naive():
        for x, _ in naive_loader:
            yield x.shape[0]

    stream = SRHMStream(cfg, batch_size=B)

    def streamed():
        for batch in stream:
            x, y = stream.to_device(batch, device="cpu")
            yield x.shape[0]

    x, _ = ds.to_device(next(iter(fast_loader)), device="cpu")
    assert x.shape == (B, cfg.v, cfg.d) and x.dtype == torch.float32
    out = {
        "config": key,
        "name": cfg.name,
        "d": cfg.d,
        "v": cfg.v,
        "rows": len(ds),
        "built_with": how,
        "build_and_load_s": round(build_s, 1),
        "samples_per_s": {
            "naive": measure(epochs(naive), seconds, 200_000),
            "fast": measure(epochs(fast), seconds, 50_000_000),
            "fast-uint8": measure(epochs(fast_uint8), seconds, 50_000_000),
            "stream": measure(streamed(), seconds, 50_000_000),
        },
    }
    if torch.cuda.is_available():
        cuda_loader = ds.loader(batch_size=B, shuffle=True, drop_last=True, pin_memory=True)

        def fast_cuda():
            for batch in cuda_loader:
                x, y = ds.to_device(batch, device="cuda")
                yield x.shape[0]
            torch.cuda.synchronize()

        out["samples_per_s"]["fast-cuda"] = measure(epochs(fast_cuda), seconds, 50_000_000)
        torch.cuda.synchronize()
    sps = out["samples_per_s"]
    out["ratio_fast_over_naive"] = sps["fast"] / sps["naive"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--seconds", type=float, default=3.0, help="time per measured path")
    p.add_argument("--rows", type=int, default=None, help="train rows to write (default: whole split via the builder)")
    p.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args(argv)
    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "batch_size": args.batch_size,
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="srhm-loader-bench-") as tmp:
        for key in args.configs:
            results.append(bench_config(key, CONFIGS[key], args.batch_size, args.seconds, args.rows, Path(tmp)))
    print(f"environment: {env}")
    paths = list(results[0]["samples_per_s"])
    print(f"| config | d | rows | {' | '.join(paths)} | fast / naive |")
    print("|" + " --- |" * (len(paths) + 4))
    for r in results:
        cells = " | ".join(f"{r['samples_per_s'][k]:,.0f}" for k in paths)
        print(f"| {r['config']} | {r['d']} | {r['rows']} | {cells} | {r['ratio_fast_over_naive']:.0f}x |")
    for r in results:
        print(f"{r['config']}: built with {r['built_with']} in {r['build_and_load_s']} s")
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
