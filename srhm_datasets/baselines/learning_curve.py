"""Learning curves: test error vs training-set size P, and the sample complexity P*.

``run_learning_curve`` trains one network per log-spaced P and seed (run folders ``P<P>/``
under the output folder for one seed, ``seed<S>/P<P>/`` for several; finished runs, those
with a ``results.json``, are skipped, so an interrupted curve resumes), then writes
``summary.json`` and ``learning_curve.png``. The runs still to train are trained in groups
(``group.train_group``: one stacked model, each member the same run as ``train`` would make;
format.md §10.4) of ``group_size`` runs, by default ``group.default_group_size``; group size 1
is one ``train`` after another, and under ``torchrun`` (WORLD_SIZE > 1) the size is always 1.
A finished run is reused only if it was trained with the requested settings
(``RUN_SETTINGS``, derived from ``protocol.OPTIONS``: config, arch or factory, width, lr and
its scaling, optimiser, seed, task, encoding, norm, bias, shuffled labels, batch size, budget,
...) and, for a user's model, by the same code (the hash of its factory's module source, which
must be known); otherwise nothing is trained and a ValueError names the differing settings (use
another output folder).

P* (paper.md 4.1): the P at which the test error crosses ``threshold`` (0.10, absolute,
the paper's epsilon* = 10%), by linear interpolation of log P between the two
neighbouring measured points that bracket the crossing (the first downward crossing).
The RHM paper's alternative, 10% of chance error ``0.1 * protocol.chance_error`` (1 - 1/C, C the classes the
task predicts, ``protocol.target_classes``: nc for ``class``), is reported beside it as
``P_star_rel_chance``. The error of a run is its best test error (the
checkpoint kept), or the final one with ``metric="final"``. With several seeds, ``P_star``
is that of the test error averaged over the seeds at each P; each seed's own P* and their
spread (geometric mean, min, max) are reported beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from pathlib import Path

from ..config import SRHMConfig, is_int, require
from ..files import atomic_write, check_output_folder, claim_output, mark_owned, read_marker
from ..protocol import (
    CUSTOM_ARCH,
    EPSILON_STAR,
    LAW_NAMES,
    OPTION,
    PLOT_FILE,
    RESULTS_FILE,
    RUN_SETTINGS,
    SOURCE_SETTING,
    SUMMARY_FILE,
    SUMMARY_FORMAT,
    TRAIN_TASKS,
    TrainOptions,
    chance_error,
    check_threshold,
    estimate_p_star,
    law_x,
    log_spaced_P,
    option_applies,
    p_star_spread,
)
from ..results import get_field, read_results
from .factory import model_name, source_sha256
from .group import default_group_size, groupable, plan_groups, train_group
from .train import SEED_BOUND, redraw_setting, resolve, run_task, train

__all__ = [
    "CurveRun",
    "check_curve_folder",
    "check_curve_options",
    "curve_group_size",
    "plot_learning_curve",
    "reusable_run",
    "run_learning_curve",
]


def _requested(opt: TrainOptions, setting: str):
    if setting == "config":
        return opt.config.name
    if setting == SOURCE_SETTING:
        return source_sha256(opt.factory) if opt.factory is not None else None
    value = getattr(opt, setting)
    return str(value) if setting == "data" and value is not None else value


def _same(recorded, requested) -> bool:
    if isinstance(recorded, float) or isinstance(requested, float):
        return (
            isinstance(recorded, (int, float))
            and not isinstance(recorded, bool)
            and math.isclose(recorded, requested, rel_tol=1e-12, abs_tol=0.0)
        )
    return recorded == requested and type(recorded) is type(requested)


def _recorded(results: dict, key: str, field: str):
    """The setting ``key`` a run was made with: its results' ``field``, or the declared value of a results
    file without it (``Option.recorded_default``: a run written before the option existed)."""
    value = get_field(results, field)
    return OPTION[key].recorded_default if value is None and key in OPTION else value


def _difference(opt: TrainOptions, key: str, recorded, requested) -> str | None:
    """How setting ``key`` of a finished run differs from the request, or None when it agrees. The code of a
    user's model (``SOURCE_SETTING``) agrees only when its hash is known: a factory without a source cannot
    be tied to the code that made a run."""
    source = key == SOURCE_SETTING and opt.factory is not None
    if _same(recorded, requested) and not (source and requested is None):
        return None
    if not source:
        return f"{key}={recorded!r} (requested {requested!r})"
    module = opt.factory.split(":", 1)[0]
    why = "is not available" if requested is None else "differs from the run's"
    return f"{key}={recorded!r} (requested {requested!r}: the source of module {module} {why})"


def reusable_run(run_dir: Path, opt: TrainOptions) -> dict | None:
    """The results of the finished run in ``run_dir`` if it was made with the resolved options ``opt``
    and, for a user's model, by the same code (``RUN_SETTINGS``: the SHA-256 of its factory's module source,
    ``factory.source_sha256``, known and equal).

    None when ``run_dir`` holds no finished run (no ``results.json``). Raises ValueError
    naming every differing setting (recorded vs requested) when it holds another run, a
    results file without a training log, or one that fails validation.
    """
    if not (run_dir / RESULTS_FILE).is_file():
        return None
    results = read_results(run_dir)
    if "training" not in results:
        raise ValueError(
            f"invalid run folder {str(run_dir)!r}: its results.json is not a srhm train run "
            "(no training object); use a new --out"
        )
    keys = [key for key in RUN_SETTINGS if option_applies(opt, key)]  # e.g. no width with a factory
    found = (_difference(opt, key, _recorded(results, key, RUN_SETTINGS[key]), _requested(opt, key)) for key in keys)
    diffs = [diff for diff in found if diff is not None]
    if diffs:
        raise ValueError(
            f"invalid run folder {str(run_dir)!r}: it holds a finished run made with other settings: "
            f"{', '.join(diffs)}; use a new --out for this learning curve (finished runs are reused "
            "only when every setting agrees, never retrained over)"
        )
    return results


METRICS = ("best", "final")


def check_curve_options(
    P_min, P_max, points, threshold, metric, plot, cfg: SRHMConfig, task: str, group_size=None, seeds=None, base_seed=0
) -> None:
    """The learning-curve arguments of a curve of ``task`` on ``cfg``, checked before anything is trained
    (ValueError naming the parameter): the P grid (``protocol.log_spaced_P``: one point only when P_min =
    P_max), P_max within the train split, the threshold below the task's chance error
    (``protocol.check_threshold``); ``base_seed``: the seed of the base options, which must keep its default
    when ``seeds`` are given."""
    log_spaced_P(P_min, P_max, points)  # checks P_min, P_max, points
    train_size = cfg.split_sizes()["train"]
    require(P_max <= train_size, "P_max", P_max, f"P_max <= train size {train_size} of {cfg.name}")
    check_threshold(threshold, cfg, task)
    require(metric in METRICS, "metric", metric, f"one of {METRICS}")
    require(isinstance(plot, bool), "plot", plot, "True or False")
    require(
        group_size is None or (is_int(group_size) and group_size >= 1),
        "group_size",
        group_size,
        "None (automatic) or an int group_size >= 1",
    )
    require(
        seeds is None or (isinstance(seeds, (list, tuple)) and len(seeds) >= 1),
        "seeds",
        seeds,
        "None (the seed of the options) or a non-empty list of seeds",
    )
    for seed in seeds or ():
        require(is_int(seed) and 0 <= seed < SEED_BOUND, "seeds", seeds, "seeds that are ints 0 <= seed < 2**62")
    require(seeds is None or len(set(seeds)) == len(seeds), "seeds", seeds, "distinct seeds")
    require(
        seeds is None or base_seed == OPTION["seed"].default,
        "seeds",
        seeds,
        f"None when the options' seed is set (seed={base_seed!r}): the runs' seeds are that seed or seeds, not both",
    )


def check_curve_folder(out: Path, entries: list[str]) -> None:
    """``out`` may hold this learning curve: a new or empty folder, or one srhm wrote as a learning
    curve, whose top-level ``entries`` this curve writes (runs ``P<P>/`` or ``seed<S>/``, summary,
    plot) are all srhm's."""
    check_output_folder(out, "learning-curve", replace=False)
    owned = set((read_marker(out) or {}).get("entries", []))
    ours = [SUMMARY_FILE, PLOT_FILE, *entries]
    foreign = [name for name in ours if (out / name).exists() and name not in owned]
    require(
        not foreign,
        "out",
        str(out),
        f"a learning-curve folder whose {foreign} srhm wrote (they are not "
        "recorded in its marker); move them away or choose another --out",
    )


