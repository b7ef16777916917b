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

from ..config import SRHMConfig, require
from ..files import atomic_write, check_output_folder, mark_owned, read_marker
from ..protocol import (
    EPSILON_STAR,
    LAW_NAMES,
    PLOT_FILE,
    RESULTS_FILE,
    RUN_SETTINGS,
    SUMMARY_FILE,
    SUMMARY_FORMAT,
    TrainOptions,
    estimate_p_star,
    is_real,
    law_x,
    log_spaced_P,
)
from ..results import get_field, read_results
from .train import resolve, train

__all__ = ["check_curve_folder", "check_curve_options", "estimate_p_star", "log_spaced_P", "plot_learning_curve",
           "reusable_run", "run_learning_curve"]


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
    if not (run_dir / RESULTS_FILE).is_file():
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
                       threshold: float = EPSILON_STAR, metric: str = "best", plot: bool = True) -> dict:
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
    plan = plan_curve(base, out, log_spaced_P(P_min, P_max, points))
    runs = [_run_entry(P, run_dir, finished, base) for P, run_dir, _, finished in plan]
    summary = curve_summary(base, plan[-1][2].lr, runs, threshold, metric)
    atomic_write(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    if plot:
        plot_learning_curve(summary, out / PLOT_FILE)
    return summary


def plan_curve(base: TrainOptions, out: Path, Ps: list[int]) -> list[tuple[int, Path, TrainOptions, dict | None]]:
    """``(P, run folder, resolved options, results of a reusable finished run or None)`` per P.

    Checks the curve folder, every run folder and every finished run before anything is
    written (ValueError); then marks ``out`` as a learning curve and, when a run is still to
    train, removes the stale summary and plot.
    """
    check_curve_folder(out, Ps)
    plan = [(P, out / f"P{P}", resolve(dataclasses.replace(base, P=P, out=None))) for P in Ps]
    for _, run_dir, _ in plan:
        check_output_folder(run_dir, "run", replace=False, parameter="out")
    plan = [(P, run_dir, opt, reusable_run(run_dir, opt)) for P, run_dir, opt in plan]  # all checked first
    mark_owned(out, "learning-curve", [SUMMARY_FILE, PLOT_FILE] + [run_dir.name for _, run_dir, _, _ in plan])
    if any(finished is None for *_, finished in plan):
        for name in (SUMMARY_FILE, PLOT_FILE):  # stale once a new run starts
            (out / name).unlink(missing_ok=True)
    return plan


def _run_entry(P: int, run_dir: Path, finished: dict | None, base: TrainOptions) -> dict:
    """The summary's entry of the run at ``P``: the finished run's (skipped), or a new training's."""
    results = finished if finished is not None else train(dataclasses.replace(base, P=P, out=str(run_dir)))
    return {
        "P": P, "run": run_dir.name, "skipped": finished is not None,
        "best_test_error": results["best_test_error"], "final_test_error": results["final_test_error"],
        "stop_reason": results["training"]["stop_reason"], "steps": results["training"].get("steps"),
        "wall_time_s": results["training"]["wall_time_s"],
    }


def curve_summary(base: TrainOptions, lr: float, runs: list[dict], threshold: float, metric: str) -> dict:
    """The ``summary.json`` object (format ``SUMMARY_FORMAT``, format.md §10.3): the runs, P* at
    ``threshold`` and at 10 % of chance error, and the paper's law; ``lr`` as resolved at P_max."""
    cfg = base.config
    Ps = [r["P"] for r in runs]
    errors = [r[f"{metric}_test_error"] for r in runs]
    chance = 1.0 - 1.0 / cfg.nc
    est = estimate_p_star(Ps, errors, threshold)
    x = law_x(base.arch, cfg.L, cfg.s, cfg.s0, cfg.nc, cfg.m)  # None for the FCN (no law)
    return {
        "format": dict(SUMMARY_FORMAT), "config": cfg.name, "parameters": cfg.parameters(), "arch": base.arch,
        "width": base.width, "lr": lr, "data": base.data, "revision": base.revision, "metric": metric,
        "threshold": threshold, "chance_error": chance, "P_star": est["P_star"], "P_star_status": est["status"],
        "P_star_bracket": est["bracket"], "P_star_rel_chance": estimate_p_star(Ps, errors, 0.1 * chance)["P_star"],
        "law": LAW_NAMES.get(base.arch), "law_x": x,
        "P_star_over_law_x": None if est["P_star"] is None or x is None else est["P_star"] / x,
        "runs": runs,
    }


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
