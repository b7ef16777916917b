"""Sweeps through a real single-node SLURM cluster (started by the ``slurm_cluster`` fixture, skipped
with the reason where it cannot start): same results as the local pool; a cancelled job is reported
with its log's tail and redone by the next call."""

from __future__ import annotations

import time

from click.testing import CliRunner

from srhm_datasets.sweep.cli import sweep
from srhm_datasets.sweep.executors import read_queue, wait_slurm
from srhm_datasets.sweep.run import run_sweep, sweep_status

from .slurm_cluster import slurm_cluster  # noqa: F401 (the fixture)
from .sweep_helpers import sweep_runs, write_sweep

JOBS = ["demo-cnn-w16-lrdefault-seed0", "demo-cnn-w16-lrdefault-seed1"]


def _wait_running(slurm_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while read_queue().get(slurm_id, ("",))[0] != "RUNNING":
        assert time.monotonic() < deadline, f"SLURM job {slurm_id} never ran: {read_queue()}"
        time.sleep(0.2)


def _wait_step(cluster, slurm_id: str, timeout: float = 120) -> None:
    """Until the job's step runs (srun started the job), so that scancel kills a running job (CANCELLED in its
    log) and not one whose step is still being created (srun: "Unable to create step")."""
    deadline = time.monotonic() + timeout
    while not cluster.run("squeue", "-h", "-s", "-j", slurm_id, "-o", "%i").stdout.strip():
        assert time.monotonic() < deadline, f"SLURM job {slurm_id} never started its step: {read_queue()}"
        time.sleep(0.2)


def test_slurm_sweep_equals_local_and_a_cancelled_job_is_redone(slurm_cluster, tmp_path):  # noqa: F811
    path = write_sweep(tmp_path / "tiny.yaml")
    out = tmp_path / "slurm"
    refused = CliRunner().invoke(sweep, [str(path), "--out", str(out), "--executor", "slurm", "--partition", "nosuch"])
    assert refused.exit_code == 1 and "sbatch refused the job array" in refused.output
    assert "invalid partition" in refused.output.lower() and not (out / "jobs").exists()  # nothing recorded
    report = run_sweep(path, out, executor="slurm", progress_bar=False)  # returns after submitting
    assert report.started == JOBS and len(report.slurm_ids) == 2 and report.finished is None
    assert all(s.live for s in report.after)

    victim = report.slurm_ids[1]
    _wait_running(victim)
    _wait_step(slurm_cluster, victim)
    assert slurm_cluster.run("scancel", victim).returncode == 0
    wait_slurm(out, [], report.slurm_ids, progress=False, poll_s=0.5)
    done, cancelled = sweep_status(out)
    assert done.state == "done"
    assert cancelled.state == "failed" and f"SLURM job {victim} ended before the job finished" in cancelled.reason
    assert "CANCELLED" in cancelled.reason  # the end of its log
    listing = CliRunner().invoke(sweep, ["status", str(out)]).output
    assert f"failed   {JOBS[1]}  SLURM job {victim}" in listing and "1 done, 0 running, 1 failed" in listing

    again = run_sweep(path, out, executor="slurm", wait=True, progress_bar=False, poll_s=0.5)
    assert again.started == [JOBS[1]] and len(again.slurm_ids) == 1
    assert [s.state for s in again.after] == ["done", "done"] and again.finished is not None

    local = run_sweep(path, tmp_path / "local", progress_bar=False)
    assert local.finished is not None
    assert sweep_runs(out) == sweep_runs(tmp_path / "local")
