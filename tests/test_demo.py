"""``srhm demo`` (the README's first command) runs end to end and leaves its artefacts."""

import json
import subprocess
import sys

from click.testing import CliRunner

from srhm_datasets.cli import main
from srhm_datasets.results import validate_results


def test_demo_builds_loads_trains_evaluates_and_ranks(tmp_path):
    result = CliRunner().invoke(
        main, ["demo", "--out", str(tmp_path), "--P", "500", "--width", "64", "--max-steps", "300"]
    )
    assert result.exit_code == 0, result.output
    assert "first 100 train rows equal generate(): True" in result.output
    assert (tmp_path / "release" / "rules" / "demo.json").is_file()
    results = json.loads((tmp_path / "runs" / "demo-cnn-P500" / "results.json").read_text())
    validate_results(results)
    assert results["dataset"]["source"] == "release"
    assert set(results["evaluation"]["sensitivity"]) == {"synonym", "diffeo"}
    assert results["best_test_error"] < 0.75  # below chance after a few hundred steps
    assert (tmp_path / "leaderboard" / results["dataset"]["config"] / "leaderboard.md").is_file()


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "srhm_datasets", "info", "demo"], capture_output=True, text=True, check=True
    )
    assert "A_L2_s2_s0-1_v4_nc4_m4_seed0" in out.stdout
