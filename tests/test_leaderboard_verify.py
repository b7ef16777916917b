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
from srhm_datasets.evaluation.leaderboard import build_leaderboard

from .board_helpers import board
from .torch_helpers import train_run
from .user_models import TokenNet

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
    # every file left reported is listed as not verified, with why: the terminal, the index, leaderboard.json
    unverified = {Path(r["path"]).relative_to(results_dir).as_posix(): r["reason"] for r in summary["unverified"]}
    assert unverified == {
        "sub_no_weights/results.json": "checkpoint file missing: no weights.pt beside results.json "
        "(evaluation.checkpoint.file: the state dict the submission was evaluated with; copy it into the "
        "submission's folder)",
        "loose/runA.json": "not a results.json of a run or submission folder, so its model is not beside it",
    }
    assert f"NOT VERIFIED {results_dir / 'sub_no_weights' / 'results.json'}: checkpoint file missing" in result.output
    index = (out / "index.md").read_text()
    assert "## Not verified" in index and "- `sub_no_weights/results.json`: checkpoint file missing" in index


def test_a_run_without_its_checkpoint_is_listed_as_not_verified(tiny_run, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(tiny_run, root / "run")
    (root / "run" / "checkpoint.pt").unlink()
    result = CliRunner().invoke(main, ["leaderboard", str(root), "--out", str(tmp_path / "o"), "--verify"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "leaderboard.json").read_text())
    assert marks(summary, root) == {"run/results.json": "reported"}
    (why,) = [r["reason"] for r in summary["unverified"]]
    assert why == "checkpoint file missing: no checkpoint.pt beside results.json"


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


def evaluate_sub(folder: Path, factory: str, *options: str) -> None:
    """``srhm evaluate folder --factory tests.user_models:<factory>`` with the token encoding on demo at P=64."""
    args = ["evaluate", str(folder), "--factory", f"tests.user_models:{factory}", "--encoding", "tokens"]
    result = CliRunner().invoke(main, [*args, "--config", "demo", "--P", "64", "--device", "cpu", *options])
    assert result.exit_code == 0, result.output


def relabel(folder: Path, task, old_file: bool = False) -> None:
    """File ``folder``'s results under ``task`` by hand (``old_file``: also drop ``evaluation.task``, as in an
    evaluation written before it was recorded)."""

    def change(results):
        results.update(task=task)
        if old_file:
            results["evaluation"].pop("task", None)

    edit(folder / "results.json", change)


def test_an_evaluation_filed_under_another_task_is_rejected(results_dir, tmp_path):
    """``evaluation.task`` records the task measured: a submission whose ``task`` was changed by hand is
    rejected without evaluating anything, whatever the two tasks."""
    root = tmp_path / "r"
    shutil.copytree(results_dir / "sub", root / "class_as_last")
    relabel(root / "class_as_last", {"name": "last", "context": 4})
    evaluate_sub(root / "last_as_next", "token_net", "--task", "last")
    relabel(root / "last_as_next", "next")
    evaluate_sub(root / "noise_dropped", "token_net", "--task", "mlm", "--noise", "0.1")
    relabel(root / "noise_dropped", "mlm")
    summary = build_leaderboard(root, tmp_path / "o")
    assert summary["configs"] == {}
    reasons = {Path(r["path"]).parent.name: r["reason"] for r in summary["rejected"]}
    assert reasons == {
        "class_as_last": "evaluation.task is class: the test error is that task's, but the file's task is last "
        "context=4 (its task changed by hand?); evaluate the model on the task it is filed under",
        "last_as_next": "evaluation.task is last: the test error is that task's, but the file's task is next (its "
        "task changed by hand?); evaluate the model on the task it is filed under",
        "noise_dropped": "evaluation.task is mlm mask_rate=0.15 noise=0.1: the test error is that task's, but the "
        "file's task is mlm mask_rate=0.15 (its task changed by hand?); evaluate the model on the task it is filed "
        "under",
    }


def test_verify_rejects_a_model_that_is_not_one_of_the_file_s_task(results_dir, task_runs, tmp_path):
    """Files without ``evaluation.task`` (or runs without an evaluation) whose task was changed by hand:
    ``--verify`` evaluates the model again on the task the file is ranked under and rejects the file when the
    model is not one of that task (its state dict does not fit the model built for it, or the model does not
    take the task's inputs or give its outputs) or its test error is another's; never only "NOT VERIFIED"."""
    root = tmp_path / "r"
    shutil.copytree(results_dir / "sub", root / "class_as_last")
    relabel(root / "class_as_last", {"name": "last", "context": 4}, old_file=True)
    torch.save(TokenNet(DEMO, "last").state_dict(), tmp_path / "last.pt")
    evaluate_sub(root / "last_as_next", "token_net", "--task", "last", "--checkpoint", str(tmp_path / "last.pt"))
    shutil.copy(tmp_path / "last.pt", root / "last_as_next")
    relabel(root / "last_as_next", "next", old_file=True)
    evaluate_sub(root / "mlm_as_next", "token_net", "--task", "mlm")  # evaluated as built: no state dict
    relabel(root / "mlm_as_next", "next", old_file=True)
    shutil.copytree(task_runs["last context=4"], root / "run_last_as_next")
    edit(root / "run_last_as_next" / "results.json", lambda r: r["training"].update(task="next", context=None))
    out = tmp_path / "o"
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(results_dir.parent))
        result = CliRunner().invoke(main, ["leaderboard", str(root), "--out", str(out), "--verify", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "leaderboard.json").read_text())
    assert summary["configs"] == {} and summary["unverified"] == [] and "NOT VERIFIED" not in result.output
    reasons = {Path(r["path"]).parent.name: r["reason"] for r in summary["rejected"]}
    assert "task is last context=4" in reasons["class_as_last"] and "probe" in reasons["class_as_last"]
    assert reasons["mlm_as_next"].startswith("mismatch:") and "test rows of task next" in reasons["mlm_as_next"]
    for name in ("last_as_next", "run_last_as_next"):
        assert reasons[name].startswith("the model is not one of task next: "), reasons[name]
        assert reasons[name].endswith("cannot have been made on the task it is filed under (its task changed by hand?)")
    assert "parameters do not fit" in reasons["last_as_next"]  # the state dict of a last model
    assert "does not accept inputs of" in reasons["run_last_as_next"]  # the run's transformer, built for last
