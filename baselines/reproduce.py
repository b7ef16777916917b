"""The paper's figures from the committed baseline results: plots and the Markdown of REPRODUCTION.md.

Usage (from the repository root)::

    python baselines/reproduce.py [--results baselines/results] [--out baselines/figures] > body.md

Reads the sweep folders that ``baselines/collect.py`` wrote (``<sweep>/plan.json``, each
collected job's ``runs/<job>/summary.json`` and ``P<P>/results.json``, ``jobs/<job>.json``)
and draws, with matplotlib's Agg backend, into OUT (each file written atomically; nothing
else in OUT is touched):

- ``pstar_laws.png``: P* against the law x (log-log) for the CNN (Fig. 4C) and the LCN
  (Fig. 4B), sparsity A, s = 2, nc = m = v; the paper's points, its range of P*/x and our
  acceptance band;
- ``eq8.png``: P*_S and P*_D (the P where S_2 = S_{2,1} and D_2 = D_{2,1} fall to the
  paper's thresholds, ``../shared/notes/paper.md`` 3.3) against P*, every CNN and LCN curve;
- ``sensitivities_<arch>_w<width>.png``: S_{k,l} and D_{k,l} against P (mean
  over seeds) of the ``sensitivities`` sweep, P* marked, the paper's large-P values drawn.

It prints Markdown (stdout): the commands, each section's table beside the paper's values,
the acceptance counts of issue 15, the transformer beside the CNN, a width check and the training
time of each sweep. Image links are
relative to OUT's parent (``figures/...`` for the default OUT, beside REPRODUCTION.md).

P* is the package's (``pstar_summary`` over the collected jobs: each curve's P* from its
``summary.json``, per config the geometric mean over the seeds that crossed); P*_S and
P*_D use the same estimate (``protocol.estimate_p_star``: first crossing, linear in log P).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
from pathlib import Path

import click

from srhm_datasets.catalog import release_name
from srhm_datasets.config import SRHMConfig, require
from srhm_datasets.evaluation.paper_points import LAW_CONSTANT, paper_points
from srhm_datasets.files import FolderInUse, atomic_write, folder_lock
from srhm_datasets.protocol import SUMMARY_FILE, estimate_p_star, p_star_spread
from srhm_datasets.results import read_results
from srhm_datasets.sweep.plan import read_plan, read_record, run_dir
from srhm_datasets.sweep.run import pstar_summary

ARCHS = ("cnn", "lcn")
FIGURE = {"cnn": "4C", "lcn": "4B"}
#: The paper's range of P*/x (Figs. 4B, 4C, ``paper.md`` 4.4-4.5) and the acceptance band of issue 15.
PAPER_RANGE = {"cnn": (1.7, 6.3), "lcn": (0.8, 2.6)}
ACCEPT_BAND = {"cnn": (1.0, 6.0), "lcn": (0.5, 3.0)}
#: Sparsity B (Figs. 7, 8): P* / ((s0+1)^L nc m^L) for the LCN, P* / ((s0+1)^2 nc m^L) for the CNN.
SPARSITY_B_RANGE = {"cnn": (3.5, 5.0), "lcn": (8.0, 14.0)}
#: s = 3 (Figs. 10, 13): P*/x; CNN v=4, s0=0: 6e3 / 1024; LCN v=4, s0=1: 4e4 / 1.2e4.
S3_PAPER = {"cnn": 3.3, "lcn": 3.3}
#: Issue 15's minimum counts of configs with a P*.
MIN_CONFIGS = {"cnn": 10, "lcn": 5, "sparsity B": 3, "s = 3": 2}
#: The layer and level of S_2 and D_2 (Eq. 8).
EQ8_LAYER, EQ8_LEVEL = "layer2", 1
KIND_LETTER = {"synonym": "S", "diffeo": "D"}
#: The paper's large-P sensitivities (Figs. 12, 15; v = 8, ours v = 4): (arch, kind, layer, level) -> (low, high).
PAPER_LARGE_P = {
    ("cnn", "synonym", "layer2", 1): (0.2, 0.2),
    ("cnn", "synonym", "output", 1): (0.03, 0.03),
    ("cnn", "synonym", "output", 2): (0.45, 0.45),
    ("lcn", "synonym", "layer1", 1): (0.6, 1.0),
    ("lcn", "synonym", "layer1", 2): (0.6, 1.0),
    ("lcn", "synonym", "layer2", 1): (0.2, 0.2),
    ("lcn", "synonym", "layer2", 2): (0.75, 0.75),
    ("lcn", "synonym", "output", 1): (0.05, 0.05),
    ("lcn", "synonym", "output", 2): (0.5, 0.5),
    ("lcn", "diffeo", "layer2", 1): (0.0, 0.1),
    ("lcn", "diffeo", "output", 1): (0.05, 0.05),
    ("lcn", "diffeo", "output", 2): (0.05, 0.05),
}
SENSITIVITY_SWEEP = "sensitivities"
#: The Bayes-optimal limit rows of the reference board (``srhm optimal --json`` files).
LIMITS = "baselines/optimal/limits"
#: The sweep whose CNN curves the transformer's are set beside (when its own sweep has none).
CNN_SWEEP = "fig4c_cnn_pstar"
WIDTH_CONFIG = "grid_L2_s0-1_v4"


def eq8_thresholds(arch: str, s: int, L: int) -> tuple[float, float]:
    """The paper's (S_2, D_2) thresholds of P*_S and P*_D (``paper.md`` 3.3; Figs. 6, 11, 14)."""
    if arch == "lcn":
        return (0.30 if s == 2 else 0.50), 0.10
    if L >= 3:
        return 0.20, 0.20
    return (0.40 if s == 2 else 0.50), 0.20


