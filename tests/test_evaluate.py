"""``evaluate_model``, ``srhm evaluate RUN_DIR`` and the ``--factory`` form."""

from __future__ import annotations

import json
import math
import shutil
import textwrap

import jsonschema
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from srhm_datasets import SRHMConfig
from srhm_datasets.baselines.checkpoint import model_from_checkpoint, read_checkpoint
from srhm_datasets.baselines.models import build_model
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.evaluation.measure import ModelMismatch, check_model_fits, evaluate_model
from srhm_datasets.evaluation.oracle import RulesParser
from srhm_datasets.evaluation.probes import generator_probe, load_probe, release_probe
from srhm_datasets.release.build import build_release
from srhm_datasets.results import load_schema, validate_results
from srhm_datasets.torch import encode

from .torch_helpers import train_run
from .user_models import TokenNet

DEMO = get_config("demo")
SMALL = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, seed=0, n_test=120, n_probe=60, n_train=400)
NO_SYNONYMS = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=1)  # m = 1: P_max = 256
NO_PLACEMENTS = SRHMConfig(L=2, s=2, s0=0, v=4, nc=4, m=4)  # K = 1: P_max = 256


def check_evaluation_schema(evaluation: dict) -> None:
    schema = load_schema()
    jsonschema.validate(evaluation, {**schema["properties"]["evaluation"], "$defs": schema["$defs"]})


@pytest.fixture(scope="module")
def small_release(tmp_path_factory):
    """A release folder of SMALL, as a string (read-only)."""
    out = tmp_path_factory.mktemp("small") / "rel"
    build_release([SMALL], out, progress=False)
    return str(out)


def test_evaluate_model_on_rules_oracle():
    ev = evaluate_model(RulesParser(DEMO), DEMO, device="cpu", num_test=500)
    check_evaluation_schema(ev)
    assert ev["test_error"] == 0.0
    assert ev["num_test"] == 500
    assert ev["probe"] == {
        "source": "generator",
        "num_points": DEMO.split_sizes()["probe"],
        "perturbation": {"force": True, "key": 0},
    }
    assert ev["layers"] == ["levels.0", "output"]
    assert ev["sensitivity"]["synonym"]["output"] == [0.0, 0.0]
    assert ev["sensitivity"]["diffeo"]["output"] == [0.0, 0.0]
    assert ev["undefined"] == {"synonym": False, "diffeo": False}


def test_release_probe_equals_generator_probe(small_release):
    rel = release_probe(small_release, SMALL)
    gen = generator_probe(SMALL)
    assert rel.source == "release" and gen.source == "generator"
    for field in ("tokens", "label", "synonym", "diffeo"):
        np.testing.assert_array_equal(getattr(rel, field), getattr(gen, field))
    model = build_model("cnn", SMALL, width=8, seed=2)
    from_release = evaluate_model(model, SMALL, probe="release", data=small_release, device="cpu")
    from_gen = evaluate_model(model, SMALL, probe="generator", device="cpu")
    assert from_release["probe"]["source"] == "release"
    assert from_release["test_error"] == from_gen["test_error"]  # the release's test split is the generator's
    assert from_release["sensitivity"] == from_gen["sensitivity"]


