"""Release-build throughput, memory and size (a benchmark, not a test).

For the Fig. 1 config and an L = 3 config (d = 216), writes P rows of ``train`` to
Parquet two ways, each in a fresh subprocess so that peak RSS is its own:

* ``srhm``: ``release.build.write_split`` (blocks of one row group, streamed to a
  ``ParquetWriter``, content hash on the fly): what ``srhm build`` does;
* ``datasets``: ``Dataset.from_dict(generate(cfg, "train", 0, P), features=...)``
  then ``.to_parquet(path)``: the same rows with the same declared features.

Prints rows/s, peak RSS above the post-import baseline, and bytes per row on disk,
and the ratios srhm / datasets.

    .venv/bin/python benchmarks/build.py [--rows 1048576] [--configs fig1 grid_L3_s0-2_v10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(method: str, config: str, rows: int) -> dict:
    """Body of a child process: write ``rows`` train rows of ``config`` with ``method``."""
    import datasets  # noqa: F401  (imported by both methods: not part of the measured memory)

    from srhm_datasets.catalog import get_config
    from srhm_datasets.config import SRHMConfig
    from srhm_datasets.generate import generate
    from srhm_datasets.release.build import write_split
    from srhm_datasets.release.features import hf_features

    base = get_config(config)
    cfg = SRHMConfig(**base.parameters(), n_test=0, n_probe=0, n_train=rows)
    hf_features(cfg, "train")
    before = _rss_mb()
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        t0 = time.perf_counter()
        if method == "srhm":
            res = write_split(cfg, "train", Path(tmp), "x")
            size = res.download_size
        else:
            ds = datasets.Dataset.from_dict(generate(cfg, "train", 0, rows), features=hf_features(cfg, "train"))
            path = Path(tmp) / "train.parquet"
            ds.to_parquet(str(path))
            size = path.stat().st_size
        seconds = time.perf_counter() - t0
    return {
        "rows_per_s": rows / seconds,
        "seconds": seconds,
        "peak_mb": _rss_mb() - before,
        "bytes_per_row": size / rows,
        "d": cfg.d,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2**20)
    parser.add_argument("--configs", nargs="+", default=["fig1", "grid_L3_s0-2_v10"])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], args.child[1], int(args.child[2]))))
        return
    print(f"rows per config: {args.rows}")
    print(f"{'config':<20}{'method':<10}{'d':>5}{'rows/s':>12}{'s':>8}{'peak MB':>10}{'B/row':>9}")
    for config in args.configs:
        out = {}
        for method in ("srhm", "datasets"):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", method, config, str(args.rows)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = out[method] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"{config:<20}{method:<10}{r['d']:>5}{r['rows_per_s']:>12,.0f}{r['seconds']:>8.2f}"
                f"{r['peak_mb']:>10.0f}{r['bytes_per_row']:>9.1f}"
            )
        a, b = out["srhm"], out["datasets"]
        print(
            f"{config:<20}{'ratio':<10}{'':>5}{a['rows_per_s'] / b['rows_per_s']:>11.2f}x{'':>8}"
            f"{a['peak_mb'] / max(b['peak_mb'], 1):>9.2f}x{a['bytes_per_row'] / b['bytes_per_row']:>8.2f}x"
        )


if __name__ == "__main__":
    main()
