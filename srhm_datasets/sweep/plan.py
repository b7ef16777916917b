"""A sweep's jobs (one learning curve each) and the state of each job, read from the files in DIR.

A sweep folder DIR (kind ``sweep`` of ``files.check_output_folder``) holds:

- ``sweep.yaml``: the sweep file as last given; ``plan.json``: the validated sweep with
  every default filled in and its jobs (id, fingerprint, settings);
- ``runs/<job id>/``: one learning-curve folder per job (``P<P>/results.json`` and
  ``checkpoint.pt`` per run, ``summary.json``, ``learning_curve.png``);
- ``jobs/<job id>.json``: the job's record: its settings and every attempt to run it
  (executor, SLURM job id and log paths, or the local process and the error it raised);
- ``logs/<slurm job id>/``: submitit's files and the SLURM logs of each job;
- ``leaderboard/`` (``srhm leaderboard`` of ``runs/``), ``pstar.json`` and ``pstar.md``
  (P* of every curve), written once every job is done;

A job's id names its grid point: ``<config>-<arch>-w<width>-lr<lr|default>-seed<seed>``
(config: catalog name, else canonical name), the same whatever else the grid holds. Its
fingerprint is a hash of the settings its runs are made with (config, arch, width, lr,
seed and the ``train`` settings other than threads and device); the P grid, the
P* threshold and the evaluation settings may change between calls.

A run is finished when its ``results.json`` validates and was made with the job's
settings (``learning_curve.reusable_run``): results files are written atomically and
last, so a killed run leaves none and is redone. A run is evaluated when its results
hold an ``evaluation`` of the requested test and probe sizes. A job is done when all its
runs are finished (and evaluated, unless evaluation is off) and its ``summary.json``
covers its P grid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import time
from pathlib import Path

from ..baselines.learning_curve import reusable_run
from ..baselines.train import TrainOptions, resolve
from ..config import SRHMConfig
from ..executors import log_tail
from ..files import atomic_write
from ..protocol import RESULTS_FILE, log_spaced_P
from ..results import read_results
from .spec import Sweep, grid, job_id, job_width, point_id, run_options

PLAN = "plan.json"
SWEEP_COPY = "sweep.yaml"
RUNS = "runs"
JOBS = "jobs"
LOGS = "logs"
LEADERBOARD = "leaderboard"
PSTAR_JSON = "pstar.json"
PSTAR_MD = "pstar.md"
#: Top-level entries the package writes in a sweep folder (its marker lists them).
ENTRIES = (PLAN, SWEEP_COPY, RUNS, JOBS, LOGS, LEADERBOARD, PSTAR_JSON, PSTAR_MD)
PLAN_FORMAT = {"name": "srhm-sweep-plan", "version": 1}
#: ``train`` settings that do not change a run's results (left out of the fingerprint).
NOT_FINGERPRINTED = ("threads", "device")
STATES = ("done", "running", "failed", "pending")


@dataclasses.dataclass(frozen=True)
class Job:
    """One learning curve of a sweep: a grid point and the settings shared by the sweep."""

    id: str
    config: SRHMConfig
    arch: str
    width: int | None  # None: a user's model (factory)
    lr: float | None
    seed: int
    P: tuple[int, int, int]  # (P_min, P_max, points)
    train: dict  # TrainOptions fields
    curve: dict  # threshold, metric, plot
    evaluate: dict  # enabled, num_test, num_probe, batch_size, device, probe_source

    @property
    def Ps(self) -> list[int]:
        """The training-set sizes of its runs (``log_spaced_P``, as ``run_learning_curve`` makes them)."""
        return log_spaced_P(*self.P)

    def options(self) -> TrainOptions:
        """The base TrainOptions of its runs (``spec.run_options``; ``run_learning_curve`` sets P and out per run)."""
        return run_options(self.config, self.arch, self.width, self.lr, self.seed, self.P[1], self.train)

    def settings(self) -> dict:
        """Everything that defines the job, as JSON-able data (``from_settings`` inverts it)."""
        return {
            "config": self.config.name,
            "arch": self.arch,
            "width": self.width,
            "lr": self.lr,
            "seed": self.seed,
            "P": list(self.P),
            "train": self.train,
            "curve": self.curve,
            "evaluate": self.evaluate,
        }

    @classmethod
    def from_settings(cls, job_id: str, settings: dict) -> Job:
        return cls(
            id=job_id,
            config=SRHMConfig.from_name(settings["config"]),
            arch=settings["arch"],
            width=settings["width"],
            lr=settings["lr"],
            seed=settings["seed"],
            P=tuple(settings["P"]),
            train=settings["train"],
            curve=settings["curve"],
            evaluate=settings["evaluate"],
        )

    def run_settings(self) -> dict:
        """The settings its runs are made with (what the fingerprint covers)."""
        settings = self.settings()
        train = {k: v for k, v in self.train.items() if k not in NOT_FINGERPRINTED}
        return {**{k: settings[k] for k in ("config", "arch", "width", "lr", "seed")}, "train": train}

    @property
    def fingerprint(self) -> str:
        """16 hex digits of the SHA-256 of ``run_settings`` (canonical JSON)."""
        text = json.dumps(self.run_settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def folder(self, out: Path) -> Path:
        """Its learning-curve folder, ``DIR/runs/<id>``."""
        return Path(out) / RUNS / self.id


def expand(sweep: Sweep) -> list[Job]:
    """The sweep's jobs: configs x archs x widths x lrs x seeds, in that order (``spec.grid``)."""
    factory = sweep.train.get("factory")
    return [
        Job(
            id=point_id(point, factory),
            config=point.entry.config,
            arch=point.arch,
            width=job_width(point.arch, point.width, factory),
            lr=point.lr,
            seed=point.seed,
            P=point.entry.P,
            train=dict(sweep.train),
            curve=dict(sweep.curve),
            evaluate=dict(sweep.evaluate),
        )
        for point in grid(sweep)
    ]


