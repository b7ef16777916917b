"""Training runs on CPU: learning below chance, the shuffled-label control, checkpoints,
the results file, the release data path, the CLI and learning curves."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.baselines import cli as train_cli
from srhm_datasets.baselines.checkpoint import load_checkpoint
from srhm_datasets.baselines.learning_curve import curve_summary, run_learning_curve
from srhm_datasets.baselines.train import TrainOptions, resolve, train
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.evaluation.board_render import fmt_p
from srhm_datasets.files import MARKER
from srhm_datasets.hashing import content_hash
from srhm_datasets.protocol import (
    DEFAULT_WIDTH,
    MAX_PARAMETERS,
    default_lr,
    estimate_p_star,
    log_spaced_P,
    num_parameters,
)
from srhm_datasets.results import read_results
from srhm_datasets.torch import encode

from .release_helpers import write_rules

torch.set_num_threads(1)

DEMO = get_config("demo")  # L=2, s=2, s0=1, v=nc=m=4: chance error 0.75
CHANCE = 1 - 1 / DEMO.nc
FAST = {"width": 256, "num_test": 1000, "progress": False, "threads": 1}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_run")
    results = train(TrainOptions(config=DEMO, P=1000, arch="cnn", max_steps=1000, out=str(out), **FAST))
    return out, results


def test_cnn_learns_demo_well_below_chance(demo_run):
    out, results = demo_run
    assert results["best_test_error"] < 0.5 * CHANCE
    assert results["final_test_error"] < 0.5 * CHANCE
    curve = results["training"]["curves"]
    assert curve["test_error"][0] > curve["test_error"][-1]  # it learned during the run
    assert results["training"]["lr_effective"] == pytest.approx(0.1 * 256)  # mean-field: lr times width
    assert read_results(out) == json.loads((out / "results.json").read_text())  # valid on disk


def test_checkpoint_rebuilds_the_best_model(demo_run):
    out, results = demo_run
    model, cfg, meta = load_checkpoint(out)
    assert cfg == DEMO and meta["arch"] == "cnn" and meta["width"] == 256
    test = generate(cfg, "test", 0, 1000)
    with torch.no_grad():
        pred = model(encode(torch.from_numpy(test["tokens"]), cfg.v, meta["encoding"])).argmax(1).numpy()
    assert np.mean(pred != test["label"]) == pytest.approx(results["best_test_error"], abs=1e-9)


def test_shuffled_labels_stay_near_chance():
    results = train(TrainOptions(config=DEMO, P=1000, max_steps=600, shuffle_labels=True, **FAST))
    assert results["training"]["shuffle_labels"] is True
    assert results["final_test_error"] > CHANCE - 0.1
    assert results["best_test_error"] > CHANCE - 0.12


@pytest.mark.parametrize("arch", ["lcn", "fcn"])
def test_other_architectures_run(arch):
    results = train(TrainOptions(config=DEMO, P=200, arch=arch, max_steps=20, width=16, num_test=100, progress=False))
    assert results["model"]["arch"] == arch and results["training"]["steps"] == 20
    assert 0 <= results["final_test_error"] <= 1


def test_stops_at_loss_threshold():
    results = train(TrainOptions(config=DEMO, P=64, max_steps=5000, loss_threshold=0.05, eval_every=20, **FAST))
    assert results["training"]["stop_reason"] == "loss_threshold"
    assert results["training"]["steps"] < 5000
    assert results["training"]["curves"]["train_loss"][-1] < 0.05


def test_defaults_and_errors_name_the_parameter():
    opt = resolve(TrainOptions(config=DEMO, P=100))
    assert opt.lr == default_lr("cnn", DEMO) == 0.1 and opt.batch_size == 4 * DEMO.nc
    assert opt.num_test == min(DEMO.split_sizes()["test"], 20000)
    assert default_lr("cnn", SRHMConfig(L=2, s=2, s0=0, v=4, nc=4, m=4)) == 0.01
    assert default_lr("cnn", SRHMConfig(L=3, s=2, s0=1, v=4, nc=4, m=4)) == 0.01
    assert default_lr("lcn", DEMO) == 0.01 and default_lr("fcn", DEMO) == 0.01
    train_size = DEMO.split_sizes()["train"]
    with pytest.raises(ValueError, match=f"P={train_size + 1}.*{train_size}"):
        resolve(TrainOptions(config=DEMO, P=train_size + 1))
    with pytest.raises(ValueError, match="encoding='tokens'"):
        resolve(TrainOptions(config=DEMO, P=10, encoding="tokens"))
    with pytest.raises(ValueError, match="num_test=0"):
        resolve(TrainOptions(config=DEMO, P=10, num_test=0))


def _fake_release(root, cfg, n_train, n_test):
    """A minimal release folder (format.md §8 layout: card, rules file, one shard per split) of the
    first rows of each split."""
    import pyarrow.parquet as pq

    from srhm_datasets.release.features import to_arrow

    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        written[split] = generate(cfg, split, 0, n)
        (root / cfg.name).mkdir(parents=True, exist_ok=True)
        pq.write_table(to_arrow(cfg, written[split], split), root / cfg.name / f"{split}-00000-of-00001.parquet")
    (root / "README.md").write_text(
        "---\nconfigs:\n"
        f"- config_name: {cfg.name}\n  data_files:\n"
        f"  - split: train\n    path: {cfg.name}/train-*.parquet\n"
        f"  - split: test\n    path: {cfg.name}/test-*.parquet\n---\n"
    )
    write_rules(root, cfg, cfg.name, written)  # load_split checks the rows against it


def test_release_folder_gives_the_same_run_as_the_generator(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")  # not a stale cache of another run
    _fake_release(tmp_path / "release", DEMO, n_train=300, n_test=200)
    common = {"config": DEMO, "P": 300, "max_steps": 40, "width": 32, "num_test": 200, "progress": False}
    from_release = train(TrainOptions(data=str(tmp_path / "release"), out=str(tmp_path / "run"), **common))
    from_generator = train(TrainOptions(**common))
    ds = from_release["dataset"]
    assert ds["source"] == "release" and ds["repo_or_dir"] == str(tmp_path / "release")
    assert ds["train_content_hash"] == content_hash(generate(DEMO, "train", 0, 300))
    assert ds["rules_hash"] == from_generator["dataset"]["rules_hash"]
    assert from_release["training"]["curves"]["test_error"] == from_generator["training"]["curves"]["test_error"]
    read_results(tmp_path / "run")


def test_cli_train_writes_valid_results(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--config",
            "demo",
            "--P",
            "200",
            "--arch",
            "cnn",
            "--out",
            str(out),
            "--width",
            "32",
            "--max-steps",
            "30",
            "--num-test",
            "200",
            "--no-progress",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    results = read_results(out)
    assert results["P"] == 200 and results["training"]["seed"] == 3 and results["training"]["steps"] == 30
    assert results["dataset"]["catalog_name"] == "demo" and results["checkpoint"] == "checkpoint.pt"
    assert (out / "checkpoint.pt").is_file()
    bad = CliRunner().invoke(main, ["train", "--config", "demo", "--P", "0", "--out", str(out)])
    assert bad.exit_code != 0 and "P=0" in bad.output


def test_p_star_interpolation():
    assert log_spaced_P(10, 1000, 3) == [10, 100, 1000]
    est = estimate_p_star([100, 1000], [0.5, 0.0], threshold=0.1)  # 0.5 -> 0.0: 80% of a decade
    assert est["status"] == "interpolated" and est["P_star"] == pytest.approx(10**2.8)
    assert estimate_p_star([100, 1000], [0.5, 0.3])["status"] == "above_range"
    assert estimate_p_star([100, 1000], [0.05, 0.0])["status"] == "below_range"
    # the first downward crossing counts, in P order whatever the input order
    assert estimate_p_star([1000, 10, 100], [0.0, 0.8, 0.1])["bracket"] == [10, 100]


def test_learning_curve_is_resumable(tmp_path):
    base = TrainOptions(config=DEMO, P=1, max_steps=30, width=32, num_test=200, progress=False)
    first = run_learning_curve(base, tmp_path, P_min=50, P_max=200, points=2)
    assert [r["P"] for r in first["runs"]] == [50, 200] and not any(r["skipped"] for r in first["runs"])
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    again = run_learning_curve(base, tmp_path, P_min=50, P_max=200, points=2)
    assert all(r["skipped"] for r in again["runs"])
    assert [r["best_test_error"] for r in again["runs"]] == [r["best_test_error"] for r in first["runs"]]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["threshold"] == 0.1 and summary["law_x"] == 4 * 4 * 16 and summary["law"] == "(s0+1)^2 nc m^L"
    assert summary["P_star_status"] in ("interpolated", "above_range", "below_range")
    assert math.isclose(summary["chance_error"], CHANCE)


@pytest.mark.parametrize("arch, law", [("lcn", "s^(L/2) (s0+1)^L nc m^L = 512"), ("fcn", "no law for this arch")])
def test_cli_learning_curve_reports_p_star_and_the_arch_law(tmp_path, arch, law):
    result = CliRunner().invoke(
        main,
        [
            "learning-curve",
            "--config",
            "demo",
            "--arch",
            arch,
            "--P-min",
            "50",
            "--P-max",
            "100",
            "--points",
            "2",
            "--width",
            "16",
            "--max-steps",
            "20",
            "--num-test",
            "100",
            "--no-progress",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("P=") == 2 and law in result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["arch"] == arch and (summary["law_x"] == 512 if arch == "lcn" else summary["law_x"] is None)


def test_cli_learning_curve_prints_p_star_as_the_board_does(capsys):
    """P*, each seed's and their spread as integers to three significant digits (board_render.fmt_p)."""
    errors = {0: [0.5, 0.05], 1: [0.5, 0.08], 2: [0.5, 0.3]}  # seeds 0 and 1 cross between P = 40 and 4000
    runs = [
        {"P": P, "seed": seed, "best_test_error": e, "stop_reason": "max_steps", "skipped": False}
        for seed, errs in errors.items()
        for P, e in zip((40, 4000), errs)
    ]
    summary = curve_summary(resolve(TrainOptions(config=DEMO, P=4000, width=8)), 0.1, runs, 0.1, "best")
    per_seed = [p["P_star"] for p in summary["P_star_per_seed"]]
    assert summary["P_star"] is None and per_seed[0] != round(per_seed[0]) and per_seed[2] is None
    train_cli._report_curve(summary)
    out = capsys.readouterr().out
    assert "P* of the mean over seeds (test error 0.1) = above_range" in out
    assert f"P* per seed: seed 0: {fmt_p(per_seed[0])}, seed 1: {fmt_p(per_seed[1])}, seed 2: above_range" in out
    spread = summary["P_star_seeds"]
    assert f"geometric mean {fmt_p(spread['geomean'])}, min {fmt_p(spread['min'])}, max {fmt_p(spread['max'])}" in out


