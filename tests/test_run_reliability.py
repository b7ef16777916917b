"""Reliability on the training / evaluation side: what train, learning-curve, evaluate, leaderboard
and demo write (only folders srhm owns), when they check their options (before any work),
what they refuse (models and checkpoints of another config), how they stop (SIGTERM), and
the modes of their files (the umask)."""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from srhm_datasets import SRHMConfig
from srhm_datasets import results as results_mod
from srhm_datasets.baselines import checkpoint as checkpoint_mod
from srhm_datasets.baselines import learning_curve as lc
from srhm_datasets.baselines.group import train_group
from srhm_datasets.baselines.models import build_model
from srhm_datasets.baselines.train import TrainOptions, read_checkpoint, train
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.evaluation import evaluate as ev
from srhm_datasets.evaluation import measure, submission
from srhm_datasets.evaluation.leaderboard import build_leaderboard
from srhm_datasets.files import MARKER
from srhm_datasets.protocol import CHECKPOINT_FILE as CHECKPOINT
from srhm_datasets.results import read_results

from .processes import lock_held_elsewhere

torch.set_num_threads(1)

DEMO = get_config("demo")  # v = nc = 4, d = 16
OTHER = SRHMConfig(L=2, s=2, s0=1, v=4, nc=3, m=4)  # same v and d, another nc
TINY = {"width": 8, "max_steps": 6, "eval_every": 3, "num_test": 100, "progress": False, "threads": 1}
FAST_EVAL = ["--num-test", "50", "--num-probe", "20", "--device", "cpu"]


def _keep_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    return folder


# ---- only folders srhm wrote are written or replaced ---------------------------------------------


def _commands(results_dir: Path, run: Path) -> dict[str, list[str]]:
    """Each writing command with its output folder last (``OUT`` is replaced by the folder tried)."""
    return {
        "train": ["train", "--config", "demo", "--P", "20", "--max-steps", "2", "--no-progress", "--out", "OUT"],
        "train --overwrite": [
            "train",
            "--config",
            "demo",
            "--P",
            "20",
            "--max-steps",
            "2",
            "--no-progress",
            "--overwrite",
            "--out",
            "OUT",
        ],
        "learning-curve": [
            "learning-curve",
            "--config",
            "demo",
            "--P-min",
            "10",
            "--P-max",
            "20",
            "--points",
            "2",
            "--max-steps",
            "2",
            "--no-progress",
            "--out",
            "OUT",
        ],
        "leaderboard": ["leaderboard", str(results_dir), "--out", "OUT"],
        "evaluate --factory": ["evaluate", "--factory", "nomodule:f", "--config", "demo", "--P", "10", "OUT"],
        "demo": ["demo", "--P", "20", "--max-steps", "2", "--out", "OUT"],
    }


@pytest.mark.parametrize(
    "command", ["train", "train --overwrite", "learning-curve", "leaderboard", "evaluate --factory", "demo"]
)
@pytest.mark.parametrize("where", ["cwd", "keep"])
def test_commands_refuse_the_current_folder_and_folders_of_others(tmp_path, monkeypatch, command, where):
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    folder = _keep_folder(tmp_path)
    monkeypatch.chdir(folder if where == "cwd" else tmp_path)
    args = [
        str(folder) if a == "OUT" and where == "keep" else "." if a == "OUT" else a
        for a in _commands(results_dir, tmp_path)[command]
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "invalid parameter" in result.output
    assert ("current folder" if where == "cwd" else "srhm did not write") in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]  # nothing written, keep.txt survives


def test_evaluate_writes_only_into_run_folders_srhm_wrote(tiny_run, tmp_path):
    plain = tmp_path / "plain"  # a run's files copied by hand, with a file of the user's
    plain.mkdir()
    for name in ("results.json", CHECKPOINT, "notes.txt"):
        (plain / name).write_bytes((tiny_run / name).read_bytes() if name != "notes.txt" else b"mine")
    before = {p.name: p.read_bytes() for p in plain.iterdir()}
    result = CliRunner().invoke(main, ["evaluate", str(plain), *FAST_EVAL])
    assert result.exit_code == 2 and "RUN_DIR=" in result.output and "srhm did not write" in result.output
    assert {p.name: p.read_bytes() for p in plain.iterdir()} == before
    assert (
        CliRunner().invoke(main, ["evaluate", str(plain), "--no-write", *FAST_EVAL]).exit_code == 0
    )  # reading is fine


