"""``srhm leaderboard``: validate results files, rank them per config, write Markdown, HTML, plots.

Input: every ``*.json`` file under RESULTS_DIR (hidden folders and the output folder
skipped). A file enters the leaderboard only if

1. it parses (no NaN or infinity) and validates against the results schema
   (``srhm_datasets.results``): runs of ``srhm train`` and outside submissions
   (``srhm evaluate --factory``, no ``training`` object) alike, ranked side by side;
2. its ``dataset.config`` resolves to a config, its ``dataset.parameters`` are that
   config's, and its ``dataset.rules_hash`` equals the hash of that config's rules
   (``hashing.rules_hash(sample_rules(cfg))``): results on another task instance are
   never ranked together; 1 <= ``P`` <= the config's train split size;
3. its ``dataset.revision`` (and ``resolved_commit`` when both sides have one) is the
   config's reference revision: the one given with ``--revision``, else the most common
   among the config's files (ties: a named revision over none, then the greatest name);
   likewise its ``dataset.train_content_hash``, when not null, is the most common
   non-null one among the config's remaining files (the same training rows);
4. its ``evaluation`` (if any) fits the config: L values per layer, and ``undefined``
   exactly when m = 1 (synonym) or K = 1 (diffeo);
5. its ``evaluation`` (if any) was measured on the config's whole splits: it must have
   ``probe.num_points`` = the probe split size and ``num_test`` = the test split size
   (the strict rule: every ranked file is measured on the same points, whatever else is
   in RESULTS_DIR; ``srhm evaluate`` without ``--num-probe``/``--num-test`` does this).
   A run without an evaluation is ranked by its ``best_test_error`` (on
   ``training.num_test`` rows, the whole test split by default) and shows no S/D.

Others are rejected, each with a printed reason. Output, per config, ``OUT/<config>/``:
``leaderboard.md``, ``leaderboard.html``, ``test_error_vs_P.png``,
``sensitivity_<model>.png`` (S_{k,l} and D_{k,l} vs P, one panel per layer, one line per
level); at the top: ``index.md``, ``index.html``, ``pstar_laws.png`` (our P* against the
paper's laws and points) and ``leaderboard.json`` (everything in machine form).

Ranking within a config: by P (ascending, one table per P), then test error, then
S_out and D_out (the output layer's S_{out,1}, D_{out,1}, level 1 = the input-level
tuples as in the paper's Fig. 1; undefined or missing ranks last), then model name. The
test error of a file is ``evaluation.test_error`` when present, else
``best_test_error`` (the error of the checkpoint ``srhm train`` keeps).

A model is ``model.name`` if given, else ``<arch> w<width>`` followed by the training
hyperparameters that make a variant when they differ from the protocol's defaults
(``lr=`` when not ``default_lr(arch, cfg)``, ``norm=channels``, ``bias``,
``enc=onehot``); a run trained with ``--shuffle-labels`` is a control, labelled
``... (shuffled labels)``. A model with at least two P values on a config has a
learning curve (controls and variants never share one with the real runs); its P* is
the P at which the test error (mean over files at equal P) first reaches 10 %,
interpolated linearly in log P between the two P around the crossing (``None`` if never
reached; an upper bound when the smallest P is already below). Controls get no P*.

Every output file is written atomically (``results.atomic_write``); the sensitivity plot
of each model gets its own file name even when two names reduce to the same slug.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import html
import json
import math
import os
import re
from pathlib import Path

from ..results import atomic_write
from .paper_points import EPSILON_STAR, LAW_CONSTANT, law_x, paper_points
from .sensitivity import undefined_kinds

#: The level used for the S_out / D_out columns (l = 1: input-level tuples, as Fig. 1).
RANK_LEVEL = 1


@dataclasses.dataclass
class Entry:
    """One accepted results file."""

    path: str
    results: dict
    config: str  # canonical config name
    P: int
    model: str  # display name / learning-curve key
    arch: str
    test_error: float
    s_out: float | None
    d_out: float | None
    evaluated: bool = True
    control: bool = False  # trained on shuffled labels

    def sort_key(self) -> tuple:
        inf = math.inf
        return (
            self.P,
            self.test_error,
            inf if self.s_out is None else self.s_out,
            inf if self.d_out is None else self.d_out,
            self.model,
            self.path,
        )


@dataclasses.dataclass
class Rejection:
    path: str
    reason: str


# ---- reading and validating -------------------------------------------------------------


def find_results(results_dir: Path, exclude: Path | None = None) -> list[Path]:
    """``*.json`` files under results_dir, sorted, skipping hidden folders and ``exclude``."""
    found = []
    for root, dirs, files in os.walk(results_dir):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (exclude is None or (root_path / d).resolve() != exclude)
        )
        found += [root_path / f for f in sorted(files) if f.endswith(".json") and not f.startswith(".")]
    return found


#: Label appended to the model of a run trained on shuffled labels (a control).
CONTROL = "(shuffled labels)"


def is_control(results: dict) -> bool:
    """True for a ``srhm train --shuffle-labels`` run."""
    return bool((results.get("training") or {}).get("shuffle_labels"))


def _variant(results: dict, cfg) -> list[str]:
    """The training hyperparameters of a run that differ from the protocol's defaults."""
    from ..baselines.train import default_lr

    training, model = results.get("training"), results.get("model") or {}
    if not training:
        return []
    parts = []
    arch, lr = model.get("arch"), training.get("lr")
    if cfg is not None and lr is not None and arch in ("cnn", "lcn", "fcn") and not math.isclose(lr, default_lr(arch, cfg)):
        parts.append(f"lr={lr:g}")
    if model.get("norm", "fan_in") != "fan_in":
        parts.append(f"norm={model['norm']}")
    if model.get("bias"):
        parts.append("bias")
    if training.get("encoding", "whiten") != "whiten":
        parts.append(f"enc={training['encoding']}")
    return parts


