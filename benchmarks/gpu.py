"""One command for a machine with one CUDA GPU: the CUDA tests, training throughput, the device
generator and a learning curve, in one markdown report, in at most ``--budget`` seconds (480).

Parts, each with its own share of the budget (``BUDGET``; a part that finds too little time
left is skipped with a note, as is the rest of a part that runs out):

1. imports: which of ``datasets``, ``submitit``, ``jsonschema`` are installed, and that
   importing the package, the generator, the torch adapters and the training code loaded
   none of them (``OPTIONAL``: what each is still needed for);
2. tests: the CUDA cases of the test suite, ``pytest -k "cuda or gpu"`` over the test files
   that mention ``cuda`` (only on a CUDA device: elsewhere those cases do not exist);
3. throughput: steps/s and samples/s of one run and of a group (``baselines.group``, the
   stacked trainer: ``benchmarks/train.py``'s ``throughput``) for the CNN and the LCN, and of
   one run of the transformer (``baselines.transformer``, a plain AdamW loop; the group
   trainer stacks the CNN/LCN/FCN only), at widths 128 and 512 on ``fig1``;
4. generator: the device generator's rows/s against numpy and the encoded batches/s of a
   device stream against a CPU stream (``benchmarks/torch_generate.py``'s measurements);
5. curve: ``srhm learning-curve --config fig1`` (CNN, small), its wall time and P*.

``--device cpu --quick`` runs every part at tiny sizes in seconds (``tests/test_gpu_benchmark.py``).

Usage::

    python benchmarks/gpu.py [--device cuda] [--budget 480] [--out report.md]
    python benchmarks/gpu.py --device cpu --quick

A lent GPU machine (Python 3.12, torch, numpy; no network) lacks ``datasets``, ``submitit`` and
``jsonschema`` (and may lack ``pytest``, ``hypothesis``). Bring them as wheels: here, with network::

    pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \\
        -d wheels datasets submitit jsonschema pytest hypothesis

(``pip download`` fetches their dependencies too; drop from ``wheels/`` what the machine already
has, pyarrow above all, if the folder must stay small), carry ``wheels/`` with the working tree,
and there, from the repository root::

    pip install --no-index --find-links wheels datasets submitit jsonschema pytest hypothesis
    PYTHONPATH=$PWD python benchmarks/gpu.py --out gpu-report.md

The package itself imports and trains without the three (the report's first table checks it);
without ``jsonschema`` the learning curve (it writes validated ``results.json`` files) is skipped
with a note, without ``pytest`` the tests.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

import srhm_datasets as srhm
from srhm_datasets.baselines import transformer as tf
from srhm_datasets.baselines.learning_curve import run_learning_curve  # noqa: F401 (loaded: the import check)
from srhm_datasets.config import is_real, require
from srhm_datasets.torch import SRHMStream, TorchGenerator, default_device  # noqa: F401 (idem)
from srhm_datasets.torch_data.encoding import check_device

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def sibling(name: str):
    """The benchmark script ``benchmarks/<name>.py`` as a module (named ``benchmarks_<name>``)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


torch_generate, train_bench = sibling("torch_generate"), sibling("train")

#: Seconds per part; the whole report stays within ``--budget``.
BUDGET = {"tests": 150, "throughput": 140, "generator": 50, "curve": 120}
#: Optional dependencies the lent machines lack, and what still needs each.
OPTIONAL = {
    "datasets": "published splits (SRHMDataset, load_split, srhm train --data), release build/verify, srhm demo",
    "jsonschema": "validating results.json: srhm train --out, srhm learning-curve, srhm evaluate, sweeps",
    "submitit": "the Slurm executor of srhm sweep",
}
#: Sizes of the full and the quick report.
SIZES = {
    "full": {
        "config": "fig1",
        "widths": (128, 512),
        "group": 16,
        "steps": 50,
        "tf_batch": 128,
        "generator": {"P": 1 << 18, "block": 1 << 16, "seconds": 2.0, "batches": 64, "batch_size": 1024},
        "generator_configs": list(torch_generate.CONFIGS),
        "curve": ["--width", "128", "--P-min", "3000", "--P-max", "48000", "--points", "5", "--max-steps", "10000"]
        + ["--num-test", "5000"],
    },
    "quick": {
        "config": "fig1",
        "widths": (8,),
        "group": 2,
        "steps": 2,
        "tf_batch": 16,
        "generator": {"P": 256, "block": 256, "seconds": 0.01, "batches": 2, "batch_size": 64},
        "generator_configs": list(torch_generate.CONFIGS)[:1],
        "curve": ["--width", "8", "--P-min", "40", "--P-max", "80", "--points", "2", "--max-steps", "3"]
        + ["--num-test", "100"],
    },
}


