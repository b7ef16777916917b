"""Learning curves: test error vs training-set size P, and the sample complexity P*.

``run_learning_curve`` trains one network per log-spaced P (run folders ``P<P>/`` under
the output folder; finished runs, those with a ``results.json``, are skipped, so an
interrupted curve resumes), then writes ``summary.json`` and ``learning_curve.png``.
A finished run is reused only if it was trained with the requested settings
(``RUN_SETTINGS``: config, arch, width, lr, momentum, seed, encoding, norm, bias,
shuffled labels, batch size, step budget, loss threshold); otherwise nothing is trained
and a ValueError names the differing settings (use another output folder).

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

from ..config import SRHMConfig, require
from ..evaluation.paper_points import LAW_NAMES, law_x
from ..files import atomic_write, check_output_folder, mark_owned, read_marker
from ..results import get_field, read_results
from .train import TrainOptions, is_int, is_real, resolve, train

SUMMARY_FORMAT = {"name": "srhm-learning-curve", "version": 1}
#: Most P values of one curve (each is a training run).
MAX_POINTS = 100


def log_spaced_P(P_min: int, P_max: int, points: int) -> list[int]:
    """``points`` distinct integers from P_min to P_max, evenly spaced in log P."""
    for key, value in (("P_min", P_min), ("P_max", P_max), ("points", points)):
        require(is_int(value) and value >= 1, key, value, f"an int {key} >= 1")
    require(P_min <= P_max, "P_min", P_min, f"P_min <= P_max = {P_max}")
    require(points <= MAX_POINTS, "points", points, f"points <= {MAX_POINTS} (one training run each)")
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


#: What must agree between a finished run and the requested one for the run to be reused:
#: setting (a TrainOptions field) -> its field in the results file.
RUN_SETTINGS = {
    "config": "dataset.config", "P": "P", "arch": "model.arch", "width": "model.width", "lr": "training.lr",
    "momentum": "training.momentum", "seed": "training.seed", "encoding": "training.encoding", "norm": "model.norm",
    "bias": "model.bias", "shuffle_labels": "training.shuffle_labels", "batch_size": "training.batch_size",
    "max_steps": "training.max_steps", "loss_threshold": "training.loss_threshold", "num_test": "training.num_test",
    "eval_every": "training.eval_every", "data": "dataset.repo_or_dir", "revision": "dataset.revision",
}


def _requested(opt: TrainOptions, setting: str):
    if setting == "config":
        return opt.config.name
    value = getattr(opt, setting)
    return str(value) if setting == "data" and value is not None else value


def _same(recorded, requested) -> bool:
    if isinstance(recorded, float) or isinstance(requested, float):
        return (isinstance(recorded, (int, float)) and not isinstance(recorded, bool)
                and math.isclose(recorded, requested, rel_tol=1e-12, abs_tol=0.0))
    return recorded == requested and type(recorded) is type(requested)


def reusable_run(run_dir: Path, opt: TrainOptions) -> dict | None:
    """The results of the finished run in ``run_dir`` if it was made with the resolved options ``opt``.

    None when ``run_dir`` holds no finished run (no ``results.json``). Raises ValueError
    naming every differing setting (recorded vs requested) when it holds another run, a
    results file without a training log, or one that fails validation.
    """
    if not (run_dir / "results.json").is_file():
        return None
    results = read_results(run_dir)
    if "training" not in results:
        raise ValueError(f"invalid run folder {str(run_dir)!r}: its results.json is not a srhm train run "
                         "(no training object); use a new --out")
    diffs = [f"{key}={get_field(results, field)!r} (requested {_requested(opt, key)!r})"
             for key, field in RUN_SETTINGS.items() if not _same(get_field(results, field), _requested(opt, key))]
    if diffs:
        raise ValueError(f"invalid run folder {str(run_dir)!r}: it holds a finished run made with other settings: "
                         f"{', '.join(diffs)}; use a new --out for this learning curve (finished runs are reused "
                         "only when every setting agrees, never retrained over)")
    return results


#: Entries a learning-curve folder holds besides its run folders ``P<P>/``.
SUMMARY_FILE, PLOT_FILE = "summary.json", "learning_curve.png"
METRICS = ("best", "final")


def check_curve_options(P_min, P_max, points, threshold, metric, plot, train_size: int, name: str) -> None:
    """The learning-curve arguments, checked before anything is trained (ValueError naming the parameter)."""
    log_spaced_P(P_min, P_max, points)  # checks P_min, P_max, points
    require(P_max <= train_size, "P_max", P_max, f"P_max <= train size {train_size} of {name}")
    require(is_real(threshold) and 0 < threshold < 1, "threshold", threshold, "0 < threshold < 1 (a test error)")
    require(metric in METRICS, "metric", metric, f"one of {METRICS}")
    require(isinstance(plot, bool), "plot", plot, "True or False")


def check_curve_folder(out: Path, Ps: list[int]) -> None:
    """``out`` may hold this learning curve: a new or empty folder, or one srhm wrote as a learning
    curve, whose entries this curve writes (runs ``P<P>/``, summary, plot) are all srhm's."""
    check_output_folder(out, "learning-curve", replace=False)
    owned = set((read_marker(out) or {}).get("entries", []))
    ours = [SUMMARY_FILE, PLOT_FILE] + [f"P{P}" for P in Ps]
    foreign = [name for name in ours if (out / name).exists() and name not in owned]
    require(not foreign, "out", str(out), f"a learning-curve folder whose {foreign} srhm wrote (they are not "
            "recorded in its marker); move them away or choose another --out")