def model_name(results: dict, cfg=None) -> str:
    """The model's display name and learning-curve key (see the module docstring).

    ``model.name`` if given, else ``<arch> w<width>`` plus the non-default
    hyperparameters (``cfg``, the config, decides the default lr); `` (shuffled labels)``
    is appended for a control run.
    """
    model = results.get("model") or {}
    if model.get("name"):
        name = str(model["name"])
    else:
        width = model.get("width")
        name = " ".join([f"{model.get('arch', '?')}" + (f" w{width}" if width is not None else "")] + _variant(results, cfg))
    return f"{name} {CONTROL}" if is_control(results) else name


def file_test_error(results: dict) -> float:
    """``evaluation.test_error`` (the checkpoint's, whole test split) if present, else ``best_test_error``
    (the checkpoint ``srhm train`` keeps is the one with the best test error)."""
    ev = results.get("evaluation")
    if ev and ev.get("test_error") is not None:
        return float(ev["test_error"])
    return float(results["best_test_error"])


def _output_value(results: dict, kind: str) -> float | None:
    ev = results.get("evaluation") or {}
    vals = ((ev.get("sensitivity") or {}).get(kind) or {}).get("output")
    if not vals or len(vals) < RANK_LEVEL:
        return None
    return vals[RANK_LEVEL - 1]


#: Reason given for JSON files that are not results files (listed, not rejected).
IGNORED = "ignored"


def is_results_candidate(path: Path, obj) -> bool:
    """A ``results.json``, or any JSON object declaring ``format.name == "srhm-results"``."""
    if path.name == "results.json":
        return True
    fmt = obj.get("format") if isinstance(obj, dict) else None
    return isinstance(fmt, dict) and fmt.get("name") == "srhm-results"