def curve_group_size(group_size: int | None, opt: TrainOptions) -> int:
    """How many runs of a learning curve of the resolved ``opt`` train as one group: 1 under
    ``torchrun`` (WORLD_SIZE > 1: data parallelism trains one run at a time) and for runs a group cannot
    stack (``group.groupable``: a user's model, another task or optimiser), else ``group_size``,
    or ``group.default_group_size(opt)`` when it is None."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or not groupable(opt):
        return 1
    return default_group_size(opt) if group_size is None else group_size


def run_learning_curve(
    base: TrainOptions,
    out: str | Path,
    P_min: int,
    P_max: int,
    points: int,
    threshold: float = EPSILON_STAR,
    metric: str = "best",
    plot: bool = True,
    group_size: int | None = None,
    seeds: list[int] | None = None,
) -> dict:
    """Train ``base`` (its P, seed and out are replaced) at log-spaced P for every seed; write and
    return the summary.

    seeds: the seeds of the runs (None: ``base.seed``, which must keep its default 0 when seeds are given);
    runs are ``P<P>/`` for one seed,
    ``seed<S>/P<P>/`` for several. group_size: runs trained at once by ``group.train_group``
    (``plan_groups``: runs that share ``GROUP_SHARED``, in order of P then seed); 1 trains one
    run after another with ``train``; None: ``group.default_group_size``; always 1 under
    ``torchrun`` (``curve_group_size``). Every argument and the folder ``out`` are checked
    before anything is trained (ValueError naming the parameter). ``out`` is marked as a srhm
    learning curve; an old summary and plot are removed before the first new run, so an
    interrupted curve never shows a summary of other runs; finished runs are kept and reused on
    the next call. ``out`` is held for the call (``files.claim_output``, on rank 0 under
    ``torchrun``: ``files.FolderInUse`` when another process writes it).
    """
    cfg = base.config if isinstance(base, TrainOptions) else None
    require(isinstance(cfg, SRHMConfig), "base", base, "TrainOptions with an SRHMConfig")
    task = base.task if base.task in TRAIN_TASKS else "class"  # another is refused when the runs are resolved
    check_curve_options(P_min, P_max, points, threshold, metric, plot, cfg, task, group_size, seeds, base.seed)
    out = Path(out)
    held = claim_output(out, "learning-curve", replace=False) if int(os.environ.get("RANK", "0")) == 0 else None
    with held or contextlib.nullcontext():
        plan = plan_curve(base, out, log_spaced_P(P_min, P_max, points), list(seeds or [base.seed]))
        train_runs(base, plan, curve_group_size(group_size, plan[-1].opt))
        resolved = plan[-1].opt  # the width and lr as resolved (per arch, format.md §10.2)
        summary = curve_summary(resolved, resolved.lr, [run.entry() for run in plan], threshold, metric)
        atomic_write(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
        if plot:
            plot_learning_curve(summary, out / PLOT_FILE)
    return summary


@dataclasses.dataclass
class CurveRun:
    """One run of a learning curve: its P and seed, folder, resolved options (out None) and results
    (a reusable finished run's, ``skipped``, or the new training's)."""

    P: int
    seed: int
    name: str  # the run folder, relative to the curve folder: P<P> or seed<S>/P<P>
    run_dir: Path
    opt: TrainOptions
    results: dict | None = None
    skipped: bool = False

    def entry(self) -> dict:
        """The summary's entry of the run (``runs`` of format.md §10.3)."""
        r, t = self.results, self.results["training"]
        return {
            "P": self.P,
            "seed": self.seed,
            "run": self.name,
            "skipped": self.skipped,
            "best_test_error": r["best_test_error"],
            "final_test_error": r["final_test_error"],
            "stop_reason": t["stop_reason"],
            "steps": t.get("steps"),
            "wall_time_s": t["wall_time_s"],
            "group_size": t.get("group", {}).get("size", 1),
        }