def test_evaluate_run_writes_valid_results(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = json.loads((run / "results.json").read_text())
    result = CliRunner().invoke(main, ["evaluate", str(run), "--device", "cpu", "--num-probe", "100"])
    assert result.exit_code == 0, result.output
    assert "S_(k,l) synonym sensitivity" in result.output and "layer2" in result.output
    results = json.loads((run / "results.json").read_text())
    validate_results(results)
    ev = results["evaluation"]
    assert ev["layers"] == ["layer1", "layer2", "output"]
    assert ev["probe"] == {"source": "generator", "num_points": 100, "perturbation": {"force": True, "key": 0}}
    # which parameters were measured: the kept (best) checkpoint, at its training step
    assert ev["checkpoint"] == {"file": "checkpoint.pt", "selection": "best", "step": before["training"]["best_step"]}
    assert f"checkpoint: checkpoint.pt (best, step {before['training']['best_step']})" in result.output
    # the checkpoint is the best one, measured on the same test rows by training
    assert ev["num_test"] == before["training"]["num_test"]
    assert ev["test_error"] == pytest.approx(before["best_test_error"], abs=1e-12)
    for kind in ("synonym", "diffeo"):
        for layer in ev["layers"]:
            assert all(x is not None and math.isfinite(x) and x > 0 for x in ev["sensitivity"][kind][layer])
    assert {k: v for k, v in results.items() if k != "evaluation"} == before  # nothing else touched


@pytest.mark.parametrize("cfg,kind", [(NO_SYNONYMS, "synonym"), (NO_PLACEMENTS, "diffeo")], ids=["m=1", "K=1"])
def test_command_says_undefined(tmp_path, cfg, kind):
    run = train_run(tmp_path, cfg, P=50)
    result = CliRunner().invoke(main, ["evaluate", str(run), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    section = result.output.split(f"{kind} sensitivity")[1].splitlines()[0]
    assert "undefined" in section
    other = "diffeo" if kind == "synonym" else "synonym"
    other_rows = [
        row
        for row in result.output.split(f"{other} sensitivity")[1].splitlines()
        if row.startswith(("layer", "output"))
    ][1:]  # after the header row
    assert len(other_rows) == 3 and all("undefined" not in row for row in other_rows)
    ev = json.loads((run / "results.json").read_text())["evaluation"]
    assert ev["undefined"][kind] is True and ev["undefined"][other] is False
    assert all(vals == [None, None] for vals in ev["sensitivity"][kind].values())


FACTORY = """
import torch
from srhm_datasets.baselines.models import build_model

def make(cfg):
    return build_model("cnn", cfg, width=8, seed=123)
"""


def test_factory_with_checkpoint_goes_to_its_own_folder(tiny_run, tmp_path, monkeypatch):
    (tmp_path / "usermodels.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path))
    trained = build_model("cnn", DEMO, width=8, seed=7)  # the weights the factory's seed must not win over
    torch.save(trained.state_dict(), tmp_path / "weights.pt")
    args = [
        "--factory",
        "usermodels:make",
        "--checkpoint",
        str(tmp_path / "weights.pt"),
        "--name",
        "my cnn",
        "--device",
        "cpu",
    ]
    before = (tiny_run / "results.json").read_bytes()
    refused = CliRunner().invoke(main, ["evaluate", str(tiny_run), *args])  # a training run's folder: refused
    assert refused.exit_code == 2 and "holds a srhm train run" in refused.output and "its own folder" in refused.output
    assert (tiny_run / "results.json").read_bytes() == before
    sub = tmp_path / "sub"
    result = CliRunner().invoke(main, ["evaluate", str(sub), *args, "--config", "demo", "--P", "64"])
    assert result.exit_code == 0, result.output
    results = json.loads((sub / "results.json").read_text())
    validate_results(results)
    assert results["model"]["name"] == "my cnn" and "training" not in results
    direct = evaluate_model(trained, DEMO, device="cpu")
    record = {"file": "weights.pt", "selection": "user", "step": None}
    assert results["evaluation"] == {**direct, "encoding": "whiten", "checkpoint": record}
    # a submission's folder can be evaluated again (its evaluation is replaced)
    again = CliRunner().invoke(main, ["evaluate", str(sub), *args])
    assert again.exit_code == 0, again.output
    assert json.loads((sub / "results.json").read_text()) == results  # same config, P, name and numbers


def test_factory_errors_name_the_problem(tmp_path):
    result = CliRunner().invoke(
        main, ["evaluate", str(tmp_path / "x"), "--factory", "no_such_module_xyz:make", "--config", "demo", "--P", "10"]
    )
    assert result.exit_code != 0 and "no_such_module_xyz" in result.output
    result = CliRunner().invoke(
        main, ["evaluate", str(tmp_path / "x"), "--factory", "srhm_datasets.evaluation.oracle:build"]
    )
    assert result.exit_code != 0 and "config" in result.output
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "nothing")])
    assert result.exit_code != 0 and "RUN_DIR=" in result.output and "no such folder" in result.output


def test_factory_no_write_prints_tables(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(tmp_path / "sub"),
            "--factory",
            "srhm_datasets.evaluation.oracle:build",
            "--config",
            "demo",
            "--P",
            "1000",
            "--no-write",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "test error 0.0000" in result.output
    assert not (tmp_path / "sub" / "results.json").exists()


def test_factory_new_submission_file(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(tmp_path / "sub"),
            "--factory",
            "srhm_datasets.evaluation.oracle:build",
            "--config",
            "demo",
            "--P",
            "1000",
            "--name",
            "rules oracle",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "sub" / "results.json").read_text())
    validate_results(results)
    assert "training" not in results and results["checkpoint"] is None
    assert results["model"]["name"] == "rules oracle" and results["model"]["arch"] == "custom"
    assert results["model"]["factory"] == "srhm_datasets.evaluation.oracle:build"
    assert results["model"]["n_parameters"] == 0  # the oracle holds buffers only
    assert results["P"] == 1000 and results["dataset"]["config"] == DEMO.name
    assert (
        results["evaluation"]["test_error"] == 0.0 and results["evaluation"]["num_test"] == DEMO.split_sizes()["test"]
    )
    assert results["final_test_error"] == results["best_test_error"] == 0.0

    # the leaderboard ranks it under its name
    from srhm_datasets.evaluation.leaderboard import build_leaderboard

    summary = build_leaderboard(tmp_path / "sub", tmp_path / "board")
    assert summary["rejected"] == []
    assert [
        (r["model"], r["test error"], r["S_out"]) for r in summary["configs"][DEMO.name]["tasks"]["class"]["rows"]
    ] == [("rules oracle", "0.0000", "0.0000")]


@pytest.mark.parametrize(
    "change, named",
    [
        ({"seed": 5}, "seed=5 in the checkpoint, training.seed=0"),
        ({"P": 65}, "P=65 in the checkpoint, P=64"),
        ({"width": 16}, "width=16 in the checkpoint, model.width=8"),
        ({"arch": "lcn"}, "arch='lcn' in the checkpoint, model.arch='cnn'"),
        ({"config": NO_SYNONYMS.name}, f"config='{NO_SYNONYMS.name}' in the checkpoint"),
        ({"step": 999}, "step=999 in the checkpoint, training.best_step="),
    ],
)
def test_evaluate_run_refuses_a_checkpoint_of_another_run(tiny_run, tmp_path, change, named):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save({**ckpt, **change}, run / "checkpoint.pt")
    result = CliRunner().invoke(
        main, ["evaluate", str(run), "--device", "cpu", "--num-probe", "10", "--num-test", "10"]
    )
    assert result.exit_code == 1 and "is not the checkpoint of this run's results.json" in result.output, result.output
    assert named in result.output, result.output
    assert "evaluation" not in json.loads((run / "results.json").read_text())


@pytest.mark.parametrize(
    "args, named",
    [
        (["--batch-size", "0"], "'--batch-size': 0 is not in the range x>=1"),
        (["--num-probe", "0"], "'--num-probe': 0 is not in the range x>=2"),
        (["--num-probe", "1"], "'--num-probe': 1 is not in the range x>=2"),
        (["--num-probe", "401"], "num_probe=401: must satisfy 2 <= num_probe <= 400 (probe split size of"),
        (["--num-test", "5000"], "num_test=5000: must satisfy 1 <= num_test <= 3276"),
        (["--device", "foo"], "device='foo'"),
    ],
)
def test_cli_evaluate_bad_options_are_usage_errors(tiny_run, args, named):
    before = (tiny_run / "results.json").read_bytes()
    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), *args])
    assert result.exit_code == 2 and named in result.output, result.output
    assert (tiny_run / "results.json").read_bytes() == before


