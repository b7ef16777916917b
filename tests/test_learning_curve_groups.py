"""Learning curves trained in groups (format.md §10.4): ``--group-size`` and ``--seeds`` of ``srhm learning-curve``.

Equivalence is checked in float64 (the ``float64`` fixture of conftest.py: default dtype
float64, train.py encoding in it): a member of a group and the single run then differ only by
the rounding of batched products, so steps, stopping and test errors are equal and train losses
agree to 1e-6 (train.py sums its loss in float32).
"""

import json
import math
import shutil

import pytest
from click.testing import CliRunner

from srhm_datasets.baselines import learning_curve as lc
from srhm_datasets.baselines.train import TrainOptions, resolve
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.protocol import estimate_p_star
from srhm_datasets.results import read_results

DEMO = get_config("demo")
#: Three P values (20, 80, 320) of one batch size (16), so that they can share one group; the test error
#: falls from about 0.7 to 0.55-0.6 over them, so each seed crosses the threshold 0.62.
CURVE = [
    "--config",
    "demo",
    "--P-min",
    "20",
    "--P-max",
    "320",
    "--points",
    "3",
    "--width",
    "16",
    "--max-steps",
    "200",
    "--eval-every",
    "50",
    "--num-test",
    "200",
    "--threads",
    "1",
    "--no-progress",
    "--threshold",
    "0.62",
]
TINY = {
    "config": DEMO,
    "P": 80,
    "width": 8,
    "max_steps": 40,
    "eval_every": 20,
    "num_test": 100,
    "threads": 1,
    "progress": False,
}