def _check_file(path: Path) -> tuple[Entry | None, str | None]:
    """An Entry, or the reason the file is rejected (revision consistency is checked later)."""
    from ..catalog import resolve
    from ..hashing import rules_hash
    from ..results import loads_results, validate_results
    from ..rules import sample_rules

    try:
        results = loads_results(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:  # JSONDecodeError, NaN / Infinity
        return None, f"not valid JSON ({err})"
    if not is_results_candidate(path, results):
        return None, IGNORED
    try:
        validate_results(results)
    except Exception as err:  # the schema's message says which field is wrong
        return None, f"fails the results schema: {_one_line(err)}"
    try:
        cfg = resolve(results["dataset"]["config"])
    except ValueError as err:
        return None, str(err)
    if results["dataset"]["parameters"] != cfg.parameters():
        return None, (f"dataset.parameters={results['dataset']['parameters']} are not those of config {cfg.name} "
                      f"({cfg.parameters()})")
    expected = rules_hash(sample_rules(cfg))
    got = results["dataset"].get("rules_hash")
    if got != expected:
        return None, f"dataset.rules_hash={got} differs from the rules hash of config {cfg.name} ({expected})"
    sizes = cfg.split_sizes()
    if not 1 <= results["P"] <= sizes["train"]:
        return None, f"P={results['P']} is not in 1..{sizes['train']} (train split size of config {cfg.name})"
    ev = results.get("evaluation")
    if ev:
        undefined = undefined_kinds(cfg.m, cfg.placements_per_node)
        for kind in ("synonym", "diffeo"):
            if bool(ev["undefined"][kind]) != undefined[kind]:
                return None, (
                    f"evaluation.undefined.{kind}={ev['undefined'][kind]} but the config has "
                    f"m={cfg.m}, K={cfg.placements_per_node} (undefined exactly when {'m' if kind == 'synonym' else 'K'} = 1)"
                )
            for layer, vals in ev["sensitivity"][kind].items():
                if len(vals) != cfg.L:
                    return None, f"evaluation.sensitivity.{kind}.{layer} has {len(vals)} levels, config has L={cfg.L}"
                if undefined[kind] and any(x is not None for x in vals):
                    return None, f"evaluation.sensitivity.{kind}.{layer} has numbers where the quantity is undefined"
    why = _partial_splits(results, sizes)
    if why:
        return None, why
    entry = Entry(
        path=str(path),
        results=results,
        config=cfg.name,
        P=int(results["P"]),
        model=model_name(results, cfg),
        arch=str(results["model"].get("arch", "")),
        test_error=file_test_error(results),
        s_out=_output_value(results, "synonym"),
        d_out=_output_value(results, "diffeo"),
        evaluated=bool(ev),
        control=is_control(results),
    )
    return entry, None


def _partial_splits(results: dict, sizes: dict) -> str | None:
    """Why a file's evaluation was not measured on the config's whole probe and test splits, or None."""
    ev = results.get("evaluation")
    if not ev:
        return None
    if ev["probe"]["num_points"] != sizes["probe"]:
        return (f"evaluation.probe.num_points={ev['probe']['num_points']}: sensitivities must be measured on the whole "
                f"probe split ({sizes['probe']} points; srhm evaluate without --num-probe)")
    if ev["num_test"] != sizes["test"]:
        return (f"evaluation.num_test={ev['num_test']}: the test error must be measured on the whole test split "
                f"({sizes['test']} points; srhm evaluate without --num-test)")
    return None


def _one_line(err: Exception) -> str:
    text = getattr(err, "message", None) or str(err)
    return " ".join(str(text).split())[:300]


def _revision(entry: Entry) -> tuple[str | None, str | None]:
    ds = entry.results["dataset"]
    return ds.get("revision"), ds.get("resolved_commit")


def check_revisions(entries: list[Entry], revision: str | None = None) -> tuple[list[Entry], list[Rejection]]:
    """Keep, per config, the files on its reference revision (see the module docstring)."""
    kept, rejected = [], []
    by_config = collections.defaultdict(list)
    for e in entries:
        by_config[e.config].append(e)
    for config, group in by_config.items():
        if revision is not None:
            ref = revision
        else:
            counts = collections.Counter(_revision(e)[0] for e in group)
            ref = max(counts, key=lambda r: (counts[r], r is not None, r or ""))
        commits = collections.Counter(_revision(e)[1] for e in group if _revision(e)[0] == ref and _revision(e)[1])
        ref_commit = max(commits, key=lambda c: (commits[c], c)) if commits else None
        n_ref = sum(1 for e in group if _revision(e)[0] == ref)
        for e in group:
            rev, commit = _revision(e)
            if rev != ref:
                why = "given with --revision" if revision is not None else f"used by {n_ref} file(s) of this config"
                rejected.append(Rejection(e.path, f"dataset.revision={rev!r} differs from the config's revision {ref!r} ({why})"))
            elif commit and ref_commit and commit != ref_commit:
                rejected.append(Rejection(
                    e.path, f"dataset.resolved_commit={commit} differs from {ref_commit} for revision {ref!r} (the tag moved?)"
                ))
            else:
                kept.append(e)
    return kept, rejected


def check_content_hashes(entries: list[Entry]) -> tuple[list[Entry], list[Rejection]]:
    """Keep, per config, the files whose ``dataset.train_content_hash`` (when not null) is the config's
    most common non-null one (ties: the greatest): the same training rows, like the revision."""
    kept, rejected = [], []
    by_config = collections.defaultdict(list)
    for e in entries:
        by_config[e.config].append(e)
    for group in by_config.values():
        counts = collections.Counter(e.results["dataset"].get("train_content_hash") for e in group)
        counts.pop(None, None)
        ref = max(counts, key=lambda h: (counts[h], h)) if counts else None
        for e in group:
            got = e.results["dataset"].get("train_content_hash")
            if got is not None and got != ref:
                rejected.append(Rejection(e.path, f"dataset.train_content_hash={got} differs from the config's {ref} "
                                                  f"(used by {counts[ref]} file(s)): trained on other rows"))
            else:
                kept.append(e)
    return kept, rejected


def collect(results_dir: str | os.PathLike, exclude: str | os.PathLike | None = None,
            revision: str | None = None) -> tuple[list[Entry], list[Rejection], list[str]]:
    """Accepted entries, rejections and ignored paths (JSON that is not a results file) under results_dir."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"invalid parameter RESULTS_DIR={str(results_dir)!r}: not a folder")
    exclude = Path(exclude).resolve() if exclude is not None else None
    entries, rejected, ignored = [], [], []
    for path in find_results(results_dir, exclude):
        entry, reason = _check_file(path)
        if reason == IGNORED:
            ignored.append(str(path))
        elif entry is None:
            rejected.append(Rejection(str(path), reason))
        else:
            entries.append(entry)
    entries, more = check_revisions(entries, revision)
    entries, content = check_content_hashes(entries)
    return sorted(entries, key=lambda e: (e.config,) + e.sort_key()), rejected + more + content, ignored


# ---- ranking and learning curves ----------------------------------------------------------


def rank(entries: list[Entry]) -> dict[str, dict[int, list[Entry]]]:
    """config -> P -> entries in rank order."""
    out: dict[str, dict[int, list[Entry]]] = {}
    for e in sorted(entries, key=lambda e: (e.config,) + e.sort_key()):
        out.setdefault(e.config, {}).setdefault(e.P, []).append(e)
    return out


def learning_curve(entries: list[Entry]) -> list[tuple[int, float]]:
    """(P, mean test error) sorted by P, for the entries of one model on one config."""
    by_p = collections.defaultdict(list)
    for e in entries:
        by_p[e.P].append(e.test_error)
    return [(p, sum(v) / len(v)) for p, v in sorted(by_p.items())]


def p_star(curve: list[tuple[int, float]], epsilon: float = EPSILON_STAR) -> tuple[float | None, str]:
    """P* of a learning curve: (value, "interpolated" | "upper bound" | "not reached" | "no curve").

    The same estimate as ``srhm learning-curve`` (``baselines.learning_curve.estimate_p_star``):
    log P interpolated linearly in the error between the two P around the first crossing
    of ``epsilon``. "upper bound": already below at the smallest P (value = that P).
    Fewer than two P values: (None, "no curve").
    """
    from ..baselines.learning_curve import estimate_p_star

    if len(curve) < 2:
        return None, "no curve"
    est = estimate_p_star([p for p, _ in curve], [e for _, e in curve], threshold=epsilon)
    if est["status"] == "interpolated":
        return float(est["P_star"]), "interpolated"
    if est["status"] == "below_range":
        return float(curve[0][0]), "upper bound"
    return None, "not reached"


def curves_and_pstar(entries: list[Entry]) -> dict[tuple[str, str], dict]:
    """(config, model) -> {"arch", "control", "curve", "p_star", "p_star_kind"}.

    A control model (shuffled labels; its own key, so never averaged with real runs) has
    its curve but no P*: ``p_star`` None, ``p_star_kind`` "control".
    """
    groups = collections.defaultdict(list)
    for e in entries:
        groups[(e.config, e.model)].append(e)
    out = {}
    for key, group in sorted(groups.items()):
        curve = learning_curve(group)
        control = any(e.control for e in group)
        value, kind = (None, "control") if control else p_star(curve)
        out[key] = {"arch": group[0].arch, "control": control, "curve": curve, "p_star": value, "p_star_kind": kind}
    return out


# ---- rendering ----------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 4) -> str:
    return "undefined" if x is None else f"{x:.{digits}f}"


def _fmt_pstar(info: dict | None) -> str:
    if not info or info["p_star_kind"] in ("no curve", "control"):
        return ""
    if info["p_star"] is None:
        return f"> {max(p for p, _ in info['curve'])}"
    prefix = "<= " if info["p_star_kind"] == "upper bound" else ""
    return f"{prefix}{info['p_star']:.3g}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def unique_slugs(names) -> dict[str, str]:
    """name -> file-name slug, distinct for distinct names, also on case-insensitive file systems:
    a name whose slug is taken gets its slug plus 8 hex digits of the name's SHA-256."""
    out, taken = {}, set()
    for name in sorted(set(names)):
        slug = _slug(name)
        if slug.lower() in taken:
            slug = f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
        taken.add(slug.lower())
        out[name] = slug
    return out


def _savefig(fig, path: Path, dpi: int) -> None:
    """``fig`` as a PNG at ``path``, written atomically."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


#: Table columns; "file" is the results file's path relative to RESULTS_DIR.
COLUMNS = ("rank", "P", "model", "test error", "S_out", "D_out", "P*", "file")


def _rows(ranked: dict[int, list[Entry]], pstar: dict, config: str, base: Path) -> list[list[str]]:
    """Table rows; S_out/D_out are "undefined" (m = 1 / K = 1) or "n/a" (file has no evaluation)."""
    rows = []
    for P, group in sorted(ranked.items()):
        for i, e in enumerate(group, 1):
            rel = Path(os.path.relpath(e.path, base)).as_posix()
            s_out, d_out = (_fmt(e.s_out), _fmt(e.d_out)) if e.evaluated else ("n/a", "n/a")
            rows.append([str(i), str(P), e.model, f"{e.test_error:.4f}", s_out, d_out,
                         _fmt_pstar(pstar.get((config, e.model))), rel])
    return rows


def _config_caption(config: str) -> str:
    from ..catalog import catalog_name, resolve

    cfg = resolve(config)
    alias = catalog_name(cfg)
    params = ", ".join(f"{k}={v}" for k, v in cfg.parameters().items())
    return f"{config}" + (f" (catalog: {alias})" if alias else "") + f": {params}, d={cfg.d}, K={cfg.placements_per_node}"


def write_markdown(path: Path, config: str, rows: list[list[str]], images: list[str], revision: str | None) -> None:
    lines = [f"# Leaderboard: {config}", "", _config_caption(config), "",
             f"Dataset revision: {revision if revision else 'generator (no release revision)'}.", "",
             f"Ranked by test error at fixed P, then S_out = S_(output,{RANK_LEVEL}), then D_out = D_(output,{RANK_LEVEL}). "
             "P*: training-set size at 10 % test error on the model's learning curve (blank without one).", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    lines.append("")
    for img in images:
        lines.append(f"![{img}]({img})")
        lines.append("")
    atomic_write(path, "\n".join(lines))


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "td:nth-child(3),td:nth-child(8){text-align:left}th{background:#f3f3f3}img{max-width:100%;margin:1em 0}"
)


def _html_page(title: str, body: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _html_table(header: tuple | list, rows: list[list[str]]) -> str:
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def write_html(path: Path, config: str, rows: list[list[str]], images: list[str], revision: str | None) -> None:
    body = [
        f"<h1>Leaderboard: {html.escape(config)}</h1>",
        f"<p>{html.escape(_config_caption(config))}</p>",
        f"<p>Dataset revision: {html.escape(revision or 'generator (no release revision)')}. "
        f"Ranked by test error at fixed P, then S<sub>out</sub> = S<sub>output,{RANK_LEVEL}</sub>, then "
        f"D<sub>out</sub> = D<sub>output,{RANK_LEVEL}</sub>. P*: training-set size at 10 % test error.</p>",
        _html_table(COLUMNS, rows),
        '<p><a href="../index.html">all configs</a></p>',
    ]
    body += [f'<figure><img src="{html.escape(img)}" alt="{html.escape(img)}"></figure>' for img in images]
    atomic_write(path, _html_page(f"SRHM leaderboard {config}", body))


# ---- plots --------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _null_locator():
    from matplotlib.ticker import NullLocator

    return NullLocator()


def plot_test_error(path: Path, config: str, entries: list[Entry], curves: dict) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for model in sorted({e.model for e in entries}):
        pts = [(e.P, e.test_error) for e in entries if e.model == model]
        curve = curves[(config, model)]["curve"]
        line, = ax.plot([p for p, _ in curve], [v for _, v in curve], marker="o", label=model)
        ax.scatter([p for p, _ in pts], [v for _, v in pts], s=10, color=line.get_color(), alpha=0.5)
    ax.axhline(EPSILON_STAR, color="grey", ls="--", lw=1, label="10 % (P*)")
    ax.set_xscale("log")
    ax.set_xlabel("P (training-set size)")
    ax.set_ylabel("test error")
    ax.set_title(config, fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _savefig(fig, path, dpi=100)
    plt.close(fig)


def plot_sensitivities(path: Path, config: str, model: str, entries: list[Entry]) -> bool:
    """S_{k,l} (top row) and D_{k,l} (bottom) vs P, one column per layer, one line per level.

    Returns False (no file) when no entry of the model has an evaluation.
    """
    evaluated = sorted((e for e in entries if e.results.get("evaluation")), key=lambda e: e.P)
    if not evaluated:
        return False
    layers: list[str] = []
    for e in evaluated:
        layers += [x for x in e.results["evaluation"]["layers"] if x not in layers]
    L = max(len(v) for e in evaluated for v in e.results["evaluation"]["sensitivity"]["synonym"].values())
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(layers), figsize=(3 * len(layers) + 1, 5.5), squeeze=False, sharex=True)
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
            ax.xaxis.set_minor_locator(_null_locator())
            ax.set_ylim(bottom=0)
            ax.set_title(f"{letter}_(k,l), k = {layer}", fontsize=8)
            if row == 1:
                ax.set_xlabel("P")
            if ax.lines and col == 0:
                ax.legend(fontsize=7)
    fig.suptitle(f"{model} on {config}", fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.1, top=0.88, wspace=0.3, hspace=0.3)
    _savefig(fig, path, dpi=90)
    plt.close(fig)
    return True


def our_pstar_points(curves: dict) -> dict[str, list[dict]]:
    """arch -> [{"config", "model", "x", "p_star", "kind"}] for CNN/LCN with a P* value."""
    from ..catalog import resolve

    out: dict[str, list[dict]] = {"cnn": [], "lcn": []}
    for (config, model), info in curves.items():
        if info["arch"] not in out or info["p_star"] is None:
            continue
        cfg = resolve(config)
        x = law_x(info["arch"], cfg.L, cfg.s, cfg.s0, cfg.nc, cfg.m)
        out[info["arch"]].append({"config": config, "model": model, "x": x, "p_star": info["p_star"],
                                  "kind": info["p_star_kind"]})
    return out


def plot_pstar_laws(path: Path, ours: dict[str, list[dict]]) -> None:
    """P* against the paper's laws: CNN (Eq. 4) and LCN (Eq. 3); paper's points in grey."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
    titles = {"cnn": "CNN: x = (s0+1)^2 n_c m^L (Eq. 4)", "lcn": "LCN: x = s^(L/2) (s0+1)^L n_c m^L (Eq. 3)"}
    for ax, arch in zip(axes, ("cnn", "lcn")):
        paper = paper_points(arch)
        ax.scatter([p["x"] for p in paper], [p["p_star"] for p in paper], s=18, color="0.6",
                   label=f"paper (Fig. 4{'C' if arch == 'cnn' else 'B'}, read off)")
        mine = ours.get(arch, [])
        if mine:
            ax.scatter([p["x"] for p in mine], [p["p_star"] for p in mine], s=60, marker="*", color="C3",
                       label="this leaderboard", zorder=3)
        xs = [p["x"] for p in paper] + [p["x"] for p in mine]
        lo, hi = min(xs) / 2, max(xs) * 2
        c = LAW_CONSTANT[arch]
        ax.plot([lo, hi], [c * lo, c * hi], "k--", lw=1, label=f"P* = {c:g} x")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("x (paper's law)")
        ax.set_ylabel("P* (10 % test error)")
        ax.set_title(titles[arch], fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    _savefig(fig, path, dpi=100)
    plt.close(fig)


# ---- the whole leaderboard ----------------------------------------------------------------


def build_leaderboard(results_dir: str | os.PathLike, out: str | os.PathLike, revision: str | None = None) -> dict:
    """Validate, rank and render every results file under results_dir into out.

    Returns the summary also written to ``out/leaderboard.json``: ``configs`` (per config:
    ``rows`` in rank order, ``curves``), ``rejected`` ([{path, reason}]), ``files``
    (paths written).
    """
    results_dir, out = Path(results_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries, rejected, ignored = collect(results_dir, exclude=out, revision=revision)
    ranked = rank(entries)
    curves = curves_and_pstar(entries)
    written: list[str] = []
    summary: dict = {"configs": {}, "rejected": [dataclasses.asdict(r) for r in rejected], "ignored": ignored,
                     "files": written}
    for config, by_p in ranked.items():
        folder = out / config
        folder.mkdir(exist_ok=True)
        config_entries = [e for group in by_p.values() for e in group]
        images = ["test_error_vs_P.png"]
        plot_test_error(folder / images[0], config, config_entries, curves)
        slugs = unique_slugs(e.model for e in config_entries)
        for model in sorted(slugs):
            name = f"sensitivity_{slugs[model]}.png"
            if plot_sensitivities(folder / name, config, model, [e for e in config_entries if e.model == model]):
                images.append(name)
        images.append("../pstar_laws.png")
        rev = _revision(config_entries[0])[0]
        rows = _rows(by_p, curves, config, results_dir)
        write_markdown(folder / "leaderboard.md", config, rows, images, rev)
        write_html(folder / "leaderboard.html", config, rows, images, rev)
        written += [str(folder / f) for f in ("leaderboard.md", "leaderboard.html")] + [
            str(folder / i) for i in images if not i.startswith("../")
        ]
        summary["configs"][config] = {
            "revision": rev,
            "rows": [dict(zip(COLUMNS, r)) for r in rows],
            "curves": {m: {k: v for k, v in info.items()} for (c, m), info in curves.items() if c == config},
        }
    ours = our_pstar_points(curves)
    plot_pstar_laws(out / "pstar_laws.png", ours)
    written.append(str(out / "pstar_laws.png"))
    _write_index(out, ranked, rejected, ours, ignored, results_dir)
    written += [str(out / "index.md"), str(out / "index.html")]
    atomic_write(out / "leaderboard.json", json.dumps(summary, indent=2) + "\n")
    written.append(str(out / "leaderboard.json"))
    return summary


def _rel(path: str, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def _write_index(out: Path, ranked: dict, rejected: list[Rejection], ours: dict, ignored: list[str],
                 results_dir: Path) -> None:
    header = ("config", "files", "P values")
    rows = [[c, str(sum(len(g) for g in by_p.values())), ", ".join(str(p) for p in sorted(by_p))] for c, by_p in ranked.items()]
    pstar_rows = [[arch, p["config"], p["model"], f"{p['x']:.4g}", f"{p['p_star']:.3g}", f"{p['p_star'] / p['x']:.2f}"]
                  for arch, pts in ours.items() for p in pts]
    pstar_header = ("arch", "config", "model", "x (law)", "P*", "P*/x")
    md = ["# SRHM leaderboards", "", "| " + " | ".join(header) + " |", "|---|---|---|"]
    md += [f"| [{c}]({c}/leaderboard.md) | {n} | {ps} |" for c, n, ps in rows]
    md += ["", "## P* against the paper's laws", "", "![pstar_laws.png](pstar_laws.png)", ""]
    if pstar_rows:
        md += ["| " + " | ".join(pstar_header) + " |", "|" + "---|" * len(pstar_header)]
        md += ["| " + " | ".join(r) + " |" for r in pstar_rows]
    md += ["", f"## Rejected files ({len(rejected)})", ""]
    md += [f"- `{_rel(r.path, results_dir)}`: {r.reason}" for r in rejected] or ["none"]
    md += ["", f"Ignored {len(ignored)} JSON file(s) that are not results files."]
    atomic_write(out / "index.md", "\n".join(md) + "\n")
    body = ["<h1>SRHM leaderboards</h1>",
            _html_table(header, rows)]
    # link each config name
    for c in ranked:
        body[-1] = body[-1].replace(f"<td>{html.escape(c)}</td>", f'<td><a href="{html.escape(c)}/leaderboard.html">{html.escape(c)}</a></td>', 1)
    body += ["<h2>P* against the paper's laws</h2>", '<figure><img src="pstar_laws.png" alt="pstar_laws.png"></figure>']
    if pstar_rows:
        body.append(_html_table(pstar_header, pstar_rows))
    body.append(f"<h2>Rejected files ({len(rejected)})</h2>")
    body.append("<ul>" + "".join(f"<li><code>{html.escape(_rel(r.path, results_dir))}</code>: {html.escape(r.reason)}</li>" for r in rejected) + "</ul>")
    body.append(f"<p>Ignored {len(ignored)} JSON file(s) that are not results files.</p>")
    atomic_write(out / "index.html", _html_page("SRHM leaderboards", body))