def run_learning_curve(base: TrainOptions, out: str | Path, P_min: int, P_max: int, points: int,
                       threshold: float = 0.10, metric: str = "best", plot: bool = True) -> dict:
    """Train ``base`` (its P and out are replaced) at log-spaced P; write and return the summary.

    Every argument and the folder ``out`` are checked before anything is trained (ValueError
    naming the parameter). ``out`` is marked as a srhm learning curve; an old summary and
    plot are removed before the first new run, so an interrupted curve never shows a
    summary of other runs; finished runs are kept and reused on the next call.
    """
    cfg = base.config if isinstance(base, TrainOptions) else None
    require(isinstance(cfg, SRHMConfig), "base", base, "TrainOptions with an SRHMConfig")
    check_curve_options(P_min, P_max, points, threshold, metric, plot, cfg.split_sizes()["train"], cfg.name)
    out = Path(out)
    Ps = log_spaced_P(P_min, P_max, points)
    check_curve_folder(out, Ps)
    plan = [(P, out / f"P{P}", resolve(dataclasses.replace(base, P=P, out=None))) for P in Ps]
    for _, run_dir, _ in plan:
        check_output_folder(run_dir, "run", replace=False, parameter="out")
    finished = {P: reusable_run(run_dir, opt) for P, run_dir, opt in plan}  # all checked before any training
    mark_owned(out, "learning-curve", [SUMMARY_FILE, PLOT_FILE] + [run_dir.name for _, run_dir, _ in plan])
    if any(results is None for results in finished.values()):
        for name in (SUMMARY_FILE, PLOT_FILE):  # stale once a new run starts
            (out / name).unlink(missing_ok=True)
    runs = []
    for P, run_dir, _ in plan:
        results = finished[P]
        skipped = results is not None
        if not skipped:
            results = train(dataclasses.replace(base, P=P, out=str(run_dir)))
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
    x = law_x(base.arch, cfg.L, cfg.s, cfg.s0, cfg.nc, cfg.m)  # None for the FCN (no law)
    summary = {
        "format": dict(SUMMARY_FORMAT),
        "config": cfg.name,
        "parameters": cfg.parameters(),
        "arch": base.arch,
        "width": base.width,
        "lr": plan[-1][2].lr,  # as resolved for the last run, P = P_max
        "data": base.data,
        "revision": base.revision,
        "metric": metric,
        "threshold": threshold,
        "chance_error": chance,
        "P_star": est["P_star"],
        "P_star_status": est["status"],
        "P_star_bracket": est["bracket"],
        "P_star_rel_chance": rel["P_star"],
        "law": LAW_NAMES.get(base.arch),
        "law_x": x,
        "P_star_over_law_x": None if est["P_star"] is None or x is None else est["P_star"] / x,
        "runs": runs,
    }
    atomic_write(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    if plot:
        plot_learning_curve(summary, out / PLOT_FILE)
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
    if summary["law_x"] is not None:
        ax.axvline(summary["law_x"], color="C2", ls="-.", lw=0.8, label=summary["law"])
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylim(-0.02, 1.0)
    ax.set_xlabel("P (training points)")
    ax.set_ylabel("test error")
    ax.set_title(summary["config"], fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)