def _curve(out, *args):
    result = CliRunner().invoke(main, ["learning-curve", *CURVE, *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text()), result.output


def test_grouped_curve_equals_the_curve_one_run_at_a_time(tmp_path, float64):
    single, _ = _curve(tmp_path / "single", "--group-size", "1")
    grouped, _ = _curve(tmp_path / "grouped", "--group-size", "3")
    assert [r["group_size"] for r in single["runs"]] == [1, 1, 1]
    assert [r["group_size"] for r in grouped["runs"]] == [3, 3, 3]
    for a, b in zip(single["runs"], grouped["runs"]):
        ra, rb = read_results(tmp_path / "single" / a["run"]), read_results(tmp_path / "grouped" / b["run"])
        assert "group" not in ra["training"] and rb["training"]["group"]["size"] == 3
        ta, tb = ra["training"], rb["training"]
        assert (a["P"], a["run"], ta["steps"], ta["stop_reason"], ta["best_step"]) == (
            b["P"],
            b["run"],
            tb["steps"],
            tb["stop_reason"],
            tb["best_step"],
        )
        assert ta["curves"]["test_error"] == tb["curves"]["test_error"]
        assert ta["curves"]["train_loss"] == pytest.approx(tb["curves"]["train_loss"], rel=1e-6)
        assert (a["best_test_error"], a["final_test_error"]) == (b["best_test_error"], b["final_test_error"])
    same = ("P_star", "P_star_status", "P_star_bracket", "P_star_rel_chance", "P_star_per_seed", "P_star_seeds")
    assert {k: single[k] for k in same} == {k: grouped[k] for k in same}
    assert single["P_star_status"] == "interpolated"


def test_seeds_write_both_seeds_and_p_star_per_seed_and_their_mean(tmp_path):
    summary, output = _curve(tmp_path, "--seeds", "0,1")
    names = [f"seed{s}/P{P}" for s in (0, 1) for P in (20, 80, 320)]
    assert [r["run"] for r in summary["runs"]] == names and summary["seeds"] == [0, 1]
    for r in summary["runs"]:
        results = read_results(tmp_path / r["run"])
        assert (results["P"], results["training"]["seed"]) == (r["P"], r["seed"])
        assert results["best_test_error"] == r["best_test_error"]
    assert json.loads((tmp_path / ".srhm-owner.json").read_text())["entries"] == [
        "learning_curve.png",
        "seed0",
        "seed1",
        "summary.json",
    ]
    errors = {s: [r["best_test_error"] for r in summary["runs"] if r["seed"] == s] for s in (0, 1)}
    per_seed = [estimate_p_star([20, 80, 320], errors[s], 0.62) for s in (0, 1)]
    assert [(p["seed"], p["P_star"], p["P_star_status"]) for p in summary["P_star_per_seed"]] == [
        (s, e["P_star"], e["status"]) for s, e in zip((0, 1), per_seed)
    ]
    mean = estimate_p_star([20, 80, 320], [(a + b) / 2 for a, b in zip(errors[0], errors[1])], 0.62)
    assert (summary["P_star"], summary["P_star_status"]) == (mean["P_star"], mean["status"])
    crossed = [e["P_star"] for e in per_seed if e["P_star"] is not None]
    assert crossed and mean["status"] == "interpolated"  # the curve is long enough to test the mean and spread
    spread = summary["P_star_seeds"]
    assert spread["crossed"] == len(crossed) and (spread["min"], spread["max"]) == (
        min(crossed, default=None),
        max(crossed, default=None),
    )
    assert spread["geomean"] == pytest.approx(math.prod(crossed) ** (1 / len(crossed)))
    assert "P* per seed: seed 0: " in output and output.count("seed 1  P=") == 3


@pytest.mark.parametrize("seed", ["5", "0"])
def test_seed_and_seeds_together_are_refused_naming_both(tmp_path, seed):
    result = CliRunner().invoke(
        main, ["learning-curve", *CURVE, "--seed", seed, "--seeds", "1,2", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and f"--seed {seed} and --seeds 1,2" in result.output
    assert list(tmp_path.iterdir()) == []


def test_run_learning_curve_refuses_a_set_seed_with_seeds(tmp_path):
    with pytest.raises(ValueError, match=r"seeds=\[0, 1\]: must satisfy None when the options' seed is set \(seed=5\)"):
        lc.run_learning_curve(TrainOptions(**TINY, seed=5), tmp_path / "lc", 20, 80, 2, seeds=[0, 1])
    assert not (tmp_path / "lc").exists()


def test_p_star_spread_over_seeds():
    assert lc.p_star_spread([100.0, None, 400.0]) == {
        "crossed": 2,
        "geomean": pytest.approx(200.0),
        "min": 100.0,
        "max": 400.0,
    }
    assert lc.p_star_spread([None]) == {"crossed": 0, "geomean": None, "min": None, "max": None}


def test_second_call_trains_nothing_and_deleted_runs_are_redone_in_a_group(tmp_path, monkeypatch, float64):
    base = TrainOptions(**TINY)
    first = lc.run_learning_curve(base, tmp_path, 20, 80, 3, plot=False, group_size=4, seeds=[0, 1])
    assert {r["group_size"] for r in first["runs"]} == {4, 2}  # 6 runs of one batch size: a group of 4, then of 2

    def refuse(*_):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(lc, "train", refuse)
    monkeypatch.setattr(lc, "train_group", refuse)
    again = lc.run_learning_curve(base, tmp_path, 20, 80, 3, plot=False, group_size=4, seeds=[0, 1])
    assert all(r["skipped"] for r in again["runs"]) and again["runs"] == [{**r, "skipped": True} for r in first["runs"]]
    monkeypatch.undo()
    for name in ("seed0/P40", "seed1/P80"):
        shutil.rmtree(tmp_path / name)
    calls, real = [], lc.train_group
    record = lambda options: calls.append([(o.P, o.seed) for o in options]) or real(options)
    monkeypatch.setattr(lc, "train_group", record)
    redone = lc.run_learning_curve(base, tmp_path, 20, 80, 3, plot=False, group_size=4, seeds=[0, 1])
    assert calls == [[(40, 0), (80, 1)]]  # the two deleted runs, as one group
    assert [r["run"] for r in redone["runs"] if not r["skipped"]] == ["seed0/P40", "seed1/P80"]
    for old, new in zip(first["runs"], redone["runs"]):
        assert (old["steps"], old["best_test_error"], old["final_test_error"]) == (
            new["steps"],
            new["best_test_error"],
            new["final_test_error"],
        )


def test_torchrun_forces_group_size_one(tmp_path, monkeypatch):
    opt = resolve(TrainOptions(**TINY))
    assert lc.curve_group_size(4, opt) == 4 and lc.curve_group_size(1, opt) == 1
    assert lc.curve_group_size(None, opt) == lc.default_group_size(opt) > 1  # a width-8 CNN: grouped on a CPU
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert lc.curve_group_size(4, opt) == lc.curve_group_size(None, opt) == 1

    def refuse(_):
        raise AssertionError("a group under torchrun")

    monkeypatch.setattr(lc, "train_group", refuse)  # every run through train, one after another
    summary = lc.run_learning_curve(TrainOptions(**TINY), tmp_path, 20, 80, 3, plot=False, group_size=4)
    assert [r["group_size"] for r in summary["runs"]] == [1, 1, 1]


@pytest.mark.parametrize(
    "args, named",
    [
        (["--group-size", "0"], "group_size=0: must satisfy None (automatic) or an int group_size >= 1"),
        (["--group-size", "x"], "'--group-size'"),
        (["--seeds", "0,0"], "seeds=[0, 0]: must satisfy distinct seeds"),
        (["--seeds", "-1"], "seeds=[-1]: must satisfy seeds that are ints 0 <= seed < 2**62"),
        (["--seeds", "0,a"], "'--seeds': '0,a': must be comma-separated int seeds"),
        (["--seeds", ""], "'--seeds': '': must be comma-separated int seeds"),
    ],
)
def test_bad_group_size_or_seeds_are_refused_before_any_work(tmp_path, args, named):
    result = CliRunner().invoke(main, ["learning-curve", *CURVE, *args, "--out", str(tmp_path / "lc")])
    assert result.exit_code == 2 and named in result.output, result.output
    assert not (tmp_path / "lc").exists()  # nothing written


@pytest.mark.parametrize(
    "change, named",
    [
        ({"group_size": True}, "group_size=True"),
        ({"group_size": 2.0}, "group_size=2.0"),
        ({"seeds": []}, "seeds=[]"),
        ({"seeds": (0, 2**62)}, "seeds=(0, 4611686018427387904)"),
        ({"seeds": "01"}, "seeds='01'"),
    ],
)
def test_run_learning_curve_checks_group_size_and_seeds(tmp_path, change, named):
    with pytest.raises(ValueError, match="invalid parameter") as err:
        lc.run_learning_curve(TrainOptions(**TINY), tmp_path / "lc", 20, 80, 3, **change)
    assert named in str(err.value) and not (tmp_path / "lc").exists()
