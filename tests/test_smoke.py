"""The core CLI commands: info, sample, and clear usage errors."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.cli import main


def test_info_prints_parameters_and_exact_sizes():
    result = CliRunner().invoke(main, ["info", "A_L4_s2_s0-1_v16_nc16_m16_seed0"])
    assert result.exit_code == 0, result.output
    assert str(2**94) in result.output  # exact beyond int64
    assert "input length d      256" in result.output


def test_sample_shows_blanks_as_underscores_and_the_indices():
    result = CliRunner().invoke(main, ["sample", "demo", "--n", "2", "--split", "test"])
    assert result.exit_code == 0, result.output
    cfg = SRHMConfig.from_name("A_L2_s2_s0-1_v4_nc4_m4_seed0")
    batch = generate(cfg, "test", 0, 2)
    lines = result.output.splitlines()
    tokens = lines[1].split()[1:]
    assert tokens == ["_" if t == cfg.blank else str(t) for t in batch["tokens"][0]]
    assert lines[0] == f"test[0] label={batch['label'][0]}"
    assert lines[3].split(None, 1)[1] == str(batch["synonyms"][0].tolist())


def test_bad_config_is_a_usage_error_naming_the_bound():
    result = CliRunner().invoke(main, ["info", "A_L2_s2_s0-1_v4_nc40_m4_seed0"])
    assert result.exit_code == 2
    assert "nc*m=160" in result.output and "v**s = 16" in result.output


def test_info_stays_light():
    # srhm info must answer without importing torch, datasets or pyarrow.
    code = (
        "import sys; from click.testing import CliRunner; from srhm_datasets.cli import main; "
        "r = CliRunner().invoke(main, ['info', 'demo']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('torch', 'datasets', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_spec_command_has_help():
    commands = [
        "info",
        "sample",
        "build",
        "verify",
        "publish",
        "train",
        "evaluate",
        "leaderboard",
        "learning-curve",
        "demo",
    ]
    listing = CliRunner().invoke(main, ["--help"]).output
    for name in commands:
        assert name in listing
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage: " in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--n", "0"], "'--n': 0 is not in the range 1<=x<=1000"),
        (["--n", "-1"], "'--n': -1 is not in the range 1<=x<=1000"),
        (["--n", "100000000"], "'--n': 100000000 is not in the range 1<=x<=1000"),
        (["--start", "-1"], "'--start': -1 is not in the range x>=0"),
        (["--start", "12708"], "'--start': 12708: must satisfy 0 <= --start < 12708"),
    ],
)
def test_sample_bounds_its_options_before_generating(args, named, monkeypatch):
    def no_rows(*args, **kwargs):
        raise AssertionError("generated rows for a bad option")

    monkeypatch.setattr(sys.modules["srhm_datasets.generate"], "generate", no_rows)
    result = CliRunner().invoke(main, ["sample", "demo", "--split", "train", *args])  # 12,708 train rows
    assert result.exit_code == 2, result.output
    assert named in result.output