def test_num_probe_bound_is_the_same_for_release_and_generator(small_release):
    size = SMALL.split_sizes()["probe"]
    for source in ("release", "generator"):
        for n in (1, size + 1):
            with pytest.raises(
                ValueError, match=f"num_probe={n}: must satisfy 2 <= num_probe <= {size} \\(probe split size"
            ):
                load_probe(SMALL, source, data=small_release, num_points=n)
        assert load_probe(SMALL, source, data=small_release, num_points=size).num_points == size


def test_cli_factory_P_above_train_size_is_a_usage_error(tmp_path):
    train_size = DEMO.split_sizes()["train"]
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(tmp_path / "sub"),
            "--factory",
            "srhm_datasets.evaluation.oracle:build",
            "--config",
            "demo",
            "--P",
            str(train_size + 1),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 2 and f"P={train_size + 1}" in result.output and f"<= {train_size}" in result.output, (
        result.output
    )
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(tmp_path / "sub"),
            "--factory",
            "srhm_datasets.evaluation.oracle:build",
            "--config",
            "demo",
            "--P",
            "0",
        ],
    )
    assert result.exit_code == 2 and "'--P': 0 is not in the range x>=1" in result.output
    assert not (tmp_path / "sub" / "results.json").exists()


def _curve_folder(root, with_run: bool):
    """A learning-curve folder as ``srhm curve`` leaves it: marked, with a finished ``P100/`` run or none yet."""
    from srhm_datasets.files import mark_owned

    root.mkdir()
    if with_run:
        (root / "P100").mkdir()
        (root / "P100" / "results.json").write_text("{}")
    mark_owned(root, "learning-curve", ["P100"] if with_run else [])
    return root


