"""A user's model (``--factory``): its code is part of a run's identity, its faults are one-line errors naming
``factory`` on every path that builds it, and its runs are labelled by its name."""

from __future__ import annotations

import json
import sys
import types

import pytest
from click.testing import CliRunner

from srhm_datasets.baselines import train as train_mod
from srhm_datasets.baselines.factory import build_factory_model, source_sha256
from srhm_datasets.baselines.learning_curve import run_learning_curve
from srhm_datasets.baselines.train import TrainOptions, resolve, train
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.config import ParameterTypeError
from srhm_datasets.evaluation.board_entries import collect
from srhm_datasets.evaluation.board_verify import verify
from srhm_datasets.evaluation.evaluate import evaluate_factory, evaluate_run
from srhm_datasets.sweep.run import run_sweep, sweep_status

from . import user_models
from .sweep_helpers import write_sweep

DEMO = get_config("demo")
TINY = {"config": DEMO, "P": 64, "max_steps": 5, "num_test": 100, "threads": 1, "progress": False}
MLP = "tests.user_models:tiny_mlp"
#: A model module the tests edit: an MLP whose hidden activation is ACTIVATION.
MODULE = """from torch import nn


def mlp(cfg):
    return nn.Sequential(nn.Flatten(), nn.Linear(cfg.v * cfg.d, 16), nn.ACTIVATION(), nn.Linear(16, cfg.nc))
"""


@pytest.fixture
def editable(tmp_path, monkeypatch, request):
    """``(spec, edit)``: the factory ``module:mlp`` of a module file in ``tmp_path`` (ReLU), and a function that
    rewrites the file with another activation."""
    name = f"editable_{request.node.name.replace('[', '_').replace(']', '_').replace('-', '_')}"
    path = tmp_path / "models" / f"{name}.py"
    path.parent.mkdir()
    monkeypatch.syspath_prepend(str(path.parent))
    monkeypatch.chdir(path.parent)  # the sweep's workers import it from the working directory
    monkeypatch.delitem(sys.modules, name, raising=False)

    def edit(activation: str) -> None:
        path.write_text(MODULE.replace("ACTIVATION", activation))

    edit("ReLU")
    yield f"{name}:mlp", edit
    sys.modules.pop(name, None)


def curve(out, factory: str) -> dict:
    return run_learning_curve(TrainOptions(**TINY, factory=factory), out, 20, 40, 2, plot=False)


# ---- the code of a user's model is part of a run's identity ------------------------------------------
def test_a_learning_curve_reuses_a_run_only_when_its_factory_source_is_the_same(tmp_path, editable):
    spec, edit = editable
    first = curve(tmp_path / "lc", spec)
    recorded = json.loads((tmp_path / "lc" / "P20" / "results.json").read_text())["model"]["source_sha256"]
    assert recorded == source_sha256(spec) and not any(r["skipped"] for r in first["runs"])
    assert all(r["skipped"] for r in curve(tmp_path / "lc", spec)["runs"])  # the same code: reused
    edit("Sigmoid")
    assert source_sha256(spec) != recorded
    with pytest.raises(ValueError, match=rf"source_sha256='{recorded}' \(requested '[0-9a-f]{{64}}': the source of"):
        curve(tmp_path / "lc", spec)
    edit("ReLU")  # back to the code of the runs: reused again
    assert all(r["skipped"] for r in curve(tmp_path / "lc", spec)["runs"])


def test_the_cli_names_the_changed_source(tmp_path, editable):
    spec, edit = editable
    args = ["learning-curve", "--config", "demo", "--factory", spec, "--P-min", "20", "--P-max", "40"]
    args += ["--points", "2", "--max-steps", "5", "--num-test", "100", "--threads", "1", "--no-progress"]
    args += ["--out", str(tmp_path / "lc")]
    assert CliRunner().invoke(main, args).exit_code == 0
    edit("Tanh")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "source_sha256=" in result.output and "Traceback" not in result.output
    assert "skipped" not in result.output


def test_a_run_or_submission_is_not_evaluated_with_other_code(tmp_path, editable):
    spec, edit = editable
    run = tmp_path / "run"
    train(TrainOptions(**{**TINY, "num_test": None}, factory=spec, out=str(run)))
    sub = tmp_path / "sub"
    evaluate_factory(sub, spec, config="demo", P=64)  # whole splits: the board ranks it
    assert evaluate_run(run, write=False, num_probe=20)["evaluation"]["test_error"] >= 0  # the same code
    edit("Tanh")
    with pytest.raises(ValueError, match=rf"factory='{spec}': must satisfy the code the model was made with"):
        evaluate_run(run, write=False, num_probe=20)
    result = CliRunner().invoke(main, ["evaluate", str(run), "--num-probe", "20"])
    assert result.exit_code != 0 and "the code the model was made with" in result.output
    kept, rejected, unverified = verify(collect(sub)[0])
    assert not rejected and [e.mark for e in kept] == ["reported"]
    assert len(unverified) == 1 and "the code the model was made with" in unverified[0].reason
    before = (sub / "results.json").read_bytes()  # the submission is not evaluated again with other code either
    result = CliRunner().invoke(main, ["evaluate", str(sub), "--factory", spec, "--num-probe", "20"])
    assert result.exit_code == 2 and f"factory='{spec}': must satisfy the code the model was made with" in result.output
    assert (sub / "results.json").read_bytes() == before


