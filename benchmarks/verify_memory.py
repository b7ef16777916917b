"""Peak memory of ``srhm verify`` against ``srhm build`` of the same config (not a test).

For each config (catalog names; ``train`` cut to ``--rows`` rows, ``test`` and ``probe`` as
in the catalog), runs in this order, each command in its own subprocess:

* ``srhm build CONFIG --out DIR --quiet`` (one process: ``--workers 1``, the default);
* ``srhm verify DIR``.

Each command's peak RSS is ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by a
fresh Python wrapper that runs only that command (so it is that command's own peak, the
interpreter and its imports included). Prints d, rows, seconds and peak MiB of each, and
the ratio verify / build measured in the same run: the promise is a ratio <= 1 at any d.
With ``--together``, all the configs are then built into one release and verified at once:
that peak should be the largest single config's, not their sum.

    .venv/bin/python benchmarks/verify_memory.py [--rows 1048576] [--configs grid_L3_s0-4_v10 grid_L3_s0-6_v10]
        [--together]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Runs argv[1:] and prints its peak RSS (KiB on Linux) and wall seconds as JSON.
WRAPPER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(json.dumps({"code": code, "seconds": time.perf_counter() - t0,
                  "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def measure(argv: list[str]) -> dict:
    """Peak RSS (MiB) and seconds of one command, run alone under a fresh wrapper."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if result["code"] != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {result['code']}")
    return {"seconds": result["seconds"], "peak_mib": result["peak_kib"] / 1024}


def config_name(name: str, rows: int) -> tuple[str, int]:
    """Canonical name and d of catalog config ``name`` with ``rows`` train rows."""
    from srhm_datasets.catalog import get_config
    from srhm_datasets.config import SRHMConfig

    base = get_config(name)
    sizes = base.split_sizes()
    cfg = SRHMConfig(**base.parameters(), n_train=rows, n_test=sizes["test"], n_probe=sizes["probe"])
    return cfg.name, cfg.d


def build_and_verify(srhm: Path, names: list[str], out: Path) -> tuple[dict, dict]:
    """Peaks of ``srhm build NAMES --out OUT`` and then ``srhm verify OUT``."""
    build = measure([str(srhm), "build", *names, "--out", str(out), "--quiet"])
    verify = measure([str(srhm), "verify", str(out)])
    shutil.rmtree(out)
    return build, verify


def show(label: str, d, build: dict, verify: dict) -> None:
    print(
        f"{label:<20}{d:>6}{build['seconds']:>9.1f}{build['peak_mib']:>11.0f}{verify['seconds']:>10.1f}"
        f"{verify['peak_mib']:>12.0f}{verify['peak_mib'] / build['peak_mib']:>14.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2**20, help="train rows of each config")
    parser.add_argument("--configs", nargs="+", default=["grid_L3_s0-4_v10", "grid_L3_s0-6_v10"])
    parser.add_argument("--dir", default=".", help="where the temporary release folders go")
    parser.add_argument("--together", action="store_true", help="also build and verify all configs in one release")
    args = parser.parse_args()
    srhm = Path(sys.executable).with_name("srhm")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, train rows per config: {args.rows}")
    header = f"{'config':<20}{'d':>6}{'build s':>9}{'build MiB':>11}{'verify s':>10}{'verify MiB':>12}"
    print(f"{header}{'verify/build':>14}")
    configs = {name: config_name(name, args.rows) for name in args.configs}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for name, (canonical, d) in configs.items():
            show(name, d, *build_and_verify(srhm, [canonical], Path(tmp) / name))
        if args.together:
            names = [canonical for canonical, _ in configs.values()]
            show(f"all {len(names)} together", "-", *build_and_verify(srhm, names, Path(tmp) / "all"))


if __name__ == "__main__":
    main()