# ---------------------------------------------------------------------------------------
# plan.json and the job records
# ---------------------------------------------------------------------------------------
def write_plan(out: Path, sweep: Sweep, jobs: list[Job]) -> None:
    """``DIR/sweep.yaml`` (the file as given) and ``DIR/plan.json`` (the sweep and its jobs)."""
    atomic_write(out / SWEEP_COPY, sweep.text)
    doc = {
        "format": PLAN_FORMAT,
        "sweep": sweep.document(),
        "jobs": [{"id": j.id, "fingerprint": j.fingerprint, "settings": j.settings()} for j in jobs],
    }
    atomic_write(out / PLAN, json.dumps(doc, indent=1) + "\n")


def read_plan(out: Path) -> tuple[dict, list[Job]]:
    """``(sweep document, jobs)`` from ``DIR/plan.json``; ValueError naming DIR when it has none."""
    path = Path(out) / PLAN
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(
            f"invalid parameter DIR={str(out)!r}: must be a sweep folder with a readable {PLAN} ({err})"
        ) from None
    return doc["sweep"], [Job.from_settings(j["id"], j["settings"]) for j in doc["jobs"]]


def record_path(out: Path, job: Job) -> Path:
    return Path(out) / JOBS / f"{job.id}.json"


def read_record(out: Path, job: Job) -> dict | None:
    """The job's record (settings and attempts), None when it was never started."""
    try:
        return json.loads(record_path(out, job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def add_attempt(out: Path, job: Job, attempt: dict) -> dict:
    """Append an attempt (executor, ids, paths) to the job's record; returns the attempt."""
    record = read_record(out, job) or {"id": job.id, "attempts": []}
    record.update(fingerprint=job.fingerprint, settings=job.settings())
    attempt = {
        "executor": attempt.pop("executor"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
        **attempt,
    }
    record["attempts"].append(attempt)
    atomic_write(record_path(out, job), json.dumps(record, indent=1) + "\n")
    return attempt


def update_last_attempt(out: Path, job: Job, **fields) -> None:
    """Add ``fields`` (e.g. the error a local job raised) to the job's last attempt."""
    record = read_record(out, job)
    record["attempts"][-1].update(fields)
    atomic_write(record_path(out, job), json.dumps(record, indent=1) + "\n")


# ---------------------------------------------------------------------------------------
# progress of a job, read from its files
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class Progress:
    """How far a job's runs are: counts, and the conflicts that forbid running it."""

    finished: int
    evaluated: int
    total: int
    summary: bool  # summary.json covers the P grid
    conflicts: list[str]

    def done(self, evaluate: bool) -> bool:
        return (
            not self.conflicts
            and self.finished == self.total
            and self.summary
            and (self.evaluated == self.total or not evaluate)
        )


def run_dir(out: Path, job: Job, P: int) -> Path:
    return job.folder(out) / f"P{P}"


def run_options_at(job: Job, P: int) -> TrainOptions:
    """The resolved options of the job's run at P. ``threads`` is left out: it is checked against the CPUs of
    the machine that trains the run (a SLURM node), not of the one planning it. ValueError naming an option
    (a sweep file's options are checked when it is read, ``spec.load_sweep``)."""
    return resolve(dataclasses.replace(job.options(), P=P, out=None, device=None, threads=None))


def finished_run(out: Path, job: Job, P: int) -> dict | None:
    """The results of the job's run at P when finished with the job's settings, else None.

    Raises ValueError naming an option (``run_options_at``), or (from ``reusable_run``) naming the run
    folder when it holds a run made with other settings or an invalid results file.
    """
    return reusable_run(run_dir(out, job, P), run_options_at(job, P))


def evaluation_matches(results: dict, job: Job) -> bool:
    """Whether ``results`` hold an evaluation on the requested test and probe sizes (None: the whole split;
    no probe for a run of a task other than class, format.md §11)."""
    ev = results.get("evaluation")
    if ev is None:
        return False
    sizes = job.config.split_sizes()
    num_test = job.evaluate["num_test"] or sizes["test"]
    num_probe = job.evaluate["num_probe"] or sizes["probe"]
    return ev["num_test"] == num_test and (ev["probe"] is None or ev["probe"]["num_points"] == num_probe)


def progress(out: Path, job: Job) -> Progress:
    """Count the job's finished and evaluated runs; a run of other settings is a conflict."""
    finished = evaluated = 0
    conflicts = []
    for P in job.Ps:
        opt = run_options_at(job, P)  # a bad option is its own error, no conflict with the runs in DIR
        try:
            results = reusable_run(run_dir(out, job, P), opt)
        except ValueError as err:
            conflicts.append(str(err))
            continue
        if results is not None:
            finished += 1
            evaluated += evaluation_matches(results, job)
    record = read_record(out, job)
    if record is not None and record.get("fingerprint") not in (None, job.fingerprint) and finished:
        conflicts.append(_changed_settings(job, record))
    return Progress(finished, evaluated, len(job.Ps), _summary_covers(out, job), conflicts)


def _changed_settings(job: Job, record: dict) -> str:
    old = Job.from_settings(job.id, record["settings"]).run_settings()
    new = job.run_settings()
    old, new = _flat(old), _flat(new)
    diffs = [
        f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
    ]
    return (
        f"job {job.id} has finished runs made with other settings: {', '.join(diffs)}; use a new --out "
        "(finished runs are never trained over)"
    )


def _flat(settings: dict) -> dict:
    """Run settings with the ``train`` ones as ``train.<name>`` keys."""
    top = {k: v for k, v in settings.items() if k != "train"}
    return {**top, **{f"train.{k}": v for k, v in settings["train"].items()}}


def _summary_covers(out: Path, job: Job) -> bool:
    try:
        summary = json.loads((job.folder(out) / "summary.json").read_text(encoding="utf-8"))
        return sorted(r["P"] for r in summary["runs"]) == job.Ps
    except (OSError, ValueError, KeyError, TypeError):
        return False


def unevaluated_runs(out: Path, job: Job) -> list[Path]:
    """Run folders of the job that are finished but not evaluated as requested."""
    todo = []
    for P in job.Ps:
        results = read_results(run_dir(out, job, P)) if (run_dir(out, job, P) / RESULTS_FILE).is_file() else None
        if results is not None and not evaluation_matches(results, job):
            todo.append(run_dir(out, job, P))
    return todo


# ---------------------------------------------------------------------------------------
# the state of a job
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class JobStatus:
    job: Job
    state: str  # one of STATES
    reason: str
    progress: Progress
    live: bool  # a process or SLURM job is working on it now (running or queued)


def job_status(out: Path, job: Job, queue: dict | None, local_owner: int | None) -> JobStatus:
    """The state of ``job`` from its files, its record and what is alive now.

    queue: SLURM job id -> (state, reason) of the jobs in the queue (``squeue``), None
    when the queue cannot be read. local_owner: pid of the ``srhm sweep`` process holding
    DIR's lock on this host, None when none does.
    """
    prog = progress(out, job)
    counts = f"{prog.finished}/{prog.total} runs finished, {prog.evaluated} evaluated"
    evaluate = job.evaluate["enabled"]
    if prog.conflicts:
        return JobStatus(job, "failed", "; ".join(prog.conflicts), prog, False)
    if prog.done(evaluate):
        return JobStatus(job, "done", counts, prog, False)
    record = read_record(out, job)
    attempt = record["attempts"][-1] if record and record.get("attempts") else None
    if attempt is None:
        return JobStatus(job, "pending", f"not started ({counts})", prog, False)
    if attempt["executor"] == "slurm":
        return _slurm_status(job, attempt, queue, prog, counts)
    if local_owner is not None and attempt.get("pid") == local_owner and attempt.get("host") == socket.gethostname():
        return JobStatus(job, "running", f"in local process {local_owner} ({counts})", prog, True)
    error = attempt.get("error")
    if error:
        return JobStatus(job, "failed", f"local job raised {error.strip().splitlines()[-1]} ({counts})", prog, False)
    return JobStatus(
        job, "failed", f"local process {attempt.get('pid')} ended before the job finished ({counts})", prog, False
    )


def _slurm_status(job: Job, attempt: dict, queue: dict | None, prog: Progress, counts: str) -> JobStatus:
    slurm_id = attempt["slurm_job_id"]
    if queue is None:
        return JobStatus(
            job, "running", f"SLURM job {slurm_id}: queue unreadable, assumed alive ({counts})", prog, True
        )
    if slurm_id in queue:
        state, why = queue[slurm_id]
        if state in ("RUNNING", "COMPLETING", "CONFIGURING"):
            return JobStatus(job, "running", f"SLURM job {slurm_id} {state} ({counts})", prog, True)
        return JobStatus(job, "pending", f"queued as SLURM job {slurm_id}: {state} ({why}) ({counts})", prog, True)
    tail = log_tail(attempt)
    return JobStatus(
        job, "failed", f"SLURM job {slurm_id} ended before the job finished ({counts}); {tail}", prog, False
    )


__all__ = [
    "ENTRIES",
    "STATES",
    "Job",
    "JobStatus",
    "Progress",
    "expand",
    "job_id",
    "job_status",
    "progress",
    "read_plan",
    "write_plan",
]
