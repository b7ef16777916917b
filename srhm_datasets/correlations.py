"""Token-token correlations of a config: exact (BP pair marginals) beside sampled (format.md §16.4).

The covariance of the tokens at positions i and j, ``C_ij(t, u) = P(x_i = t, x_j = u) -
P(x_i = t) P(x_j = u)``, is summarised by its root mean square over the v x v token
entries (Cagnetta & Wyart, NeurIPS 2024), and averaged over the pairs (i, j) of one
lowest-common-ancestor level or one distance |i - j|. The exact values come from
``inference.pair_marginals`` with nothing observed (the generative distribution); the
sampled ones from the first P rows of the train split, whose sampling-noise floor is
(v**2 P)**(-1/2).
"""

from __future__ import annotations

import numpy as np

from .config import SRHMConfig, check_config, require_int
from .files import atomic_write
from .generate import generate
from .inference import MAX_BYTES, covariance, lca_level, pair_marginals, rms_tokens
from .tasks import unobserved_id

#: Most anchor positions i (the pairs (i, j) are those of every anchor with every j != i).
MAX_ANCHORS = 64


def anchor_positions(cfg: SRHMConfig, anchors: int = MAX_ANCHORS) -> np.ndarray:
    """Positions i of the pairs measured: every position if d <= anchors, else ``anchors`` evenly spread."""
    anchors = require_int("anchors", anchors, 1, 4096)
    if cfg.d <= anchors:
        return np.arange(cfg.d)
    return np.unique(np.linspace(0, cfg.d - 1, anchors).round().astype(np.int64))


def exact_rms(cfg: SRHMConfig, positions: np.ndarray, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """RMS token covariance [len(positions), d] of each anchor i with every j, exact (BP)."""
    nothing = np.full((1, cfg.d), unobserved_id(cfg.v))
    return np.stack(
        [rms_tokens(covariance(pair_marginals(cfg, nothing, int(i), max_bytes=max_bytes)[0])) for i in positions]
    )


def sampled_rms(cfg: SRHMConfig, positions: np.ndarray, rows: int, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """RMS token covariance [len(positions), d] estimated from train rows 0..rows-1 (block by block)."""
    width = cfg.v + 1
    block = max(1, max_bytes // (16 * cfg.d * width))
    joint = np.zeros((len(positions) * width, cfg.d * width))
    for start in range(0, rows, block):
        tokens = generate(cfg, "train", start, min(rows, start + block))["tokens"].astype(np.int64)
        onehot = np.zeros((tokens.shape[0], cfg.d, width))
        np.put_along_axis(onehot, tokens[..., None], 1.0, axis=-1)
        onehot = onehot.reshape(tokens.shape[0], -1)
        anchor = onehot.reshape(tokens.shape[0], cfg.d, width)[:, positions].reshape(tokens.shape[0], -1)
        joint += anchor.T @ onehot
    joint = (joint / rows).reshape(len(positions), width, cfg.d, width).transpose(0, 2, 1, 3)
    return rms_tokens(covariance(joint))


def correlations(cfg: SRHMConfig, rows: int = 10000, anchors: int = MAX_ANCHORS, max_bytes: int = MAX_BYTES) -> dict:
    """RMS token-token covariance by LCA level and by distance, exact and from ``rows`` sampled rows.

    Returns
    -------
    dict
        ``level`` [L] (1..L), ``exact_by_level``, ``sampled_by_level`` [L];
        ``distance`` [D] (the distances present), ``exact_by_distance``,
        ``sampled_by_distance`` [D]; ``floor`` (v**2 rows)**(-1/2); ``rows``; ``anchors``
        (positions i of the pairs). Means over the pairs (i, j), i an anchor, j != i.

    Raises
    ------
    ValueError
        Naming ``rows`` (1 to the train split's size) or ``anchors``.

    Examples
    --------
    >>> from srhm_datasets.catalog import CATALOG
    >>> out = correlations(CATALOG["demo"], rows=2000)
    >>> out["level"].tolist(), bool(out["exact_by_level"][0] > out["exact_by_level"][1])
    ([1, 2], True)
    """
    check_config(cfg)
    rows = require_int("rows", rows, 1, cfg.split_sizes()["train"], "rows of the train split")
    positions = anchor_positions(cfg, anchors)
    exact, sampled = exact_rms(cfg, positions, max_bytes), sampled_rms(cfg, positions, rows, max_bytes)
    i = np.repeat(positions, cfg.d)
    j = np.tile(np.arange(cfg.d), len(positions))
    keep = i != j
    i, j, exact, sampled = i[keep], j[keep], exact.reshape(-1)[keep], sampled.reshape(-1)[keep]
    levels, distances = lca_level(cfg, i, j), np.abs(i - j)
    by = {}
    for name, key in (("level", levels), ("distance", distances)):
        values = np.unique(key)
        by[name] = values
        by[f"exact_by_{name}"] = np.array([exact[key == x].mean() for x in values])
        by[f"sampled_by_{name}"] = np.array([sampled[key == x].mean() for x in values])
    return {**by, "floor": float((cfg.v**2 * rows) ** -0.5), "rows": rows, "anchors": positions}


def plot_correlations(result: dict, path, title: str = "") -> None:
    """Draw ``correlations``' output as a PNG at ``path``: by level and by distance, exact beside sampled, the floor."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, name in zip(axes, ("level", "distance")):
        ax.plot(result[name], result[f"exact_by_{name}"], marker="o", label="exact (BP)")
        ax.plot(result[name], result[f"sampled_by_{name}"], marker="x", ls="", label=f"sampled, P = {result['rows']}")
        ax.axhline(result["floor"], color="grey", ls="--", lw=1, label="(v^2 P)^(-1/2)")
        ax.set_yscale("log")  # exact zeros (uncorrelated pairs) fall below the lower edge
        ax.set_ylim(bottom=0.1 * min(result["floor"], float(np.min(result[f"sampled_by_{name}"]))))
        ax.set_xscale("log" if name == "distance" else "linear")
        ax.set_xlabel("LCA level" if name == "level" else "distance |i - j|")
        ax.set_ylabel("RMS token covariance")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
