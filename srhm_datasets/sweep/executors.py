"""Where a sweep's jobs run: a process pool on this machine, or SLURM job arrays through submitit.

Both take the jobs to run and a job function ``fn(out: str, job: Job)`` (``run.run_job``)
and record every attempt in the job's record (``plan.add_attempt``), so that
``srhm sweep status`` and the next call know what was started, where, and what became
of it.

- :func:`run_local`: a ``concurrent.futures`` process pool (spawned workers, so torch
  starts clean in each), blocking, with a tqdm bar over runs (finished ``results.json``
  files). An exception in a job is stored in its record with its traceback; the other
  jobs go on.
- :func:`submit_slurm`: one ``submitit`` job array (``map_array``), logs under
  ``DIR/logs/<slurm job id>/``; returns after submitting. :func:`wait_slurm` polls the
  queue (``squeue``) until the jobs have left it. :func:`read_queue` is the queue
  (``squeue -r``: one line per array task), which tells the jobs that are still alive
  without SLURM's accounting database (``sacct``), which small clusters often lack.

Torch CPU threads per job: the sweep's ``train.threads``, else the CPUs of the machine
divided among the local workers, or the job's ``cpus_per_task`` on SLURM.
"""

from __future__ import annotations

import dataclasses
import getpass
import multiprocessing
import os
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from tqdm.auto import tqdm

from ..config import require
from ..results import FILENAME as RESULTS_FILE
from .plan import LOGS, Job, add_attempt, run_dir, update_last_attempt

#: squeue states of a job that is still alive (pending, running or finishing).
SLURM_ALIVE = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "RESIZING")


def with_threads(job: Job, threads: int) -> Job:
    """``job`` with ``train.threads`` set to ``threads`` unless the sweep file set it."""
    if job.train["threads"] is not None:
        return job
    return dataclasses.replace(job, train={**job.train, "threads": max(1, threads)})


def finished_runs(out: Path, jobs: list[Job]) -> int:
    """How many runs of ``jobs`` have a results file (the progress bar's count)."""
    return sum((run_dir(out, job, P) / RESULTS_FILE).is_file() for job in jobs for P in job.Ps)


def _bar(out: Path, jobs: list[Job], enabled: bool, desc: str) -> tqdm:
    total = sum(len(job.Ps) for job in jobs)
    return tqdm(total=total, initial=finished_runs(out, jobs), unit="run", desc=desc, disable=not enabled)


