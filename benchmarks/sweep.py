"""Wall time of a small sweep on the local pool and through a single-node SLURM cluster (a benchmark, not a test).

The grid: ``demo`` and ``grid_L2_s0-1_v3``, CNN width 64, seeds 0 and 1, 3 log-spaced P from
100 to 1000, at most 300 steps, 1,000 test rows, 1 torch thread per job: 4 learning curves,
12 runs, each evaluated (test error, S and D), then the leaderboard and the P* summary.

1. ``srhm sweep FILE --out DIR`` with 2 local workers;
2. the same file into a fresh DIR through a SLURM cluster on this host (``tests/slurm_cluster``:
   munged, slurmctld, slurmd, one node with 2 CPUs; root and Debian's slurm-wlm needed),
   ``--executor slurm --cpus-per-task 1 --wait --poll 1``, including submission, queueing
   and each job's start-up on the node;
3. a second call of each (nothing to run).

Both run the same jobs on the same 2 cores, so the difference is the executor's
overhead. Prints a Markdown table and checks that both sweeps give identical runs.

    .venv/bin/python benchmarks/sweep.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID = {
    "name": "bench",
    "configs": ["demo", "grid_L2_s0-1_v3"],
    "archs": ["cnn"],
    "widths": [64],
    "seeds": [0, 1],
    "P": {"min": 100, "max": 1000, "points": 3},
    "train": {"max_steps": 300, "num_test": 1000, "threads": 1},
    "executor": {"local": {"workers": 2}, "slurm": {"cpus_per_task": 1, "time_min": 30}},
}


def timed(label: str, rows: list, fn, *args, **kwargs):
    start = time.perf_counter()
    report = fn(*args, **kwargs)
    rows.append((label, time.perf_counter() - start, len(report.started), report.finished is not None))
    return report


def main() -> None:
    from srhm_datasets.sweep.run import run_sweep
    from tests.slurm_cluster import ClusterUnavailable, start_cluster, stop_cluster
    from tests.sweep_helpers import sweep_runs

    work = Path(tempfile.mkdtemp(prefix="srhm-sweep-bench-"))
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(GRID))
    rows: list = []
    timed("local pool (2 workers)", rows, run_sweep, path, work / "local", progress_bar=False)
    timed("local pool, second call", rows, run_sweep, path, work / "local", progress_bar=False)
    try:
        cluster = start_cluster(work / "cluster")
    except ClusterUnavailable as err:
        print(f"SLURM part skipped: {err}")
        cluster = None
    if cluster is not None:
        import os

        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            timed(
                "single-node SLURM (--wait, 2 CPUs)",
                rows,
                run_sweep,
                path,
                work / "slurm",
                executor="slurm",
                wait=True,
                progress_bar=False,
                poll_s=1.0,
            )
            timed(
                "single-node SLURM, second call",
                rows,
                run_sweep,
                path,
                work / "slurm",
                executor="slurm",
                wait=True,
                progress_bar=False,
                poll_s=1.0,
            )
        finally:
            stop_cluster(cluster)
        same = sweep_runs(work / "local") == sweep_runs(work / "slurm")
        print(f"runs identical on both executors: {same}")
    print("\n| executor | wall time (s) | jobs run | leaderboard written |\n| --- | ---: | ---: | --- |")
    for label, seconds, started, finished in rows:
        print(f"| {label} | {seconds:.1f} | {started} | {'yes' if finished else 'no'} |")
    print(f"\n(folders under {work})")


if __name__ == "__main__":
    main()