@pytest.mark.parametrize(
    "name, make, says",
    [
        ("nonexistent", lambda p: None, "RUN_DIR='{p}': no such folder"),
        ("curve", lambda p: _curve_folder(p, True), "a learning-curve folder, not a run: pass one of its P<P>/ run "),
        ("curve", lambda p: _curve_folder(p, True), "run folders, e.g. {p}/P100"),
        ("curve", lambda p: _curve_folder(p, False), "run folders, e.g. {p}/P<P>"),
        ("empty", lambda p: p.mkdir(), "RUN_DIR='{p}': no results.json in it"),
    ],
)
def test_cli_evaluate_says_why_a_folder_is_not_a_run(tmp_path, name, make, says):
    folder = tmp_path / name
    make(folder)
    result = CliRunner().invoke(main, ["evaluate", str(folder)])
    assert result.exit_code == 1 and says.format(p=folder) in result.output, result.output


TOKEN_MODEL = '''
import torch


class TokenModel(torch.nn.Module):
    """Takes token ids [B, d] (int64), as a transformer does: any other input fails its own assert."""

    def __init__(self, cfg):
        super().__init__()
        self.embed = torch.nn.Embedding(cfg.v + 1, 8)
        self.readout = torch.nn.Linear(8 * cfg.d, cfg.nc)

    def forward(self, x):
        assert x.dim() == 2 and x.dtype == torch.long, "query should be batched 2D token ids"
        return self.readout(self.embed(x).flatten(1))


def make(cfg):
    return TokenModel(cfg)
'''