# ---------------------------------------------------------------------------------------
# reading the collected results
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class Curve:
    """One collected job: one seed's learning curve (its pstar.json row and its runs, by P)."""

    row: dict  # pstar_summary's "curves" row: job, config, arch, width, lr, seed, P_star, status, bracket
    runs: list[dict]  # results objects, P ascending


@dataclasses.dataclass
class Group:
    """One (sweep, config, arch, width, lr) over its collected seeds: pstar_summary's "groups" row."""

    sweep: str
    cfg: SRHMConfig
    row: dict  # config, arch, width, lr, seeds, crossed, P_star_geomean, P_star_min/max, law_x, P_star_over_law_x
    curves: list[Curve]
    planned: int  # seeds in the sweep's plan (more than len(curves) while some are not collected)

    @property
    def arch(self) -> str:
        return self.row["arch"]

    @property
    def p_star(self) -> float | None:
        return self.row["P_star_geomean"]


@dataclasses.dataclass
class Sweep:
    name: str
    jobs: int  # in the plan
    groups: list[Group]
    records: list[dict]  # the collected jobs' records


def read_sweep(folder: Path) -> Sweep:
    """The collected jobs of one sweep folder, grouped as ``pstar_summary`` groups them."""
    _, jobs = read_plan(folder)
    present = [j for j in jobs if (j.folder(folder) / SUMMARY_FILE).is_file()]
    pstar = pstar_summary(folder, present) if present else {"curves": [], "groups": []}
    configs = {release_name(j.config): j.config for j in present}
    runs = {j.id: [read_results(run_dir(folder, j, P)) for P in j.Ps] for j in present}
    plan_key = lambda j: (release_name(j.config), j.arch, j.width, j.lr)
    planned = collections.Counter(plan_key(j) for j in jobs)
    by_id = {j.id: j for j in jobs}
    groups = []
    for g in pstar["groups"]:
        key = (g["config"], g["arch"], g["width"], g["lr"])
        members = [c for c in pstar["curves"] if (c["config"], c["arch"], c["width"], c["lr"]) == key]
        curves = [Curve(c, runs[c["job"]]) for c in members]
        n = planned[plan_key(by_id[members[0]["job"]])]
        groups.append(Group(folder.name, configs[g["config"]], g, curves, n))
    records = [r for r in (read_record(folder, j) for j in present) if r is not None]
    return Sweep(folder.name, len(jobs), groups, records)


def read_all(results: Path) -> list[Sweep]:
    """Every sweep folder (holding ``plan.json``) under ``results``, by name."""
    return [read_sweep(p.parent) for p in sorted(results.glob("*/plan.json"))]