def test_a_run_of_a_factory_without_source_is_never_reused(tmp_path, monkeypatch):
    module = types.ModuleType("sourceless_models")  # no file: inspect.getsource fails
    module.TinyMLP = user_models.TinyMLP
    exec("def mlp(cfg):\n    return TinyMLP(cfg)\n", module.__dict__)
    monkeypatch.setitem(sys.modules, "sourceless_models", module)
    assert source_sha256("sourceless_models:mlp") is None
    curve(tmp_path / "lc", "sourceless_models:mlp")
    with pytest.raises(
        ValueError, match=r"source_sha256=None \(requested None: the source of module sourceless_models"
    ):
        curve(tmp_path / "lc", "sourceless_models:mlp")
    # a sweep reads its finished runs from its files: refused before anything runs
    sweep = write_sweep(tmp_path / "s.yaml", factory="sourceless_models:mlp", evaluate={"enabled": False})
    sweep.write_text(sweep.read_text().replace("archs:\n- cnn\n", "").replace("widths:\n- 16\n", ""))
    with pytest.raises(ValueError, match="factory='sourceless_models:mlp': must satisfy a factory whose module has"):
        run_sweep(sweep, tmp_path / "sweep", progress_bar=False)
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_refuses_runs_made_by_other_code(tmp_path, editable):
    spec, edit = editable
    sweep = write_sweep(
        tmp_path / "s.yaml", factory=spec, seeds=[0], P={"min": 20, "max": 40, "points": 2}, evaluate={"enabled": False}
    )
    sweep.write_text(sweep.read_text().replace("archs:\n- cnn\n", "").replace("widths:\n- 16\n", ""))
    report = run_sweep(sweep, tmp_path / "sweep", progress_bar=False)
    assert report.errors == {} and [s.state for s in report.after] == ["done"]
    edit("Tanh")
    (status,) = sweep_status(tmp_path / "sweep")
    assert status.state == "failed" and "source_sha256=" in status.reason
    with pytest.raises(ValueError, match="source_sha256="):
        run_sweep(sweep, tmp_path / "sweep", progress_bar=False)


# ---- a faulty factory is one error naming it, on every path -------------------------------------------
@pytest.mark.parametrize(
    "factory,change,message",
    [
        (MLP, {"encoding": "tokens"}, r"takes \[B, d\] int64 ids \(--encoding tokens\) for task 'class' \(it raised "),
        (
            "tests.user_models:frozen_mlp",
            {},
            r"loss on task 'class' backpropagates \(it raised RuntimeError: element 0",
        ),
        ("tests.user_models:reads_a_missing_setting", {}, r"calling it raised AttributeError: .*hidden_width"),
    ],
    ids=["crashes-on-its-inputs", "no-gradient", "factory-raises"],
)
def test_a_model_that_fails_is_a_value_error_naming_the_factory_before_training(tmp_path, factory, change, message):
    with pytest.raises(ValueError, match=rf"invalid parameter factory='{factory}': .*{message}"):
        train(TrainOptions(**TINY, factory=factory, out=str(tmp_path / "run"), **change))
    assert not (tmp_path / "run").exists()


#: A model of next whose output at a position reads later inputs (its target among them): (factory, why).
LOOKAHEAD = {
    "mixes-the-row": "tests.user_models:sees_the_future",
    "centred-convolution": "tests.user_models:same_padding_conv",
}
CAUSAL = r"a causal model for task 'next': its output at position i must depend on inputs 0\.\.i only"


@pytest.mark.parametrize("factory", LOOKAHEAD.values(), ids=LOOKAHEAD.keys())
def test_a_next_model_that_sees_later_inputs_is_refused_before_training(tmp_path, factory):
    options = TrainOptions(**TINY, factory=factory, task="next", encoding="tokens", out=str(tmp_path / "run"))
    with pytest.raises(ValueError, match=rf"invalid parameter factory='{factory}': must satisfy {CAUSAL}"):
        train(options)
    assert not (tmp_path / "run").exists()


