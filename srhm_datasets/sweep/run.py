"""``run_sweep``: run a sweep's missing jobs, evaluate every run, write the leaderboard and the P* summary.

One call:

1. reads and validates the sweep file (:func:`spec.load_sweep`) and checks DIR
   (``files.check_output_folder``, kind ``sweep``), a user's model's source
   (``check_factory_source``) and every job's finished runs against the job's settings
   and code, before anything runs; any problem is a ValueError naming it;
2. takes DIR's lock (``files.claim_output``: one writer per DIR at a time), marks DIR and
   writes ``sweep.yaml`` and ``plan.json``;
3. reads every job's state (``plan.job_status``): jobs that are done are skipped, jobs
   alive (a SLURM job in the queue, or this DIR's local process) are left alone, and the
   others (never started, failed, killed) are run: on the local pool, which blocks, or
   submitted as one SLURM job array, which returns at once unless ``wait``;
4. once every job is done: evaluates any run still lacking its evaluation, builds the
   leaderboard of ``DIR/runs`` into ``DIR/leaderboard`` and writes the P* summary
   (``pstar.json``, ``pstar.md``).

A job (:func:`run_job`, in the worker process or on the SLURM node) trains its learning
curve (:func:`train_curve`: ``run_learning_curve``, which skips finished runs with the
same settings and trains the others in groups, one stacked model each) and then evaluates
its runs (``evaluate_run``: test error, S and D).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

from ..baselines.factory import source_sha256
from ..baselines.learning_curve import run_learning_curve
from ..catalog import release_name
from ..config import require
from ..evaluation.board_entries import task_label
from ..evaluation.board_render import fmt_p
from ..files import atomic_write, check_output_folder, claim_output, lock_holder, mark_owned, remove_locks
from ..protocol import p_star_spread
from .executors import check_slurm, read_queue, run_local, submit_slurm, wait_slurm
from .plan import (
    ENTRIES,
    LEADERBOARD,
    PSTAR_JSON,
    PSTAR_MD,
    RUNS,
    Job,
    JobStatus,
    expand,
    job_status,
    progress,
    read_plan,
    read_record,
    unevaluated_runs,
    write_plan,
)
from .spec import executor_options, load_sweep

PSTAR_FORMAT = {"name": "srhm-sweep-pstar", "version": 1}


# ---------------------------------------------------------------------------------------
# one job (runs in a worker process or on a SLURM node)
# ---------------------------------------------------------------------------------------
def train_curve(job: Job, folder: Path) -> dict:
    """Train the job's learning curve into ``folder``; the one call that trains. Its runs still to train
    are trained in groups of ``group.default_group_size`` (the grouped learning curve; one job is one
    seed, so a group holds the job's P values)."""
    return run_learning_curve(
        job.options(),
        folder,
        *job.P,
        threshold=job.curve["threshold"],
        metric=job.curve["metric"],
        plot=job.curve["plot"],
        group_size=None,
    )


def evaluate_runs(out: Path, job: Job) -> int:
    """Evaluate (test error, S and D) every finished run of the job not yet evaluated as requested."""
    from ..evaluation.evaluate import evaluate_run

    ev = job.evaluate
    todo = unevaluated_runs(out, job)
    for folder in todo:
        evaluate_run(
            folder,
            probe_source=ev["probe_source"],
            num_test=ev["num_test"],
            num_probe=ev["num_probe"],
            batch_size=ev["batch_size"],
            device=ev["device"],
        )
    return len(todo)


def run_job(out: str, job: Job) -> dict:
    """A job's work: train its missing runs, then evaluate them. Returns ``{"job", "P_star"}``."""
    out = Path(out)
    summary = train_curve(job, job.folder(out))
    if job.evaluate["enabled"]:
        evaluate_runs(out, job)
    return {"job": job.id, "P_star": summary["P_star"]}


def lock_owner(out: Path) -> int | None:
    """Pid of the process on this host holding DIR's lock (``files.lock_holder``), None when none does."""
    holder = lock_holder(out)
    return holder["pid"] if holder is not None and holder.get("host") == socket.gethostname() else None


# ---------------------------------------------------------------------------------------
# the state of every job
# ---------------------------------------------------------------------------------------
def statuses(out: Path, jobs: list[Job], holding_lock: bool = False) -> list[JobStatus]:
    """Every job's state; the SLURM queue is read only when some job was submitted there.

    holding_lock: the caller holds DIR's lock, so no other process runs local jobs there
    (a local attempt that is not done has ended).
    """
    slurm = any(a["executor"] == "slurm" for job in jobs for a in (read_record(out, job) or {}).get("attempts", []))
    queue = None
    if slurm:
        try:
            queue = read_queue()
        except RuntimeError:
            queue = None  # jobs whose state cannot be read are taken as alive, never resubmitted
    owner = None if holding_lock else lock_owner(out)
    return [job_status(out, job, queue, owner) for job in jobs]


def sweep_status(out: str | os.PathLike) -> list[JobStatus]:
    """The state of every job of the sweep in DIR (``srhm sweep status DIR``)."""
    out = Path(out).absolute()
    _, jobs = read_plan(out)
    return statuses(out, jobs)


# ---------------------------------------------------------------------------------------
# the whole sweep
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class SweepReport:
    out: Path
    executor: str
    before: list[JobStatus]  # states found at the start of the call
    started: list[str]  # ids of the jobs run or submitted by this call
    slurm_ids: list[str]  # the SLURM job ids submitted by this call
    errors: dict[str, str]  # job id -> traceback of the local jobs that raised in this call
    after: list[JobStatus]  # states at the end of the call
    finished: dict | None  # what finalize wrote, once every job is done


def check_conflicts(out: Path, jobs: list[Job]) -> None:
    """ValueError naming every finished run made with settings other than its job's (nothing is run)."""
    conflicts = [c for job in jobs for c in progress(out, job).conflicts]
    if conflicts:
        raise ValueError(
            f"invalid parameter out={str(out)!r}: {len(conflicts)} conflict(s) with runs already "
            "there:\n" + "\n".join(f"  - {c}" for c in conflicts)
        )


def check_factory_source(train: dict) -> None:
    """A sweep of a user's model (``train["factory"]``) knows its finished runs, and the code that made them,
    from its files (``learning_curve.reusable_run``): the source of the factory's module must be available
    (``factory.source_sha256``), else a ValueError naming ``factory`` before anything runs."""
    factory = train.get("factory")
    if factory is not None:
        require(
            source_sha256(factory) is not None,
            "factory",
            factory,
            "a factory whose module has a source file (inspect.getsource): a sweep ties each finished run "
            "to the code that made it by the hash of that source",
        )


def run_sweep(
    sweep_file: str | os.PathLike,
    out: str | os.PathLike,
    executor: str = "local",
    wait: bool = False,
    options: dict | None = None,
    progress_bar: bool = True,
    poll_s: float = 10.0,
) -> SweepReport:
    """Run the sweep of ``sweep_file`` in ``out`` (see the module docstring); returns what it found and did.

    executor: "local" (blocks) or "slurm" (returns after submitting unless ``wait``);
    options: overrides of the sweep file's ``executor.<executor>`` options (None values
    ignored; ``sbatch`` is merged). Raises ValueError (a bad sweep file, DIR, option,
    no SLURM clients, or a conflict with runs in DIR) before anything runs;
    ``files.FolderInUse`` when another process writes DIR; RuntimeError when SLURM refuses
    the submission.
    """
    sweep = load_sweep(sweep_file)
    opts = executor_options(sweep, executor, options)
    out = check_output_folder(out, "sweep", replace=False, parameter="out")
    if executor == "slurm":
        check_slurm()
    jobs = expand(sweep)
    check_factory_source(sweep.train)
    check_conflicts(out, jobs)
    with claim_output(out, "sweep", replace=False):
        check_conflicts(out, jobs)  # again, under the lock
        mark_owned(out, "sweep", ENTRIES)
        write_plan(out, sweep, jobs)
        before = statuses(out, jobs, holding_lock=True)
        todo = [s.job for s in before if s.state != "done" and not s.live]
        for job in todo:  # no attempt of theirs is alive: a lock left in their folders is a dead one's
            remove_locks(job.folder(out))
        errors, slurm_ids = {}, []
        if todo and executor == "local":
            errors = run_local(out, todo, run_job, workers=opts["workers"], progress=progress_bar)
        elif todo:
            attempts = submit_slurm(out, todo, run_job, opts, name=f"srhm-sweep-{sweep.name}")
            slurm_ids = [a["slurm_job_id"] for a in attempts]
        if executor == "slurm" and wait:
            alive = [s.job for s in before if s.live] + todo
            wait_slurm(out, alive, slurm_ids + _live_slurm_ids(out, before), progress=progress_bar, poll_s=poll_s)
        after = statuses(out, jobs, holding_lock=True)
        finished = finalize(out, jobs) if all(s.state == "done" for s in after) else None
    return SweepReport(out, executor, before, [j.id for j in todo], slurm_ids, errors, after, finished)


def _live_slurm_ids(out: Path, found: list[JobStatus]) -> list[str]:
    """SLURM job ids of the jobs found alive (submitted by an earlier call)."""
    ids = []
    for s in found:
        attempts = (read_record(out, s.job) or {}).get("attempts", [])
        if s.live and attempts and attempts[-1]["executor"] == "slurm":
            ids.append(attempts[-1]["slurm_job_id"])
    return ids


# ---------------------------------------------------------------------------------------
# once every job is done: evaluation, leaderboard, P* summary
# ---------------------------------------------------------------------------------------
def finalize(out: Path, jobs: list[Job]) -> dict:
    """Evaluate what is left, build ``DIR/leaderboard`` and write ``pstar.json`` / ``pstar.md``."""
    from ..evaluation.leaderboard import build_leaderboard

    evaluated = sum(evaluate_runs(out, job) for job in jobs if job.evaluate["enabled"])
    board = build_leaderboard(out / RUNS, out / LEADERBOARD)
    pstar = pstar_summary(out, jobs)
    atomic_write(out / PSTAR_JSON, json.dumps(pstar, indent=2) + "\n")
    atomic_write(out / PSTAR_MD, pstar_markdown(pstar))
    return {
        "evaluated": evaluated,
        "leaderboard": str(out / LEADERBOARD / "index.md"),
        "rejected": board["rejected"],
        "pstar": str(out / PSTAR_MD),
        "curves": pstar["curves"],
    }


def curve_model(summary: dict) -> str:
    """The model of a learning curve's ``summary.json``: its ``name`` (a user's model), else its ``arch``."""
    return summary.get("name") or summary["arch"]


def curve_task(summary: dict, cfg) -> str:
    """The task of a learning curve's ``summary.json`` with its options, as the leaderboard labels it
    (``board_entries.task_label``: ``class`` for a plain class curve, whose summary has no task fields)."""
    fields = {key: summary.get(key) for key in ("context", "mask_rate", "noise")}
    return task_label(cfg, summary.get("task", "class"), **fields)


def pstar_summary(out: Path, jobs: list[Job]) -> dict:
    """P* of every job's curve (its ``summary.json``) and, per (config, model, task, width, lr), over its seeds.

    ``curves``: one row per job (config: catalog name else canonical name, model: the network or the user's
    model's name, arch, task with its options (``curve_task``), width, lr as resolved, seed, P*, status,
    bracket, law x, P*/x). ``groups``: per grid point without the seed, the seeds, the geometric mean of the
    interpolated P* (None when no seed crossed) and their min and max.
    """
    curves = []
    for job in jobs:
        s = json.loads((job.folder(out) / "summary.json").read_text(encoding="utf-8"))
        curves.append(
            {
                "job": job.id,
                "config": release_name(job.config),
                "model": curve_model(s),
                "arch": s["arch"],
                "task": curve_task(s, job.config),
                "width": s["width"],
                "lr": s["lr"],
                "seed": job.seed,
                "P_star": s["P_star"],
                "status": s["P_star_status"],
                "bracket": s["P_star_bracket"],
                "law_x": s["law_x"],
                "P_star_over_law_x": s["P_star_over_law_x"],
            }
        )
    groups: dict[tuple, list[dict]] = {}
    for c in curves:
        groups.setdefault(tuple(c[key] for key in GROUP_KEYS), []).append(c)
    rows = []
    for key, members in groups.items():
        spread = p_star_spread([c["P_star"] for c in members])
        mean, x = spread["geomean"], members[0]["law_x"]
        rows.append(
            {
                **dict(zip(GROUP_KEYS, key)),
                "arch": members[0]["arch"],
                "seeds": [c["seed"] for c in members],
                "crossed": spread["crossed"],
                "P_star_geomean": mean,
                "P_star_min": spread["min"],
                "P_star_max": spread["max"],
                "law_x": x,
                "P_star_over_law_x": None if mean is None or x is None else mean / x,
            }
        )
    return {
        "format": dict(PSTAR_FORMAT),
        "threshold": jobs[0].curve["threshold"] if jobs else None,
        "curves": curves,
        "groups": rows,
    }


#: What a group of ``pstar.json`` shares: the curves of one grid point over its seeds.
GROUP_KEYS = ("config", "model", "task", "width", "lr")


def _g(value) -> str:
    """A number to 4 significant digits; ``-`` for a missing value."""
    return "-" if value is None else f"{value:.4g}"


def _p(value) -> str:
    """A P* or a P as the board prints it (``board_render.fmt_p``: an integer to 3 significant digits); ``-``
    for a missing value."""
    return "-" if value is None else fmt_p(value)


def _bracket(bracket) -> str:
    """A P* bracket ``[P_lo, P_hi]`` (grid points, as they are) with ``-`` for an open end; ``-`` for none."""
    return "-" if bracket is None else f"[{', '.join('-' if p is None else str(p) for p in bracket)}]"


def pstar_markdown(pstar: dict) -> str:
    """The P* summary as Markdown: one table over seeds, one per curve; a missing value is ``-``."""
    lines = [
        f"# P* of the sweep (test error threshold {pstar['threshold']})",
        "",
        "| config | model | task | width | lr | seeds crossed | P* (geometric mean) | min | max | law x | P*/x |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {g['config']} | {g['model']} | {g['task']} | {'-' if g['width'] is None else g['width']} | {g['lr']:g} | "
        f"{g['crossed']}/{len(g['seeds'])} | {_p(g['P_star_geomean'])} | {_p(g['P_star_min'])} | "
        f"{_p(g['P_star_max'])} | {_g(g['law_x'])} | {_g(g['P_star_over_law_x'])} |"
        for g in pstar["groups"]
    ]
    lines += ["", "| job | task | P* | status | bracket |", "| --- | --- | ---: | --- | --- |"]
    lines += [
        f"| {c['job']} | {c['task']} | {_p(c['P_star'])} | {c['status']} | {_bracket(c['bracket'])} |"
        for c in pstar["curves"]
    ]
    return "\n".join(lines) + "\n"


__all__ = [
    "SweepReport",
    "evaluate_runs",
    "finalize",
    "pstar_summary",
    "run_job",
    "run_sweep",
    "sweep_status",
    "train_curve",
]
