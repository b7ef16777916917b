"""Sweeps on the local process pool, with the real trainer and evaluator: results equal learning
curves run by hand, a second call runs nothing, a killed run is redone, failures are reported."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from srhm_datasets.baselines.learning_curve import run_learning_curve
from srhm_datasets.baselines.train import TrainOptions
from srhm_datasets.catalog import get_config
from srhm_datasets.evaluation.evaluate import evaluate_run
from srhm_datasets.files import MARKER, FolderInUse
from srhm_datasets.sweep.cli import sweep
from srhm_datasets.sweep.plan import read_record
from srhm_datasets.sweep.run import run_sweep, sweep_status

from .processes import alive, children, cpu_seconds, interruptible, lock_held_elsewhere
from .sweep_helpers import TINY_CURVE, TINY_OPTIONS, comparable, sweep_runs, write_sweep

JOBS = ["demo-cnn-w16-lrdefault-seed0", "demo-cnn-w16-lrdefault-seed1"]


@pytest.fixture(scope="module")
def done_sweep(tmp_path_factory):
    """A tiny sweep run once on the local pool: (sweep file, folder, report)."""
    root = tmp_path_factory.mktemp("sweep")
    path = write_sweep(root / "tiny.yaml")
    report = run_sweep(path, root / "out", progress_bar=False)
    return path, root / "out", report


def _copy(out: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    return copy


def _mtimes(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted((out / "runs").glob("*/P*/results.json"))}


def test_sweep_runs_every_job_and_writes_its_folder(done_sweep):
    _, out, report = done_sweep
    assert sorted(report.started) == JOBS and report.errors == {}
    assert [s.state for s in report.after] == ["done", "done"]
    assert json.loads((out / MARKER).read_text())["kind"] == "sweep"
    for name in ("plan.json", "sweep.yaml", "pstar.json", "pstar.md", "leaderboard/index.md"):
        assert (out / name).is_file(), name
    runs = sweep_runs(out)
    assert set(runs) == {f"{j}/P{P}" for j in JOBS for P in (60, 200)}
    assert all(r["sensitivity"] is not None for r in runs.values())  # every run evaluated (S and D)
    pstar = json.loads((out / "pstar.json").read_text())
    assert [c["job"] for c in pstar["curves"]] == JOBS and pstar["groups"][0]["seeds"] == [0, 1]
    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    assert (
        board["rejected"] == []
        and sum(len(t["rows"]) for c in board["configs"].values() for t in c["tasks"].values()) == 4
    )


def test_sweep_results_equal_learning_curves_run_by_hand(done_sweep, tmp_path):
    _, out, _ = done_sweep
    for seed, job in zip((0, 1), JOBS):
        base = TrainOptions(config=get_config("demo"), P=1, seed=seed, **TINY_OPTIONS)
        summary = run_learning_curve(base, tmp_path / job, *TINY_CURVE, plot=False)
        for run in summary["runs"]:
            evaluate_run(tmp_path / job / run["run"])
            assert comparable(tmp_path / job / run["run"]) == comparable(out / "runs" / job / run["run"])


def test_second_call_runs_nothing(done_sweep):
    path, out, _ = done_sweep
    before = _mtimes(out)
    report = run_sweep(path, out, progress_bar=False)
    assert report.started == [] and [s.state for s in report.before] == ["done", "done"]
    assert _mtimes(out) == before and report.finished is not None


def assert_same_runs(found: dict, expected: dict) -> None:
    """The same runs: equal numbers but for the train losses, equal to 1e-6. A run redone alone that was
    trained in a group (or the reverse) follows the same trajectory up to the rounding of batched vs
    single float32 products (baselines/group.py), which moves its mean train losses in the 8th digit."""
    loss = lambda run: run["curves"]["train_loss"]
    rest = lambda run: {**run, "curves": {**run["curves"], "train_loss": None}}
    assert found.keys() == expected.keys()
    for key, run in expected.items():
        assert rest(found[key]) == rest(run), key
        assert loss(found[key]) == pytest.approx(loss(run), rel=1e-6), key


def test_run_killed_midway_is_redone_and_nothing_half_written_counts(done_sweep, tmp_path):
    path, done, _ = done_sweep
    out = _copy(done, tmp_path)
    expected = sweep_runs(out)
    killed = out / "runs" / JOBS[1] / "P200"
    (killed / "results.json").unlink()  # killed before its results were renamed into place
    (killed / ".results.json.x1y2.tmp").write_text('{"format": {"name": "srhm-res')  # half-written
    states = {s.job.id: s for s in sweep_status(out)}
    assert states[JOBS[0]].state == "done"
    assert states[JOBS[1]].state == "failed" and "1/2 runs finished" in states[JOBS[1]].reason
    others = _mtimes(out)
    report = run_sweep(path, out, progress_bar=False)
    assert report.started == [JOBS[1]] and report.errors == {}
    assert_same_runs(sweep_runs(out), expected)  # redone, same numbers
    assert {k: v for k, v in _mtimes(out).items() if k in others} == others  # nothing else retrained
    assert len(read_record(out, report.after[1].job)["attempts"]) == 2


def test_status_command_names_each_state(done_sweep, tmp_path):
    _path, done, _ = done_sweep
    out = _copy(done, tmp_path)
    shutil.rmtree(out / "runs" / JOBS[0])
    (out / "jobs" / f"{JOBS[0]}.json").unlink()  # as if never started
    result = CliRunner().invoke(sweep, ["status", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"pending  {JOBS[0]}  not started (0/2 runs finished")
    assert lines[1].startswith(f"done     {JOBS[1]}  2/2 runs finished, 2 evaluated")
    assert lines[-1] == "1 done, 0 running, 0 failed, 1 pending (2 jobs)"


def test_a_sweep_says_when_its_board_rejects_its_runs(tmp_path):
    path = write_sweep(tmp_path / "part.yaml", seeds=[0], evaluate={"enabled": True, "num_probe": 20})
    result = CliRunner().invoke(sweep, [str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "leaderboard: " in result.output and "result(s) rejected, e.g. " in result.output
    assert "probe" in result.output.split("result(s) rejected, e.g. ")[1]


def test_failed_job_is_reported_and_redone_next_call(tmp_path):
    empty = tmp_path / "not-a-release"
    empty.mkdir()
    path = write_sweep(tmp_path / "bad-data.yaml", seeds=[0], train={"data": str(empty)})
    result = CliRunner().invoke(sweep, [str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 1
    # the loader names the folder repo_or_dir since 13db94c (load_split refuses non-release paths)
    assert f"FAILED demo-cnn-w16-lrdefault-seed0: ValueError: invalid parameter repo_or_dir='{empty}'" in result.output
    (status,) = sweep_status(tmp_path / "out")
    assert status.state == "failed" and "local job raised ValueError: invalid parameter repo_or_dir=" in status.reason
    result = CliRunner().invoke(sweep, [str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.output.startswith("redo demo-cnn-w16-lrdefault-seed0: local job raised ValueError")
    assert len(read_record(tmp_path / "out", status.job)["attempts"]) == 2


def test_changed_settings_conflict_before_anything_runs(done_sweep, tmp_path):
    _, done, _ = done_sweep
    out = _copy(done, tmp_path)
    before = _mtimes(out)
    path = write_sweep(tmp_path / "changed.yaml", train={"max_steps": 50})
    with pytest.raises(ValueError, match=r"max_steps=40 \(requested 50\)"):
        run_sweep(path, out, progress_bar=False)
    assert _mtimes(out) == before
    assert json.loads((out / "plan.json").read_text())["sweep"]["train"]["max_steps"] == 40  # plan untouched


def test_grown_grid_runs_only_the_new_points(done_sweep, tmp_path):
    _, done, _ = done_sweep
    out = _copy(done, tmp_path)
    before = _mtimes(out)
    path = write_sweep(tmp_path / "grown.yaml", seeds=[0, 1], P={"min": 60, "max": 200, "points": 3})
    report = run_sweep(path, out, progress_bar=False, options={"workers": 1})
    assert sorted(report.started) == JOBS  # each curve gets its new P, nothing retrained
    assert {k: v for k, v in _mtimes(out).items() if k in before} == before
    assert len(_mtimes(out)) == 6


def test_one_call_per_folder_at_a_time(done_sweep, tmp_path):
    path, done, _ = done_sweep
    out = _copy(done, tmp_path)
    with lock_held_elsewhere(out) as pid, pytest.raises(FolderInUse, match=rf"being written by process {pid} on "):
        run_sweep(path, out, progress_bar=False)


def test_folder_not_a_sweep_is_refused(done_sweep, tmp_path):
    path, _, _ = done_sweep
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"invalid parameter out=.*srhm did not write"):
        run_sweep(path, tmp_path / "mine", progress_bar=False)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_slurm_options_need_the_slurm_executor(done_sweep):
    path, out, _ = done_sweep
    result = CliRunner().invoke(sweep, [str(path), "--out", str(out), "--partition", "gpu"])
    assert result.exit_code == 2 and "--partition go(es) with --executor slurm" in result.output


# ---- interruption: the local pool's workers end with srhm sweep ------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_local_workers_at_once(tmp_path, signum):
    """SIGTERM or Ctrl-C to ``srhm sweep`` ends its running jobs' workers at once (they used to train on
    until their job finished, with srhm sweep waiting for them) and the job is left to be redone."""
    path = write_sweep(tmp_path / "long.yaml", seeds=[0], train={"max_steps": 10**6, "loss_threshold": 1e-30})
    srhm_cli = Path(sys.executable).with_name("srhm")
    proc = subprocess.Popen(
        [str(srhm_cli), "sweep", str(path), "--out", "out", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,  # SIGINT reaches it even when the suite runs as a background job
    )
    try:
        workers: set[int] = set()
        for _ in range(2400):  # until a worker has trained a while (the job would take hours)
            workers = {p for p in children(proc.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()}
            if workers and max(cpu_seconds(p) for p in workers) > 5 and proc.poll() is None:
                break
            time.sleep(0.05)
        assert proc.poll() is None and workers, "the sweep did not start its worker"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (128 + signum if signum != signal.SIGINT else 1), err
    for _ in range(200):
        if not any(alive(p) for p in workers):
            break
        time.sleep(0.05)
    assert not [p for p in workers if alive(p)], err
    (status,) = sweep_status(tmp_path / "out")
    assert status.state == "failed" and status.progress.finished == 0, status  # redone by the next call