def test_leaderboard_replaces_its_own_board_but_not_a_board_holding_other_files(tiny_run, tmp_path):
    board = tmp_path / "board"
    first = build_leaderboard(tiny_run.parent, board)
    assert json.loads((board / MARKER).read_text())["kind"] == "leaderboard"
    assert build_leaderboard(tiny_run.parent, board) == first  # its own board: replaced
    (board / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match="out=.*mine.txt"):
        build_leaderboard(tiny_run.parent, board)
    assert (board / "mine.txt").read_text() == "x"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    (board / "mine.txt").unlink()
    notes = next(p for p in board.iterdir() if p.is_dir()) / "notes.md"  # inside a config's page folder
    notes.write_text("mine")
    with pytest.raises(ValueError, match=r"out=.*notes.md"):
        build_leaderboard(tiny_run.parent, board)
    assert notes.read_text() == "mine"


# ---- options checked before the work -------------------------------------------------------------


@pytest.mark.parametrize(
    "change, named",
    [
        ({"seed": -1}, "seed=-1"),
        ({"seed": 2**62}, "seed="),
        ({"seed": 1.5}, "seed=1.5"),
        ({"width": 0}, "width=0"),
        ({"width": "8"}, "width='8'"),
        ({"width": True}, "width=True"),
        ({"momentum": 1.0}, "momentum=1.0"),
        ({"momentum": "0.9"}, "momentum='0.9'"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"lr": math.inf}, "lr=inf"),
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"max_steps": 0}, "max_steps=0"),
        ({"num_test": 0}, "num_test=0"),
        ({"eval_every": 0}, "eval_every=0"),
        ({"threads": "1"}, "threads='1'"),
        ({"amp": "yes"}, "amp='yes'"),
        ({"norm": "l2"}, "norm='l2'"),
        ({"encoding": "tokens"}, "encoding='tokens'"),
        ({"P": "64"}, "P='64'"),
        ({"P": 10**9}, "P=1000000000"),
        ({"arch": "rnn"}, "arch='rnn'"),
        ({"out": 3}, "out=3"),
        ({"revision": 1}, "revision=1"),
        ({"overwrite": "no"}, "overwrite='no'"),
        ({"device": "tpu"}, "device='tpu'"),
    ],
)
def test_train_checks_every_option_before_any_work(tmp_path, monkeypatch, change, named):
    from srhm_datasets.baselines import train as train_module

    monkeypatch.setattr(train_module, "load_arrays", lambda opt: pytest.fail("work started"))
    options = dict(config=DEMO, P=64, out=str(tmp_path / "r"), **TINY) | change
    with pytest.raises(ValueError, match="invalid parameter") as err:
        train(TrainOptions(**options))
    assert named in str(err.value) and "must satisfy" in str(err.value)
    assert not (tmp_path / "r").exists()