# ---------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------
def fmt(value, digits: int = 3) -> str:
    """``digits`` significant digits; from 1,000 up as a whole number with thousands separators."""
    if value is None:
        return "-"
    rounded = float(f"{value:.{digits}g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 1000 else f"{rounded:g}"


def seed_p_star(row: dict) -> str:
    """A curve's P* as text: the value, ``> P_max`` (never crossed) or ``< P_min`` (crossed below the range)."""
    if row["status"] == "interpolated":
        return fmt(row["P_star"])
    if row["status"] == "above_range":
        return f"> {row['bracket'][0]:,}"
    if row["status"] == "below_range":
        return f"< {row['bracket'][1]:,}"
    return "-"


def seeds_p_star(g: Group) -> str:
    """Each collected seed's P* (``seed_p_star``), and how many of the plan's seeds were collected when not all."""
    text = "; ".join(seed_p_star(c.row) for c in g.curves)
    return text + (f" ({len(g.curves)} of {g.planned} seeds collected)" if len(g.curves) < g.planned else "")


def sparsity_b_unit(arch: str, cfg: SRHMConfig) -> float:
    """The paper's rescaling of Figs. 7 (LCN: (s0+1)^L nc m^L) and 8 (CNN: (s0+1)^2 nc m^L)."""
    power = cfg.L if arch == "lcn" else 2
    return (cfg.s0 + 1) ** power * cfg.nc * cfg.m**cfg.L


def in_band(value: float | None, band: tuple[float, float]) -> bool:
    return value is not None and band[0] <= value <= band[1]


def layer_value(results: dict, kind: str, layer: str, level: int) -> float | None:
    """S or D (``kind``) of ``layer`` at ``level`` from a run's evaluation; None where undefined."""
    vals = results["evaluation"]["sensitivity"][kind].get(layer)
    return None if not vals or len(vals) < level else vals[level - 1]


def crossing(curve: Curve, kind: str, threshold: float, layer: str = EQ8_LAYER) -> dict:
    """Where S or D (``kind``) of ``layer`` at level 1 (S_2, D_2 for layer 2) of one curve first falls to
    ``threshold`` (``estimate_p_star``); status ``undefined`` when the quantity is undefined at some P
    (e.g. D with one placement, s0 = 0)."""
    Ps = [r["P"] for r in curve.runs]
    values = [layer_value(r, kind, layer, EQ8_LEVEL) for r in curve.runs]
    if any(v is None for v in values):
        return {"P_star": None, "status": "undefined", "bracket": None}
    return estimate_p_star(Ps, values, threshold)


def eq8_row(group: Group, layer: str = EQ8_LAYER, arch: str | None = None) -> dict:
    """P*, P*_S and P*_D of a group (geometric means over its seeds' crossings of ``layer``'s S and D at
    level 1, at the paper's thresholds of ``arch``, default the group's) and the ratios to P*."""
    cfg = group.cfg
    thresholds = dict(zip(("synonym", "diffeo"), eq8_thresholds(arch or group.arch, cfg.s, cfg.L)))
    row = {"group": group, "thresholds": thresholds}
    for kind, threshold in thresholds.items():
        found = [crossing(c, kind, threshold, layer) for c in group.curves]
        spread = p_star_spread([f["P_star"] for f in found])
        undefined = any(f["status"] == "undefined" for f in found)
        ratio = None if spread["geomean"] is None or group.p_star is None else spread["geomean"] / group.p_star
        text = "undefined" if undefined else crossing_text(found, spread, lowest(group.curves, kind, layer))
        row[kind] = {"P_star": spread["geomean"], "undefined": undefined, "ratio": ratio, "text": text}
    return row


def lowest(curves: list[Curve], kind: str, layer: str = EQ8_LAYER) -> float:
    """The lowest S or D (``kind``) of ``layer`` at level 1 of any run of ``curves`` (all defined: see
    ``crossing``)."""
    return min(layer_value(r, kind, layer, EQ8_LEVEL) for c in curves for r in c.runs)


def crossing_text(found: list[dict], spread: dict, low: float) -> str:
    """The geometric mean over the seeds (with ``(k/n)`` when only k crossed), else ``< P_min`` when every
    seed was below the threshold at the smallest P, else ``not reached (min <low>)``."""
    if spread["geomean"] is not None:
        return seeds_text(spread["geomean"], spread["crossed"], len(found))
    if found and all(f["status"] == "below_range" for f in found):
        return f"< {found[0]['bracket'][1]:,}"
    return f"not reached (min {fmt(low, 2)})"


def seeds_text(value: float | None, crossed: int, n: int) -> str:
    """A mean over the seeds that crossed, with ``(k/n)`` when only k of the n seeds did."""
    return fmt(value) + (f" ({crossed}/{n})" if crossed < n else "")


def group_p_star_text(g: Group) -> str:
    return seeds_text(g.p_star, g.row["crossed"], len(g.curves))


# ---------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------
def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    """``fig`` as a PNG at ``path``, written atomically, then closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write(path, buf.getvalue())
    pyplot().close(fig)


def loglog(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Log axes without minor tick labels, the labels, the title, and the legend when something is labelled."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)


def plot_pstar_laws(groups: dict[str, list[Group]], path: Path) -> None:
    """P* against x for the CNN and the LCN: ours (by L, seed range as bars), the paper's points, its
    range of P*/x (shaded) and the acceptance band (dashed)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, arch in zip(axes, ARCHS):
        paper = paper_points(arch)
        ax.scatter([p["x"] for p in paper], [p["p_star"] for p in paper], s=16, color="0.3", label="paper (read off)")
        xs = [p["x"] for p in paper]
        for L, marker in ((2, "o"), (3, "s")):
            mine = [g for g in groups[arch] if g.cfg.L == L and g.p_star is not None]
            if mine:
                x = [g.row["law_x"] for g in mine]
                y = [g.p_star for g in mine]
                err = [[p - g.row["P_star_min"] for g, p in zip(mine, y)]]
                err.append([g.row["P_star_max"] - p for g, p in zip(mine, y)])
                ax.errorbar(x, y, yerr=err, fmt=marker, ms=6, color=f"C{L - 2}", label=f"ours, L = {L}", zorder=3)
                xs += x
        lo, hi = min(xs) / 2, max(xs) * 2
        paper_lo, paper_hi = PAPER_RANGE[arch]
        ax.fill_between(
            [lo, hi],
            [paper_lo * lo, paper_lo * hi],
            [paper_hi * lo, paper_hi * hi],
            color="0.9",
            zorder=0,
            label=f"paper's range {paper_lo:g}-{paper_hi:g} x",
        )
        for c in ACCEPT_BAND[arch]:
            ax.plot([lo, hi], [c * lo, c * hi], "k--", lw=0.8)
        ax.plot([], [], "k--", lw=0.8, label="acceptance {:g}-{:g} x".format(*ACCEPT_BAND[arch]))
        c = LAW_CONSTANT[arch]
        ax.plot([lo, hi], [c * lo, c * hi], color="C3", lw=0.8, label=f"paper's fit P* = {c:g} x")
        loglog(ax, "x (the paper's law)", "P* (10 % test error)", f"{arch.upper()} (Fig. {FIGURE[arch]})")
    fig.tight_layout()
    save(fig, path)


def plot_eq8(rows: list[dict], path: Path) -> None:
    """P*_S (circles) and P*_D (triangles) against P*, per network, with y = x and the factor-2 lines."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, arch in zip(axes, ARCHS):
        mine = [r for r in rows if r["group"].arch == arch and r["group"].p_star is not None]
        xs = []
        for kind, marker in (("synonym", "o"), ("diffeo", "^")):
            pts = [(r["group"].p_star, r[kind]["P_star"]) for r in mine if r[kind]["P_star"] is not None]
            if pts:
                ax.scatter(*zip(*pts), marker=marker, s=30, label=f"P*_{KIND_LETTER[kind]}")
                xs += [v for p in pts for v in p]
        if xs:
            lo, hi = min(xs) / 2, max(xs) * 2
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="y = x")
            for f in (0.5, 2):
                ax.plot([lo, hi], [f * lo, f * hi], "k:", lw=0.8)
            ax.plot([], [], "k:", lw=0.8, label="factor 2")
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
        else:
            ax.text(0.5, 0.5, "no curve with P*, P*_S or P*_D", ha="center", va="center", transform=ax.transAxes)
        loglog(ax, "P* (10 % test error)", "P*_S, P*_D", f"{arch.upper()}: Eq. 8")
    fig.tight_layout()
    save(fig, path)


def mean_by_p(curves: list[Curve], kind: str, layer: str, level: int) -> list[tuple[int, float]]:
    """(P, mean over seeds) of S or D at ``layer`` and ``level``, P ascending (undefined values skipped)."""
    by_p = collections.defaultdict(list)
    for c in curves:
        for r in c.runs:
            v = layer_value(r, kind, layer, level)
            if v is not None:
                by_p[r["P"]].append(v)
    return [(p, sum(v) / len(v)) for p, v in sorted(by_p.items())]


def layers_of(group: Group) -> list[str]:
    return group.curves[0].runs[0]["evaluation"]["layers"]


def plot_sensitivities(group: Group, path: Path) -> None:
    """S_{k,l} (top) and D_{k,l} (bottom) against P, one column per layer, one line per level; P* and
    the paper's large-P values (bands at the right edge) marked."""
    plt = pyplot()
    layers = layers_of(group)
    fig, axes = plt.subplots(2, len(layers), figsize=(3.4 * len(layers), 6), squeeze=False, sharex=True)
    for i, kind in enumerate(KIND_LETTER):
        for j, layer in enumerate(layers):
            ax = axes[i][j]
            for level in range(1, group.cfg.L + 1):
                pts = mean_by_p(group.curves, kind, layer, level)
                if not pts:
                    continue
                (line,) = ax.plot(*zip(*pts), marker="o", ms=3, label=f"l = {level}")
                lo, hi = PAPER_LARGE_P.get((group.arch, kind, layer, level), (None, None))
                if lo is not None:
                    ax.axhspan(lo - 0.01, hi + 0.01, xmin=0.85, color=line.get_color(), alpha=0.3)
            if group.p_star is not None:
                ax.axvline(group.p_star, color="k", ls="--", lw=0.8, label=f"P* = {group.p_star:.3g}")
            ax.set_xscale("log")
            ax.set_ylim(0, 1.1)
            ax.set_title(f"{KIND_LETTER[kind]}_(k,l), k = {layer}", fontsize=9)
            if i == 1:
                ax.set_xlabel("P")
            if j == 0:
                ax.legend(fontsize=7)
    fig.suptitle(
        f"{group.arch.upper()} w{group.row['width']} on {group.row['config']} (mean over {len(group.curves)} seed(s)); "
        "shaded at the right: the paper's large-P values (v = 8)",
        fontsize=9,
    )
    fig.tight_layout()
    save(fig, path)


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------
def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]


