"""The transformer as a reference network: ``srhm train / learning-curve --arch transformer`` on every task,
its protocol defaults, its checkpoints re-loaded by ``srhm evaluate`` and its runs on the leaderboard."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from srhm_datasets.baselines.checkpoint import load_checkpoint
from srhm_datasets.baselines.group import groupable
from srhm_datasets.baselines.learning_curve import curve_summary
from srhm_datasets.baselines.models import count_parameters
from srhm_datasets.baselines.train import TrainOptions, resolve, train
from srhm_datasets.baselines.transformer import build_transformer
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.protocol import (
    ARCH_DEFAULTS,
    TRANSFORMER_LR,
    TRANSFORMER_WEIGHT_DECAY,
    TRANSFORMER_WIDTH,
    estimate_p_star,
    num_parameters,
)

DEMO = get_config("demo")
#: A tiny transformer run: width 8 (4 heads of 2), 8 steps on 64 rows, 100 test rows.
TINY = {"config": DEMO, "P": 64, "arch": "transformer", "width": 8, "max_steps": 8, "num_test": 100}
QUIET = {"threads": 1, "progress": False}
#: A config small enough for a learning curve that crosses a loose threshold in seconds (154 train rows).
SMALL = "A_L2_s2_s0-0_v8_nc4_m4_seed0"
SMALL_CFG = get_config(SMALL)  # v = 8, nc = 4: the three chance errors differ


def test_defaults_of_the_transformer():
    opt = resolve(TrainOptions(config=DEMO, P=64, arch="transformer"))
    assert (opt.optimizer, opt.lr, opt.weight_decay) == ("adamw", TRANSFORMER_LR, TRANSFORMER_WEIGHT_DECAY)
    assert (opt.encoding, opt.lr_scaling, opt.width) == ("tokens", "none", TRANSFORMER_WIDTH)
    assert (opt.optimizer, opt.lr, opt.encoding) == ("adamw", 1e-3, "tokens")  # the documented values
    cnn = resolve(TrainOptions(config=DEMO, P=64))
    assert (cnn.optimizer, cnn.weight_decay, cnn.encoding, cnn.lr_scaling, cnn.width) == (
        "sgd",
        0.0,
        "whiten",
        "width",
        512,
    )
    assert {k: getattr(cnn, k) for k in ARCH_DEFAULTS["cnn"]} == ARCH_DEFAULTS["cnn"]


def test_given_options_override_the_arch_defaults():
    opt = resolve(TrainOptions(config=DEMO, P=64, arch="transformer", optimizer="sgd", lr=0.1, weight_decay=0.0))
    assert (opt.optimizer, opt.lr, opt.weight_decay) == ("sgd", 0.1, 0.0)


@pytest.mark.parametrize("encoding", ["whiten", "onehot"])
def test_a_float_encoding_is_refused_for_the_transformer_saying_why(tmp_path, encoding):
    why = r"must satisfy one of \('tokens',\) for the reference network transformer: the transformer embeds token ids"
    with pytest.raises(ValueError, match=f"invalid parameter encoding='{encoding}': {why}"):
        resolve(TrainOptions(config=DEMO, P=64, arch="transformer", encoding=encoding))
    args = ["--config", "demo", "--P", "64", "--arch", "transformer", "--encoding", encoding]
    result = CliRunner().invoke(main, ["train", *args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "the transformer embeds token ids" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arch", ["cnn", "lcn", "fcn"])
def test_tokens_are_refused_for_a_hierarchical_network_saying_why(arch):
    why = f"for the reference network {arch}: {arch} multiplies its weights with \\[B, v, d\\] floats"
    with pytest.raises(ValueError, match=f"invalid parameter encoding='tokens': must satisfy .*{why}"):
        resolve(TrainOptions(config=DEMO, P=64, arch=arch, encoding="tokens"))


def test_a_width_the_heads_do_not_divide_is_refused_before_work():
    with pytest.raises(ValueError, match="invalid parameter width=6: must satisfy a multiple of"):
        resolve(TrainOptions(config=DEMO, P=64, arch="transformer", width=6))


@pytest.mark.parametrize("task", ["class", "last", "mlm", "next"])
@pytest.mark.parametrize("width", [4, 8, 64])
def test_num_parameters_is_the_modules_count(task, width):
    model = build_transformer(DEMO, task, width=width)
    assert num_parameters("transformer", DEMO, width, task=task) == count_parameters(model)


def test_the_transformer_is_not_stacked():
    assert not groupable(resolve(TrainOptions(config=DEMO, P=64, arch="transformer")))
    plain_sgd = dict(optimizer="sgd", weight_decay=0.0, lr_scaling="width")
    assert not groupable(resolve(TrainOptions(config=DEMO, P=64, arch="transformer", **plain_sgd)))
    assert groupable(resolve(TrainOptions(config=DEMO, P=64, arch="cnn", width=8, **plain_sgd)))


@pytest.mark.parametrize("task", ["class", "last", "mlm", "next"])
def test_train_on_every_task_from_the_command_line(tmp_path, task):
    out = tmp_path / task
    args = ["train", "--config", "demo", "--arch", "transformer", "--task", task, "--P", "64", "--width", "8"]
    args += ["--max-steps", "8", "--num-test", "100", "--threads", "1", "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    r = json.loads((out / "results.json").read_text())
    assert r["model"]["arch"] == "transformer" and r["model"]["depth"] == 2
    assert r["model"]["layer_names"] == ["blocks.0", "blocks.1", "output"]
    assert r["model"]["n_parameters"] == num_parameters("transformer", DEMO, 8, task=task)
    t = r["training"]
    assert (t["task"], t["optimizer"], t["encoding"], t["lr_effective"]) == (task, "adamw", "tokens", 1e-3)
    assert t["steps"] == 8 and 0 <= r["best_test_error"] <= 1
    model, cfg, meta = load_checkpoint(out)
    assert meta["task"]["name"] == task and count_parameters(model) == r["model"]["n_parameters"]


def test_the_checkpoint_holds_the_kept_parameters(tmp_path):
    results = train(TrainOptions(**TINY, **QUIET, out=str(tmp_path / "run")))
    model, _, meta = load_checkpoint(tmp_path / "run")
    again = build_transformer(DEMO, width=8, seed=0)
    assert meta["arch"] == "transformer" and meta["step"] == results["training"]["best_step"]
    assert any((a != b).any() for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_training_learns_and_is_a_pure_function_of_the_seed():
    opt = TrainOptions(**{**TINY, "max_steps": 60, "P": 256, "task": "next"}, **QUIET)
    a, b = train(opt), train(opt)
    assert a["training"]["curves"] == b["training"]["curves"]
    losses = a["training"]["curves"]["train_loss"]
    assert losses[-1] < losses[0]
    c = train(dataclasses.replace(opt, seed=1))
    assert c["training"]["curves"] != a["training"]["curves"]


def test_learning_curve_summary_records_the_resolved_width(tmp_path):
    args = ["learning-curve", "--config", "demo", "--arch", "transformer", "--P-min", "8", "--P-max", "16"]
    args += ["--points", "2", "--max-steps", "2", "--num-test", "50", "--threads", "1", "--no-progress"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "curve")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "curve" / "summary.json").read_text())
    assert (summary["width"], summary["lr"]) == (TRANSFORMER_WIDTH, TRANSFORMER_LR)


@pytest.mark.parametrize("task, classes", [("class", SMALL_CFG.nc), ("last", SMALL_CFG.v), ("next", SMALL_CFG.v + 1)])
def test_learning_curve_chance_error_is_a_uniform_guess_over_the_tasks_targets(task, classes):
    runs = [{"P": P, "seed": 0, "best_test_error": e, "final_test_error": e} for P, e in ((10, 0.9), (100, 0.0))]
    summary = curve_summary(TrainOptions(config=SMALL_CFG, P=100, task=task), 0.1, runs, 0.1, "best")
    assert summary["chance_error"] == pytest.approx(1 - 1 / classes)
    at_10_percent = estimate_p_star([10, 100], [0.9, 0.0], 0.1 * (1 - 1 / classes))["P_star"]
    assert summary["P_star_rel_chance"] == pytest.approx(at_10_percent)


def test_learning_curve_gives_p_star(tmp_path):
    out = tmp_path / "curve"
    args = ["learning-curve", "--config", SMALL, "--arch", "transformer", "--width", "16", "--lr", "0.01"]
    args += ["--P-min", "2", "--P-max", "154", "--points", "2", "--max-steps", "300", "--threshold", "0.6"]
    args += ["--threads", "1", "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arch"] == "transformer" and summary["P_star_status"] == "interpolated"
    assert 2 < summary["P_star"] < 154


def test_evaluate_and_leaderboard_without_torch(tmp_path):
    run = tmp_path / "results" / "transformer"
    train(TrainOptions(**{**TINY, "num_test": None}, **QUIET, out=str(run)))  # the board ranks whole splits
    result = CliRunner().invoke(main, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    ev = json.loads((run / "results.json").read_text())["evaluation"]
    assert ev["layers"] == ["blocks.0", "blocks.1", "output"]
    assert all(len(ev["sensitivity"][k][layer]) == DEMO.L for k in ("synonym", "diffeo") for layer in ev["layers"])
    board = tmp_path / "board"
    code = (
        "import sys; from click.testing import CliRunner; from srhm_datasets.cli import main; "
        f"r = CliRunner().invoke(main, ['leaderboard', {str(tmp_path / 'results')!r}, '--out', {str(board)!r}]); "
        "assert r.exit_code == 0, r.output; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    page = next(board.rglob("leaderboard.md")).read_text()
    assert "| transformer w8 |" in page
