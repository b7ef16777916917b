"""The leaderboard's pages: per-config tables and the index, in Markdown and HTML.

A config's table has the ``COLUMNS``, one row per accepted file in rank order
(``board_entries.rank``); S_out/D_out read "undefined" (m = 1 / K = 1) or "n/a" (no
evaluation); P* is blank without a learning curve and for a control, "<= P" for an
upper bound and "> P" (the largest P) when 10 % is never reached. The index lists the configs, our P* against the
paper's laws and every rejected file with its reason. Every page is written atomically
(``files.atomic_write``).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from ..catalog import catalog_name, get_config
from ..files import atomic_write
from .board_entries import RANK_LEVEL, Entry, Rejection


def _fmt(x: float | None, digits: int = 4) -> str:
    return "undefined" if x is None else f"{x:.{digits}f}"


def _fmt_pstar(info: dict | None) -> str:
    if not info or info["p_star_kind"] in ("no curve", "control"):
        return ""
    if info["p_star"] is None:
        return f"> {max(p for p, _ in info['curve'])}"
    prefix = "<= " if info["p_star_kind"] == "upper bound" else ""
    return f"{prefix}{info['p_star']:.3g}"


def _rel(path: str, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


#: Table columns; "file" is the results file's path relative to RESULTS_DIR.
COLUMNS = ("rank", "P", "model", "test error", "S_out", "D_out", "P*", "file")


def table_rows(ranked: dict[int, list[Entry]], pstar: dict, config: str, base: Path) -> list[list[str]]:
    """The ``COLUMNS`` cells of one config's entries (P -> entries in rank order), P ascending.

    ``pstar`` is ``board_entries.curves_and_pstar``'s output; "file" is relative to ``base``;
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
                    _fmt_pstar(pstar.get((config, e.model))),
                    _rel(e.path, base),
                ]
            )
    return rows


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


def write_markdown(path: Path, config: str, rows: list[list[str]], images: list[str], revision: str | None) -> None:
    """``config``'s page at ``path``: caption, dataset revision, ranking rule, the table of
    ``rows`` (``table_rows``), then ``images`` (paths relative to the page)."""
    lines = [
        f"# Leaderboard: {config}",
        "",
        _config_caption(config),
        "",
        f"Dataset revision: {revision if revision else 'generator (no release revision)'}.",
        "",
        (
            f"Ranked by test error at fixed P, then S_out = S_(output,{RANK_LEVEL}), then D_out = "
            f"D_(output,{RANK_LEVEL}). "
            "P*: training-set size at 10 % test error on the model's learning curve (blank without one)."
        ),
        "",
    ]
    lines += _md_table(COLUMNS, [[cell.replace("|", "\\|") for cell in row] for row in rows])
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


def write_html(path: Path, config: str, rows: list[list[str]], images: list[str], revision: str | None) -> None:
    """The HTML twin of ``write_markdown``, with a link back to the index."""
    body = [
        f"<h1>Leaderboard: {html.escape(config)}</h1>",
        f"<p>{html.escape(_config_caption(config))}</p>",
        (
            f"<p>Dataset revision: {html.escape(revision or 'generator (no release revision)')}. "
            f"Ranked by test error at fixed P, then S<sub>out</sub> = S<sub>output,{RANK_LEVEL}</sub>, then "
            f"D<sub>out</sub> = D<sub>output,{RANK_LEVEL}</sub>. P*: training-set size at 10 % test error.</p>"
        ),
        _html_table(COLUMNS, rows),
        '<p><a href="../index.html">all configs</a></p>',
    ]
    body += [f'<figure><img src="{html.escape(img)}" alt="{html.escape(img)}"></figure>' for img in images]
    atomic_write(path, _html_page(f"SRHM leaderboard {config}", body))


def write_index(
    out: Path, ranked: dict, rejected: list[Rejection], ours: dict, ignored: list[str], results_dir: Path
) -> None:
    """``out/index.md`` and ``out/index.html``: configs (``ranked``, config -> P -> entries) with links,
    ``pstar_laws.png`` and our P* points (``ours``, ``board_entries.our_pstar_points``), rejected files
    (paths relative to ``results_dir``) and the number of ignored ones."""
    header = ("config", "files", "P values")
    rows = [
        [c, str(sum(len(g) for g in by_p.values())), ", ".join(str(p) for p in sorted(by_p))]
        for c, by_p in ranked.items()
    ]
    pstar_rows = [
        [arch, p["config"], p["model"], f"{p['x']:.4g}", f"{p['p_star']:.3g}", f"{p['p_star'] / p['x']:.2f}"]
        for arch, pts in ours.items()
        for p in pts
    ]
    pstar_header = ("arch", "config", "model", "x (law)", "P*", "P*/x")
    md = ["# SRHM leaderboards", ""] + _md_table(header, [[f"[{c}]({c}/leaderboard.md)", n, ps] for c, n, ps in rows])
    md += ["", "## P* against the paper's laws", "", "![pstar_laws.png](pstar_laws.png)", ""]
    if pstar_rows:
        md += _md_table(pstar_header, pstar_rows)
    md += ["", f"## Rejected files ({len(rejected)})", ""]
    md += [f"- `{_rel(r.path, results_dir)}`: {r.reason}" for r in rejected] or ["none"]
    md += ["", f"Ignored {len(ignored)} JSON file(s) that are not results files."]
    atomic_write(out / "index.md", "\n".join(md) + "\n")
    body = ["<h1>SRHM leaderboards</h1>", _html_table(header, rows, href=lambda config: f"{config}/leaderboard.html")]
    body += ["<h2>P* against the paper's laws</h2>", '<figure><img src="pstar_laws.png" alt="pstar_laws.png"></figure>']
    if pstar_rows:
        body.append(_html_table(pstar_header, pstar_rows))
    body.append(f"<h2>Rejected files ({len(rejected)})</h2>")
    body.append(
        "<ul>"
        + "".join(
            f"<li><code>{html.escape(_rel(r.path, results_dir))}</code>: {html.escape(r.reason)}</li>" for r in rejected
        )
        + "</ul>"
    )
    body.append(f"<p>Ignored {len(ignored)} JSON file(s) that are not results files.</p>")
    atomic_write(out / "index.html", _html_page("SRHM leaderboards", body))
