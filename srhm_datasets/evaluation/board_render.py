"""The leaderboard's pages: per-config tables and the index, in Markdown and HTML.

A config's page has one section per task. Each starts with the P* ranking
(``RANKING_COLUMNS``, ``board_pstar.ranking``; the Bayes-optimal limit row first when the
board has one), then the single-P tables (``COLUMNS``, one row per accepted file in rank
order, ``board_entries.rank``). S_out/D_out read "undefined" (m = 1 / K = 1, or a task other
than class) or "n/a" (no evaluation); P* (``fmt_p``: an integer to three significant digits,
in every table) is blank without a learning curve and for a control, "<= P" for an upper
bound, "> P" (the largest P) when the threshold is never reached and "undefined" where the
threshold is at or above chance; the mark is "verified" (evaluated again by ``--verify``) or
"reported". The index lists the configs, our P* against the paper's laws (when a CNN or LCN curve of
the class task has a P*), every rejected file
with its reason, (``--verify``) the files not verified (no model beside them, or one that could not be
evaluated) and the
Bayes-optimal files not used. Every page is
written atomically (``files.atomic_write``).
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

from ..catalog import catalog_name, get_config
from ..files import atomic_write
from ..protocol import EPSILON_STAR
from .board_entries import RANK_LEVEL, Entry, Rejection
from .board_pstar import ranking, unranked


def _fmt(x: float | None, digits: int = 4) -> str:
    return "undefined" if x is None else f"{x:.{digits}f}"


def fmt_p(value: float) -> str:
    """A P* (a number of training samples) as the board prints it everywhere: an integer rounded to three
    significant digits, never in exponent notation.

    Examples
    --------
    >>> fmt_p(757.4), fmt_p(1642.7), fmt_p(24.6), fmt_p(201345.0)
    ('757', '1640', '25', '201000')
    """
    digits = max(0, math.floor(math.log10(value)) - 2) if value >= 1 else 0
    return f"{round(value, -digits):.0f}"


def _fmt_pstar(info: dict | None) -> str:
    if not info or info["p_star_kind"] in ("no curve", "control"):
        return ""
    if info["p_star_kind"] == "undefined":
        return "undefined"
    if info["p_star"] is None:
        return f"> {max(p for p, _ in info['curve'])}"
    prefix = "<= " if info["p_star_kind"] == "upper bound" else ""
    return f"{prefix}{fmt_p(info['p_star'])}"


def _rel(path: str, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


#: Table columns; "file" is the results file's path relative to RESULTS_DIR.
COLUMNS = ("rank", "P", "model", "test error", "S_out", "D_out", "P*", "mark", "file")

#: Columns of the P* ranking of one (config, task).
RANKING_COLUMNS = (
    "rank",
    "model",
    "P*",
    "P* over seeds (min - max)",
    "P grid",
    "test error at P_max",
    "S_out at P_max",
    "D_out at P_max",
    "mark",
)

#: Model name of the limit row.
LIMIT_MODEL = "Bayes-optimal (exact BP)"


def table_rows(ranked: dict[int, list[Entry]], pstar: dict, config: str, task: str, base: Path) -> list[list[str]]:
    """The ``COLUMNS`` cells of one (config, task)'s entries (P -> entries in rank order), P ascending.

    ``pstar`` is ``board_pstar.curves_and_pstar``'s output; "file" is relative to ``base``;
    S_out/D_out are "undefined" (m = 1 / K = 1) or "n/a" (file has no evaluation).
    """
    rows = []
    for P, group in sorted(ranked.items()):
        for i, e in enumerate(group, 1):
            s_out, d_out = (_fmt(e.s_out), _fmt(e.d_out)) if e.evaluated else ("n/a", "n/a")
            rows.append(
                [
                    str(i),
                    str(P),
                    e.model,
                    f"{e.test_error:.4f}",
                    s_out,
                    d_out,
                    _fmt_pstar(pstar.get((config, task, e.model))),
                    e.mark,
                    _rel(e.path, base),
                ]
            )
    return rows


def _fmt_seeds(seeds: dict | None) -> str:
    """``board_pstar._per_seed`` as "min - max (k/n seeds crossed)"; blank with fewer than two seeds."""
    if not seeds:
        return ""
    n = len(seeds["per_seed"])
    if not seeds["crossed"]:
        return f"none crossed ({n} seeds)"
    return f"{fmt_p(seeds['min'])} - {fmt_p(seeds['max'])} ({seeds['crossed']}/{n} seeds crossed)"


def ranking_rows(pstar: dict, config: str, task: str, limit: dict | None) -> list[list[str]]:
    """The ``RANKING_COLUMNS`` cells of one (config, task): the limit row (if any), then the P* ranking."""
    rows = []
    if limit:
        rows.append(
            [
                "limit",
                LIMIT_MODEL,
                "",
                "",
                f"{limit['rows']} {limit.get('split') or ''} rows".replace("  ", " "),
                f"{limit['expected_error']:.4f} (empirical {limit['empirical_error']:.4f})",
                "",
                "",
                "srhm optimal",
            ]
        )
    ranks = [(str(i), *item) for i, item in enumerate(ranking(pstar, config, task), 1)]
    for rank, model, info in ranks + [("-", *item) for item in unranked(pstar, config, task)]:
        top, grid = info["at_P_max"], info["P_grid"]
        s_out, d_out = (_fmt(top["s_out"]), _fmt(top["d_out"])) if top["evaluated"] else ("n/a", "n/a")
        rows.append(
            [
                rank,
                model,
                _fmt_pstar(info),
                _fmt_seeds(info["seeds"]),
                f"{grid[0]}..{grid[-1]} ({len(grid)} P)",
                f"{top['test_error']:.4f} (P={top['P']})",
                s_out,
                d_out,
                info["mark"],
            ]
        )
    return rows


def rule_text(limit: dict | None, rule: dict) -> str:
    """How one (config, task) is ranked, in words: the threshold with the limit, when there is one, and,
    where P* is undefined (``rule``, ``board_pstar.p_star_rule``), why."""
    if not rule["defined"]:
        ranked = (
            f"P* is undefined for this task: its threshold {rule['threshold']:.4f}, the Bayes-optimal error plus "
            f"{EPSILON_STAR:.2f} (absolute), is at or above the chance error {rule['chance']:.4f} (1 - 1/C, a uniform "
            "guess over the C classes the task predicts), so a constant predictor would cross it. The models are "
            "not ranked by P* (listed by name, rank -); compare them at each P."
        )
    else:
        if limit and limit["expected_error"] > 0:
            crossing = (
                f"its excess test error (test error minus the Bayes-optimal {limit['expected_error']:.4f}) "
                f"falls to {EPSILON_STAR:.2f}, i.e. its test error to {rule['threshold']:.4f}"
            )
        else:
            crossing = f"its test error falls to {EPSILON_STAR:.2f}"
        ranked = (
            f"Ranked by P*: the training-set size at which {crossing} on the model's learning curve (mean over "
            "seeds at each P, log-P interpolation; lower is better; never crossing ranks after, as > P_max). "
            "Spread: the min and max of each seed's own P*."
        )
    return (
        f"{ranked} Single-P tables: test error at fixed P, then S_out = S_(output,{RANK_LEVEL}), then D_out = "
        f"D_(output,{RANK_LEVEL}). Mark: verified (evaluated again by srhm leaderboard --verify) or reported "
        "(the file's numbers)."
    )


def _config_caption(config: str) -> str:
    cfg = get_config(config)
    alias = catalog_name(cfg)
    params = ", ".join(f"{k}={v}" for k, v in cfg.parameters().items())
    return (
        f"{config}" + (f" (catalog: {alias})" if alias else "") + f": {params}, d={cfg.d}, K={cfg.placements_per_node}"
    )


def _md_table(header: tuple | list, rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table: header, separator, one line per row (cells as given)."""
    line = lambda cells: "| " + " | ".join(cells) + " |"
    return [line(header), "|" + "---|" * len(header)] + [line(row) for row in rows]


