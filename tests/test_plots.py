"""The package's figures (learning curve, leaderboard) leave the caller's matplotlib as it was.

They are drawn on ``matplotlib.figure.Figure`` objects, not through pyplot: a notebook that
runs a learning curve or builds a leaderboard keeps its backend and its open figures.
"""

import matplotlib
import matplotlib.pyplot as plt
import pytest

from srhm_datasets.baselines import learning_curve as lc
from srhm_datasets.evaluation.leaderboard import build_leaderboard
from srhm_datasets.protocol import TrainOptions

from .board_helpers import DEMO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def svg_backend():
    """matplotlib's backend set to svg and one pyplot figure open (a notebook's state); both restored after."""
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    figure = plt.figure()
    yield figure
    plt.close(figure)
    matplotlib.use(before)


def test_learning_curve_plot_leaves_the_callers_matplotlib_alone(tmp_path, svg_backend):
    runs = [{"P": P, "seed": 0, "best_test_error": e, "final_test_error": e} for P, e in ((100, 0.5), (1000, 0.05))]
    summary = lc.curve_summary(TrainOptions(config=DEMO, P=1000), 0.1, runs, 0.1, "best")
    lc.plot_learning_curve(summary, tmp_path / "curve.png")
    assert matplotlib.get_backend() == "svg"
    assert plt.get_fignums() == [svg_backend.number]
    assert (tmp_path / "curve.png").read_bytes()[:8] == PNG_MAGIC


def test_board_figures_leave_the_callers_matplotlib_alone(example_dir, tmp_path, svg_backend):
    build_leaderboard(example_dir, tmp_path / "board")
    assert matplotlib.get_backend() == "svg"
    assert plt.get_fignums() == [svg_backend.number]
    for png in ("pstar_laws.png", f"{DEMO.name}/test_error_vs_P.png", f"{DEMO.name}/sensitivity_cnn_w64.png"):
        assert (tmp_path / "board" / png).read_bytes()[:8] == PNG_MAGIC, png