def paper_ratio(group: Group) -> str:
    """The paper's P*/x for the same (v, L, s0), when the group is of Figs. 4B, 4C and the figure has that point."""
    cfg = group.cfg
    if not is_law_config(group):
        return ""
    for p in paper_points(group.arch):
        if (p["v"], p["L"], p["s0"]) == (cfg.v, cfg.L, cfg.s0):
            return fmt(p["p_star"] / p["x"], 2)
    return ""


def pstar_rows(groups: list[Group], unit, band: tuple[float, float] | None, paper: bool = True) -> list[list]:
    """Table rows: sweep, config, L, s0, v, width, each seed's P*, geometric mean, unit, ratio, the paper's
    P*/x for the point (when ``paper``), and whether the ratio is in ``band`` (when given)."""
    rows = []
    for g in groups:
        u = unit(g)
        ratio = None if g.p_star is None else g.p_star / u
        seeds = seeds_p_star(g)
        cfg = g.cfg
        inside = "" if ratio is None or band is None else ("yes" if in_band(ratio, band) else "**no**")
        rows.append(
            [
                g.sweep,
                g.row["config"],
                cfg.L,
                cfg.s0,
                cfg.v,
                g.row["width"],
                seeds,
                group_p_star_text(g),
                fmt(u, 4),
                fmt(ratio),
                *([paper_ratio(g)] if paper else []),
                *([inside] if band else []),
            ]
        )
    return rows


