"""Token-token correlations (format.md §16.4): exact against enumeration, sampled against a direct count."""

import numpy as np
import pytest

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.correlations import anchor_positions, correlations, plot_correlations, sampled_rms
from srhm_datasets.inference import covariance, lca_level, rms_tokens
from tests.enumeration import CONFIGS, space

TOL = 1e-12


def direct_rms(tokens: np.ndarray, v: int) -> np.ndarray:
    """RMS token covariance [d, d] of rows [n, d] by explicit pair counts."""
    n, d = tokens.shape
    out = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            joint = np.zeros((v + 1, v + 1))
            np.add.at(joint, (tokens[:, i], tokens[:, j]), 1.0 / n)
            out[i, j] = rms_tokens(covariance(joint))
    return out


@pytest.mark.parametrize("cfg", [CONFIGS[1], CONFIGS[6], CONFIGS[11]], ids=lambda c: c.name)
def test_exact_correlations_equal_enumeration(cfg):
    rows = min(500, cfg.split_sizes()["train"])
    out = correlations(cfg, rows=rows)
    every = direct_rms(space(cfg)["tokens"].astype(np.int64), cfg.v)
    i, j = np.nonzero(~np.eye(cfg.d, dtype=bool))
    level, distance = lca_level(cfg, i, j), np.abs(i - j)
    for key, name in ((level, "level"), (distance, "distance")):
        expected = [every[i, j][key == x].mean() for x in out[name]]
        np.testing.assert_allclose(out[f"exact_by_{name}"], expected, rtol=0, atol=TOL)
    assert out["floor"] == (cfg.v**2 * rows) ** -0.5


def test_sampled_correlations_are_the_counts_of_the_rows():
    cfg = CONFIGS[7]
    positions = anchor_positions(cfg)
    tokens = generate(cfg, "train", 0, 300)["tokens"].astype(np.int64)
    np.testing.assert_allclose(
        sampled_rms(cfg, positions, 300, max_bytes=1 << 14), direct_rms(tokens, cfg.v)[positions]
    )


def test_sampled_meets_exact_above_the_floor_and_the_floor_below():
    """RHM with m < v (correlated tokens): the covariance falls with the level; sampled rows resolve it
    down to the floor (v**2 P)**(-1/2), and below the floor they measure the floor."""
    cfg = SRHMConfig(L=3, s=2, s0=0, v=6, nc=6, m=3, seed=5)
    out = correlations(cfg, rows=9898)
    exact, sampled, floor = out["exact_by_level"], out["sampled_by_level"], out["floor"]
    assert exact[0] > exact[1] > 2 * floor > floor > exact[2]
    np.testing.assert_allclose(sampled[:2], exact[:2], atol=floor)
    assert 0.5 * floor < sampled[2] < 1.5 * floor


def test_anchor_positions_spread_when_d_is_large():
    cfg = SRHMConfig(L=3, s=2, s0=2, v=4, nc=4, m=4)
    assert len(anchor_positions(cfg, 10)) == 10 and anchor_positions(cfg, 10)[[0, -1]].tolist() == [0, cfg.d - 1]
    assert anchor_positions(CONFIGS[6]).tolist() == list(range(CONFIGS[6].d))


def test_bad_rows_refused():
    with pytest.raises(ValueError, match="invalid parameter rows="):
        correlations(CONFIGS[6], rows=0)


def test_plot_writes_a_png(tmp_path):
    out = correlations(CONFIGS[6], rows=200)
    plot_correlations(out, tmp_path / "c.png", "title")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
