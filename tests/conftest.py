"""Test-suite settings and the shared fixtures.

Hypothesis: no per-example deadline (CI machines are shared and noisy; speed belongs in
benchmarks/) and, under CI, a derandomised search so a run is reproducible.

Fixtures shared by every area (helpers that are not fixtures stay in ``fakehub.py``,
``release_helpers.py``, ``torch_helpers.py``, ``processes.py`` and ``strategies.py``):

- ``fake_hub``: the in-process fake Hub (``fakehub.py``) with a fresh ``HF_HOME`` at
  ``tmp_path / "hf_home"``, for one test.
- ``tiny_release`` (with ``tiny_release_cache``, a ``datasets`` cache folder to load it into):
  a release folder of the catalog config ``grid_L2_s0-0_v3`` (``TINY``: 49 train, 16 test and
  16 probe rows), built once per session; read-only, a test that damages it works on a copy.
- ``tiny_run``: a finished ``srhm train`` run folder of ``demo`` (``torch_helpers.train_run``),
  built once per session; read-only, a test that changes it works on a copy.
- ``task_runs``: finished run folders of ``demo`` on other tasks, keyed by the leaderboard's task
  label: a CNN that learned ``class`` under noise, transformers of ``last`` and ``mlm`` (with noise),
  a user's model of ``next``; built once per session, read-only.
- ``float64``: training in float64 (single runs and groups compared exactly).
"""

import os
from pathlib import Path

import pytest
from hypothesis import settings

from srhm_datasets.catalog import get_config
from srhm_datasets.release.build import build_release

from . import fakehub
from .board_helpers import write_example
from .release_helpers import TINY
from .torch_helpers import train_run

#: A user's model of every task (``tests/user_models.py``).
FACTORY = "tests.user_models:token_net"

settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def fake_hub(monkeypatch, tmp_path) -> fakehub.FakeHub:
    """The in-process fake Hub behind ``huggingface_hub`` and ``datasets`` (fresh ``HF_HOME``)."""
    hub = fakehub.install(monkeypatch, tmp_path / "hf_home")
    yield hub
    fakehub.uninstall()


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory) -> Path:
    """A release folder of ``TINY`` (read-only: copy it before damaging it)."""
    out = tmp_path_factory.mktemp("tiny_release") / "release"
    build_release([TINY], out, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_release_cache(tmp_path_factory) -> str:
    """A ``datasets`` cache folder for loading ``tiny_release``, shared by the session."""
    return str(tmp_path_factory.mktemp("tiny_release_cache"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished ``srhm train`` run folder of ``demo`` (read-only: copy it before changing it)."""
    return train_run(tmp_path_factory.mktemp("tiny_run"), get_config("demo"))


@pytest.fixture(scope="session")
def task_runs(tmp_path_factory) -> dict[str, Path]:
    """Run folders of ``demo`` on tasks other than plain ``class``, keyed by task label (read-only)."""
    root, demo = tmp_path_factory.mktemp("task_runs"), get_config("demo")
    learned = ("--width", "16", "--max-steps", "200", "--eval-every", "100")  # the noise changes its error
    return {
        "class noise=0.2": train_run(root, demo, 1000, "cnn", "class_noise", "--noise", "0.2", *learned),
        "last context=4": train_run(root, demo, 128, "transformer", "last", "--task", "last", "--context", "4"),
        "mlm mask_rate=0.15 noise=0.1": train_run(
            root, demo, 128, "transformer", "mlm", "--task", "mlm", "--noise", "0.1"
        ),
        "next": train_run(root, demo, 128, "", "next", "--task", "next", "--encoding", "tokens", factory=FACTORY),
    }


@pytest.fixture
def float64(monkeypatch):
    """Default dtype float64, and ``train.py`` encoding its inputs in it."""
    import torch

    from srhm_datasets.baselines import train as train_module
    from srhm_datasets.torch_data.encoding import encode

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    monkeypatch.setattr(
        train_module, "encode", lambda t, v, kind, **kw: encode(t, v, kind, torch.get_default_dtype(), **kw)
    )
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory):
    """A RESULTS_DIR of accepted, rejected and ignored files (read-only: the tests write elsewhere)."""
    return write_example(tmp_path_factory.mktemp("example") / "results")