def test_a_run_of_a_non_causal_next_model_is_not_evaluated(tmp_path, monkeypatch):
    """A next run made while the check was off (an older version, or weights grown into a look-ahead) is
    refused by srhm evaluate RUN_DIR too."""
    factory, run = LOOKAHEAD["mixes-the-row"], tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(train_mod, "check_causal", lambda *args: None)
        train(TrainOptions(**TINY, factory=factory, task="next", encoding="tokens", out=str(run)))
    with pytest.raises(ValueError, match=rf"invalid parameter factory='{factory}': must satisfy {CAUSAL}"):
        evaluate_run(run, write=False)


def test_a_causal_next_model_passes_and_trains():
    """token_net of next (a running mean) and the reference transformer (causal attention) pass; a model of
    another task may read the whole row."""
    tokens = {"factory": "tests.user_models:token_net", "task": "next", "encoding": "tokens"}
    assert train(TrainOptions(**{**TINY, "max_steps": 2}, **tokens))["training"]["steps"] == 2
    model = train_mod.build_transformer(DEMO, "next", width=8, depth=1)
    train_mod.check_causal(model, DEMO, "next", "tokens", "arch", "transformer")
    train_mod.check_causal(user_models.tiny_mlp(DEMO), DEMO, "class", "whiten", "factory", MLP)


def test_the_causality_check_leaves_the_model_as_it_was():
    model = user_models.same_padding_conv(DEMO, "next").train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=CAUSAL):
        train_mod.check_causal(model, DEMO, "next", "tokens", "factory", "m:f")
    assert model.training and all(v.equal(model.state_dict()[k]) for k, v in state.items())


def test_a_module_that_raises_on_import_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken_models.py").write_text("def mlp(cfg)\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_models", raising=False)
    with pytest.raises(ValueError, match="factory='broken_models:mlp': importing broken_models raised SyntaxError"):
        resolve(TrainOptions(**TINY, factory="broken_models:mlp"))


def test_a_factory_returning_no_module_is_a_parameter_type_error():
    with pytest.raises(ParameterTypeError, match="factory='tests.user_models:not_a_module': .* returned str"):
        build_factory_model("tests.user_models:not_a_module", DEMO)


CURVE = ["--P-min", "20", "--P-max", "40", "--points", "2", "--max-steps", "5", "--num-test", "100"]


FAULTS = {
    "no-module": ("tests.user_models:not_a_module", []),
    "crashes": (MLP, ["--encoding", "tokens"]),
    "raises": ("tests.user_models:reads_a_missing_setting", []),
}
#: (command, fault): srhm evaluate --factory builds the model (it reads its inputs' encoding from its own options).
PATHS = [(c, f) for c in ("train", "learning-curve") for f in FAULTS] + [
    ("evaluate", "no-module"),
    ("evaluate", "raises"),
]


@pytest.mark.parametrize("command,fault", PATHS, ids=[f"{c}-{f}" for c, f in PATHS])
def test_the_commands_give_one_line_usage_errors(tmp_path, command, fault):
    factory, extra = FAULTS[fault]
    out = str(tmp_path / "out")
    if command == "evaluate":
        args = ["evaluate", out, "--factory", factory, "--config", "demo", "--P", "10", "--num-test", "50"]
    else:
        size = ["--P", "64", "--max-steps", "5", "--num-test", "100"] if command == "train" else CURVE
        args = [command, "--config", "demo", "--factory", factory, *size, *extra, "--out", out, "--threads", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"Error: invalid parameter factory='{factory}'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "learning-curve", "evaluate"])
def test_every_command_refuses_a_next_model_that_sees_later_inputs(tmp_path, command):
    factory, out = LOOKAHEAD["mixes-the-row"], str(tmp_path / "out")
    task = ["--task", "next", "--encoding", "tokens"]
    if command == "evaluate":
        args = ["evaluate", out, "--factory", factory, "--config", "demo", "--P", "10", *task]
    else:
        size = ["--P", "64", "--max-steps", "5", "--num-test", "100"] if command == "train" else CURVE
        args = [command, "--config", "demo", "--factory", factory, *size, *task, "--out", out, "--threads", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"invalid parameter factory='{factory}'" in result.output and "inputs 0..i only" in result.output
    assert not (tmp_path / "out").exists()


# ---- the progress bar names the model ---------------------------------------------------------------
@pytest.mark.parametrize(
    "options,label",
    [
        ({"factory": MLP}, "tiny_mlp"),
        ({"factory": MLP, "name": "mine"}, "mine"),
        ({"arch": "transformer"}, "transformer"),
    ]
    + [({"arch": "lcn", "width": 8}, "lcn")],
)
def test_the_progress_bar_is_labelled_by_the_model(options, label):
    opt = resolve(TrainOptions(**{**TINY, "progress": True}, **options))
    bar = train_mod._progress_bar(opt, train_mod.SetUp(device="cpu"))
    try:
        assert bar.desc == f"{label} P=64"
    finally:
        bar.close()
