"""Where a sweep's jobs run: a process pool on this machine, or SLURM job arrays through submitit.

Both take the jobs to run and a job function ``fn(out: str, job: Job)`` (``run.run_job``)
and record every attempt in the job's record (``plan.add_attempt``), so that
``srhm sweep status`` and the next call know what was started, where, and what became
of it.

- :func:`run_local`: a process pool (``pools.process_pool``: spawned workers, so torch
  starts clean in each; ended at once on SIGTERM, SIGHUP or Ctrl-C, and with a killed
  parent), blocking, with a tqdm bar over runs (finished ``results.json`` files). An
  exception in a job is stored in its record with its traceback; the other jobs go on.
- :func:`submit_slurm`: one ``submitit`` job array (``srhm_datasets.executors.submit_array``,
  shared with ``srhm build --executor slurm``), logs under ``DIR/logs/<slurm job id>/``;
  returns after submitting. :func:`wait_slurm` polls the queue (``read_queue``: ``squeue``)
  until the jobs have left it.

Torch CPU threads per job: the sweep's ``train.threads``, else the CPUs of the machine
divided among the local workers, or the job's ``cpus_per_task`` on SLURM.
"""

from __future__ import annotations

import dataclasses
import os
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

from tqdm.auto import tqdm

from ..config import require
from ..executors import check_slurm, import_submitit, read_queue, submit_array, wait_queue
from ..pools import process_pool
from ..protocol import RESULTS_FILE
from .plan import LOGS, Job, add_attempt, run_dir, update_last_attempt


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
def run_local(
    out: Path, jobs: list[Job], fn: Callable, workers: int | None = None, progress: bool = True, poll_s: float = 1.0
) -> dict[str, str]:
    """Run ``fn(str(out), job)`` for every job in a pool of ``workers`` processes (default: CPUs).

    Blocks until all have ended; returns {job id: traceback} of the jobs that raised.
    """
    require(workers is None or workers >= 1, "workers", workers, "workers >= 1")
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    jobs = [with_threads(job, (os.cpu_count() or 1) // workers) for job in jobs]
    errors: dict[str, str] = {}
    with process_pool(workers) as pool, _bar(out, jobs, progress, f"sweep ({workers} local workers)") as bar:
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
# SLURM: submitit job arrays (``srhm_datasets.executors``)
# ---------------------------------------------------------------------------------------
def submit_slurm(out: Path, jobs: list[Job], fn: Callable, options: dict, name: str) -> list[dict]:
    """Submit the jobs as one SLURM job array; record and return each job's attempt (ids, log paths).

    Raises RuntimeError with sbatch's message when SLURM refuses the array (nothing is recorded).
    """
    jobs = [with_threads(job, options["cpus_per_task"]) for job in jobs]
    attempts = submit_array(fn, [(str(out), job) for job in jobs], options, name, Path(out) / LOGS)
    return [add_attempt(out, job, attempt) for job, attempt in zip(jobs, attempts)]


def wait_slurm(out: Path, jobs: list[Job], slurm_ids: list[str], progress: bool = True, poll_s: float = 10.0) -> None:
    """Block until none of ``slurm_ids`` is in the queue; a tqdm bar counts the jobs' finished runs."""
    with _bar(out, jobs, progress, "sweep (SLURM)") as bar:
        wait_queue(slurm_ids, lambda: bar.update(finished_runs(out, jobs) - bar.n), poll_s)


__all__ = ["check_slurm", "import_submitit", "read_queue", "run_local", "submit_slurm", "wait_slurm"]