# ---------------------------------------------------------------------------------------
# local: a process pool
# ---------------------------------------------------------------------------------------
def run_local(out: Path, jobs: list[Job], fn: Callable, workers: int | None = None, progress: bool = True,
              poll_s: float = 1.0) -> dict[str, str]:
    """Run ``fn(str(out), job)`` for every job in a pool of ``workers`` processes (default: CPUs).

    Blocks until all have ended; returns {job id: traceback} of the jobs that raised.
    """
    require(workers is None or workers >= 1, "workers", workers, "workers >= 1")
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    jobs = [with_threads(job, (os.cpu_count() or 1) // workers) for job in jobs]
    errors: dict[str, str] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool, \
            _bar(out, jobs, progress, f"sweep ({workers} local workers)") as bar:
        futures = {}
        for job in jobs:
            add_attempt(out, job, {"executor": "local", "pid": os.getpid()})
            futures[pool.submit(fn, str(out), job)] = job
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
            for future in done:
                if future.exception() is not None:
                    job = futures[future]
                    errors[job.id] = "".join(traceback.format_exception(future.exception()))
                    update_last_attempt(out, job, error=errors[job.id])
            bar.update(finished_runs(out, jobs) - bar.n)
    return errors


# ---------------------------------------------------------------------------------------
# SLURM: submitit job arrays
# ---------------------------------------------------------------------------------------
def check_slurm() -> None:
    """ValueError unless SLURM's clients (sbatch, squeue, srun) are on PATH."""
    missing = [cmd for cmd in ("sbatch", "squeue", "srun") if shutil.which(cmd) is None]
    require(not missing, "executor", "slurm", f"SLURM's clients on PATH (missing: {', '.join(missing)})")


def submitit_parameters(options: dict, name: str) -> dict:
    """``update_parameters`` keywords of a submitit AutoExecutor from the sweep's ``executor.slurm`` options."""
    params = {"name": name, "timeout_min": options["time_min"], "cpus_per_task": options["cpus_per_task"],
              "slurm_array_parallelism": options["array_parallelism"]}
    optional = {"gpus_per_node": options["gpus_per_node"] or None, "mem_gb": options["mem_gb"],
                "slurm_partition": options["partition"], "slurm_account": options["account"],
                "slurm_additional_parameters": dict(options["sbatch"]) or None,
                "slurm_setup": list(options["setup"]) or None}
    return {**params, **{k: v for k, v in optional.items() if v is not None}}


def import_submitit():
    """``submitit``, imported without its logging set-up.

    At import submitit calls ``logging.config.dictConfig``, which closes every handler
    already installed in the process (a caller's log files; pytest's). With
    ``SUBMITIT_LOG_LEVEL=NOCONFIG`` during the import it leaves logging alone; its
    warnings still reach stderr through logging's last-resort handler.
    """
    old = os.environ.get("SUBMITIT_LOG_LEVEL")
    os.environ["SUBMITIT_LOG_LEVEL"] = "NOCONFIG"
    try:
        import submitit
    finally:
        if old is None:
            del os.environ["SUBMITIT_LOG_LEVEL"]
        else:
            os.environ["SUBMITIT_LOG_LEVEL"] = old
    return submitit


def submit_slurm(out: Path, jobs: list[Job], fn: Callable, options: dict, name: str) -> list[dict]:
    """Submit the jobs as one SLURM job array; record and return each job's attempt (ids, log paths).

    Raises RuntimeError with sbatch's message when SLURM refuses the array (nothing is recorded).
    """
    submitit = import_submitit()
    check_slurm()
    jobs = [with_threads(job, options["cpus_per_task"]) for job in jobs]
    executor = submitit.AutoExecutor(folder=Path(out) / LOGS / "%j", cluster="slurm")
    executor.update_parameters(**submitit_parameters(options, name))
    try:
        submitted = executor.map_array(fn, [str(out)] * len(jobs), jobs)
    except submitit.core.utils.FailedJobError as err:  # sbatch refused (partition, account, limits, ...)
        raise RuntimeError(f"sbatch refused the job array: {str(err).strip()}") from None
    return [add_attempt(out, job, {"executor": "slurm", "slurm_job_id": str(s.job_id), "stdout": str(s.paths.stdout),
                                   "stderr": str(s.paths.stderr)})
            for job, s in zip(jobs, submitted)]


def read_queue() -> dict[str, tuple[str, str]]:
    """This user's jobs in the SLURM queue: job id (``123`` or ``123_4``) -> (state, reason).

    Raises RuntimeError when ``squeue`` fails (no controller, no SLURM).
    """
    cmd = ["squeue", "--noheader", "--array", "--user", getpass.getuser(), "--format", "%i|%T|%r"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RuntimeError(f"cannot read the SLURM queue ({' '.join(cmd)}): {err}") from None
    if done.returncode != 0:
        raise RuntimeError(f"cannot read the SLURM queue ({' '.join(cmd)}): {done.stderr.strip()}")
    queue = {}
    for line in done.stdout.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        if state in SLURM_ALIVE:
            queue[job.strip()] = (state, reason)
    return queue


def wait_slurm(out: Path, jobs: list[Job], slurm_ids: list[str], progress: bool = True, poll_s: float = 10.0) -> None:
    """Block until none of ``slurm_ids`` is in the queue; a tqdm bar counts the jobs' finished runs."""
    with _bar(out, jobs, progress, "sweep (SLURM)") as bar:
        while True:
            alive = set(slurm_ids) & set(read_queue())
            bar.update(finished_runs(out, jobs) - bar.n)
            if not alive:
                return
            time.sleep(poll_s)


__all__ = ["check_slurm", "import_submitit", "read_queue", "run_local", "submit_slurm", "submitit_parameters", "wait_slurm"]