def run_name(P: int, seed: int, seeds: list[int]) -> str:
    """The run folder of (P, seed) in a curve of ``seeds``: ``P<P>`` for one seed, else ``seed<S>/P<P>``."""
    return f"P{P}" if len(seeds) == 1 else f"seed{seed}/P{P}"


def plan_curve(base: TrainOptions, out: Path, Ps: list[int], seeds: list[int]) -> list[CurveRun]:
    """The curve's runs, seed by seed and P by P, with the results of those finished and reusable.

    Checks the curve folder, every run folder and every finished run before anything is
    written (ValueError); then marks ``out`` as a learning curve (its top-level entries) and,
    when a run is still to train, removes the stale summary and plot.
    """
    names = {(P, seed): run_name(P, seed, seeds) for seed in seeds for P in Ps}
    entries = sorted({name.split("/")[0] for name in names.values()})
    check_curve_folder(out, entries)
    plan = [
        CurveRun(P, seed, name, out / name, resolve(dataclasses.replace(base, P=P, seed=seed, out=None)))
        for (P, seed), name in names.items()
    ]
    for run in plan:
        check_output_folder(run.run_dir, "run", replace=False, parameter="out")
    for run in plan:  # all checked first
        run.results = reusable_run(run.run_dir, run.opt)
        run.skipped = run.results is not None
    mark_owned(out, "learning-curve", [SUMMARY_FILE, PLOT_FILE, *entries])
    if not all(run.skipped for run in plan):
        for name in (SUMMARY_FILE, PLOT_FILE):  # stale once a new run starts
            (out / name).unlink(missing_ok=True)
    return plan


