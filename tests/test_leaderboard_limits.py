"""The board against its Bayes-optimal limits: results below a limit, and limit files that cannot be exact
inference's (format.md §12.4)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.evaluation import board_optimal
from srhm_datasets.evaluation import evaluate as evaluate_mod
from srhm_datasets.evaluation.board_optimal import collect_limits, limit_tolerance
from srhm_datasets.evaluation.leaderboard import build_leaderboard

from .board_helpers import board, make_results, optimal_file, write

DEMO = get_config("demo")


def reasons(summary) -> dict:
    """File name (its folder's for a results.json) -> reason of each rejected file."""
    name = lambda p: Path(p).parent.name if Path(p).name == "results.json" else Path(p).name
    return {name(r["path"]): r["reason"] for r in summary["rejected"]}


@pytest.fixture(scope="module")
def next_limit(tmp_path_factory) -> Path:
    """``srhm optimal demo --task next --json``: exact BP on the whole test split (0.2236)."""
    path = tmp_path_factory.mktemp("limits") / "next.json"
    result = CliRunner().invoke(main, ["optimal", "demo", "--task", "next", "--json", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_a_model_that_sees_what_it_predicts_is_rejected_below_the_limit(next_limit, tmp_path, monkeypatch):
    """A next-token model that reads the token it predicts errs far less than exact BP on the same rows:
    rejected, with what that suggests, with or without --verify; never ranked, never verified. (srhm evaluate
    refuses such a model, ``check_causal``: the file stands for one made elsewhere, its check switched off.)"""
    root = tmp_path / "r"
    args = ["evaluate", str(root / "peek"), "--factory", "tests.user_models:peek", "--task", "next"]
    with monkeypatch.context() as patch:
        patch.setattr(evaluate_mod, "check_causal", lambda *args: None)
        result = CliRunner().invoke(main, [*args, "--encoding", "tokens", "--config", "demo", "--P", "64"])
    assert result.exit_code == 0, result.output
    error = json.loads((root / "peek" / "results.json").read_text())["evaluation"]["test_error"]
    limit = json.loads(next_limit.read_text())
    assert error < 0.07 < limit["expected_error"] - limit_tolerance(limit, limit["rows"])
    for extra in ([], ["--verify", "--device", "cpu"]):
        out = tmp_path / f"out{len(extra)}"
        args = ["leaderboard", str(root), "--out", str(out), "--optimal", str(next_limit), *extra]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        summary = json.loads((out / "leaderboard.json").read_text())
        assert summary["configs"] == {} and summary["unverified"] == []
        why = reasons(summary)["peek"]
        assert why.startswith(f"below the Bayes-optimal limit: test error {error:.4g} on 3276 test rows, 0.2236")
        assert "a model that sees what it predicts (a non-causal next-token model" in why
        assert f"REJECTED {root / 'peek' / 'results.json'}: below the Bayes-optimal limit" in result.output


def test_the_tolerance_below_the_limit_is_sampling_noise_plus_one_row(tmp_path):
    """A test error down to the limit less ``limit_tolerance`` (4 standard errors of both estimates plus one
    row) is kept; just below it is rejected. Only results of the limit's own (config, task) are compared."""
    limit = optimal_file(DEMO, "class", noise=0.2, expected=0.3, empirical=0.3, rows=500)
    tolerance = limit_tolerance({**limit, "path": ""}, DEMO.split_sizes()["test"])
    assert tolerance == pytest.approx(4 * math.sqrt(0.3 * 0.7 * (1 / 3276 + 1 / 500)) + 1 / 3276)
    root = tmp_path / "r"
    task = {"name": "class", "noise": 0.2}
    write(root, "noise/optimal.json", limit)
    write(root, "noise/edge.json", make_results(DEMO, 100, test_error=0.3 - tolerance + 1e-6, name="edge", task=task))
    write(root, "noise/under.json", make_results(DEMO, 100, test_error=0.3 - tolerance - 1e-6, name="under", task=task))
    write(root, "clean/zero.json", make_results(DEMO, 100, test_error=0.0, name="clean"))  # class: no limit here
    summary = build_leaderboard(root, tmp_path / "out")
    assert (
        set(reasons(summary)) == {"under.json"}
        and "lower by more than sampling noise allows" in reasons(summary)["under.json"]
    )
    assert [r["model"] for r in board(summary, task="class noise=0.2")["rows"]] == ["edge"]
    assert [r["model"] for r in board(summary)["rows"]] == ["clean"]


def test_a_hand_made_limit_on_the_noise_free_class_task_is_rejected(tmp_path):
    """The label of the class task without noise is a function of the input: its Bayes-optimal error is 0, and
    a file claiming 0.5666 bounds nothing (the results it would have ranked are ranked without a limit)."""
    root = tmp_path / "r"
    write(root, "a.json", make_results(DEMO, 100, test_error=0.3))
    write(tmp_path / "opt", "hand.json", optimal_file(DEMO, "class", expected=0.5666, empirical=0.57, rows=3276))
    summary = build_leaderboard(root, tmp_path / "out", optimal=[tmp_path / "opt"])
    why = reasons(summary)["hand.json"]
    assert why == (
        "Bayes-optimal file: expected_error=0.5666: must be 0 for the class task without noise (the label is a "
        "function of the input)"
    )
    assert board(summary)["limit"] is None


@pytest.mark.parametrize(
    "change, says",
    [
        ({"rows": 5000, "scored": 5000}, "rows=5000: split test of A_L2_s2_s0-1_v4_nc4_m4_seed0 has 3276 rows"),
        ({"split": "valid"}, "split='valid': must be one of"),
        ({"scored": 3276}, "scored=3276: task next scores exactly 15 target(s) per row, 49140 here"),
        ({"expected_error": 0.81}, "expected_error=0.81: above the chance error 1 - 1/5 of task next"),
        ({"expected_cross_entropy": 1.7}, "expected_cross_entropy=1.7: above log 5"),
        ({"expected_cross_entropy": 0.1}, "do not fit: a posterior error e and entropy H satisfy e <= 1 - exp(-H)"),
        ({"expected_error": 0.05}, "do not fit"),  # entropy 0.58 is more than an error of 0.05 allows (Fano)
    ],
)
def test_figures_that_cannot_be_exact_inference_are_rejected_without_computing(next_limit, tmp_path, change, says):
    obj = {**json.loads(next_limit.read_text()), **change}
    path = write(tmp_path, "limit.json", obj)
    limits, rejected, _, _ = collect_limits([path])
    assert limits == {} and len(rejected) == 1 and says in rejected[0].reason, rejected
    (real,) = collect_limits([next_limit])[0].values()  # the file as srhm optimal wrote it: accepted
    assert real["expected_error"] == pytest.approx(0.2236, abs=1e-4)


@pytest.mark.parametrize("budget", [None, 16 * 5 * 1000])  # all 3276 rows, or the first 1000 (statistical)
def test_verify_computes_the_limit_again(next_limit, tmp_path, monkeypatch, budget):
    """With --verify a Bayes-optimal file is computed again by exact BP on its rows (its first rows within
    ``VERIFY_CELLS``, then compared within sampling noise): an edited figure that passes the checks that
    need no computation is rejected as a mismatch; the file srhm optimal wrote is kept."""
    if budget:
        monkeypatch.setattr(board_optimal, "VERIFY_CELLS", budget)
    edited = write(tmp_path, "edited.json", {**json.loads(next_limit.read_text()), "expected_error": 0.15})
    assert collect_limits([edited])[1] == []  # consistent enough to pass without computing
    limits, rejected, _, _ = collect_limits([next_limit, edited], verify=True)
    assert [limit["path"] for limit in limits.values()] == [str(next_limit)]
    (why,) = [r.reason for r in rejected]
    where = "its 3276 test rows" if budget is None else "the first 1000 of its 3276 test rows"
    assert why.startswith("Bayes-optimal file: mismatch: expected_error 0.15 in the file, 0.22")
    assert f"by exact BP (srhm optimal) on {where}" in why


def test_verify_rejects_the_hand_made_next_limit_a_model_would_hide_under(next_limit, tmp_path):
    """A limit file lowered by hand would let a model below the true limit pass: --verify computes it again,
    rejects it, and then has no limit to rank under (the results stay, without a limit row)."""
    root = tmp_path / "r"
    obj = make_results(DEMO, 100, test_error=0.17, name="tf", task="next")
    write(root, "tf.json", obj)
    lowered = write(tmp_path / "opt", "next.json", {**json.loads(next_limit.read_text()), "expected_error": 0.15})
    plain = build_leaderboard(root, tmp_path / "plain", optimal=[lowered])
    assert plain["rejected"] == [] and board(plain, task="next")["limit"]["expected_error"] == 0.15
    checked = build_leaderboard(root, tmp_path / "checked", optimal=[lowered], verify=True, device="cpu")
    assert list(reasons(checked)) == ["next.json"] and board(checked, task="next")["limit"] is None