def write_markdown(path: Path, config: str, sections: list[dict], images: list[str], revision: str | None) -> None:
    """``config``'s page at ``path``: caption, dataset revision, then per task (``sections``: ``task``,
    ``limit``, ``ranking`` rows, ``rows`` of the single-P tables) the P* ranking and the single-P
    table, then ``images`` (paths relative to the page)."""
    lines = [
        f"# Leaderboard: {config}",
        "",
        _config_caption(config),
        "",
        f"Dataset revision: {revision if revision else 'generator (no release revision)'}.",
        "",
    ]
    esc = lambda rows: [[cell.replace("|", "\\|") for cell in row] for row in rows]
    for section in sections:
        lines += [f"## Task: {section['task']}", "", rule_text(section["limit"], section["rule"]), ""]
        lines += _md_table(RANKING_COLUMNS, esc(section["ranking"])) + ["", "### At each P", ""]
        lines += _md_table(COLUMNS, esc(section["rows"])) + [""]
    for img in images:
        lines.append(f"![{img}]({img})")
        lines.append("")
    atomic_write(path, "\n".join(lines))


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "td:nth-child(2),td:nth-child(3),td:nth-child(9){text-align:left}"
    "th{background:#f3f3f3}img{max-width:100%;margin:1em 0}"
)


