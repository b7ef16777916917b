"""The benchmark scripts refuse bad arguments by name (a usage error, exit 2, no traceback) before any work, and
skip an anchor checkout they cannot import."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name: str, argv: list[str], monkeypatch) -> None:
    """``benchmarks/<name>.py``'s main() with ``argv`` (a folder of scripts, loaded from its file)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    module.main()


@pytest.mark.parametrize(
    "name, argv, message",
    [
        ("anchors", ["--P", "0"], "invalid parameter --P=0: must satisfy 1 <= --P"),
        ("anchors", ["--repeat", "0"], "invalid parameter --repeat=0"),
        ("torch_generate", ["--device", "tpu"], "invalid parameter device='tpu'"),
        ("torch_generate", ["--device", "cuda:9"], "invalid parameter device='cuda:9'"),
        ("torch_generate", ["--threads", "0"], "invalid parameter --threads=0"),
        ("torch_generate", ["--block", "0"], "invalid parameter --block=0"),
        ("tasks", ["--rows", "0"], "invalid parameter --rows=0"),
        ("tasks", ["--configs", "nope"], "invalid parameter config='nope'"),
        ("tasks", ["--device", "tpu"], "invalid parameter device='tpu'"),
    ],
)
def test_benchmarks_refuse_bad_arguments_by_name(name, argv, message, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_script(name, argv, monkeypatch)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_anchors_skips_a_checkout_whose_import_fails(tmp_path, monkeypatch, capsys):
    package = tmp_path / "hierarchy-learning" / "datasets"  # e.g. a dependency of the anchor not installed here
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import a_module_that_is_not_installed\n")
    monkeypatch.setenv("SRHM_ANCHORS", str(tmp_path))
    run_script("anchors", ["--P", "1", "--repeat", "1"], monkeypatch)  # the benchmark goes on without it
    out = capsys.readouterr().out
    assert "anchor pcsl: hierarchy-learning SKIPPED:" in out and "import failed (ModuleNotFoundError" in out
    assert "ours RHM tokens" in out and "pcsl RHM tokens" not in out
