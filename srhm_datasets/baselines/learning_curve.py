"""Learning curves: test error vs training-set size P, and the sample complexity P*.

``run_learning_curve`` trains one network per log-spaced P (run folders ``P<P>/`` under
the output folder; finished runs, those with a ``results.json``, are skipped, so an
interrupted curve resumes), then writes ``summary.json`` and ``learning_curve.png``.

P* (paper.md 4.1): the P at which the test error crosses ``threshold`` (0.10, absolute,
the paper's epsilon* = 10%), by linear interpolation of log P between the two
neighbouring measured points that bracket the crossing (the first downward crossing).
The RHM paper's alternative, 10% of chance error ``0.1 * (1 - 1/nc)``, is reported
beside it as ``P_star_rel_chance``. The error of a run is its best test error (the
checkpoint kept), or the final one with ``metric="final"``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from ..config import SRHMConfig
from ..results import read_results, write_results  # noqa: F401  (write_results re-exported for callers)
from .train import TrainOptions, resolve, train

SUMMARY_FORMAT = {"name": "srhm-learning-curve", "version": 1}


def log_spaced_P(P_min: int, P_max: int, points: int) -> list[int]:
    """``points`` distinct integers from P_min to P_max, evenly spaced in log P."""
    if not (1 <= P_min <= P_max):
        raise ValueError(f"invalid parameters P_min={P_min!r}, P_max={P_max!r}: must satisfy 1 <= P_min <= P_max")
    if points < 1:
        raise ValueError(f"invalid parameter points={points!r}: must satisfy points >= 1")
    if points == 1:
        return [P_max]
    grid = np.exp(np.linspace(math.log(P_min), math.log(P_max), points))
    return sorted({int(round(p)) for p in grid})


def estimate_p_star(Ps, errors, threshold: float = 0.10) -> dict:
    """P* where ``errors`` (test error at sizes ``Ps``) first falls to ``threshold``.

    Returns ``{"P_star": float | None, "bracket": [P_lo, P_hi] | None, "status": ...}``:
    status ``interpolated`` (crossing between two points, log-P interpolation),
    ``below_range`` (already <= threshold at the smallest P: P* <= P_min),
    ``above_range`` (never reached: P* > P_max), or ``no_data``.
    """
    pairs = sorted(zip(Ps, errors))
    if not pairs:
        return {"P_star": None, "bracket": None, "status": "no_data"}
    if pairs[0][1] <= threshold:
        return {"P_star": None, "bracket": [None, pairs[0][0]], "status": "below_range"}
    for (p0, e0), (p1, e1) in zip(pairs, pairs[1:]):
        if e0 > threshold >= e1:
            t = (e0 - threshold) / (e0 - e1)
            P_star = math.exp(math.log(p0) + t * (math.log(p1) - math.log(p0)))
            return {"P_star": P_star, "bracket": [p0, p1], "status": "interpolated"}
    return {"P_star": None, "bracket": [pairs[-1][0], None], "status": "above_range"}


def prediction_cnn(cfg: SRHMConfig) -> int:
    """The paper's CNN scale (s0+1)**2 * nc * m**L (Eq. 4 without the constant C1)."""
    return (cfg.s0 + 1) ** 2 * cfg.nc * cfg.m**cfg.L


def run_learning_curve(base: TrainOptions, out: str | Path, P_min: int, P_max: int, points: int,
                       threshold: float = 0.10, metric: str = "best", plot: bool = True) -> dict:
    """Train ``base`` (its P and out are replaced) at log-spaced P; write and return the summary."""
    if metric not in ("best", "final"):
        raise ValueError(f"invalid parameter metric={metric!r}: must be one of ('best', 'final')")
    cfg = base.config
    train_size = cfg.split_sizes()["train"]
    if P_max > train_size:
        raise ValueError(f"invalid parameter P_max={P_max}: must satisfy P_max <= train size {train_size} of {cfg.name}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for P in log_spaced_P(P_min, P_max, points):
        run_dir = out / f"P{P}"
        if (run_dir / "results.json").is_file():
            results = read_results(run_dir)
            skipped = True
        else:
            results = train(dataclasses.replace(base, P=P, out=str(run_dir)))
            skipped = False
        runs.append({
            "P": P, "run": run_dir.name, "skipped": skipped,
            "best_test_error": results["best_test_error"], "final_test_error": results["final_test_error"],
            "stop_reason": results["training"]["stop_reason"], "steps": results["training"].get("steps"),
            "wall_time_s": results["training"]["wall_time_s"],
        })
    Ps = [r["P"] for r in runs]
    errors = [r[f"{metric}_test_error"] for r in runs]
    chance = 1.0 - 1.0 / cfg.nc
    est = estimate_p_star(Ps, errors, threshold)
    rel = estimate_p_star(Ps, errors, 0.1 * chance)
    x = prediction_cnn(cfg)
    opts = resolve(dataclasses.replace(base, P=P_max))
    summary = {
        "format": dict(SUMMARY_FORMAT),
        "config": cfg.name,
        "parameters": cfg.parameters(),
        "arch": base.arch,
        "width": base.width,
        "lr": opts.lr,
        "data": base.data,
        "revision": base.revision,
        "metric": metric,
        "threshold": threshold,
        "chance_error": chance,
        "P_star": est["P_star"],
        "P_star_status": est["status"],
        "P_star_bracket": est["bracket"],
        "P_star_rel_chance": rel["P_star"],
        "prediction_cnn": x,
        "P_star_over_prediction_cnn": None if est["P_star"] is None else est["P_star"] / x,
        "runs": runs,
    }
    path = out / "summary.json"
    tmp = path.with_name(".summary.json.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(path)
    if plot:
        plot_learning_curve(summary, out / "learning_curve.png")
    return summary


def plot_learning_curve(summary: dict, path: str | Path) -> None:
    """Test error vs P (log x), the threshold and P* (PNG, matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    runs = summary["runs"]
    metric = summary["metric"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([r["P"] for r in runs], [r[f"{metric}_test_error"] for r in runs], "o-", label=f"{summary['arch']} ({metric} test error)")
    ax.axhline(summary["chance_error"], color="grey", ls=":", label="chance")
    ax.axhline(summary["threshold"], color="k", ls="--", lw=0.8, label=f"threshold {summary['threshold']:g}")
    if summary["P_star"] is not None:
        ax.axvline(summary["P_star"], color="C3", lw=0.8, label=f"P* = {summary['P_star']:.3g}")
    ax.axvline(summary["prediction_cnn"], color="C2", ls="-.", lw=0.8, label="(s0+1)^2 nc m^L")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylim(-0.02, 1.0)
    ax.set_xlabel("P (training points)")
    ax.set_ylabel("test error")
    ax.set_title(summary["config"], fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