def _html_page(title: str, body: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _html_table(header: tuple | list, rows: list[list[str]], href=None) -> str:
    """An HTML table of text cells (escaped); ``href(cell)``, when given, links each row's first cell."""

    def first(cell: str) -> str:
        return f'<a href="{html.escape(href(cell))}">{html.escape(cell)}</a>' if href else html.escape(cell)

    out = [
        "<table>",
        "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>",
        "<tbody>",
    ]
    for row in rows:
        out.append(
            "<tr>" + "".join(f"<td>{first(c) if i == 0 else html.escape(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        )
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def write_html(path: Path, config: str, sections: list[dict], images: list[str], revision: str | None) -> None:
    """The HTML twin of ``write_markdown``, with a link back to the index."""
    body = [
        f"<h1>Leaderboard: {html.escape(config)}</h1>",
        f"<p>{html.escape(_config_caption(config))}</p>",
        f"<p>Dataset revision: {html.escape(revision or 'generator (no release revision)')}.</p>",
    ]
    for section in sections:
        body += [
            f"<h2>Task: {html.escape(section['task'])}</h2>",
            f"<p>{html.escape(rule_text(section['limit'], section['rule']))}</p>",
            _html_table(RANKING_COLUMNS, section["ranking"]),
            "<h3>At each P</h3>",
            _html_table(COLUMNS, section["rows"]),
        ]
    body.append('<p><a href="../index.html">all configs</a></p>')
    body += [f'<figure><img src="{html.escape(img)}" alt="{html.escape(img)}"></figure>' for img in images]
    atomic_write(path, _html_page(f"SRHM leaderboard {config}", body))


def _file_lists(lists: dict[str, list[Rejection]], results_dir: Path) -> tuple[list[str], list[str]]:
    """Markdown lines and HTML parts of titled lists of files with their reasons (paths relative to
    ``results_dir``); an empty list reads "none"."""
    md, body = [], []
    for title, items in lists.items():
        md += ["", f"## {title} ({len(items)})", ""]
        md += [f"- `{_rel(r.path, results_dir)}`: {r.reason}" for r in items] or ["none"]
        body.append(f"<h2>{html.escape(title)} ({len(items)})</h2>")
        body.append(
            "<ul>"
            + "".join(
                f"<li><code>{html.escape(_rel(r.path, results_dir))}</code>: {html.escape(r.reason)}</li>"
                for r in items
            )
            + "</ul>"
        )
    return md, body


def write_index(
    out: Path,
    ranked: dict,
    rejected: list[Rejection],
    ours: dict,
    ignored: list[str],
    results_dir: Path,
    unverified: list[Rejection] = (),
    unused: list[Rejection] = (),
) -> None:
    """``out/index.md`` and ``out/index.html``: configs (``ranked``, config -> task -> P -> entries) with links,
    ``pstar_laws.png`` and our P* points (``ours``, ``board_pstar.our_pstar_points``; the section only when
    there is a point: a CNN or LCN curve of the class task with a P*), rejected files
    and, after ``--verify``, the files not verified, with why (``unverified``), the Bayes-optimal
    files not used (``unused``; paths relative to ``results_dir``) and the number of ignored ones."""
    header = ("config", "tasks", "files", "P values")
    rows = [
        [
            c,
            ", ".join(by_task),
            str(sum(len(g) for by_p in by_task.values() for g in by_p.values())),
            ", ".join(str(p) for p in sorted({p for by_p in by_task.values() for p in by_p})),
        ]
        for c, by_task in ranked.items()
    ]
    pstar_rows = [
        [
            arch,
            p["config"],
            p["model"],
            f"{p['x']:.4g}",
            fmt_p(p["p_star"]),
            f"{p['p_star'] / p['x']:.2f}",
            p["mark"],
        ]
        for arch, pts in ours.items()
        for p in pts
    ]
    pstar_header = ("arch", "config", "model", "x (law)", "P*", "P*/x", "mark")
    md = ["# SRHM leaderboards", ""] + _md_table(header, [[f"[{c}]({c}/leaderboard.md)", *rest] for c, *rest in rows])
    if pstar_rows:
        md += ["", "## P* against the paper's laws", "", "![pstar_laws.png](pstar_laws.png)", ""]
        md += _md_table(pstar_header, pstar_rows)
    lists = {"Rejected files": rejected}
    if unverified:
        lists["Not verified (ranked as reported: the model is not beside the file, or could not be evaluated)"] = list(
            unverified
        )
    if unused:
        lists["Bayes-optimal files not used (no limit row)"] = list(unused)
    md_lists, html_lists = _file_lists(lists, results_dir)
    md += md_lists
    md += ["", f"Ignored {len(ignored)} JSON file(s) that are not results files."]
    atomic_write(out / "index.md", "\n".join(md) + "\n")
    body = ["<h1>SRHM leaderboards</h1>", _html_table(header, rows, href=lambda config: f"{config}/leaderboard.html")]
    if pstar_rows:
        figure = '<figure><img src="pstar_laws.png" alt="pstar_laws.png"></figure>'
        body += ["<h2>P* against the paper's laws</h2>", figure, _html_table(pstar_header, pstar_rows)]
    body += html_lists
    body.append(f"<p>Ignored {len(ignored)} JSON file(s) that are not results files.</p>")
    atomic_write(out / "index.html", _html_page("SRHM leaderboards", body))
