"""A user's model (``--factory``): its faults are one-line errors naming ``factory`` on every path that builds
it, and its runs are labelled by its name."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from srhm_datasets.baselines import train as train_mod
from srhm_datasets.baselines.factory import build_factory_model
from srhm_datasets.baselines.train import TrainOptions, resolve, train
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.config import ParameterTypeError

DEMO = get_config("demo")
TINY = {"config": DEMO, "P": 64, "max_steps": 5, "num_test": 100, "threads": 1, "progress": False}
MLP = "tests.user_models:tiny_mlp"


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