class Clock:
    """Seconds left of the whole budget, and of one part's share."""

    def __init__(self, budget: float):
        self.end = time.perf_counter() + budget

    def left(self) -> float:
        return self.end - time.perf_counter()

    def share(self, part: str, quick: bool) -> float:
        return min(self.left(), BUDGET[part] if not quick else 60.0)


def import_report() -> list[str]:
    """What this process loaded of the optional dependencies after importing the package, the generator,
    the adapters, training and the transformer (nothing, where the package keeps them lazy)."""
    lines = ["| dependency | installed | loaded by the imports | still needed for |", "| --- | --- | --- | --- |"]
    for name, use in OPTIONAL.items():
        installed = importlib.util.find_spec(name) is not None
        lines.append(f"| {name} | {'yes' if installed else 'no'} | {'yes' if name in sys.modules else 'no'} | {use} |")
    return lines


def cuda_tests(device: torch.device, seconds: float) -> list[str]:
    """The summary of ``pytest -k "cuda or gpu"`` over the test files that mention cuda, and its failures."""
    if device.type != "cuda":
        return [f"skipped: device {device} is not CUDA (the CUDA cases exist only with a CUDA device)"]
    if importlib.util.find_spec("pytest") is None:
        return ["skipped: pytest is not installed (see the module docstring: wheels)"]
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py") if "cuda" in p.read_text())
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda or gpu", *files]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        return [f"stopped after {seconds:.0f} s: `{' '.join(cmd[2:])}`"]
    lines = done.stdout.strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return [f"`{' '.join(cmd[2:])}`: {lines[-1] if lines else done.stderr.strip()[-300:]}", *failed]


def transformer_throughput(cfg, width: int, steps: int, batch: int, device: torch.device) -> dict:
    """Steps/s and samples/s of the transformer (``class``) with AdamW on random ids, after 3 warm-up steps."""
    model = tf.build_transformer(cfg, "class", width=width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tf.DEFAULT_LR, weight_decay=tf.DEFAULT_WEIGHT_DECAY)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randint(0, cfg.v + 1, (batch, cfg.d), device=device, generator=g)
    y = torch.randint(0, cfg.nc, (batch,), device=device, generator=g)

    def step():
        loss = tf.task_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    torch_generate.sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch_generate.sync(device)
    per_s = steps / (time.perf_counter() - t0)
    return {"steps_per_s": per_s, "samples_per_s": per_s * batch, "batch": batch}