def acceptance(groups: list[Group], minimum: int, need_l3: bool = False, unit=None, band=None) -> str:
    """Distinct configs with a P* against issue 15's minimum (and one at L = 3 when ``need_l3``) and, with a
    ``band``, how many curves have P*/``unit`` inside it (all must)."""
    crossed = {g.row["config"] for g in groups if g.p_star is not None}
    l3 = {g.row["config"] for g in groups if g.p_star is not None and g.cfg.L == 3}
    met = len(crossed) >= minimum and (bool(l3) or not need_l3)
    text = f"{len(crossed)} config(s) with a P*" + (f", {len(l3)} at L = 3" if need_l3 else "")
    text += f" (acceptance: at least {minimum}{', one at L = 3' if need_l3 else ''})"
    if band is not None:
        ratios = [g.p_star / unit(g) for g in groups if g.p_star is not None]
        inside = sum(in_band(r, band) for r in ratios)
        met = met and inside == len(ratios)
        text += f"; {inside}/{len(ratios)} within [{band[0]:g}, {band[1]:g}]"
    return text + f": **{'met' if met else 'not met'}**."


PSTAR_HEADER = ["sweep", "config", "L", "s0", "v", "width", "P* per seed", "P* (geo. mean)"]


def section_commands(sweeps: list[Sweep], results: Path, out: Path) -> list[str]:
    """How the results and this page were made: one ``srhm sweep`` per sweep folder, then collect,
    leaderboard, reproduce."""
    lines = [f"srhm sweep baselines/cpu/{s.name}.yaml --out baselines/runs/{s.name}" for s in sweeps]
    lines += [
        f"python baselines/collect.py --runs baselines/runs --out {results}",
        f"srhm leaderboard {results} --optimal {LIMITS} --out baselines/leaderboard",
        f"python baselines/reproduce.py --results {results} --out {out}",
    ]
    return ["## Commands", "", "```bash", *lines, "```", ""]


def section_laws(groups: dict[str, list[Group]], figure: str) -> list[str]:
    md = ["## P* against the paper's laws (Figs. 4B, 4C)", "", f"![P* against x]({figure})", ""]
    for arch in ARCHS:
        band, (plo, phi) = ACCEPT_BAND[arch], PAPER_RANGE[arch]
        unit = lambda g: g.row["law_x"]
        md += [f"### {arch.upper()} (Fig. {FIGURE[arch]}), sparsity A, s = 2: paper P*/x {plo:g}-{phi:g}", ""]
        header = PSTAR_HEADER + ["x", "P*/x", "paper P*/x", f"in [{band[0]:g}, {band[1]:g}]"]
        md += table(header, pstar_rows(groups[arch], unit, band))
        md += ["", acceptance(groups[arch], MIN_CONFIGS[arch], need_l3=arch == "cnn", unit=unit, band=band), ""]
    return md


