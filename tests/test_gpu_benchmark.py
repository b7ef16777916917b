"""benchmarks/gpu.py runs every part at tiny sizes on a CPU and keeps to its time budget."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu():
    spec = importlib.util.spec_from_file_location("benchmarks_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_report_on_cpu(tmp_path):
    """In a process of its own: the imports table reports what importing the package loaded, not what
    the other tests of this process did."""
    out = tmp_path / "report.md"
    args = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text in proc.stdout
    for title in ("## Imports", "## CUDA tests", "## Training throughput", "## Device generator", "## Learning curve"):
        assert title in text
    assert "skipped: device cpu is not CUDA" in text
    rows = [line for line in text.splitlines() if line.startswith(("| cnn |", "| lcn |", "| transformer |"))]
    assert [r.split(" | ")[:3] for r in rows] == [
        ["| cnn", "8", "1"],
        ["| cnn", "8", "2"],
        ["| lcn", "8", "1"],
        ["| lcn", "8", "2"],
        ["| transformer", "8", "1"],
    ]
    assert all(float(r.split(" | ")[4].replace(",", "")) > 0 for r in rows)  # steps/s measured
    assert "| RHM L=3, s0=0, v=8 |" in text
    assert "srhm learning-curve --config fig1 --arch cnn" in text and "best test error per P: 40:" in text
    for name in ("datasets", "jsonschema", "submitit"):  # none loaded by importing the package and training
        assert f"| {name} | yes | no |" in text


def test_a_spent_budget_skips_the_parts(gpu):
    text = gpu.report(gpu.torch.device("cpu"), quick=True, budget=0.0)
    assert text.count("skipped: ") == 4 and "## Imports" in text


@pytest.mark.parametrize(
    "argv, message",
    [(["--device", "tpu"], "invalid parameter device='tpu'"), (["--budget", "-1"], "invalid parameter --budget=-1.0")],
)
def test_bad_arguments_are_refused_by_name(gpu, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        gpu.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