def throughput(device: torch.device, sizes: dict, seconds: float) -> list[str]:
    """One row per (network, width, G): steps/s and samples/s (member-samples/s for a group)."""
    end = time.perf_counter() + seconds
    lines = ["| network | width | G | batch | steps/s | samples/s |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    cfg = srhm.get_config(sizes["config"])
    for width in sizes["widths"]:
        for arch in ("cnn", "lcn", "transformer"):
            for G in (1, sizes["group"]) if arch != "transformer" else (1,):
                if time.perf_counter() > end:
                    return lines + [f"(stopped: the part's {seconds:.0f} s were spent)"]
                if arch == "transformer":
                    r = transformer_throughput(cfg, width, sizes["steps"], sizes["tf_batch"], device)
                    row = (r["batch"], r["steps_per_s"], r["samples_per_s"])
                else:
                    r = train_bench.throughput(sizes["config"], arch, G, width, sizes["steps"], None, str(device))
                    row = (r["batch"], 1e3 / r["ms_per_step"], r["member_samples_per_s"])
                lines.append(f"| {arch} | {width} | {G} | {row[0]} | {row[1]:,.1f} | {row[2]:,.0f} |")
    return lines + ["(transformer groups: the group trainer stacks the CNN/LCN/FCN only)"]


def generator(device: torch.device, sizes: dict, seconds: float) -> list[str]:
    """``torch_generate``'s samples/s (device generator vs numpy) and encoded batches/s (device vs CPU stream)."""
    end = time.perf_counter() + seconds
    args = SimpleNamespace(threads=1, **sizes["generator"])
    lines = [
        "| config | device rows/s | numpy rows/s | ratio | device stream batches/s | CPU stream | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in sizes["generator_configs"]:
        if time.perf_counter() > end:
            return lines + [f"(stopped: the part's {seconds:.0f} s were spent)"]
        cfg = torch_generate.CONFIGS[name]
        ours, ref = torch_generate.samples_per_second(cfg, args, device)
        b_ours, b_ref = torch_generate.batches_per_second(cfg, args, device)
        rows = f"{ours:,.0f} | {ref:,.0f} | {ours / ref:.2f}x"
        lines.append(f"| {name} | {rows} | {b_ours:,.1f} | {b_ref:,.1f} | {b_ours / b_ref:.2f}x |")
    return lines


def curve(device: torch.device, sizes: dict, seconds: float) -> list[str]:
    """``srhm learning-curve --config <config> --arch cnn ...`` in a subprocess: wall time, P*, errors per P."""
    if importlib.util.find_spec("jsonschema") is None:
        return ["skipped: jsonschema is not installed (results.json files are validated; see the docstring)"]
    with tempfile.TemporaryDirectory() as tmp:
        args = ["learning-curve", "--config", sizes["config"], "--arch", "cnn", *sizes["curve"]]
        args += ["--device", str(device), "--no-progress", "--out", tmp]
        cmd = [sys.executable, "-m", "srhm_datasets", *args]
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds)
        except subprocess.TimeoutExpired:
            return [f"stopped after {seconds:.0f} s: `srhm {' '.join(args[:-2])}`"]
        wall = time.perf_counter() - t0
        if done.returncode:
            return [f"`srhm {' '.join(args[:-2])}` failed ({done.returncode}): {done.stderr.strip()[-500:]}"]
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    errors = ", ".join(f"{r['P']}: {r['best_test_error']:.3f}" for r in summary["runs"])
    p_star = "not reached" if summary["P_star"] is None else f"{summary['P_star']:.0f}"
    return [f"`srhm {' '.join(args[:-2])}`: {wall:.1f} s wall, P* {p_star}; best test error per P: {errors}"]


def report(device: torch.device, quick: bool, budget: float) -> str:
    """The whole markdown report; every part within its share of ``budget``."""
    clock, sizes = Clock(budget), SIZES["quick" if quick else "full"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    out = [
        f"# GPU benchmark ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)",
        f"device {device} ({name}), Python {platform.python_version()}, torch {torch.__version__}, "
        f"srhm-datasets {srhm.__version__}{', quick sizes' if quick else ''}",
        "",
        "## Imports",
        *import_report(),
    ]
    parts = (
        ("CUDA tests", "tests", lambda s: cuda_tests(device, s)),
        ("Training throughput", "throughput", lambda s: throughput(device, sizes, s)),
        ("Device generator", "generator", lambda s: generator(device, sizes, s)),
        ("Learning curve", "curve", lambda s: curve(device, sizes, s)),
    )
    for title, part, run in parts:
        seconds = clock.share(part, quick)
        t0 = time.perf_counter()
        body = run(seconds) if seconds > 5 else [f"skipped: {clock.left():.0f} s of the budget left"]
        out += ["", f"## {title} ({time.perf_counter() - t0:.1f} s)", *body]
        print(f"{title}: done", flush=True, file=sys.stderr)
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="default: default_device() (cuda, then mps, then cpu)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a check that every part runs)")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole report")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    try:  # bad values named before any work (the package's ValueError), as argparse reports its own
        require(is_real(args.budget) and args.budget >= 0, "--budget", args.budget, "a real >= 0 (seconds)")
        device = torch.device(check_device(args.device))
    except ValueError as err:
        parser.error(str(err))
    text = report(device, args.quick, args.budget)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
