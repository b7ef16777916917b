"""Helpers of the sweep tests: a tiny sweep file on `demo` and the parts of a run that must agree."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

#: Two learning curves (seeds 0 and 1) of a width-16 CNN on demo, 2 P values, 40 steps each.
TINY = {
    "name": "tiny",
    "configs": ["demo"],
    "archs": ["cnn"],
    "widths": [16],
    "seeds": [0, 1],
    "P": {"min": 60, "max": 200, "points": 2},
    "train": {"max_steps": 40, "num_test": 500, "threads": 1},
    "curve": {"plot": False},
    "executor": {"local": {"workers": 2}, "slurm": {"cpus_per_task": 1, "time_min": 10}},
}
TINY_OPTIONS = {"arch": "cnn", "width": 16, "max_steps": 40, "num_test": 500, "threads": 1, "progress": False}
TINY_CURVE = (60, 200, 2)


def write_sweep(path: Path, **changes) -> Path:
    """TINY with top-level ``changes`` (``train`` merged), written as YAML to ``path``."""
    doc = {**TINY, **changes}
    if "train" in changes:
        doc["train"] = {**TINY["train"], **changes["train"]}
    path.write_text(yaml.safe_dump(doc))
    return path


def comparable(run_dir: Path) -> dict:
    """What two runs made with the same settings must share: P, errors, curves, the evaluation's numbers."""
    results = json.loads((Path(run_dir) / "results.json").read_text())
    ev = results.get("evaluation") or {}
    return {
        "P": results["P"],
        "best": results["best_test_error"],
        "final": results["final_test_error"],
        "curves": results["training"]["curves"],
        "config": results["dataset"]["config"],
        "seed": results["training"]["seed"],
        "test_error": ev.get("test_error"),
        "sensitivity": ev.get("sensitivity"),
    }


def sweep_runs(out: Path) -> dict[str, dict]:
    """``<job id>/P<P>`` -> comparable(run) for every run of the sweep folder ``out``."""
    return {
        f"{p.parent.parent.name}/{p.parent.name}": comparable(p.parent)
        for p in sorted((Path(out) / "runs").glob("*/P*/results.json"))
    }
