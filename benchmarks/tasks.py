"""Cost of the tasks (format.md §15) beside the generator that makes their rows (not a test).

For each config, times ``generate`` of ``--rows`` test rows (the baseline), then
``tasks.apply_task`` of every task on those rows (numpy), and on a torch device the
``TorchGenerator`` rows alone against rows + ``torch_apply_task``. Prints rows/s and the
ratio task / generation (how much a task adds to producing the rows).

    .venv/bin/python benchmarks/tasks.py [--rows 20000] [--configs fig1 grid_L3_s0-2_v10] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from srhm_datasets import generate, get_config
from srhm_datasets.config import require_int
from srhm_datasets.tasks import TASKS, apply_task, make_task

#: Parameters of each task in the measurement (noise on, the costliest case).
PARAMS = {"class": {}, "last": {"context": 8}, "mlm": {"mask_rate": 0.15}, "next": {}}


def best_time(fn, repeat: int = 3) -> float:
    """The fastest of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def numpy_figures(cfg, rows: int) -> None:
    batch = generate(cfg, "test", 0, rows, workers=1)
    base = best_time(lambda: generate(cfg, "test", 0, rows, workers=1))
    print(f"  numpy generate            {rows / base:12,.0f} rows/s")
    for name in TASKS:
        for noise in (0.0, 0.1):
            task = make_task(cfg, name, noise=noise, **PARAMS[name])
            seconds = best_time(lambda task=task: apply_task(cfg, task, batch, "test", 0))
            ratio = seconds / base
            print(f"  apply_task {name:5s} eps={noise:<4} {rows / seconds:12,.0f} rows/s  ({ratio:.2f} x generate)")


def torch_figures(cfg, rows: int, device: str) -> None:
    import torch

    from srhm_datasets.torch import TorchGenerator
    from srhm_datasets.torch_data.tasks import torch_apply_task

    gen = TorchGenerator(cfg, device)

    def sync():
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    def rows_only():
        gen.rows("test", 0, rows, ("tokens", "label"))
        sync()

    base = best_time(rows_only)
    print(f"  torch rows on {device:10s} {rows / base:12,.0f} rows/s")
    for name in TASKS:
        task = make_task(cfg, name, noise=0.1, **PARAMS[name])

        def both(task=task):
            torch_apply_task(gen, task, gen.rows("test", 0, rows, ("tokens", "label")), "test", 0)
            sync()

        seconds = best_time(both)
        print(f"  rows + {name:5s} eps=0.1       {rows / seconds:12,.0f} rows/s  ({seconds / base:.2f} x rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--configs", nargs="+", default=["fig1", "grid_L3_s0-2_v10"])
    parser.add_argument("--device", default="cpu", help="torch device of the torch path ('none' to skip it)")
    args = parser.parse_args()
    try:  # every argument checked before any work: a usage error (exit 2) naming it
        require_int("--rows", args.rows, 1)
        configs = [get_config(name) for name in args.configs]
        if args.device != "none":
            from srhm_datasets.torch_data.encoding import check_device

            check_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    for name, cfg in zip(args.configs, configs):
        rows = min(args.rows, cfg.split_sizes()["test"])
        print(f"{name} (d = {cfg.d}, v = {cfg.v}), {rows} test rows, numpy {np.__version__}")
        numpy_figures(cfg, rows)
        if args.device != "none":
            torch_figures(cfg, rows, args.device)


if __name__ == "__main__":
    main()