def section_other(title: str, groups: list[Group], unit, unit_name, paper: dict, minimum: int) -> list[str]:
    """A P* table per network for sparsity B or s = 3, beside the paper's value (a number) or range (a
    pair); issue 15 asks for a count of configs with a P* (no band)."""
    md = [f"## {title}", ""]
    if not groups:
        return md + ["No curve collected yet.", ""]
    for arch in ARCHS:
        mine = [g for g in groups if g.arch == arch]
        if not mine:
            continue
        ref = paper[arch]
        band = ref if isinstance(ref, tuple) else None
        paper_text = f"{ref[0]:g}-{ref[1]:g}" if band else f"~{ref:g}"
        md += [f"### {arch.upper()}: P* / {unit_name(arch)}; paper {paper_text}", ""]
        header = PSTAR_HEADER + ["unit", "ratio"] + (["in the paper's range"] if band else [])
        md += table(header, pstar_rows(mine, unit, band, paper=False))
        md += ["", acceptance(mine, minimum), ""]
    return md


def section_eq8(rows: list[dict], figure: str) -> list[str]:
    md = ["## Eq. 8: P*_S and P*_D against P* (Figs. 6, 11, 14)", "", f"![P*_S and P*_D against P*]({figure})", ""]
    md += [
        "P*_S, P*_D: the P where S_2 = S_{2,1} and D_2 = D_{2,1} (layer 2, level 1) first fall to the paper's "
        "thresholds (`paper.md` 3.3), interpolated as P*; per config the geometric mean over the seeds that "
        "crossed (k/n: only k of n seeds crossed). Ratio = P*_S / P* (P*_D / P*). A curve here is one (sweep, "
        "config, network) over its seeds; D is undefined where a node has one placement (s0 = 0).",
        "",
    ]
    body = []
    for r in rows:
        g, s, d = r["group"], r["synonym"], r["diffeo"]
        th = r["thresholds"]
        body.append(
            [
                g.sweep,
                g.row["config"],
                g.arch,
                g.row["width"],
                f"{th['synonym']:g} / {th['diffeo']:g}",
                group_p_star_text(g),
                s["text"],
                fmt(s["ratio"], 2),
                d["text"],
                fmt(d["ratio"], 2),
            ]
        )
    md += table(["sweep", "config", "arch", "width", "thresholds S / D", "P*", "P*_S", "ratio", "P*_D", "ratio"], body)
    md.append("")
    for kind in KIND_LETTER:
        usable = [r for r in rows if r["group"].p_star is not None and not r[kind]["undefined"]]
        within = [r for r in usable if r[kind]["ratio"] is not None and 0.5 <= r[kind]["ratio"] <= 2]
        share = 100 * len(within) / len(usable) if usable else 0.0
        md.append(
            f"- P*_{KIND_LETTER[kind]} within a factor 2 of P*: {len(within)}/{len(usable)} curves with a P* "
            f"({share:.0f} %; target >= 80 %: **{'met' if usable and share >= 80 else 'not met'}**)."
        )
    return md + [""]


def task_of(g: Group) -> str:
    """The task of a group's runs (``training.task``; absent: class)."""
    return g.curves[0].runs[0]["training"].get("task", "class")


def last_block(g: Group) -> str:
    """The transformer's last hidden block (``blocks.<depth-1>``), whose S and D play S_2 and D_2."""
    return f"blocks.{g.curves[0].runs[0]['model']['depth'] - 1}"


