"""SLURM through submitit, for whatever runs as one job per item: sweeps (``sweep.executors``) and release builds
(``release.jobs``).

- :func:`submit_array`: one ``submitit`` job array (``map_array``) of ``fn(*args)`` per item,
  logs under ``folder/<slurm job id>/``; returns each job's attempt (SLURM job id, log
  paths) after submitting. :func:`slurm_options` checks the options (partition, time,
  CPUs, GPUs, memory, account, array parallelism, extra sbatch options, setup lines) and
  :func:`submitit_parameters` turns them into submitit's keywords.
- :func:`read_queue` is the queue (``squeue -r``: one line per array task), which tells the
  jobs that are still alive without SLURM's accounting database (``sacct``), which small
  clusters often lack; :func:`wait_queue` polls it until given jobs have left it.
- :func:`log_tail`: the end of a job's log, to report why it ended.

No torch here: this module sits below the release builder and the sweeps that use it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .config import require

#: Where a sweep's jobs or a build's configs run: a local process pool, or SLURM jobs.
EXECUTORS = ("local", "slurm")

#: squeue states of a job that is still alive (pending, running or finishing).
SLURM_ALIVE = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "RESIZING")
#: The SLURM options and their defaults (a sweep file's ``executor.slurm`` section has the same).
SLURM_DEFAULTS = {
    "partition": None,
    "time_min": 60,
    "cpus_per_task": 1,
    "gpus_per_node": 0,
    "mem_gb": None,
    "account": None,
    "array_parallelism": 64,
    "sbatch": {},
    "setup": [],
}
#: Each option's check and its bound in words.
_SLURM_BOUNDS = {
    "partition": (lambda x: x is None or isinstance(x, str) and x != "", "None or a partition name"),
    "time_min": (lambda x: isinstance(x, int) and x >= 1, "an int >= 1 (minutes)"),
    "cpus_per_task": (lambda x: isinstance(x, int) and x >= 1, "an int >= 1"),
    "gpus_per_node": (lambda x: isinstance(x, int) and x >= 0, "an int >= 0"),
    "mem_gb": (lambda x: x is None or isinstance(x, (int, float)) and x > 0, "None or a number > 0 (GB)"),
    "account": (lambda x: x is None or isinstance(x, str) and x != "", "None or an account name"),
    "array_parallelism": (lambda x: isinstance(x, int) and x >= 1, "an int >= 1"),
    "sbatch": (lambda x: isinstance(x, dict) and all(isinstance(k, str) for k in x), "a dict of sbatch options"),
    "setup": (lambda x: isinstance(x, list) and all(isinstance(s, str) for s in x), "a list of shell lines"),
}


def slurm_options(overrides: dict | None = None) -> dict:
    """:data:`SLURM_DEFAULTS` updated by ``overrides`` (None values ignored); ValueError naming a bad or unknown
    option."""
    options = dict(SLURM_DEFAULTS)
    for key, value in (overrides or {}).items():
        require(key in SLURM_DEFAULTS, "option", key, f"one of {', '.join(SLURM_DEFAULTS)}")
        if value is not None:
            options[key] = value
    for key, (ok, bound) in _SLURM_BOUNDS.items():
        require(ok(options[key]) and not isinstance(options[key], bool), key, options[key], bound)
    return options


def check_slurm() -> None:
    """ValueError unless SLURM's clients (sbatch, squeue, srun) are on PATH."""
    missing = [cmd for cmd in ("sbatch", "squeue", "srun") if shutil.which(cmd) is None]
    require(not missing, "executor", "slurm", f"SLURM's clients on PATH (missing: {', '.join(missing)})")


def submitit_parameters(options: dict, name: str) -> dict:
    """``update_parameters`` keywords of a submitit AutoExecutor from SLURM options (:data:`SLURM_DEFAULTS`' keys)."""
    params = {
        "name": name,
        "timeout_min": options["time_min"],
        "cpus_per_task": options["cpus_per_task"],
        "slurm_array_parallelism": options["array_parallelism"],
    }
    optional = {
        "gpus_per_node": options["gpus_per_node"] or None,
        "mem_gb": options["mem_gb"],
        "slurm_partition": options["partition"],
        "slurm_account": options["account"],
        "slurm_additional_parameters": dict(options["sbatch"]) or None,
        "slurm_setup": list(options["setup"]) or None,
    }
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


def submit_array(fn: Callable, args: list[tuple], options: dict, name: str, folder: Path) -> list[dict]:
    """Submit ``fn(*a)`` for every ``a`` in ``args`` as one SLURM job array; logs under ``folder/<job id>/``.

    Returns one attempt per item: ``{"executor": "slurm", "slurm_job_id", "stdout", "stderr"}``.
    Raises RuntimeError with sbatch's message when SLURM refuses the array.
    """
    submitit = import_submitit()
    check_slurm()
    executor = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster="slurm")
    executor.update_parameters(**submitit_parameters(options, name))
    try:
        submitted = executor.map_array(fn, *zip(*args))
    except submitit.core.utils.FailedJobError as err:  # sbatch refused (partition, account, limits, ...)
        raise RuntimeError(f"sbatch refused the job array: {str(err).strip()}") from None
    return [
        {
            "executor": "slurm",
            "slurm_job_id": str(s.job_id),
            "stdout": str(s.paths.stdout),
            "stderr": str(s.paths.stderr),
        }
        for s in submitted
    ]


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


def wait_queue(slurm_ids: list[str], on_poll: Callable[[], None] | None = None, poll_s: float = 10.0) -> None:
    """Block until none of ``slurm_ids`` is in the queue, calling ``on_poll()`` at every look (e.g. a progress bar)."""
    while True:
        alive = set(slurm_ids) & set(read_queue())
        if on_poll is not None:
            on_poll()
        if not alive:
            return
        time.sleep(poll_s)


def log_tail(attempt: dict, lines: int = 15) -> str:
    """The last lines of a SLURM job's stderr log (else its stdout), or why there is none."""
    for key in ("stderr", "stdout"):
        path = attempt.get(key)
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace").strip() if path else ""
        except OSError:
            continue
        if text:
            tail = "\n".join("    | " + line for line in text.splitlines()[-lines:])
            return f"end of {path}:\n{tail}"
    return f"no log written ({attempt.get('stderr')}): cancelled or failed before it started"


__all__ = [
    "EXECUTORS",
    "SLURM_ALIVE",
    "SLURM_DEFAULTS",
    "check_slurm",
    "import_submitit",
    "log_tail",
    "read_queue",
    "slurm_options",
    "submit_array",
    "submitit_parameters",
    "wait_queue",
]