@pytest.mark.parametrize("encoding", [None, "whiten", "onehot"])
def test_factory_model_failing_on_its_first_batch_is_one_line_naming_input_and_option(tmp_path, monkeypatch, encoding):
    (tmp_path / "token_model.py").write_text(TOKEN_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["evaluate", str(tmp_path / "sub"), "--factory", "token_model:make", "--config", "demo", "--P", "10"]
    res = CliRunner().invoke(main, [*args, "--device", "cpu", *(["--encoding", encoding] if encoding else [])])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, res.output
    assert f"its first batch was x [2, {DEMO.v}, {DEMO.d}] float32 (encoding '{encoding or 'whiten'}')" in lines[0]
    assert "--encoding" in lines[0] and f"tokens gives [B, d={DEMO.d}] int64 token ids" in lines[0]
    assert "(AssertionError: query should be batched 2D token ids)" in lines[0]
    assert not (tmp_path / "sub" / "results.json").exists()
    res = CliRunner().invoke(main, [*args, "--device", "cpu", "--encoding", "tokens", "--num-test", "50"])
    assert res.exit_code == 0, res.output


# ---- the test error of the model's task ---------------------------------------------------------


def test_a_noisy_class_run_is_evaluated_on_its_noisy_test_rows(task_runs, tmp_path):
    """The test error of a run of class under noise is measured on the noisy test rows training scored
    (key 0), not on clean ones; S and D stay defined, on the clean probe."""
    run = tmp_path / "run"
    shutil.copytree(task_runs["class noise=0.2"], run)
    before = json.loads((run / "results.json").read_text())
    result = CliRunner().invoke(main, ["evaluate", str(run), "--device", "cpu", "--num-probe", "50"])
    assert result.exit_code == 0, result.output
    ev = json.loads((run / "results.json").read_text())["evaluation"]
    assert ev["num_test"] == before["training"]["num_test"] == DEMO.split_sizes()["test"]
    assert ev["test_error"] == pytest.approx(before["best_test_error"], abs=1e-12)
    model, _, _ = model_from_checkpoint(read_checkpoint(run / "checkpoint.pt"))
    clean = evaluate_model(model, DEMO, task="class", num_probe=50, device="cpu")["test_error"]
    assert abs(clean - ev["test_error"]) > 0.005  # the noise changes this model's error: the check can fail
    assert ev["probe"]["num_points"] == 50 and ev["undefined"] == {"synonym": False, "diffeo": False}
    assert all(x is not None for x in ev["sensitivity"]["synonym"]["output"])
    assert "(task class noise=0.2)" in result.output


@pytest.mark.parametrize("label", ["last context=4", "mlm mask_rate=0.15 noise=0.1", "next"])
def test_a_run_of_any_task_is_evaluated_on_its_task(task_runs, tmp_path, label):
    """``srhm evaluate`` gives the test error of a run's task (the one training measured on the same rows);
    S and D are undefined for a model of a task other than class, and no probe is read."""
    run = tmp_path / "run"
    shutil.copytree(task_runs[label], run)
    before = json.loads((run / "results.json").read_text())
    result = CliRunner().invoke(main, ["evaluate", str(run), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    results = json.loads((run / "results.json").read_text())
    validate_results(results)
    ev = results["evaluation"]
    assert ev["test_error"] == pytest.approx(before["best_test_error"], abs=1e-12)
    assert ev["num_test"] == before["training"]["num_test"]
    assert ev["probe"] is None and ev["undefined"] == {"synonym": True, "diffeo": True}
    assert all(values == [None] * DEMO.L for kind in ev["sensitivity"].values() for values in kind.values())
    name = label.split()[0]
    assert f"(task {label}); no probe" in result.output
    assert f"undefined (task {name}: S and D are defined for class models)" in result.output


def test_evaluate_model_scores_the_task_on_the_test_rows_with_key_0():
    """``evaluate_model``'s test error is the error on ``tasks.apply_task``'s inputs and targets of the test
    rows with key 0, computed here by hand for the exact parser of the grammar under noise."""
    from srhm_datasets.generate import generate
    from srhm_datasets.tasks import apply_task, make_task

    task = make_task(DEMO, "class", noise=0.3)
    ev = evaluate_model(RulesParser(DEMO), DEMO, task=task, num_test=500, num_probe=20, device="cpu")
    tb = apply_task(DEMO, task, generate(DEMO, "test", 0, 500), "test", 0)
    with torch.no_grad():
        logits = RulesParser(DEMO)(encode(torch.from_numpy(tb.inputs), DEMO.v, "whiten"))
    assert ev["test_error"] == float((logits.argmax(-1).numpy() != tb.targets).mean()) > 0.1
    assert evaluate_model(RulesParser(DEMO), DEMO, num_test=500, num_probe=20, device="cpu")["test_error"] == 0.0
    with pytest.raises(ValueError, match="invalid parameter task.key=3"):
        evaluate_model(RulesParser(DEMO), DEMO, task=make_task(DEMO, "class", key=3), device="cpu")
    with pytest.raises(ValueError, match=r"outputs \[B, >= v=4\] for task last"):  # 3 logits
        evaluate_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 16, 3)), DEMO, task="last")


