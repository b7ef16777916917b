"""The light commands stay light: ``srhm --help``, ``info``, ``sample``, ``leaderboard`` and every
command's ``--help`` import neither torch, pyarrow nor ``datasets`` (checked by the modules a
fresh interpreter holds after the command, not by wall time)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from srhm_datasets.cli import LAZY_COMMANDS

HEAVY = ("torch", "pyarrow", "datasets")
#: A few results files of the repository's reference runs, for ``srhm leaderboard``.
RESULTS = Path(__file__).resolve().parents[1] / "baselines" / "results" / "s3"

RUN = """
import json, sys
from click.testing import CliRunner
from srhm_datasets.cli import main
result = CliRunner().invoke(main, json.loads(sys.argv[1]))
print(json.dumps({"exit": result.exit_code, "output": result.output[-500:],
                  "heavy": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}))
"""


def _run(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


LIGHT = [
    ["--help"],
    ["info", "demo"],
    ["info", "s3_L3_s0-6_v4"],
    ["sample", "demo"],
    ["sample", "fig1", "--split", "probe"],
]


@pytest.mark.parametrize(
    "args", LIGHT + [[name, "--help"] for name in sorted(LAZY_COMMANDS)], ids=lambda args: " ".join(args)
)
def test_light_commands_import_no_heavy_library(args):
    result = _run(args)
    assert result["exit"] == 0, result["output"]
    assert result["heavy"] == [], f"srhm {' '.join(args)} imported {result['heavy']}"


@pytest.mark.skipif(not RESULTS.is_dir(), reason="needs the repository's baselines/results")
def test_leaderboard_imports_no_heavy_library(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    result = _run(["leaderboard", str(results), "--out", str(tmp_path / "board")])
    assert result["exit"] == 0, result["output"]
    assert "accepted" in result["output"]
    assert result["heavy"] == [], f"srhm leaderboard imported {result['heavy']}"