def train_runs(base: TrainOptions, plan: list[CurveRun], group_size: int) -> None:
    """Train the unfinished runs of ``plan`` (in order of P, then seed) in groups of at most
    ``group_size`` (``group.plan_groups``): ``train_group`` for two runs or more, ``train`` for one."""
    todo = sorted((run for run in plan if not run.skipped), key=lambda run: (run.P, run.seed))
    options = [dataclasses.replace(base, P=run.P, seed=run.seed, out=str(run.run_dir)) for run in todo]
    for group in plan_groups(options, group_size):
        members = [options[i] for i in group]
        for i, results in zip(group, train_group(members) if len(members) > 1 else [train(members[0])]):
            todo[i].results = results


def _p_star(Ps: list[int], errors: list[float], threshold: float, chance: float) -> dict:
    """P* at ``threshold`` (value, status, bracket) and at 10 % of chance error of one curve."""
    est = estimate_p_star(Ps, errors, threshold)
    return {
        "P_star": est["P_star"],
        "P_star_status": est["status"],
        "P_star_bracket": est["bracket"],
        "P_star_rel_chance": estimate_p_star(Ps, errors, 0.1 * chance)["P_star"],
    }


def _model_fields(base: TrainOptions) -> dict:
    """The summary's task and model fields (format.md §10.3): ``task`` with its options ``context``,
    ``mask_rate`` (0.15 for ``mlm`` when not given), ``noise`` and ``redraw`` (None where it does not apply),
    ``factory`` and ``name``; present for a user's model or a task other than the plain ``class`` (noise
    included); a reference network's plain ``class`` curve has none."""
    task = run_task(base)
    if base.factory is None and task.plain:
        return {}
    return {
        "task": task.name,
        "context": task.context,
        "mask_rate": task.mask_rate,
        "noise": task.noise,
        "redraw": redraw_setting(base),
        "factory": base.factory,
        "name": model_name(base) if base.factory is not None else None,
    }


