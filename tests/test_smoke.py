"""The package imports light and the CLI answers."""

from click.testing import CliRunner

from srhm_datasets.cli import main


def test_info_prints_sizes():
    result = CliRunner().invoke(main, ["info", "fig1"])
    assert result.exit_code == 0, result.output
    assert "7290000" in result.output
