"""The Bayes-optimal tables and figures of baselines/optimal/README.md (exact BP, format.md §16).

    .venv/bin/python baselines/optimal/make.py [--rows 20000] [--tasks next] [--parts table,noise,correlations]

writes, in ``--out``:

* ``table.json`` and ``table.md``: ``srhm optimal``'s figures (test split, first ``--rows``
  rows) of each task of ``--tasks`` on every catalog config of L = 2 and a sample of L = 3;
* ``noise.png`` / ``noise.json``: the Bayes-optimal class accuracy 1 - expected error under the
  symmetric channel eps, from 0 to 1 - 1/v, for fig1 and RHM configs of depth 2, 3, 4 (the
  phase transition of the denoising papers, exactly);
* ``correlations_<config>.png`` / ``correlations.json``: the token-token covariance by LCA
  level and distance, exact beside sampled, for one RHM and one SRHM config.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from srhm_datasets import SRHMConfig
from srhm_datasets.catalog import CATALOG, release_name
from srhm_datasets.correlations import correlations, plot_correlations
from srhm_datasets.files import atomic_write
from srhm_datasets.inference import FIGURES
from srhm_datasets.optimal import optimal_figures

L3_SAMPLE = ("grid_L3_s0-0_v4", "grid_L3_s0-1_v4", "grid_L3_s0-2_v4", "sparseB_L3_s0-1_v6", "s3_L3_s0-0_v4")
RHM = {L: SRHMConfig(L=L, s=2, s0=0, v=16, nc=16, m=8, seed=2) for L in (2, 3, 4)}  # m < v: correlated tokens
NOISE_ROWS = 2000


def tables(rows: int, tasks: list[str]) -> list[dict]:
    names = [name for name, cfg in CATALOG.items() if cfg.L == 2] + list(L3_SAMPLE)
    out = []
    for name in names:
        for task in tasks:
            figures = optimal_figures(CATALOG[name], task, "test", min(rows, CATALOG[name].split_sizes()["test"]))
            out.append({"name": name, **figures})
            print(name, task, {k: figures[k] for k in FIGURES}, flush=True)
    return out


def markdown(entries: list[dict]) -> str:
    head = "| config | task | rows | scored | expected error | empirical error | expected CE | empirical CE |"
    lines = [head, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for e in entries:
        lines.append(
            f"| {e['name']} | {e['task']} | {e['rows']} | {e['scored']} | {e['expected_error']:.4f} | "
            f"{e['empirical_error']:.4f} | {e['expected_cross_entropy']:.4f} | {e['empirical_cross_entropy']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def noise_curves() -> dict:
    curves = {}
    for label, cfg in [("fig1", CATALOG["fig1"])] + [(f"RHM L={L}", cfg) for L, cfg in RHM.items()]:
        eps = np.linspace(0.0, 1.0 - 1.0 / cfg.v, 21)
        accuracy = [
            1.0
            - optimal_figures(cfg, "class", "test", min(NOISE_ROWS, cfg.split_sizes()["test"]), noise=float(e))[
                "expected_error"
            ]
            for e in eps
        ]
        curves[label] = {"config": release_name(cfg), "eps": eps.tolist(), "accuracy": accuracy, "nc": cfg.nc}
        print(label, np.round(accuracy, 3).tolist(), flush=True)
    return curves


def plot_noise(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, c in curves.items():
        ax.plot(c["eps"], c["accuracy"], marker=".", label=f"{label} ({c['config']})")
    ax.axhline(1.0 / 16, color="grey", ls=":", lw=1, label="chance, nc = 16")
    ax.axhline(1.0 / 10, color="grey", ls="--", lw=1, label="chance, nc = 10")
    ax.set_xlabel("noise eps (symmetric channel)")
    ax.set_ylabel("Bayes-optimal class accuracy")
    ax.legend(fontsize=6)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--tasks", default="next")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--parts", default="table,noise,correlations")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "table" in parts:
        entries = tables(args.rows, args.tasks.split(","))
        atomic_write(args.out / "table.json", json.dumps(entries, indent=1) + "\n")
        atomic_write(args.out / "table.md", markdown(entries))
    if "noise" in parts:
        curves = noise_curves()
        atomic_write(args.out / "noise.json", json.dumps(curves, indent=1) + "\n")
        plot_noise(curves, args.out / "noise.png")
    if "correlations" in parts:
        correlation_figures(args.out)


def correlation_figures(out: Path) -> None:
    results = {}
    for cfg in (RHM[3], CATALOG["fig1"]):
        name = release_name(cfg)
        result = correlations(cfg, rows=min(100000, cfg.split_sizes()["train"]))
        plot_correlations(result, out / f"correlations_{name}.png", name)
        results[name] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}
    atomic_write(out / "correlations.json", json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
