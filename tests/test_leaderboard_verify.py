"""``srhm leaderboard --verify``: files that bring their model are evaluated again, on tiny real runs."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from srhm_datasets.baselines.models import build_model
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main

from .test_leaderboard import board
from .torch_helpers import train_run

DEMO = get_config("demo")

FACTORY = """
from srhm_datasets.baselines.models import build_model

def make(cfg):
    return build_model("cnn", cfg, width=8, seed=123)
"""


def edit(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


@pytest.fixture(scope="module")
def results_dir(tiny_run, tmp_path_factory):
    """Two tiny srhm train runs (one evaluated), a copy of one with its test error edited by hand, a
    copy under another file name, a submission with its state dict beside it and one without."""
    base = tmp_path_factory.mktemp("verify")
    root = base / "results"
    shutil.copytree(tiny_run, root / "runA")
    run_b = train_run(root, DEMO, P=128, name="runB")
    result = CliRunner().invoke(main, ["evaluate", str(run_b), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    shutil.copytree(run_b, root / "edited")
    edit(root / "edited" / "results.json", lambda r: r["evaluation"].update(test_error=0.0))
    (root / "loose").mkdir()
    shutil.copy(root / "runA" / "results.json", root / "loose" / "runA.json")
    (base / "usermodels.py").write_text(textwrap.dedent(FACTORY))
    torch.save(build_model("cnn", DEMO, width=8, seed=7).state_dict(), base / "weights.pt")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(base))
        sub = root / "sub"
        args = ["evaluate", str(sub), "--factory", "usermodels:make", "--checkpoint", str(base / "weights.pt")]
        result = CliRunner().invoke(
            main, [*args, "--config", "demo", "--P", "64", "--name", "my cnn", "--device", "cpu"]
        )
        assert result.exit_code == 0, result.output
    shutil.copytree(sub, root / "sub_no_weights")
    edit(root / "sub_no_weights" / "results.json", lambda r: r["model"].update(name="my cnn 2"))
    shutil.copy(base / "weights.pt", sub / "weights.pt")  # the state dict travels with the submission
    return root


def marks(summary, root, task="class") -> dict:
    """Path relative to ``root`` -> the mark in the single-P table of ``task``."""
    return {r["file"]: r["mark"] for r in board(summary, task=task)["rows"]}


def test_without_verify_every_file_is_reported_and_an_edited_error_ranks_first(results_dir, tmp_path):
    result = CliRunner().invoke(main, ["leaderboard", str(results_dir), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert summary["rejected"] == []
    assert set(marks(summary, results_dir).values()) == {"reported"}
    top = next(r for r in board(summary)["rows"] if r["P"] == "128" and r["rank"] == "1")
    assert top["file"] == "edited/results.json" and top["test error"] == "0.0000"


def test_verify_marks_verified_and_rejects_a_hand_edited_test_error(results_dir, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(results_dir.parent))  # where the submission's factory imports from
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["leaderboard", str(results_dir), "--out", str(out), "--verify", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "leaderboard.json").read_text())
    assert marks(summary, results_dir) == {
        "runA/results.json": "verified",  # a run without evaluation: best_test_error on training.num_test rows
        "runB/results.json": "verified",
        "sub/results.json": "verified",  # factory + state dict beside it
        "sub_no_weights/results.json": "reported",  # its state dict is not there
        "loose/runA.json": "reported",  # not a run folder's results.json
    }
    (rejected,) = summary["rejected"]
    assert Path(rejected["path"]).relative_to(results_dir).as_posix() == "edited/results.json"
    runb = json.loads((results_dir / "runB" / "results.json").read_text())["evaluation"]["test_error"]
    assert rejected["reason"].startswith(f"mismatch: test error 0 in the file, {runb:.6g} evaluated again on 3276")
    assert f"REJECTED {results_dir / 'edited' / 'results.json'}: mismatch" in result.output
    (cnn,) = board(summary)["ranking"]  # runA and runB verified, the loose copy of runA reported
    assert cnn["model"] == "cnn w8" and cnn["mark"] == "verified 2/3"
    md = (out / DEMO.name / "leaderboard.md").read_text()
    assert "| verified 2/3 |" in md and "| verified | sub/results.json |" in md


def test_a_model_that_cannot_be_evaluated_again_stays_reported(results_dir, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(results_dir / "sub", root / "sub")
    edit(root / "sub" / "results.json", lambda r: r["model"].update(factory="no_such_module_xyz:make"))
    result = CliRunner().invoke(main, ["leaderboard", str(root), "--out", str(tmp_path / "o"), "--verify"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "leaderboard.json").read_text())
    assert summary["rejected"] == [] and marks(summary, root) == {"sub/results.json": "reported"}
    (unverified,) = summary["unverified"]
    assert unverified["reason"].startswith("the model could not be evaluated again")
    assert "no_such_module_xyz" in unverified["reason"] and "NOT VERIFIED" in result.output
    assert "## Not verified" in (tmp_path / "o" / "index.md").read_text()


@pytest.mark.parametrize(
    "args, says",
    [
        (["--device", "cpu"], "invalid parameter device='cpu': must satisfy None unless verify"),
        (["--verify", "--device", "gpu"], "invalid parameter device='gpu'"),
    ],
)
def test_device_is_checked_before_anything_is_written(results_dir, tmp_path, args, says):
    result = CliRunner().invoke(main, ["leaderboard", str(results_dir), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2 and says in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_runs_of_every_task_are_verified_on_their_task(task_runs, tmp_path):
    """A run of class under noise, of last, mlm (with noise) and next is evaluated again on its own task (the
    test rows with key 0 that training scored): verified, each under its task's section."""
    root = tmp_path / "r"
    for run in task_runs.values():
        shutil.copytree(run, root / run.name)
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["leaderboard", str(root), "--out", str(out), "--verify", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "leaderboard.json").read_text())
    assert summary["rejected"] == [] and summary["unverified"] == []
    for label, run in task_runs.items():
        assert marks(summary, root, label) == {f"{run.name}/results.json": "verified"}, label


def test_a_task_added_by_hand_is_never_verified_with_another_task_s_error(results_dir, tmp_path):
    """A submission's ``task`` changed by hand: a class evaluation (S and D on the probe) filed under another
    task is rejected; an evaluation of one task filed under another is evaluated again on the task it is
    ranked under, and rejected as a mismatch."""
    root = tmp_path / "r"
    shutil.copytree(results_dir / "sub", root / "class_as_last")
    edit(root / "class_as_last" / "results.json", lambda r: r.update(task={"name": "last", "context": 4}))
    args = ["evaluate", str(root / "mlm_as_next"), "--factory", "tests.user_models:token_net", "--task", "mlm"]
    result = CliRunner().invoke(main, [*args, "--encoding", "tokens", "--config", "demo", "--P", "64"])
    assert result.exit_code == 0, result.output
    edit(root / "mlm_as_next" / "results.json", lambda r: r.update(task="next"))
    out = tmp_path / "o"
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(results_dir.parent))
        result = CliRunner().invoke(main, ["leaderboard", str(root), "--out", str(out), "--verify", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "leaderboard.json").read_text())
    assert summary["configs"] == {} and summary["unverified"] == []
    reasons = {Path(r["path"]).parent.name: r["reason"] for r in summary["rejected"]}
    assert "task is last context=4" in reasons["class_as_last"] and "probe" in reasons["class_as_last"]
    assert reasons["mlm_as_next"].startswith("mismatch:") and "test rows of task next" in reasons["mlm_as_next"]
