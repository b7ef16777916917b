"""``srhm optimal`` and ``optimal_figures`` (format.md §16.3)."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.catalog import CATALOG
from srhm_datasets.cli import main
from srhm_datasets.inference import FIGURES, bayes_optimal
from srhm_datasets.optimal import BLOCK, optimal_figures
from srhm_datasets.tasks import apply_task, make_task

CFG = SRHMConfig(L=2, s=2, s0=1, v=3, nc=3, m=2, sparsity="B", seed=3)


@pytest.mark.parametrize("task", ["class", "next"])
def test_figures_are_those_of_the_split_rows(task):
    rows = generate(CFG, "test", 0, 300)
    tokens = rows["tokens"].astype(np.int64)
    if task == "class":
        expected = bayes_optimal(CFG, tokens, rows["label"])
    else:
        scored = np.ones(tokens.shape, dtype=bool)
        scored[:, 0] = False
        expected = bayes_optimal(CFG, tokens, tokens, scored, causal=True)
    got = optimal_figures(CFG, task, "test", 300)
    assert {k: got[k] for k in FIGURES} == pytest.approx(expected, rel=1e-12)
    assert got["scored"] == (300 if task == "class" else 300 * (CFG.d - 1))


@pytest.mark.parametrize(
    "task, options",
    [
        ("class", {"noise": 0.1}),
        ("last", {}),
        ("last", {"context": 3}),
        ("mlm", {"mask_rate": 0.3}),
        ("next", {"noise": 0.1}),
    ],
)
def test_figures_use_the_evidence_the_adapters_draw(task, options):
    # The masks, windows and noise scored by srhm optimal are the tasks module's: those a model trains on.
    n = 300
    rows = generate(CFG, "test", 0, n)
    tb = apply_task(CFG, make_task(CFG, task, **options), rows, "test", 0)
    truth = rows["label"] if task == "class" else rows["tokens"].astype(np.int64)
    scored = None if task == "class" else tb.scored
    expected = bayes_optimal(CFG, tb.evidence, truth, scored, tb.noise, tb.causal)
    got = optimal_figures(CFG, task, "test", n, **options)
    assert {k: got[k] for k in FIGURES} == pytest.approx(expected, rel=1e-12)
    assert got["scored"] == (n if task == "class" else int(tb.scored.sum()))


def test_blocks_add_up_to_one_pass():
    n = BLOCK + 7
    cfg = CATALOG["demo"]
    whole = optimal_figures(cfg, "class", "train", n, noise=0.2)
    rows = generate(cfg, "train", 0, n)
    assert whole["rows"] == n and 0.0 < whole["expected_error"] < 1.0
    noiseless = bayes_optimal(cfg, rows["tokens"].astype(np.int64), rows["label"])
    assert noiseless["expected_error"] == 0.0


def test_noise_raises_the_error_monotonically():
    errors = [optimal_figures(CFG, "class", rows=500, noise=e)["expected_error"] for e in (0.0, 0.2, 0.4)]
    assert errors[0] == 0.0 < errors[1] < errors[2]


def test_cli_prints_and_writes_json(tmp_path):
    out = tmp_path / "o.json"
    result = CliRunner().invoke(main, ["optimal", CFG.name, "--task", "class", "--rows", "200", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["rows"] == 200 and data["task"] == "class" and data["config"] == CFG.name
    assert set(FIGURES) <= set(data) and "expected_error" in result.output


def test_a_certain_prediction_has_a_cross_entropy_of_plus_zero(tmp_path):
    cfg = "A_L3_s3_s0-0_v3_nc3_m2_seed2"  # few tuples in use: the last token follows from the rest
    out = tmp_path / "o.json"
    result = CliRunner().invoke(main, ["optimal", cfg, "--task", "last", "--rows", "50", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for key in ("expected_cross_entropy", "empirical_cross_entropy"):
        assert data[key] == 0.0 and math.copysign(1.0, data[key]) == 1.0, key
    assert " -0" not in result.output


@pytest.mark.parametrize(
    "args, name",
    [
        (["--rows", "0"], "rows"),
        (["--rows", "10000000"], "rows"),
        (["--noise", "1.0"], "noise"),
        (["--noise", "-0.5"], "noise"),
        (["--context", "3"], "context"),
        (["--task", "last", "--context", "0"], "context"),
        (["--task", "mlm", "--mask-rate", "0"], "mask_rate"),
        (["--mask-rate", "0.2"], "mask_rate"),
    ],
)
def test_cli_refuses_bad_options_before_work(tmp_path, args, name):
    out = tmp_path / "o.json"
    result = CliRunner().invoke(main, ["optimal", CFG.name, "--json", str(out), *args])
    assert result.exit_code == 2 and f"invalid parameter {name}=" in result.output
    assert not out.exists()


def test_max_bytes_shrinks_the_blocks_not_the_figures():
    small = optimal_figures(CFG, "next", rows=300, max_bytes=100_000)  # blocks of 48 rows
    whole = optimal_figures(CFG, "next", rows=300)
    assert {k: small[k] for k in FIGURES} == pytest.approx({k: whole[k] for k in FIGURES}, rel=1e-12)