def test_train_cli_seed_minus_one_is_a_usage_error_before_training(tmp_path):
    result = CliRunner().invoke(
        main, ["train", "--config", "demo", "--P", "1000", "--seed", "-1", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "seed=-1" in result.output and "0 <= seed" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "change, named",
    [
        ({"threshold": 0.0}, "threshold=0.0"),
        ({"threshold": math.nan}, "threshold=nan"),
        ({"threshold": "0.1"}, "threshold='0.1'"),
        ({"metric": "mean"}, "metric='mean'"),
        ({"plot": "no"}, "plot='no'"),
        ({"points": 0}, "points=0"),
        ({"points": 10**6}, "points=1000000"),
        ({"P_min": 30}, "P_min=30"),
        ({"P_max": 10**6}, "P_max=1000000"),
        ({"P_min": 1.5}, "P_min=1.5"),
        ({"threshold": 0.75}, "threshold=0.75: must satisfy 0 < threshold < 0.75, the chance error of task 'class'"),
        ({"threshold": 0.9}, "threshold=0.9: must satisfy 0 < threshold < 0.75"),
        ({"points": 1}, "points=1: must satisfy points >= 2, or P_min = P_max for one point (P_min = 10 < P_max = 20"),
    ],
)
def test_learning_curve_checks_every_argument_before_any_work(tmp_path, monkeypatch, change, named):
    monkeypatch.setattr(lc, "train", lambda opt: pytest.fail("work started"))
    args = {"P_min": 10, "P_max": 20, "points": 2, "threshold": 0.1, "metric": "best", "plot": False} | change
    with pytest.raises(ValueError, match="invalid parameter") as err:
        lc.run_learning_curve(TrainOptions(config=DEMO, P=20, **TINY), tmp_path / "lc", **args)
    assert named in str(err.value)
    assert not (tmp_path / "lc").exists()


@pytest.mark.parametrize(
    "change, named",
    [
        ({"num_test": 0}, "num_test=0"),
        ({"num_test": 10**6}, "num_test=1000000"),
        ({"num_probe": 1}, "num_probe=1"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"encoding": 3}, "encoding=3"),
        ({"layers": []}, "layers=[]"),
        ({"layers": ["layer9"]}, "layers=['layer9']"),
        ({"probe": "hub"}, "probe_source='hub'"),
        ({"probe": "release"}, "data=None"),
    ],
)
def test_evaluate_model_checks_options_and_layers_before_reading_data(monkeypatch, change, named):
    monkeypatch.setattr(measure, "load_probe", lambda *a, **k: pytest.fail("work started"))
    monkeypatch.setattr(measure, "load_test", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(ValueError, match="invalid parameter") as err:
        measure.evaluate_model(build_model("cnn", DEMO, width=8), DEMO, **change)
    assert named in str(err.value)


def test_demo_checks_its_options_before_building(tmp_path):
    out = tmp_path / "d"
    result = CliRunner().invoke(main, ["demo", "--P", "100000", "--out", str(out)])
    assert result.exit_code == 2 and "P=100000" in result.output
    assert not out.exists()


def test_leaderboard_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="revision=5"):
        build_leaderboard(tmp_path, tmp_path / "b", revision=5)
    with pytest.raises(ValueError, match="results_dir="):
        build_leaderboard(tmp_path / "missing", tmp_path / "b")
    assert not (tmp_path / "b").exists()


# ---- the README's first command twice ------------------------------------------------------------


def test_demo_runs_twice_in_a_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["demo", "--P", "100", "--width", "8", "--max-steps", "5"]
    for _ in range(2):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "demo_run").iterdir()) == [MARKER, "leaderboard", "release", "runs"]
    assert json.loads((tmp_path / "demo_run" / "runs" / "demo-cnn-P100" / "results.json").read_text())["evaluation"]
    # a user's file anywhere inside is refused before any work, one line, and survives
    for inside in ("release/demo/notes.txt", "leaderboard/notes.txt", "runs/notes.txt"):
        path = tmp_path / "demo_run" / inside
        path.write_text("mine")
        result = CliRunner().invoke(main, args)
        assert result.exit_code != 0 and f"did not write ({inside})" in result.output, result.output
        assert "[1/5]" not in result.output and path.read_text() == "mine"
        path.unlink()


# ---- interruption --------------------------------------------------------------------------------


