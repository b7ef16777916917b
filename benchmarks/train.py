"""Group training throughput and the README's learning curve, one run at a time vs as one group.

1. ``throughput``: member-samples/s of ``baselines.group.GroupTrainer.train_step`` (one SGD
   step of every member: batch gather, encoding, forward, backward, optimiser) for
   G = 1, 2, 4, 8, 16 members, on ``demo`` and ``fig1``, CNN and LCN, width 512 (``--width``),
   batch 4*nc. Evaluation is left out (it is the same work either way). ``state MiB`` is the
   stacked parameters, gradients and momentum buffers (3 x 4 bytes a scalar).
2. ``learning-curve``: wall time of the README's example
   (``srhm learning-curve --config demo --arch cnn --P-min 100 --P-max 3000 --points 6``),
   run by ``learning_curve.run_learning_curve`` with ``--group-size 1`` (one run after another)
   and with each of ``--curve-groups`` (6: the six runs as one group), in the same process, same
   threads; the P* of each and the peak resident memory of the process so far (ru_maxrss, so
   it never decreases down the table) are printed. ``group.default_group_size`` of the curve's
   network is printed beside it (what ``srhm learning-curve`` uses without ``--group-size``).

Usage::

    .venv/bin/python benchmarks/train.py [--threads 1] [--steps 30] [--skip-curve] [--json out.json]

The machine's other load changes the numbers (a shared 2-core machine: state so when quoting).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from srhm_datasets.baselines.group import GroupTrainer, default_group_size
from srhm_datasets.baselines.learning_curve import run_learning_curve
from srhm_datasets.baselines.train import TrainOptions
from srhm_datasets.baselines.train import resolve as resolve_options
from srhm_datasets.catalog import get_config

GROUP_SIZES = (1, 2, 4, 8, 16)
CURVE = {"config": "demo", "arch": "cnn", "P_min": 100, "P_max": 3000, "points": 6}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(config: str, arch: str, G: int, width: int, steps: int, threads: int, device: str | None = None) -> dict:
    """Member-samples/s of ``steps`` group steps (after 3 warm-up steps) of G members on ``config``
    (``device``: default ``default_device()``)."""
    cfg = get_config(config)
    options = [
        TrainOptions(
            config=cfg,
            P=min(2000, cfg.split_sizes()["train"]),
            arch=arch,
            width=width,
            seed=g,
            num_test=100,
            progress=False,
            threads=threads,
            device=device,
        )
        for g in range(G)
    ]
    trainer = GroupTrainer(options)
    for _ in range(3):
        trainer.train_step()
    float(trainer.loss_sum.sum())  # wait for the device
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    float(trainer.loss_sum.sum())
    seconds = time.perf_counter() - t0
    B = trainer.first.batch_size
    state = 3 * 4 * sum(p.numel() for p in trainer.raw.parameters()) / 2**20
    return {
        "config": config,
        "arch": arch,
        "G": G,
        "width": width,
        "batch": B,
        "ms_per_step": 1e3 * seconds / steps,
        "member_samples_per_s": G * B * steps / seconds,
        "state_mib": state,
    }


def learning_curve(threads: int, root: Path, group_sizes: list[int], width: int) -> dict:
    """The README's demo learning curve by ``run_learning_curve`` with ``group_size`` 1 (one run after
    another), then each of ``group_sizes``: wall time, P*, steps per P, peak memory so far."""
    cfg = get_config(CURVE["config"])
    base = TrainOptions(config=cfg, P=CURVE["P_max"], arch=CURVE["arch"], width=width, progress=False, threads=threads)
    out = {}
    for size in [1, *group_sizes]:
        name = "one at a time" if size == 1 else f"groups of {size}"
        t0 = time.perf_counter()
        summary = run_learning_curve(
            base,
            root / f"group-size-{size}",
            CURVE["P_min"],
            CURVE["P_max"],
            CURVE["points"],
            plot=False,
            group_size=size,
        )
        out[name] = {
            "wall_s": time.perf_counter() - t0,
            "P_star": summary["P_star"],
            "peak_rss_mib": peak_rss_mib(),
            "steps": [r["steps"] for r in summary["runs"]],
        }
    for row in out.values():
        row["speedup"] = out["one at a time"]["wall_s"] / row["wall_s"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per throughput point")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--configs", default="demo,fig1")
    parser.add_argument("--archs", default="cnn,lcn")
    parser.add_argument("--skip-curve", action="store_true", help="only the throughput table")
    parser.add_argument("--skip-throughput", action="store_true", help="only the learning curve")
    parser.add_argument("--curve-groups", default="6,3", help="group sizes for the learning curve")
    parser.add_argument("--curve-width", type=int, default=512, help="network width of the learning curve")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)")
    rows = []
    if not args.skip_throughput:
        print("| config | arch | G | ms/step | member-samples/s | x G=1 | state MiB |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for config in args.configs.split(",") if not args.skip_throughput else []:
        for arch in args.archs.split(","):
            base = None
            for G in GROUP_SIZES:
                row = throughput(config, arch, G, args.width, args.steps, args.threads)
                base = base or row["member_samples_per_s"]
                rows.append(row)
                print(
                    f"| {config} | {arch} | {G} | {row['ms_per_step']:.1f} | {row['member_samples_per_s']:,.0f} | "
                    f"{row['member_samples_per_s'] / base:.2f} | {row['state_mib']:.0f} |",
                    flush=True,
                )
    out = {"threads": args.threads, "throughput": rows}
    if not args.skip_curve:
        sizes = [int(g) for g in args.curve_groups.split(",")]
        with tempfile.TemporaryDirectory() as tmp:
            curve = learning_curve(args.threads, Path(tmp), sizes, args.curve_width)
        out["learning_curve"] = curve
        auto = default_group_size(
            resolve_options(
                TrainOptions(
                    config=get_config(CURVE["config"]), P=CURVE["P_max"], arch=CURVE["arch"], width=args.curve_width
                )
            )
        )
        print(
            f"\nlearning curve {CURVE}, width {args.curve_width}, {args.threads} thread(s), "
            f"default group size here {auto}:"
        )
        print("| runs | wall s | speed-up | P* | steps per P | peak RSS MiB |")
        print("| --- | ---: | ---: | ---: | --- | ---: |")
        for name, c in curve.items():
            p_star = "not reached" if c["P_star"] is None else f"{c['P_star']:.0f}"
            print(
                f"| {name} | {c['wall_s']:.1f} | {c['speedup']:.2f} | {p_star} | {c['steps']} | "
                f"{c['peak_rss_mib']:.0f} |"
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
