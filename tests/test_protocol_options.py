"""Any model under the protocol: the options declared once, a user's model (``--factory``) on every task
and optimiser, its learning curve and P* from the command line and a sweep file, autocast and compile on CPU."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from srhm_datasets.baselines import cli as train_cli
from srhm_datasets.baselines import train as train_mod
from srhm_datasets.baselines.learning_curve import curve_summary, reusable_run
from srhm_datasets.baselines.train import TrainOptions, device_data, draw_epoch, resolve, train
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.generate import generate
from srhm_datasets.protocol import OPTIONS, RUN_SETTINGS, estimate_p_star
from srhm_datasets.sweep.run import run_sweep
from srhm_datasets.sweep.spec import AXES, SECTIONS, TOP_OPTIONS
from srhm_datasets.tasks import apply_task, make_task

from . import user_models
from .sweep_helpers import write_sweep

DEMO = get_config("demo")
#: A tiny user model's run: 30 steps on 64 rows, 200 test rows.
TINY = {"config": DEMO, "P": 64, "max_steps": 30, "num_test": 200, "threads": 1, "progress": False}
MLP = "tests.user_models:tiny_mlp"
TOKENS = "tests.user_models:token_net"


# ---- one declaration --------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [train_cli.train, train_cli.learning_curve], ids=["train", "learning-curve"])
def test_click_options_are_the_declared_options(command):
    params = {p.name: p for p in command.params}
    for o in OPTIONS:
        if o.cli is None:
            continue
        p = params[o.name]
        assert p.default == o.default and p.help == o.help, o.name
        if o.choices is not None:
            assert isinstance(p.type, click.Choice) and tuple(p.type.choices) == o.choices
    assert {f.name for f in dataclasses.fields(TrainOptions)} == {"config", "P", "out", "overwrite"} | {
        o.name for o in OPTIONS
    }


def test_sweep_train_section_and_run_settings_come_from_the_declaration():
    assert set(SECTIONS["train"]) == {o.name for o in OPTIONS if o.sweep} - set(AXES) - set(TOP_OPTIONS)
    for o in OPTIONS:
        if o.name in SECTIONS["train"]:
            assert SECTIONS["train"][o.name].default == o.default
        assert (o.name in RUN_SETTINGS) == (o.field is not None)
    for name in ("task", "optimizer", "weight_decay", "lr_scaling", "factory", "noise", "context", "mask_rate"):
        assert name in RUN_SETTINGS


@pytest.mark.parametrize(
    "change,named",
    [
        ({"optimizer": "rmsprop"}, "optimizer='rmsprop'"),
        ({"weight_decay": -1.0}, "weight_decay=-1.0"),
        ({"lr_scaling": "sqrt"}, "lr_scaling='sqrt'"),
        ({"task": "last"}, "task='last': must satisfy 'class' for the reference network cnn"),
        ({"encoding": "tokens"}, "encoding='tokens'"),
        ({"factory": "no_colon"}, "factory='no_colon'"),
        ({"factory": "no_such_module_xyz:f"}, "factory='no_such_module_xyz:f'"),
        ({"factory": TOKENS, "task": "last", "context": 99}, "context=99"),
        ({"factory": TOKENS, "task": "class", "mask_rate": 0.5}, "mask_rate=0.5"),
        ({"noise": 1.0}, "noise=1.0"),
        ({"name": "x"}, "name='x': must satisfy None unless a factory is given"),
        ({"factory": MLP, "lr_scaling": "width"}, "lr_scaling='width': must satisfy 'none' or None with a factory"),
    ],
)
def test_bad_options_name_the_option(change, named):
    with pytest.raises(ValueError, match="invalid parameter") as err:
        resolve(TrainOptions(**{**TINY, **change}))
    assert named in str(err.value)


@pytest.mark.parametrize(
    "change,named",
    [
        ({"factory": MLP, "width": 32}, "width=32: must satisfy None (its default): it applies only to a reference"),
        ({"factory": MLP, "arch": "lcn"}, "arch='lcn': must satisfy 'cnn' (its default)"),
        ({"factory": MLP, "norm": "channels"}, "norm='channels'"),
        ({"factory": MLP, "bias": True}, "bias=True"),
        ({"arch": "transformer", "bias": True}, "bias=True: must satisfy False (its default): it applies only"),
        ({"arch": "transformer", "momentum": 0.5}, "momentum=0.5: must satisfy 0.9 (its default): it applies only"),
        ({"optimizer": "adam", "momentum": 0.0}, "momentum=0.0"),
        ({"compile_backend": "eager"}, "compile_backend='eager': must satisfy None (its default): it applies only"),
        ({"revision": "v1.0"}, "revision='v1.0': must satisfy None (its default): it applies only to --data"),
        ({"redraw": False}, "redraw=False: must satisfy True (its default): it applies only to --task mlm or"),
    ],
)
def test_an_option_that_would_be_ignored_is_refused(change, named):
    with pytest.raises(ValueError, match="invalid parameter") as err:
        resolve(TrainOptions(**{**TINY, **change}))
    assert named in str(err.value)


def test_an_option_is_accepted_on_the_runs_it_applies_to():
    opt = resolve(TrainOptions(**TINY, arch="transformer", width=8, optimizer="sgd", momentum=0.5))
    assert (opt.optimizer, opt.momentum) == ("sgd", 0.5)
    opt = resolve(TrainOptions(**TINY, width=8, bias=True, norm="channels", compile=True, compile_backend="eager"))
    assert (opt.bias, opt.norm, opt.compile_backend) == (True, "channels", "eager")
    assert resolve(TrainOptions(**TINY, factory=MLP, lr_scaling="none")).width is None


def test_cli_refuses_a_reference_option_with_a_factory(tmp_path):
    args = ["train", "--config", "demo", "--P", "64", "--factory", MLP, "--width", "32", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "width=32" in result.output and "not --factory" in result.output
    assert not (tmp_path / "r").exists()


#: Options typed at their default value on runs they do not apply to: (arguments, the refusal's text).
TYPED_AT_DEFAULT = {
    "momentum-adamw": (["--momentum", "0.9", "--optimizer", "adamw"], "momentum=0.9: must satisfy not given"),
    "arch-factory": (["--arch", "cnn", "--factory", MLP], "arch='cnn': must satisfy not given: it applies only to a"),
    "norm-factory": (["--norm", "fan_in", "--factory", MLP], "norm='fan_in': must satisfy not given"),
    "bias-transformer": (["--no-bias", "--arch", "transformer"], "bias=False: must satisfy not given"),
    "redraw-class": (["--redraw"], "redraw=True: must satisfy not given: it applies only to --task mlm or --noise"),
}


@pytest.mark.parametrize("command", ["train", "learning-curve"])
@pytest.mark.parametrize("typed", TYPED_AT_DEFAULT, ids=TYPED_AT_DEFAULT.keys())
def test_cli_refuses_an_option_typed_at_its_default_where_it_does_not_apply(tmp_path, command, typed):
    extra, named = TYPED_AT_DEFAULT[typed]
    size = ["--P", "64"] if command == "train" else ["--P-min", "20", "--P-max", "40", "--points", "2"]
    args = [command, "--config", "demo", *size, "--max-steps", "2", *extra, "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and f"Error: invalid parameter {named}" in result.output, result.output
    assert not (tmp_path / "r").exists()


def test_cli_accepts_an_option_typed_at_its_default_where_it_applies(tmp_path):
    args = ["--config", "demo", "--P", "64", "--width", "8", "--max-steps", "2", "--num-test", "50", "--no-progress"]
    typed = ["--momentum", "0.9", "--optimizer", "sgd", "--norm", "fan_in", "--no-bias", "--arch", "cnn"]
    result = CliRunner().invoke(main, ["train", *args, *typed, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["training"]["momentum"] == 0.9 and results["model"]["norm"] == "fan_in"


@pytest.mark.parametrize(
    "change,redraw",
    [({}, None), ({"noise": 0.1}, True), ({"noise": 0.1, "redraw": False}, False)],
    ids=["class", "noise", "noise-no-redraw"],
)
def test_results_record_redraw_only_where_it_applies(change, redraw):
    """As the summary does (null on a run whose inputs are not drawn), and the results validate (train checks them)."""
    t = train(TrainOptions(**{**TINY, "width": 8, "max_steps": 2}, **change))["training"]
    assert t["redraw"] is redraw


def test_defaults_per_model():
    ref = resolve(TrainOptions(**TINY, width=16))
    assert (ref.lr_scaling, ref.optimizer) == ("width", "sgd")
    user = resolve(TrainOptions(**TINY, factory=MLP))
    assert (user.lr_scaling, user.lr) == ("none", 1e-3)


# ---- a user's model ----------------------------------------------------------------------------------
def test_factory_run_records_what_made_it_and_is_re_evaluated(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["train", "--config", "demo", "--P", "64", "--out", str(run), "--factory", MLP, "--optimizer", "adam"]
        + ["--max-steps", "30", "--num-test", "200", "--threads", "1", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((run / "results.json").read_text())
    model, training = results["model"], results["training"]
    source = inspect.getsource(user_models)
    assert model["factory"] == MLP and model["name"] == "tiny_mlp" and model["arch"] == "custom"
    assert model["source_sha256"] == hashlib.sha256(source.encode()).hexdigest()
    assert model["n_parameters"] == sum(p.numel() for p in user_models.tiny_mlp(DEMO).parameters())
    assert model["width"] == 32 and model["layer_names"] == ["hidden", "output"]
    assert (training["optimizer"], training["lr_scaling"], training["lr_effective"]) == ("adam", "none", 1e-3)
    assert training["task"] == "class" and min(training["curves"]["test_error"]) == results["best_test_error"]
    # srhm evaluate rebuilds it through its factory; S and D are measured on its modules by name
    result = CliRunner().invoke(main, ["evaluate", str(run), "--num-test", "200", "--num-probe", "40"])
    assert result.exit_code == 0, result.output
    ev = json.loads((run / "results.json").read_text())["evaluation"]
    assert ev["layers"] == ["hidden", "output"] and ev["test_error"] == results["best_test_error"]
    for kind in ("synonym", "diffeo"):
        assert all(v is None or (math.isfinite(v) and v >= 0) for v in ev["sensitivity"][kind]["hidden"])


def test_factory_initialisation_follows_the_seed():
    a, b, c = (train(TrainOptions(**TINY, factory=MLP, seed=s)) for s in (0, 0, 1))
    assert a["training"]["curves"] == b["training"]["curves"] != c["training"]["curves"]


@pytest.mark.parametrize("task,extra", [("last", {"context": 4}), ("mlm", {"mask_rate": 0.3}), ("next", {})])
def test_token_tasks_train_on_scored_targets(task, extra):
    opts = TrainOptions(
        **{**TINY, "max_steps": 60, "eval_every": 20}, factory=TOKENS, task=task, encoding="tokens", **extra
    )
    results = train(dataclasses.replace(opts, optimizer="adamw", lr=3e-3, weight_decay=0.01))
    t = results["training"]
    assert (t["task"], t["optimizer"], t["weight_decay"]) == (task, "adamw", 0.01)
    assert {k: t[k] for k in extra} == extra
    errors, losses = t["curves"]["test_error"], t["curves"]["train_loss"]
    assert len(errors) == 3 and all(0 <= e <= 1 for e in errors)
    assert losses[-1] < losses[0]  # it fits the scored targets of train[:P]


MLM = {**TINY, "factory": TOKENS, "task": "mlm", "mask_rate": 0.3, "encoding": "tokens", "optimizer": "adam"}


def test_an_mlm_run_draws_its_train_masks_afresh_every_epoch_and_keeps_the_test_masks():
    opt = resolve(TrainOptions(**MLM))
    data, _ = device_data(opt, "cpu")
    test_tokens, first = data.test_tokens.clone(), data.train_tokens.clone()
    rows = generate(DEMO, "train", 0, opt.P)
    for epoch in (1, 2, 0):
        draw_epoch(opt, data, epoch)
        expected = apply_task(DEMO, make_task(DEMO, "mlm", mask_rate=0.3, key=epoch), rows, "train", 0)
        assert np.array_equal(data.train_tokens.numpy(), expected.inputs)
        assert np.array_equal(data.train_label.numpy(), expected.targets)
        assert data.epoch == epoch and torch.equal(data.test_tokens, test_tokens)
    assert torch.equal(data.train_tokens, first)  # epoch 0 is key 0, the draws of --no-redraw
    draw_epoch(opt, data, 1)
    assert not torch.equal(data.train_tokens, first)
    assert device_data(dataclasses.replace(opt, redraw=False), "cpu")[0].train_rows is None


def test_training_draws_each_epoch_once_in_order(monkeypatch):
    drawn = []
    real = train_mod.draw_epoch
    monkeypatch.setattr(train_mod, "draw_epoch", lambda opt, data, epoch: (drawn.append(epoch), real(opt, data, epoch)))
    results = train(TrainOptions(**{**MLM, "max_steps": 40, "loss_threshold": 0.0}))
    t = results["training"]
    assert t["redraw"] is True and drawn == list(range(1, math.ceil(t["epochs"])))
    fixed = train(TrainOptions(**{**MLM, "max_steps": 40, "loss_threshold": 0.0, "redraw": False}))
    assert len(drawn) == len(range(1, math.ceil(t["epochs"])))  # --no-redraw draws nothing
    assert fixed["training"]["curves"]["train_loss"] != t["curves"]["train_loss"]
    assert train(TrainOptions(**{**MLM, "max_steps": 40, "loss_threshold": 0.0}))["training"]["curves"] == t["curves"]


def test_redrawn_noise_keeps_the_shuffled_labels_of_the_control():
    opt = resolve(TrainOptions(**TINY, width=8, noise=0.2, shuffle_labels=True))
    data, _ = device_data(opt, "cpu")
    labels, tokens = data.train_label.clone(), data.train_tokens.clone()
    draw_epoch(opt, data, 1)
    assert torch.equal(data.train_label, labels) and not torch.equal(data.train_tokens, tokens)


def test_test_error_counts_only_scored_targets():
    import torch

    from srhm_datasets.baselines.train import count_errors

    logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])  # argmax [[1, 0], [0, 0]]
    targets = torch.tensor([[1, -100], [1, 0]])
    wrong, scored = count_errors(logits, targets)
    assert (int(wrong), int(scored)) == (1, 3)


def test_optimizers_and_lr_scaling_change_the_run():
    base = TrainOptions(**TINY, arch="cnn", width=16)
    sgd, adam = train(base), train(dataclasses.replace(base, optimizer="adam", lr=1e-3, lr_scaling="none"))
    assert sgd["training"]["lr_effective"] == sgd["training"]["lr"] * 16
    assert adam["training"]["lr_effective"] == 1e-3
    assert sgd["training"]["curves"]["train_loss"] != adam["training"]["curves"]["train_loss"]


def test_run_written_before_the_new_options_is_reused(tmp_path):
    opts = TrainOptions(**TINY, arch="cnn", width=16, out=str(tmp_path / "run"))
    train(opts)
    path = tmp_path / "run" / "results.json"
    old = json.loads(path.read_text())
    for key in ("task", "context", "mask_rate", "noise", "optimizer", "weight_decay", "lr_scaling"):
        del old["training"][key]
    path.write_text(json.dumps(old))
    assert reusable_run(tmp_path / "run", resolve(dataclasses.replace(opts, out=None))) is not None
    with pytest.raises(ValueError, match="optimizer='sgd' \\(requested 'adam'\\)"):
        reusable_run(tmp_path / "run", resolve(dataclasses.replace(opts, out=None, optimizer="adam")))


# ---- learning curve and P* of a model the package has never seen ------------------------------------
#: A threshold the tiny MLP crosses between P = 40 and P = 400 (best test errors about 0.68 and 0.61).
CURVE = ["--P-min", "40", "--P-max", "400", "--points", "2", "--max-steps", "150", "--num-test", "300"]
CURVE += ["--threshold", "0.65"]


def test_learning_curve_of_a_user_model_gives_p_star(tmp_path):
    out = tmp_path / "lc"
    args = ["learning-curve", "--config", "demo", "--factory", MLP, "--optimizer", "adam", "--lr", "0.01"]
    result = CliRunner().invoke(main, args + CURVE + ["--out", str(out), "--threads", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["factory"] == MLP and summary["name"] == "tiny_mlp" and summary["arch"] == "custom"
    assert [r["P"] for r in summary["runs"]] == [40, 400]
    errors = [r["best_test_error"] for r in summary["runs"]]
    assert summary["P_star_status"] == "interpolated" and 40 < summary["P_star"] < 400
    assert summary["P_star"] == estimate_p_star([40, 400], errors, 0.65)["P_star"]
    assert "P*" in result.output
    runs = [json.loads((out / r["run"] / "results.json").read_text()) for r in summary["runs"]]
    assert all(r["model"]["factory"] == MLP for r in runs)
    # a second call reuses both runs (same settings), a changed optimiser is refused
    again = CliRunner().invoke(main, args + CURVE + ["--out", str(out), "--threads", "1", "--no-progress"])
    assert again.exit_code == 0 and json.loads((out / "summary.json").read_text())["runs"][0]["skipped"]
    other = [a if a != "adam" else "adamw" for a in args]
    refused = CliRunner().invoke(main, other + CURVE + ["--out", str(out), "--threads", "1"])
    assert refused.exit_code == 2 and "optimizer='adam' (requested 'adamw')" in refused.output


def test_sweep_file_with_a_factory_gives_p_star(tmp_path):
    path = write_sweep(
        tmp_path / "user.yaml",
        factory=MLP,
        seeds=[0],
        P={"min": 40, "max": 400, "points": 2},
        train={"max_steps": 150, "num_test": 300, "optimizer": "adam", "lr_scaling": "none"},
        curve={"plot": False, "threshold": 0.65},
        executor={"local": {"workers": 1}},
    )
    doc = path.read_text().replace("archs:\n- cnn\n", "").replace("widths:\n- 16\n", "")
    path.write_text(doc)
    report = run_sweep(path, tmp_path / "out", progress_bar=False)
    assert report.errors == {} and report.started == ["demo-tiny_mlp-lrdefault-seed0"]
    pstar = json.loads((tmp_path / "out" / "pstar.json").read_text())
    assert len(pstar["curves"]) == 1 and 40 < pstar["curves"][0]["P_star"] < 400
    runs = sorted((tmp_path / "out" / "runs").glob("*/P*/results.json"))
    results = [json.loads(p.read_text()) for p in runs]
    assert len(results) == 2 and all(r["model"]["factory"] == MLP for r in results)
    assert all(r["evaluation"]["layers"] == ["hidden", "output"] for r in results)  # S and D by module name
    board = json.loads((tmp_path / "out" / "leaderboard" / "leaderboard.json").read_text())
    tasks = [t for c in board["configs"].values() for t in c["tasks"].values()]
    assert board["rejected"] == [] and sum(len(t["rows"]) for t in tasks) == 2
    assert [len(t["ranking"]) for t in tasks] == [1]  # the user's model has its place in the P* ranking


#: The summary's task fields, for a curve of each model and task (``None``: the option does not apply).
PLAIN_TASK = {"task": "class", "context": None, "mask_rate": None, "noise": 0.0, "redraw": None}


@pytest.mark.parametrize(
    "options,fields",
    [
        ({"noise": 0.1}, {**PLAIN_TASK, "noise": 0.1, "redraw": True, "factory": None, "name": None}),
        ({"noise": 0.1, "redraw": False}, {**PLAIN_TASK, "noise": 0.1, "redraw": False}),
        ({"arch": "transformer", "task": "last"}, {**PLAIN_TASK, "task": "last"}),
        ({"arch": "transformer", "task": "last", "context": 4}, {**PLAIN_TASK, "task": "last", "context": 4}),
        ({"arch": "transformer", "task": "mlm"}, {**PLAIN_TASK, "task": "mlm", "mask_rate": 0.15, "redraw": True}),
        ({"factory": MLP}, {**PLAIN_TASK, "factory": MLP, "name": "tiny_mlp"}),
        ({"factory": TOKENS, "task": "next", "encoding": "tokens", "name": "mine"}, {"task": "next", "name": "mine"}),
    ],
    ids=["noise", "noise-no-redraw", "last", "last-context", "mlm", "factory", "factory-next"],
)
def test_a_curve_summary_records_the_task_and_its_options(options, fields):
    runs = [{"P": 64, "seed": 0, "best_test_error": 0.5, "final_test_error": 0.5}]
    for opt in (TrainOptions(**TINY, **options), resolve(TrainOptions(**TINY, **options))):  # as given, resolved
        summary = curve_summary(opt, 1e-3, runs, 0.1, "best")
        assert {k: summary[k] for k in fields} == fields


def test_a_plain_class_curve_of_a_reference_network_has_no_task_fields():
    runs = [{"P": 64, "seed": 0, "best_test_error": 0.5, "final_test_error": 0.5}]
    summary = curve_summary(resolve(TrainOptions(**TINY, arch="lcn")), 1e-3, runs, 0.1, "best")
    assert not {"task", "context", "mask_rate", "noise", "redraw", "factory", "name"} & set(summary)


def test_a_noisy_learning_curve_writes_its_noise_in_the_summary(tmp_path):
    args = ["learning-curve", "--config", "demo", "--width", "8", "--noise", "0.1", "--no-redraw", "--P-min", "20"]
    args += ["--P-max", "40", "--points", "2", "--max-steps", "5", "--num-test", "100", "--threads", "1"]
    result = CliRunner().invoke(main, [*args, "--no-progress", "--out", str(tmp_path / "lc")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "lc" / "summary.json").read_text())
    assert {k: summary[k] for k in PLAIN_TASK} == {**PLAIN_TASK, "noise": 0.1, "redraw": False}


# ---- autocast and compile on CPU ----------------------------------------------------------------------
#: bf16 rounds activations to 8 bits of mantissa: over 30 steps the best test error of the autocast run
#: stays within this of the float32 run (measured, seeds 0..2: equal or one of 200 test rows apart; train
#: losses within 2e-4 relative).
AMP_TOLERANCE = 0.05


def test_amp_on_cpu_is_bf16_autocast_within_tolerance():
    base = TrainOptions(**TINY, arch="cnn", width=16)
    plain, amp = train(base), train(dataclasses.replace(base, amp=True))
    assert amp["training"]["amp"] is True
    assert abs(amp["best_test_error"] - plain["best_test_error"]) <= AMP_TOLERANCE
    assert amp["training"]["curves"]["train_loss"] != plain["training"]["curves"]["train_loss"]  # bf16 did act


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compile_on_cpu_matches_the_plain_run(backend):
    base = TrainOptions(**TINY, arch="cnn", width=16)
    plain = train(base)
    compiled = train(dataclasses.replace(base, compile=True, compile_backend=backend))
    assert compiled["training"]["compile"] is True
    for a, b in zip(plain["training"]["curves"]["train_loss"], compiled["training"]["curves"]["train_loss"]):
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)
    assert compiled["best_test_error"] == plain["best_test_error"]


def test_cli_help_lists_the_new_options():
    result = CliRunner().invoke(main, ["train", "--help"])
    for flag in ("--factory", "--task", "--optimizer", "--weight-decay", "--lr-scaling", "--compile-backend"):
        assert flag in result.output
    assert Path(inspect.getfile(user_models)).name == "user_models.py"


def test_evaluate_measures_a_run_of_another_task_on_its_task(tmp_path):
    run = tmp_path / "run"
    results = train(TrainOptions(**TINY, factory=TOKENS, task="last", encoding="tokens", out=str(run)))
    result = CliRunner().invoke(main, ["evaluate", str(run), "--no-write", "--num-test", "200"])
    assert result.exit_code == 0 and "(task last); no probe" in result.output, result.output
    assert f"test error {results['best_test_error']:.4f}" in result.output


def test_the_contract_holds_the_options_table():
    from srhm_datasets.protocol import options_table

    text = (Path(__file__).parent.parent / "docs" / "format.md").read_text()
    assert options_table() in text


def test_float16_autocast_uses_a_gradient_scaler(monkeypatch):
    """The CUDA path without bf16 (float16 and a GradScaler), run on a CPU."""
    import torch

    from srhm_datasets.baselines import train as train_module

    scalers = []
    real = torch.amp.GradScaler
    monkeypatch.setattr(train_module, "autocast_dtype", lambda device: torch.float16)
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device: scalers.append(device) or real(device))
    base = TrainOptions(**TINY, arch="cnn", width=16)
    plain, amp = train(base), train(dataclasses.replace(base, amp=True))
    assert scalers == ["cpu"]
    assert abs(amp["best_test_error"] - plain["best_test_error"]) <= AMP_TOLERANCE


@pytest.mark.parametrize(
    "extra,named",
    [
        ("factory: tests.user_models:tiny_mlp\narchs: [cnn]\n", "archs=['cnn']: must satisfy absent when a factory"),
        ("factory: tests.user_models:tiny_mlp\nwidths: [16]\n", "widths=[16]: must satisfy absent when a factory"),
        ("task: parity\n", "task='parity'"),
        ("factory: nocolon\n", "factory='nocolon'"),
        ("train: {optimizer: lbfgs}\n", "train.optimizer='lbfgs'"),
        ("train: {weight_decay: -1.0}\n", "train.weight_decay=-1.0"),
    ],
)
def test_sweep_file_checks_the_new_fields(tmp_path, extra, named):
    from srhm_datasets.sweep.spec import SweepFileError, load_sweep

    path = tmp_path / "s.yaml"
    path.write_text("configs: [demo]\nP: {min: 10, max: 40, points: 2}\n" + extra)
    with pytest.raises(SweepFileError) as err:
        load_sweep(path)
    assert any(named in e for e in err.value.errors), err.value.errors


def test_sweep_file_task_reaches_the_runs(tmp_path):
    from srhm_datasets.sweep.plan import expand
    from srhm_datasets.sweep.spec import load_sweep

    path = tmp_path / "s.yaml"
    path.write_text(
        "configs: [demo]\nP: {min: 10, max: 40, points: 2}\nfactory: tests.user_models:token_net\ntask: mlm\n"
        "train: {encoding: tokens, mask_rate: 0.3}\nevaluate: {enabled: false}\n"
    )
    (job,) = expand(load_sweep(path))
    opt = resolve(job.options())
    assert (opt.factory, opt.task, opt.mask_rate, opt.encoding) == (TOKENS, "mlm", 0.3, "tokens")
    assert job.id == "demo-token_net-lrdefault-seed0" and job.width is None


def test_a_sweep_of_another_task_evaluates_its_test_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "configs: [demo]\nP: {min: 32, max: 64, points: 2}\narchs: [transformer]\nwidths: [8]\ntask: next\n"
        "train: {max_steps: 20, num_test: 100, threads: 1}\nevaluate: {num_test: 200}\n"
        "curve: {plot: false}\nexecutor: {local: {workers: 1}}\n"
    )
    report = run_sweep(path, tmp_path / "out", progress_bar=False)
    assert report.errors == {} and report.finished is not None
    runs = sorted((tmp_path / "out" / "runs").glob("*/P*/results.json"))
    evaluations = [json.loads(p.read_text())["evaluation"] for p in runs]
    assert len(evaluations) == 2
    assert all(e["num_test"] == 200 and 0 <= e["test_error"] <= 1 and e["probe"] is None for e in evaluations)


def test_a_model_whose_output_does_not_fit_the_task_is_refused_before_training(tmp_path):
    wrong = "tests.user_models:two_outputs"
    with pytest.raises(
        ValueError, match=r"factory='tests.user_models:two_outputs'.*'class' is \[B, >= 4\] \(it gave \(2, 2\)\)"
    ):
        train(TrainOptions(**TINY, factory=wrong, out=str(tmp_path / "run")))
    assert not (tmp_path / "run" / "results.json").exists()
    with pytest.raises(ValueError, match=r"task 'mlm' is \[B, 16, >= 4\] \(it gave \(2, 4\)\)"):
        train(
            TrainOptions(**TINY, factory=TOKENS.replace("token_net", "class_token_net"), task="mlm", encoding="tokens")
        )


def test_token_model_run_is_evaluated_with_its_encoding(tmp_path):
    """A model on token ids (no hidden_layer_names): S and D at its output, the test error as trained."""
    run = tmp_path / "run"
    results = train(TrainOptions(**TINY, factory=TOKENS, encoding="tokens", out=str(run)))
    assert results["model"]["layer_names"] == ["output"] and results["model"]["width"] is None
    result = CliRunner().invoke(main, ["evaluate", str(run), "--num-test", "200", "--num-probe", "40"])
    assert result.exit_code == 0, result.output
    ev = json.loads((run / "results.json").read_text())["evaluation"]
    assert ev["layers"] == ["output"] and ev["test_error"] == results["best_test_error"]
    assert any(v is not None and v > 0 for v in ev["sensitivity"]["synonym"]["output"])