def test_a_factory_submission_names_its_task_and_is_scored_on_it(tmp_path):
    sub = tmp_path / "sub"
    args = ["evaluate", str(sub), "--factory", "tests.user_models:token_net", "--encoding", "tokens"]
    common = ["--num-test", "100", "--device", "cpu"]
    result = CliRunner().invoke(
        main, [*args, "--config", "demo", "--P", "64", "--task", "last", "--context", "4", *common]
    )
    assert result.exit_code == 0, result.output
    results = json.loads((sub / "results.json").read_text())
    assert results["task"] == {"name": "last", "context": 4, "mask_rate": None, "noise": 0.0}
    assert results["evaluation"]["probe"] is None and len(results["model"]["source_sha256"]) == 64
    again = CliRunner().invoke(main, [*args, *common])  # the submission's own task
    assert again.exit_code == 0 and "(task last context=4)" in again.output, again.output
    other = CliRunner().invoke(main, [*args, "--task", "last", *common])
    assert other.exit_code == 2 and "invalid parameter task=" in other.output and "context=4" in other.output
    refused = CliRunner().invoke(main, ["evaluate", str(tmp_path), "--task", "mlm"])
    assert refused.exit_code == 2 and "--task goes with --factory" in refused.output


def test_a_submission_is_evaluated_again_as_it_was_recorded(tmp_path):
    """``srhm evaluate DIR --factory F`` on a submission of F measures it as recorded when the options are not
    given: its encoding, layers, task and the state dict it was evaluated with (beside it, else --checkpoint
    is asked for); another factory is refused, and a task is printed as the board labels it."""
    torch.save(TokenNet(DEMO, "mlm").state_dict(), tmp_path / "w.pt")
    sub = tmp_path / "sub"
    args = ["evaluate", str(sub), "--factory", "tests.user_models:token_net", "--device", "cpu"]
    options = ["--task", "mlm", "--encoding", "tokens", "--layers", "mix,output", "--config", "demo", "--P", "64"]
    first = CliRunner().invoke(main, [*args, *options, "--checkpoint", str(tmp_path / "w.pt")])
    assert first.exit_code == 0, first.output
    recorded = json.loads((sub / "results.json").read_text())
    missing = CliRunner().invoke(main, args)  # its state dict is not in the folder
    assert missing.exit_code == 2 and "the submission was evaluated with w.pt" in missing.output
    assert "give it with --checkpoint" in missing.output
    shutil.copy(tmp_path / "w.pt", sub / "w.pt")
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert json.loads((sub / "results.json").read_text()) == recorded  # tokens, mix + output, mlm, w.pt
    other = CliRunner().invoke(main, [*args, "--task", "last"])
    assert other.exit_code == 2 and "Task(" not in other.output
    assert "invalid parameter task=last: " in other.output
    assert "is a submission of task mlm mask_rate=0.15" in other.output
    another = CliRunner().invoke(main, ["evaluate", str(sub), "--factory", "tests.user_models:class_token_net"])
    assert another.exit_code == 2 and "invalid parameter factory='tests.user_models:class_token_net'" in (
        another.output
    )
    assert "the factory of the submission" in another.output and "tests.user_models:token_net" in another.output


class Unsupported(torch.nn.Module):
    """A model whose forward pass needs an operation this device lacks."""

    def forward(self, x):
        raise NotImplementedError("The operator 'aten::op' is not currently implemented for the MPS device")


def test_a_model_of_another_task_is_a_model_mismatch_and_a_device_limit_is_not():
    """``ModelMismatch`` (a model that is not one of the task: ``--verify`` rejects its file) only for a model
    that refuses the task's inputs or gives other outputs; a device that cannot run it is a plain ValueError."""
    with pytest.raises(ModelMismatch, match="does not accept inputs"):
        check_model_fits(torch.nn.Linear(3, 3), DEMO, "whiten", "cpu")
    with pytest.raises(ModelMismatch, match=r"outputs \[B, >= v=4\] for task last"):
        three_logits = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 16, 3))
        check_model_fits(three_logits, DEMO, "whiten", "cpu", "last")
    with pytest.raises(ValueError, match="NotImplementedError") as info:
        check_model_fits(Unsupported(), DEMO, "whiten", "cpu")
    assert not isinstance(info.value, ModelMismatch)
