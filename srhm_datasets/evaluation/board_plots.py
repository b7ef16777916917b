"""The leaderboard's figures, written atomically as PNG.

Drawn on ``matplotlib.figure.Figure`` objects, not through pyplot: the caller's backend and
its open figures are left as they were (a notebook keeps showing its own figures).

- ``plot_test_error``: test error vs P (log) of every model on one config, the learning
  curve (mean at equal P) as a line, each file as a dot, the Bayes-optimal limit, the
  P* threshold (0.10 above it, an absolute difference) and the chance error (``board_pstar.p_star_rule``);
- ``plot_sensitivities``: S_{k,l} and D_{k,l} vs P of one model, one panel per layer k,
  one line per level l (mean at equal P);
- ``plot_pstar_laws``: our P* against the paper's laws and points (CNN and LCN).
"""

from __future__ import annotations

import collections
from pathlib import Path

from ..files import atomic_write
from .board_entries import Entry
from .board_pstar import p_star_rule
from .paper_points import LAW_CONSTANT, paper_points


def _figure(figsize: tuple[float, float]):
    """A new figure outside pyplot (its PNG is rendered by Agg whatever the current backend)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _savefig(fig, path: Path, dpi: int) -> None:
    """``fig`` as a PNG at ``path``, written atomically."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


def plot_test_error(path: Path, config: str, task: str, entries: list[Entry], curves: dict, limit: dict | None) -> None:
    """Test error vs P of ``entries`` (all on ``config`` and ``task``); ``curves`` is
    ``board_pstar.curves_and_pstar``'s; ``limit`` the Bayes-optimal figures (or None), drawn with the
    P* threshold above it."""
    fig = _figure((6, 4))
    ax = fig.subplots()
    for model in sorted({e.model for e in entries}):
        pts = [(e.P, e.test_error) for e in entries if e.model == model]
        curve = curves[(config, task, model)]["curve"]
        (line,) = ax.plot([p for p, _ in curve], [v for _, v in curve], marker="o", label=model)
        ax.scatter([p for p, _ in pts], [v for _, v in pts], s=10, color=line.get_color(), alpha=0.5)
    rule = p_star_rule(config, task, limit)
    if limit:
        ax.axhline(limit["expected_error"], color="k", lw=1, label=f"Bayes-optimal {limit['expected_error']:.3f}")
    undefined = "" if rule["defined"] else " (>= chance: P* undefined)"
    ax.axhline(rule["threshold"], color="grey", ls="--", lw=1, label=f"P* threshold {rule['threshold']:.3f}{undefined}")
    ax.axhline(rule["chance"], color="grey", ls=":", lw=1, label=f"chance {rule['chance']:.3f}")
    ax.set_xscale("log")
    ax.set_xlabel("P (training-set size)")
    ax.set_ylabel("test error")
    ax.set_title(f"{config}, task {task}", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _savefig(fig, path, dpi=100)


def plot_sensitivities(path: Path, config: str, model: str, entries: list[Entry]) -> bool:
    """S_{k,l} (top row) and D_{k,l} (bottom) vs P, one column per layer, one line per level.

    Returns False (no file) when no entry of the model has an evaluation with S and D (a probe: a class
    model's, format.md §11).
    """
    evaluated = sorted((e for e in entries if (e.results.get("evaluation") or {}).get("probe")), key=lambda e: e.P)
    if not evaluated:
        return False
    layers: list[str] = []
    for e in evaluated:
        layers += [x for x in e.results["evaluation"]["layers"] if x not in layers]
    L = max(len(v) for e in evaluated for v in e.results["evaluation"]["sensitivity"]["synonym"].values())
    from matplotlib.ticker import NullLocator

    fig = _figure((3 * len(layers) + 1, 5.5))
    axes = fig.subplots(2, len(layers), squeeze=False, sharex=True)
    for row, (kind, letter) in enumerate((("synonym", "S"), ("diffeo", "D"))):
        for col, layer in enumerate(layers):
            ax = axes[row][col]
            for level in range(1, L + 1):
                by_p = collections.defaultdict(list)
                for e in evaluated:
                    vals = e.results["evaluation"]["sensitivity"][kind].get(layer)
                    if vals and vals[level - 1] is not None:
                        by_p[e.P].append(vals[level - 1])
                if by_p:
                    ps = sorted(by_p)
                    ax.plot(ps, [sum(by_p[p]) / len(by_p[p]) for p in ps], marker="o", ms=3, label=f"l={level}")
            if not ax.lines:
                ax.text(0.5, 0.5, "undefined", ha="center", va="center", transform=ax.transAxes)
            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_ylim(bottom=0)
            ax.set_title(f"{letter}_(k,l), k = {layer}", fontsize=8)
            if row == 1:
                ax.set_xlabel("P")
            if ax.lines and col == 0:
                ax.legend(fontsize=7)
    fig.suptitle(f"{model} on {config}", fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.1, top=0.88, wspace=0.3, hspace=0.3)
    _savefig(fig, path, dpi=90)
    return True


def plot_pstar_laws(path: Path, ours: dict[str, list[dict]]) -> None:
    """P* against the paper's laws: CNN (Eq. 4) and LCN (Eq. 3); paper's points in grey.

    ``ours`` is ``board_pstar.our_pstar_points``'s output (arch -> points with "x", "p_star").
    """
    fig = _figure((10, 4.3))
    axes = fig.subplots(1, 2)
    titles = {"cnn": "CNN: x = (s0+1)^2 n_c m^L (Eq. 4)", "lcn": "LCN: x = s^(L/2) (s0+1)^L n_c m^L (Eq. 3)"}
    for ax, arch in zip(axes, ("cnn", "lcn")):
        paper = paper_points(arch)
        ax.scatter(
            [p["x"] for p in paper],
            [p["p_star"] for p in paper],
            s=18,
            color="0.6",
            label=f"paper (Fig. 4{'C' if arch == 'cnn' else 'B'}, read off)",
        )
        mine = ours.get(arch, [])
        if mine:
            ax.scatter(
                [p["x"] for p in mine],
                [p["p_star"] for p in mine],
                s=60,
                marker="*",
                color="C3",
                label="this leaderboard",
                zorder=3,
            )
        xs = [p["x"] for p in paper] + [p["x"] for p in mine]
        lo, hi = min(xs) / 2, max(xs) * 2
        c = LAW_CONSTANT[arch]
        ax.plot([lo, hi], [c * lo, c * hi], "k--", lw=1, label=f"P* = {c:g} x")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("x (paper's law)")
        ax.set_ylabel("P* (test error 0.10)")
        ax.set_title(titles[arch], fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    _savefig(fig, path, dpi=100)