def test_sigterm_ends_train_cleanly_and_leaves_no_output(tmp_path):
    srhm = Path(sys.executable).with_name("srhm")
    proc = subprocess.Popen(
        [
            str(srhm),
            "train",
            "--config",
            "demo",
            "--P",
            "200",
            "--width",
            "8",
            "--threads",
            "1",
            "--max-steps",
            "10000000",
            "--loss-threshold",
            "0",
            "--out",
            str(tmp_path / "r"),
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = ""
    while "step" not in seen:  # tqdm's first line: training has begun
        char = proc.stderr.read(1)
        assert char, f"srhm train ended early: {seen}"
        seen += char
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM  # a clean SystemExit, not death by the signal (-15)
    assert "stopped by SIGTERM" in err
    assert not (tmp_path / "r").exists()  # nothing of the run, not even its marker
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"] or not list(tmp_path.iterdir())


def test_interrupted_learning_curve_keeps_finished_runs_and_no_stale_summary(tmp_path, monkeypatch):
    base = TrainOptions(config=DEMO, P=20, **TINY)
    out = tmp_path / "lc"
    lc.run_learning_curve(base, out, P_min=10, P_max=20, points=2, plot=False)  # a summary of P10, P20
    real_train, calls = lc.train, []

    def interrupted(opt):
        calls.append(opt.P)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(opt)

    monkeypatch.setattr(lc, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):  # a wider curve: P10, P20 reused, P14 and P17 trained
        lc.run_learning_curve(base, out, P_min=10, P_max=20, points=4, plot=False)
    assert not (out / "summary.json").exists()  # the old summary does not describe this folder any more
    assert (out / f"P{calls[0]}" / "results.json").is_file() and not (out / f"P{calls[1]}").exists()
    monkeypatch.undo()
    summary = lc.run_learning_curve(base, out, P_min=10, P_max=20, points=4, plot=False)
    assert [r["skipped"] for r in summary["runs"]] == [True, True, False, True]


# ---- inputs from another config ------------------------------------------------------------------


def test_evaluate_model_refuses_a_model_of_another_config():
    with pytest.raises(ValueError, match=r"model=.*nc=4"):  # before: a test error from 3 of 4 classes
        ev.evaluate_model(build_model("cnn", OTHER, width=8), DEMO, num_test=50, num_probe=20, device="cpu")
    with pytest.raises(ValueError, match="does not accept inputs"):  # another d
        ev.evaluate_model(build_model("cnn", get_config("grid_L3_s0-2_v10"), width=8), DEMO, device="cpu")


def test_evaluate_refuses_a_checkpoint_with_parameters_of_another_config(tmp_path, monkeypatch):
    run = tmp_path / "r"
    train(TrainOptions(config=DEMO, P=64, out=str(run), **TINY))
    ckpt = read_checkpoint(run)
    ckpt["model_state"] = build_model("cnn", OTHER, width=8).state_dict()
    torch.save(ckpt, run / CHECKPOINT)
    with pytest.raises(ValueError, match="do not fit the model"):
        ev.evaluate_run(run, num_test=50, num_probe=20, device="cpu")
    state = tmp_path / "other.pt"
    torch.save(build_model("cnn", OTHER, width=8).state_dict(), state)
    monkeypatch.setattr(
        submission, "build_factory_model", lambda spec, cfg, task=None: build_model("cnn", cfg, width=8)
    )
    with pytest.raises(ValueError, match="do not fit the model"):  # before: torch's RuntimeError
        submission.build_user_model("mine:model", DEMO, state)


def test_learning_curve_refuses_runs_on_other_data_or_test_rows(tmp_path):
    base = TrainOptions(config=DEMO, P=20, **TINY)
    lc.run_learning_curve(base, tmp_path, P_min=20, P_max=20, points=1, plot=False)
    for change, named in (({"num_test": 50}, "num_test=100"), ({"data": str(tmp_path)}, "data=None")):
        with pytest.raises(ValueError, match="other settings") as err:
            lc.run_learning_curve(dataclasses.replace(base, **change), tmp_path, P_min=20, P_max=20, points=1)
        assert named in str(err.value)


def test_srhm_dataset_refuses_rows_of_another_config():
    import datasets
    import numpy as np

    from srhm_datasets import generate
    from srhm_datasets.torch import SRHMDataset

    rows = generate(DEMO, "test", 0, 8)
    ds = datasets.Dataset.from_dict(
        {"tokens": rows["tokens"].tolist(), "label": rows["label"].tolist()},
        info=datasets.DatasetInfo(config_name=DEMO.name),
    )
    assert len(SRHMDataset(ds)) == 8
    same_d = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=2)  # same v, d and nc: only the rows tell
    with pytest.raises(ValueError, match=f"config={same_d.name!r}.*rows of config {DEMO.name}"):
        SRHMDataset(ds, config=same_d)
    assert np.array_equal(SRHMDataset(ds, config=DEMO).targets, rows["label"])


# ---- our errors at the edge ----------------------------------------------------------------------


def test_wrong_types_give_our_errors(tmp_path):
    from srhm_datasets.torch import SRHMStream

    with pytest.raises(TypeError, match="cfg="):
        build_model("cnn", "demo")
    with pytest.raises(ValueError, match="seed='1'"):
        build_model("cnn", DEMO, seed="1")
    with pytest.raises(ValueError, match="dtype='float32'"):
        SRHMStream(DEMO, "test", dtype="float32")
    with pytest.raises(ValueError, match="encoding=3"):
        SRHMStream(DEMO, "test", encoding=3)
    with pytest.raises(TypeError, match="config="):
        train(TrainOptions(config="demo", P=10))
    damaged = tmp_path / "damaged.pt"
    damaged.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not readable by torch.load"):
        read_checkpoint(damaged)
    with pytest.raises(ValueError, match="not readable by torch.load"):
        ev.load_state_dict(damaged)
    with pytest.raises(ValueError, match="factory='no_such_module:f'"):
        ev.load_factory("no_such_module:f")
    with pytest.raises(ValueError, match="factory='srhm_datasets:no_such'"):
        ev.load_factory("srhm_datasets:no_such")


# ---- files follow the umask ----------------------------------------------------------------------


def test_every_written_file_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "lc"
        lc.run_learning_curve(TrainOptions(config=DEMO, P=20, **TINY), out, P_min=20, P_max=20, points=1)
        ev.evaluate_run(out / "P20", device="cpu")  # whole splits: the board ranks it
        build_leaderboard(out, tmp_path / "board")
    finally:
        os.umask(old)
    files = [p for root in (out, tmp_path / "board") for p in root.rglob("*")]
    names = {p.name for p in files}
    assert {
        "results.json",
        CHECKPOINT,
        MARKER,
        "summary.json",
        "learning_curve.png",
        "leaderboard.json",
        "index.html",
        "leaderboard.md",
        "test_error_vs_P.png",
    } <= names
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert all(mode == (oct(0o755) if Path(tmp_path / p).is_dir() else oct(0o644)) for p, mode in modes.items()), modes
    assert oct(stat.S_IMODE((tmp_path / "board").stat().st_mode)) == oct(0o755)


# ---- one writer per folder -----------------------------------------------------------------------

ORACLE = "srhm_datasets.evaluation.oracle:build"


def _writers(results_dir: Path) -> dict[str, list[str]]:
    """Every command that writes a folder, with its folder as ``OUT``."""
    commands = _commands(results_dir, results_dir)
    return {
        "train": commands["train"],
        "learning-curve": commands["learning-curve"],
        "leaderboard": commands["leaderboard"],
        "demo": commands["demo"],
        "evaluate": ["evaluate", "OUT", *FAST_EVAL],
        "evaluate --factory": ["evaluate", "--factory", ORACLE, "--config", "demo", "--P", "10", *FAST_EVAL, "OUT"],
        "build": ["build", "demo", "--quiet", "--out", "OUT"],
    }


@pytest.mark.parametrize(
    "command", ["train", "learning-curve", "leaderboard", "demo", "evaluate", "evaluate --factory", "build"]
)
def test_a_second_writer_is_refused_at_once_naming_the_first(tiny_run, tmp_path, command):
    out = tmp_path / "out"
    if command == "evaluate":
        shutil.copytree(tiny_run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else None
    args = [str(out) if a == "OUT" else a for a in _writers(tiny_run.parent)[command]]
    with lock_held_elsewhere(out) as pid:
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert f"is being written by process {pid} on " in result.output and "srhm train --out elsewhere" in result.output
    after = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else None
    assert after == before  # nothing written
    assert sorted(os.listdir(tmp_path)) == (["out"] if before is not None else [])


def test_evaluate_refuses_the_checkpoint_of_another_run(tmp_path):
    """Runs that differ in a setting the old match did not cover (lr), or in nothing but being two runs."""
    runs = {}
    for name, lr in (("a", 0.1), ("b", 0.2), ("c", 0.1)):
        runs[name] = tmp_path / name
        train(TrainOptions(config=DEMO, P=64, out=str(runs[name]), lr=lr, **TINY))
    for other in ("b", "c"):
        mixed = tmp_path / f"a-with-{other}"
        shutil.copytree(runs["a"], mixed)
        shutil.copy(runs[other] / CHECKPOINT, mixed / CHECKPOINT)
        with pytest.raises(ValueError, match=r"not the checkpoint of this run's results.json \(run_id="):
            ev.evaluate_run(mixed, num_test=50, num_probe=20, device="cpu")
    a = read_results(runs["a"])
    assert a["training"]["run_id"] == read_checkpoint(runs["a"])["run_id"]
    assert a["training"]["run_id"][:16] == read_results(runs["c"])["training"]["run_id"][:16]  # same options
    assert a["training"]["run_id"] != read_results(runs["c"])["training"]["run_id"]  # two runs


def test_results_and_checkpoints_without_a_run_id_still_evaluate(tmp_path):
    run = tmp_path / "old"
    train(TrainOptions(config=DEMO, P=64, out=str(run), **TINY))
    results, ckpt = json.loads((run / "results.json").read_text()), read_checkpoint(run)
    del results["training"]["run_id"], ckpt["run_id"]
    (run / "results.json").write_text(json.dumps(results))
    torch.save(ckpt, run / CHECKPOINT)
    assert "evaluation" in ev.evaluate_run(run, num_test=50, num_probe=20, device="cpu")


# ---- a failing environment -----------------------------------------------------------------------


def _full_disk(monkeypatch) -> None:
    """Writing a checkpoint or a results file fails as on a full disk."""

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(checkpoint_mod, "atomic_write", full)
    monkeypatch.setattr(results_mod, "atomic_write", full)


@pytest.mark.parametrize("command", ["train", "learning-curve", "evaluate", "evaluate --factory"])
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(tiny_run, tmp_path, monkeypatch, command):
    out = tmp_path / "new" / "out"
    if command == "evaluate":
        shutil.copytree(tiny_run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else None
    _full_disk(monkeypatch)
    args = [str(out) if a == "OUT" else a for a in _writers(tiny_run.parent)[command]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    failed = {"train": CHECKPOINT, "learning-curve": f"P10/{CHECKPOINT}"}.get(command, "results.json")
    assert result.output.strip().splitlines() == [
        f"Error: No space left on device: {out / failed}; "
        "partial output removed, finished files kept: free space, or choose another output folder"
    ]
    if before is None:
        assert os.listdir(tmp_path) == []  # no empty run folder, no marker, no parents
    else:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.fixture
def read_only(tiny_run, tmp_path):
    """A read-only folder (a read-only bind mount) holding a copy of ``tiny_run`` as ``run``."""
    folder = tmp_path / "ro"
    shutil.copytree(tiny_run, folder / "run")
    mount = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip("a read-only bind mount needs root with CAP_SYS_ADMIN")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True, capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("command", ["train", "learning-curve", "leaderboard", "evaluate", "evaluate --factory"])
def test_a_read_only_folder_is_one_line_and_left_as_it_was(tiny_run, read_only, command):
    out = read_only / ("run" if command == "evaluate" else "new")
    before = sorted(str(p.relative_to(read_only)) for p in read_only.rglob("*"))
    args = [str(out) if a == "OUT" else a for a in _writers(tiny_run.parent)[command]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Read-only file system: "), lines
    assert sorted(str(p.relative_to(read_only)) for p in read_only.rglob("*")) == before


def test_train_past_the_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    """A real write error (EFBIG under RLIMIT_FSIZE) in a real process: the checkpoint does not fit."""
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384)); "
        "from srhm_datasets.cli import main; main()"
    )
    args = ["train", "--config", "demo", "--P", "64", "--width", "64", "--max-steps", "2", "--threads", "1"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, "--no-progress", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"Error: File too large: {tmp_path / 'r' / CHECKPOINT}; partial output removed, finished files kept: "
        "free space, or choose another output folder"
    ]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("group", [False, True])
def test_the_wall_clock_stepping_back_keeps_the_run(tmp_path, monkeypatch, group):
    clock = itertools.count(2_000_000_000, -1000)  # every reading 1000 s earlier than the last
    monkeypatch.setattr(time, "time", lambda: float(next(clock)))
    options = [TrainOptions(config=DEMO, P=P, out=str(tmp_path / f"P{P}"), **TINY) for P in (20, 40)]
    results = train_group(options) if group else [train(options[0])]
    for opt, res in zip(options, results):
        assert 0 <= res["training"]["wall_time_s"] < 600 and res["training"]["samples_per_s"] > 0
        assert read_results(opt.out) == res


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_after_the_command_finished_keeps_its_success(signum):
    """The signal arrives during the interpreter's shutdown, after the command's last line."""
    code = (
        "import atexit, os, time\n"
        f"atexit.register(lambda: (os.kill(os.getpid(), {int(signum)}), time.sleep(0.3)))\n"
        "from srhm_datasets.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, "info", "demo"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.startswith("config") and proc.stderr == ""