def section_transformer(transformers: list[Group], cnns: list[Group]) -> list[str]:
    """The transformer's class curves beside the CNN's on the same configs: P*, the ratio, and P*_S and
    P*_D of its last block at the CNN's thresholds (Eq. 8)."""
    md = ["## The transformer beside the CNN (beyond the paper)", ""]
    if not transformers:
        return md + ["No transformer curve of the class task is collected.", ""]
    md += [
        f"Class task. CNN P*: the geometric mean over the seeds of the CNN's curve on the same config in the "
        f"same sweep, else in `{CNN_SWEEP}` (width 128). P*_S, P*_D: "
        "where S and D of the transformer's last block at level 1 (its S_2, D_2: the block that sees whole "
        "rows, as the CNN's layer 2 at L = 2) first fall to the CNN's thresholds of Eq. 8 for the same s and L; "
        "per config the geometric mean over the seeds that crossed (k/n); ratio to the transformer's P*. "
        "S_out,1 and D_out,1: the output's at the largest P (mean over seeds).",
        "",
    ]
    cnn = {(g.sweep, g.row["config"]): g for g in cnns if g.arch == "cnn"}
    body = []
    for g in transformers:
        ref = cnn.get((g.sweep, g.row["config"]), cnn.get((CNN_SWEEP, g.row["config"])))
        row = eq8_row(g, last_block(g), "cnn")
        P_max = max(r["P"] for c in g.curves for r in c.runs)
        if ref is None or ref.p_star is None:
            ratio = "-"
        else:
            ratio = fmt(g.p_star / ref.p_star, 2) if g.p_star is not None else f"> {fmt(P_max / ref.p_star, 2)}"
        at_max = [c.runs[-1] for c in g.curves]
        out = {k: [layer_value(r, k, "output", 1) for r in at_max] for k in KIND_LETTER}
        out = {k: None if None in v else sum(v) / len(v) for k, v in out.items()}
        body.append(
            [
                g.row["config"],
                "-" if ref is None else group_p_star_text(ref),
                seeds_p_star(g),
                group_p_star_text(g) if g.p_star is not None else f"> {P_max:,}",
                ratio,
                row["synonym"]["text"],
                fmt(row["synonym"]["ratio"], 2),
                row["diffeo"]["text"],
                fmt(row["diffeo"]["ratio"], 2),
                f"{fmt(out['synonym'], 2)} / {fmt(out['diffeo'], 2)}",
            ]
        )
    header = ["config", "CNN P*", "transformer P* per seed", "P*", "P* / CNN P*", "P*_S", "ratio", "P*_D", "ratio"]
    md += table([*header, "S_out,1 / D_out,1 at P_max"], body)
    return md + [""]


def sensitivity_figure(g: Group) -> str:
    """The file name of a sensitivities figure: one per network and width."""
    return f"sensitivities_{g.arch}_w{g.row['width']}.png"


def section_sensitivities(groups: list[Group], figures: dict[str, str]) -> list[str]:
    md = ["## Sensitivities against P (Figs. 12, 15)", ""]
    if not groups:
        return md + [f"No curve of the `{SENSITIVITY_SWEEP}` sweep collected yet.", ""]
    for g in groups:
        md += [f"![{g.arch} sensitivities, width {g.row['width']}]({figures[sensitivity_figure(g)]})", ""]
        body = []
        for kind in KIND_LETTER:
            for layer in layers_of(g):
                for level in range(1, g.cfg.L + 1):
                    pts = mean_by_p(g.curves, kind, layer, level)
                    paper = PAPER_LARGE_P.get((g.arch, kind, layer, level))
                    ref = "" if paper is None else fmt(paper[0], 2) + ("" if paper[0] == paper[1] else f"-{paper[1]:g}")
                    body.append(
                        [
                            f"{KIND_LETTER[kind]}_({layer},{level})",
                            fmt(pts[0][1], 2) if pts else "-",
                            fmt(pts[-1][1], 2) if pts else "-",
                            ref,
                        ]
                    )
        Ps = [r["P"] for r in g.curves[0].runs]
        md += [f"### {g.arch.upper()} w{g.row['width']} on {g.row['config']}: P* = {fmt(g.p_star)}", ""]
        md += table(["quantity", f"ours at P = {Ps[0]}", f"ours at P = {Ps[-1]}", "paper, large P (v = 8)"], body)
        md.append("")
    return md


def section_width(groups: list[Group]) -> list[str]:
    mine = sorted((g for g in groups if g.row["config"] == WIDTH_CONFIG), key=lambda g: (g.arch, g.row["width"]))
    md = [f"## Width: P* of {WIDTH_CONFIG} in every sweep that trains it", ""]
    if not mine:
        return md + ["No curve collected yet.", ""]
    body = [
        [
            g.arch,
            g.row["width"],
            g.sweep,
            seeds_p_star(g),
            fmt(g.p_star),
            fmt(g.row["P_star_over_law_x"]),
        ]
        for g in mine
    ]
    return md + table(["arch", "width", "sweep", "P* per seed", "P* (geo. mean)", "P*/x"], body) + [""]


def training_time(sweep: Sweep) -> float:
    """Seconds of training of the collected runs: per group of runs trained together, its longest member."""
    longest: dict[tuple, float] = {}
    for g in sweep.groups:
        for c in g.curves:
            for r in c.runs:
                t = r["training"]
                members = tuple((m["P"], m["seed"]) for m in t.get("group", {}).get("members", [])) or (r["P"],)
                key = (c.row["job"], members)
                longest[key] = max(longest.get(key, 0.0), t["wall_time_s"])
    return sum(longest.values())