def curve_summary(base: TrainOptions, lr: float, runs: list[dict], threshold: float, metric: str) -> dict:
    """The ``summary.json`` object (format ``SUMMARY_FORMAT``, format.md §10.3); ``lr`` as resolved at P_max.

    ``runs``: one entry per run (P, seed, ...). ``P_star`` (``_status``, ``_bracket``,
    ``_rel_chance``): P* at ``threshold`` and at 10 % of chance error of the curve of the
    test error averaged over the seeds at each P (with one seed, that seed's curve).
    ``seeds`` and ``P_star_per_seed``: each seed's own P*; ``P_star_seeds``: their spread
    (``p_star_spread``: crossed, geomean, min, max). ``law``, ``law_x``: the paper's law.
    """
    cfg = base.config
    chance = chance_error(cfg, base.task)
    seeds = list(dict.fromkeys(r["seed"] for r in runs))
    Ps = sorted({r["P"] for r in runs})
    error = {(r["P"], r["seed"]): r[f"{metric}_test_error"] for r in runs}
    mean = [sum(error[P, s] for s in seeds) / len(seeds) for P in Ps]
    per_seed = [{"seed": s, **_p_star(Ps, [error[P, s] for P in Ps], threshold, chance)} for s in seeds]
    est = _p_star(Ps, mean, threshold, chance)
    arch = base.arch if base.factory is None else CUSTOM_ARCH
    x = law_x(arch, cfg.L, cfg.s, cfg.s0, cfg.nc, cfg.m) if base.task == "class" else None  # None: no law
    return {
        "format": dict(SUMMARY_FORMAT),
        "config": cfg.name,
        "parameters": cfg.parameters(),
        "arch": arch,
        "width": base.width if base.factory is None else None,
        **_model_fields(base),
        "lr": lr,
        "data": base.data,
        "revision": base.revision,
        "metric": metric,
        "threshold": threshold,
        "chance_error": chance,
        **est,
        "seeds": seeds,
        "P_star_per_seed": per_seed,
        "P_star_seeds": p_star_spread([p["P_star"] for p in per_seed]),
        "law": LAW_NAMES.get(arch) if x is not None else None,
        "law_x": x,
        "P_star_over_law_x": None if est["P_star"] is None or x is None else est["P_star"] / x,
        "runs": runs,
    }


def plot_learning_curve(summary: dict, path: str | Path) -> None:
    """Test error vs P (log x), the threshold and P* (PNG; a matplotlib Figure outside pyplot, so the
    caller's backend and open figures are left as they were)."""
    import matplotlib.ticker
    from matplotlib.figure import Figure

    runs, metric = summary["runs"], summary["metric"]
    several = len(summary.get("seeds", [])) > 1
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for seed in summary["seeds"] if several else []:
        mine = [r for r in runs if r["seed"] == seed]
        ax.plot(
            [r["P"] for r in mine],
            [r[f"{metric}_test_error"] for r in mine],
            ".-",
            lw=0.6,
            alpha=0.5,
            label=f"seed {seed}",
        )
    Ps = sorted({r["P"] for r in runs})
    errors = [[r[f"{metric}_test_error"] for r in runs if r["P"] == P] for P in Ps]
    ax.plot(
        Ps,
        [sum(e) / len(e) for e in errors],
        "o-",
        label=f"{summary.get('name') or summary['arch']} ({metric} test error{', mean over seeds' if several else ''})",
    )
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