#: (task, threshold at or above its chance error on demo, that chance error): P* would be undefined.
AT_CHANCE = [("class", 0.75, 0.75), ("last", 0.8, 0.75), ("next", 0.8, 0.8), ("mlm", 0.99, 0.75)]


@pytest.mark.parametrize("task, threshold, chance", AT_CHANCE, ids=[t[0] for t in AT_CHANCE])
def test_cli_learning_curve_refuses_a_threshold_at_or_above_chance(tmp_path, task, threshold, chance):
    args = ["--config", "demo", "--arch", "transformer", "--task", task, "--threshold", str(threshold)]
    curve = ["--P-min", "10", "--P-max", "20", "--points", "2", "--max-steps", "2", "--out", str(tmp_path / "lc")]
    result = CliRunner().invoke(main, ["learning-curve", *args, *curve])
    bound = f"threshold={threshold}: must satisfy 0 < threshold < {chance:g}, the chance error of task '{task}' on demo"
    assert result.exit_code == 2 and bound in result.output, result.output
    assert not (tmp_path / "lc").exists()


def test_cli_learning_curve_refuses_one_point_over_a_range_and_trains_one_at_one_p(tmp_path):
    args = ["learning-curve", "--config", "demo", "--width", "8", "--max-steps", "2", "--num-test", "50"]
    args += ["--points", "1"]
    result = CliRunner().invoke(main, [*args, "--P-min", "10", "--P-max", "50", "--out", str(tmp_path / "range")])
    assert result.exit_code == 2 and "points=1: must satisfy points >= 2, or P_min = P_max" in result.output
    assert "P_min = 10 < P_max = 50" in result.output and not (tmp_path / "range").exists()
    result = CliRunner().invoke(main, [*args, "--P-min", "50", "--P-max", "50", "--out", str(tmp_path / "one")])
    assert result.exit_code == 0, result.output
    assert [r["P"] for r in json.loads((tmp_path / "one" / "summary.json").read_text())["runs"]] == [50]


