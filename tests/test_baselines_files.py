"""The sweep files of ``baselines/``: each validates, each CPU file has a full twin, and the
CPU files together meet the reproduction's acceptance counts (configs counted by their parameters)."""

from __future__ import annotations

from pathlib import Path

import pytest

from srhm_datasets.protocol import LAW_NAMES, law_x
from srhm_datasets.sweep.spec import load_sweep

BASELINES = Path(__file__).resolve().parent.parent / "baselines"
CPU = sorted((BASELINES / "cpu").glob("*.yaml"))
FULL = sorted((BASELINES / "full").glob("*.yaml"))


def _evaluated(sweep) -> bool:
    """Every run of a class sweep is evaluated (``srhm evaluate`` measures class runs only)."""
    return sweep.evaluate["enabled"] or sweep.train["task"] != "class"


def _cpu_sweeps():
    return [load_sweep(path) for path in CPU]


def _configs(arch: str, *, s: int, sparsity: str) -> set:
    """Distinct configs that some CPU sweep trains with ``arch``, of this s and sparsity, with nc = v."""
    return {
        entry.config
        for sweep in _cpu_sweeps()
        if arch in sweep.archs
        for entry in sweep.configs
        if entry.config.s == s and entry.config.sparsity == sparsity and entry.config.nc == entry.config.v
    }


def test_the_folders_hold_sweep_files_and_no_package():
    assert len(CPU) >= 7 and len(FULL) >= 7
    assert not (BASELINES / "__init__.py").exists()


@pytest.mark.parametrize("path", CPU + FULL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_file_validates(path):
    sweep = load_sweep(path)  # raises SweepFileError listing every bad field
    assert sweep.configs


def test_every_cpu_file_has_a_full_twin():
    assert [p.name for p in CPU] == [p.name for p in FULL]


@pytest.mark.parametrize("path", FULL, ids=lambda p: p.name)
def test_full_files_are_ready_for_slurm_on_gpus(path):
    sweep = load_sweep(path)
    assert sweep.executor["slurm"]["gpus_per_node"] == 1
    assert sweep.executor["slurm"]["time_min"] >= 60
    assert _evaluated(sweep)


@pytest.mark.parametrize("path", CPU, ids=lambda p: p.name)
def test_cpu_files_have_seeds_evaluation_and_the_command(path):
    """Two seeds for the P* figures (4B, 4C); the others were run with one on the 2-core machine."""
    sweep = load_sweep(path)
    assert len(sweep.seeds) >= (2 if path.stem in ("fig4c_cnn_pstar", "fig4b_lcn_pstar") else 1)
    assert _evaluated(sweep) and sweep.evaluate["num_test"] is None and sweep.evaluate["num_probe"] is None
    assert f"srhm sweep baselines/cpu/{path.name} --out baselines/runs/{path.stem}" in path.read_text()
    assert "Wall time" in path.read_text()


@pytest.mark.parametrize("path", CPU, ids=lambda p: p.name)
def test_cpu_P_ranges_bracket_the_laws(path):
    """P.min at most half the smallest law x of the file's archs (the CNN's for an arch without a law: the
    transformer); P.max at least 3x the largest, or the whole train split (the paper's P*/x runs from 0.8
    to 6.3)."""
    sweep = load_sweep(path)
    for entry in sweep.configs:
        c = entry.config
        xs = [law_x(arch if arch in LAW_NAMES else "cnn", c.L, c.s, c.s0, c.nc, c.m) for arch in sweep.archs]
        P_min, P_max, points = entry.P
        assert P_min <= 0.5 * min(xs), (entry.label, P_min, xs)
        assert P_max >= 3 * max(xs) or P_max == c.split_sizes()["train"], (entry.label, P_max, xs)
        assert points >= 8


def test_cnn_s2_sparsity_A_counts():
    configs = {c for c in _configs("cnn", s=2, sparsity="A") if c.m == c.v and 3 <= c.v <= 8 and 0 <= c.s0 <= 4}
    assert len(configs) >= 10
    assert {c.L for c in configs} == {2, 3}
    assert {c.s0 for c in configs} >= {0, 1, 2, 4}
    assert {c.v for c in configs if c.L == 2} >= {3, 4, 6, 8}


def test_lcn_s2_sparsity_A_counts():
    configs = {c for c in _configs("lcn", s=2, sparsity="A") if c.m == c.v}
    assert len(configs) >= 5


def test_sparsity_B_and_s3_counts():
    assert len(_configs("cnn", s=2, sparsity="B")) >= 3
    assert len({c for c in _configs("cnn", s=3, sparsity="A") if c.m == c.v**2}) >= 2


def test_sensitivities_file_has_one_cnn_and_one_lcn_config():
    sweep = load_sweep(BASELINES / "cpu" / "sensitivities.yaml")
    assert set(sweep.archs) == {"cnn", "lcn"} and len(sweep.configs) >= 1
    assert sweep.configs[0].P[2] >= 10


def test_transformer_files_train_it_beside_the_cnn():
    """The transformer's class curves run on configs whose CNN curves are committed (fig4c_cnn_pstar), its
    last-token curves on RHM configs (s0 = 0); two seeds on the CPU."""
    cnn = {e.config for e in load_sweep(BASELINES / "cpu" / "fig4c_cnn_pstar.yaml").configs}
    for name, task in (("transformer", "class"), ("transformer_last", "last")):
        sweep = load_sweep(BASELINES / "cpu" / f"{name}.yaml")
        assert tuple(sweep.archs) == ("transformer",) and sweep.train["task"] == task and len(sweep.seeds) >= 2
        configs = {e.config for e in sweep.configs}
        assert len(configs) >= (4 if task == "class" else 3)
        assert configs <= cnn if task == "class" else all(c.s0 == 0 for c in configs)