def section_times(sweeps: list[Sweep]) -> list[str]:
    md = ["## Wall time", ""]
    body = []
    for s in sweeps:
        n_runs = sum(len(c.runs) for g in s.groups for c in g.curves)
        starts = sorted(a["started"] for r in s.records for a in r.get("attempts", []))
        jobs = sum(len(g.curves) for g in s.groups)
        first, last = (starts[0], starts[-1]) if starts else ("-", "-")
        body.append([s.name, f"{jobs}/{s.jobs}", n_runs, len(starts), first, last, f"{training_time(s) / 3600:.2f}"])
    header = ["sweep", "jobs collected", "runs", "attempts", "first attempt", "last attempt", "training (h)"]
    md += table(header, body)
    return md + [
        "",
        "Training: per group of runs trained together (one stacked model), its longest member's "
        "`training.wall_time_s`, summed (the evaluation is not included). Attempts: those in the job records "
        "(more attempts than jobs: the sweep was resumed); the local pool records every job's attempt when "
        "`srhm sweep` starts, so the elapsed time is the one measured around `srhm sweep` itself.",
        "",
    ]


# ---------------------------------------------------------------------------------------
# the whole report
# ---------------------------------------------------------------------------------------
def is_law_config(g: Group) -> bool:
    """Sparsity A, s = 2, nc = m = v: the configs of Figs. 4B and 4C."""
    cfg = g.cfg
    return cfg.sparsity == "A" and cfg.s == 2 and cfg.nc == cfg.v == cfg.m


def reproduce(results: Path, out: Path) -> str:
    """Draw the figures into ``out`` and return the Markdown (module docstring)."""
    require(results.is_dir(), "results", str(results), "an existing folder of collected sweeps")
    require(not out.exists() or out.is_dir(), "out", str(out), "a folder (or a path to create)")
    sweeps = read_all(results)
    require(bool(sweeps), "results", str(results), "a folder holding sweep folders (<sweep>/plan.json)")
    groups = [g for s in sweeps for g in s.groups if g.arch in ARCHS]
    link = lambda name: f"{Path(os.path.abspath(out)).name}/{name}"  # OUT = "." or "..": the folder's own name
    laws = {arch: [g for g in groups if g.arch == arch and is_law_config(g)] for arch in ARCHS}
    plot_pstar_laws(laws, out / "pstar_laws.png")
    eq8 = [eq8_row(g) for g in groups]
    plot_eq8(eq8, out / "eq8.png")
    sens = [g for g in groups if g.sweep == SENSITIVITY_SWEEP]
    for g in sens:
        plot_sensitivities(g, out / sensitivity_figure(g))
    md = ["# Reproduction of the SRHM paper's results (generated by `baselines/reproduce.py`)", ""]
    md += section_commands(sweeps, results, out)
    md += section_laws(laws, link("pstar_laws.png"))
    b_unit = lambda g: sparsity_b_unit(g.arch, g.cfg)
    b_name = lambda arch: "((s0+1)^L nc m^L)" if arch == "lcn" else "((s0+1)^2 nc m^L)"
    md += section_other(
        "Sparsity B (Figs. 7, 8)",
        [g for g in groups if g.cfg.sparsity == "B"],
        b_unit,
        b_name,
        SPARSITY_B_RANGE,
        MIN_CONFIGS["sparsity B"],
    )
    md += section_other(
        "s = 3 (Figs. 10, 13)",
        [g for g in groups if g.cfg.s == 3],
        lambda g: g.row["law_x"],
        lambda arch: "x",
        S3_PAPER,
        MIN_CONFIGS["s = 3"],
    )
    md += section_eq8(eq8, link("eq8.png"))
    md += section_sensitivities(sens, {sensitivity_figure(g): link(sensitivity_figure(g)) for g in sens})
    transformers = [g for s in sweeps for g in s.groups if g.arch == "transformer" and task_of(g) == "class"]
    md += section_transformer(transformers, groups)
    md += section_width(groups)
    md += section_times(sweeps)
    return "\n".join(md)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--results",
    default="baselines/results",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The collected sweeps (baselines/collect.py --out).",
)
@click.option(
    "--out",
    default="baselines/figures",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where the figures go (PNG); the Markdown links them relative to its parent.",
)
def main(results: Path, out: Path) -> None:
    """Draw the paper's figures from the collected baseline results into --out and print the Markdown of
    baselines/REPRODUCTION.md: P* against the laws, sparsity B, s = 3, Eq. 8, sensitivities, width, wall time."""
    try:
        with folder_lock(out):  # one writer of --out at a time
            text = reproduce(results, out)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    except (FolderInUse, OSError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(text)


if __name__ == "__main__":
    main()