def test_torchrun_data_parallel_matches_one_process(tmp_path):
    """Two gloo ranks on CPU split every batch; averaged gradients give the same run."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    srhm = shutil.which("srhm", path=os.path.dirname(sys.executable))
    if torchrun is None or srhm is None:
        pytest.skip("torchrun or the srhm script is not installed next to this Python")
    args = [
        "train",
        "--config",
        "demo",
        "--P",
        "400",
        "--width",
        "32",
        "--max-steps",
        "40",
        "--batch-size",
        "16",
        "--num-test",
        "300",
        "--no-progress",
        "--threads",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", srhm, *args, "--out", str(tmp_path / "ddp")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ddp = read_results(tmp_path / "ddp")
    single = train(
        TrainOptions(config=DEMO, P=400, width=32, max_steps=40, batch_size=16, num_test=300, progress=False)
    )
    assert ddp["training"]["world_size"] == 2
    assert np.allclose(ddp["training"]["curves"]["test_error"], single["training"]["curves"]["test_error"], atol=0.005)
    assert np.allclose(ddp["training"]["curves"]["train_loss"], single["training"]["curves"]["train_loss"], rtol=1e-4)


TINY = {"width": 8, "max_steps": 6, "eval_every": 3, "num_test": 100, "progress": False, "threads": 1}


def test_learning_curve_refuses_runs_made_with_other_settings(tmp_path):
    base = TrainOptions(config=DEMO, P=1, arch="cnn", **TINY)
    run_learning_curve(base, tmp_path, P_min=50, P_max=200, points=2, plot=False)
    before = {p: (tmp_path / p / "results.json").read_bytes() for p in ("P50", "P200")}
    for change, named in (
        ({"arch": "fcn"}, "arch='cnn' (requested 'fcn')"),
        ({"width": 16}, "width=8 (requested 16)"),
        ({"lr": 0.05}, "lr=0.1 (requested 0.05)"),
        ({"seed": 1}, "seed=0 (requested 1)"),
        ({"shuffle_labels": True}, "shuffle_labels=False (requested True)"),
        ({"max_steps": 7}, "max_steps=6 (requested 7)"),
        ({"norm": "channels"}, "norm='fan_in'"),
        ({"bias": True}, "bias=False"),
        ({"encoding": "onehot"}, "encoding='whiten'"),
        ({"batch_size": 8}, "batch_size=16 (requested 8)"),
    ):
        with pytest.raises(ValueError) as err:
            run_learning_curve(dataclasses.replace(base, **change), tmp_path, P_min=50, P_max=200, points=3, plot=False)
        assert named in str(err.value) and "new --out" in str(err.value), str(err.value)
    assert not (tmp_path / "P100").exists()  # nothing trained: every finished run is checked first
    assert {p: (tmp_path / p / "results.json").read_bytes() for p in before} == before  # and none retrained
    again = run_learning_curve(base, tmp_path, P_min=50, P_max=200, points=2, plot=False)  # same settings: reused
    assert all(r["skipped"] for r in again["runs"])
    result = CliRunner().invoke(
        main,
        [
            "learning-curve",
            "--config",
            "demo",
            "--arch",
            "fcn",
            "--P-min",
            "50",
            "--P-max",
            "200",
            "--points",
            "5",
            "--width",
            "8",
            "--max-steps",
            "6",
            "--no-progress",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2 and "arch='cnn' (requested 'fcn')" in result.output, result.output


def test_resolve_checks_every_option(tmp_path):
    for change, named in (
        ({"loss_threshold": -1e-3}, "loss_threshold=-0.001"),
        ({"loss_threshold": float("nan")}, "loss_threshold=nan"),
        ({"threads": 0}, "threads=0: must satisfy threads >= 1"),
        ({"device": "foo"}, "device='foo'"),
        ({"device": "tpu:0"}, "device='tpu:0'"),
        ({"data": str(tmp_path / "missing")}, "data="),
        ({"data": "not a repo"}, "data='not a repo'"),
    ):
        with pytest.raises(ValueError, match="invalid parameter") as err:
            resolve(TrainOptions(config=DEMO, P=10, **change))
        assert named in str(err.value)
    assert resolve(TrainOptions(config=DEMO, P=10, device="cpu", threads=1, loss_threshold=0.0)).device == "cpu"
    assert resolve(TrainOptions(config=DEMO, P=10)).device in ("cpu", "cuda", "mps")  # autodetected, recorded


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_run_folder_never_mixes_two_runs(tmp_path, monkeypatch):
    from srhm_datasets.baselines import checkpoint as checkpoint_module

    out = tmp_path / "run"
    train(TrainOptions(config=DEMO, P=64, seed=0, out=str(out), **TINY))
    first = _files(out)
    assert set(first) == {"checkpoint.pt", "results.json", MARKER}
    # a finished run is refused without overwrite, before any training
    with pytest.raises(ValueError, match="out=.*holds results.json.*--overwrite"):
        train(TrainOptions(config=DEMO, P=64, seed=1, out=str(out), **TINY))

    # a run whose results fail validation writes nothing, not even its checkpoint
    def invalid(results):
        raise ValueError("invalid results field P: broken on purpose")

    monkeypatch.setattr(checkpoint_module, "validate_results", invalid)
    with pytest.raises(ValueError, match="broken on purpose"):
        train(TrainOptions(config=DEMO, P=64, seed=1, out=str(out), overwrite=True, **TINY))
    assert _files(out) == first  # no temp files left either
    monkeypatch.undo()
    # --overwrite replaces both files, from the same run
    results = train(TrainOptions(config=DEMO, P=64, seed=1, out=str(out), overwrite=True, **TINY))
    assert set(_files(out)) == {"checkpoint.pt", "results.json", MARKER}
    _, _, meta = load_checkpoint(out)
    assert read_results(out) == json.loads(json.dumps(results))
    assert meta["seed"] == results["training"]["seed"] == 1 and meta["step"] == results["training"]["best_step"]


@pytest.mark.parametrize(
    "args, named",
    [
        (["--threads", "0"], "threads=0: must satisfy threads >= 1"),
        (["--device", "foo"], "device='foo': must satisfy a torch device string"),
        (
            ["--data", "/nonexistent"],
            "data='/nonexistent': must satisfy an existing release folder or a Hub dataset repo id",
        ),
        (["--loss-threshold", "-1"], "loss_threshold=-1.0: must satisfy a finite loss_threshold >= 0"),
    ],
)
def test_cli_train_bad_options_are_usage_errors(tmp_path, args, named):
    result = CliRunner().invoke(main, ["train", "--config", "demo", "--P", "10", "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2 and named in result.output, result.output
    assert not (tmp_path / "r").exists()


def test_cli_train_overwrite_flag(tmp_path):
    args = [
        "train",
        "--config",
        "demo",
        "--P",
        "32",
        "--width",
        "8",
        "--max-steps",
        "3",
        "--num-test",
        "50",
        "--no-progress",
        "--threads",
        "1",
        "--out",
        str(tmp_path / "r"),
    ]
    assert CliRunner().invoke(main, args).exit_code == 0
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert CliRunner().invoke(main, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"width": 10**30}, "width=~1.00e30 (31 digits): must satisfy a network of at most 2**31 = 2,147,483,648"),
        ({"width": 10**8}, "width=100000000: must satisfy a network of at most 2**31 = 2,147,483,648 parameters"),
        ({"width": 25_000}, "(cnn on A_L2_s2_s0-1_v4_nc4_m4_seed0 at this width has 2500500000)"),
        ({"threads": 100_000}, f"threads=100000: must satisfy threads <= {os.cpu_count()} (the CPU count)"),
    ],
)
def test_train_options_bound_width_and_threads_before_any_work(options, named, tmp_path):
    with pytest.raises(ValueError, match="invalid parameter ") as err:
        resolve(TrainOptions(config=DEMO, P=10, out=str(tmp_path / "run"), **options))
    assert named in str(err.value)
    assert not (tmp_path / "run").exists()


def test_width_is_bounded_by_the_parameters_of_the_arch():
    assert resolve(TrainOptions(config=DEMO, P=10, arch="fcn", width=25_000)).width == 25_000  # 626,700,000
    assert num_parameters("cnn", DEMO, DEFAULT_WIDTH) < MAX_PARAMETERS  # the defaults stay far inside


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--config", "demo", "--P", "10", "--width", str(10**30), "--out"],
        ["train", "--config", "demo", "--P", "10", "--width", "100000000", "--max-steps", "1", "--out"],
        ["train", "--config", "demo", "--P", "10", "--threads", "100000", "--out"],
        ["learning-curve", "--config", "demo", "--P-min", "10", "--P-max", "20", "--threads", "100000", "--out"],
        ["demo", "--width", "100000000", "--out"],
    ],
)
def test_train_commands_refuse_a_huge_width_or_thread_count_as_a_usage_error(args, tmp_path):
    result = CliRunner().invoke(main, [*args, str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "invalid parameter width=" in result.output or "invalid parameter threads=100000" in result.output
    assert not (tmp_path / "out").exists()
