"""``srhm leaderboard``: validate results files, rank them per config, write Markdown, HTML, plots.

``build_leaderboard`` puts the parts together:

- ``board_entries``: find the ``*.json`` files under RESULTS_DIR, accept or reject each,
  rank, learning curves and P* (the rules of the leaderboard are stated there);
- ``board_render``: the Markdown and HTML pages;
- ``board_plots``: the PNG figures.

Rejected files are listed with their reason. Output, per config, ``OUT/<config>/``:
``leaderboard.md``, ``leaderboard.html``, ``test_error_vs_P.png``,
``sensitivity_<model>.png`` (S_{k,l} and D_{k,l} vs P, one panel per layer, one line per
level); at the top: ``index.md``, ``index.html``, ``pstar_laws.png`` (our P* against the
paper's laws and points) and ``leaderboard.json`` (everything in machine form).

The board is rendered into a hidden folder beside OUT and renamed into place as a whole
(``files.replace_dir``, which checks OUT again), while OUT's lock is held, after OUT was
checked to be new, empty, or a board srhm wrote (``files.check_output_folder``); every output
file is written atomically (``files.atomic_write``); the sensitivity plot of each model gets
its own file name even when two names reduce to the same slug.

The public names of the parts are re-exported here (``__all__``), so imports from this
module keep working.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..config import require
from ..files import atomic_write, check_output_folder, claim_output, mark_owned, replace_dir, umask
from .board_entries import (
    CONTROL,
    IGNORED,
    RANK_LEVEL,
    Entry,
    Rejection,
    check_content_hashes,
    check_revisions,
    collect,
    curves_and_pstar,
    dataset_revision,
    file_test_error,
    find_results,
    is_control,
    is_results_candidate,
    learning_curve,
    model_name,
    our_pstar_points,
    p_star,
    rank,
)
from .board_plots import plot_pstar_laws, plot_sensitivities, plot_test_error
from .board_render import COLUMNS, table_rows, write_html, write_index, write_markdown

__all__ = [
    "COLUMNS",
    "CONTROL",
    "IGNORED",
    "RANK_LEVEL",
    "Entry",
    "Rejection",
    "build_leaderboard",
    "check_content_hashes",
    "check_revisions",
    "collect",
    "curves_and_pstar",
    "file_test_error",
    "find_results",
    "is_control",
    "is_results_candidate",
    "learning_curve",
    "model_name",
    "our_pstar_points",
    "p_star",
    "plot_pstar_laws",
    "plot_sensitivities",
    "plot_test_error",
    "rank",
    "unique_slugs",
    "write_html",
    "write_markdown",
]


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


def check_board_options(results_dir: Path, out: Path, revision) -> Path:
    """The leaderboard's arguments, checked before anything is read or written: ``results_dir`` an
    existing folder, ``revision`` None or a str, ``out`` a folder srhm may replace with a board
    (``files.check_output_folder``: not the current folder or a parent, new, empty, or a
    leaderboard srhm rendered holding nothing else). Returns ``out`` absolute."""
    require(results_dir.is_dir(), "results_dir", str(results_dir), "an existing folder of results files")
    require(revision is None or isinstance(revision, str), "revision", revision, "None or a str")
    return check_output_folder(out, "leaderboard", replace=True)


def build_leaderboard(results_dir: str | os.PathLike, out: str | os.PathLike, revision: str | None = None) -> dict:
    """Validate, rank and render every results file under results_dir into out.

    Returns the summary also written to ``out/leaderboard.json``: ``configs`` (per config:
    ``rows`` in rank order, ``curves``), ``rejected`` ([{path, reason}]), ``files``
    (paths written). The board is rendered into a hidden temporary folder beside ``out``,
    marked as srhm's, and renamed into place (``files.replace_dir``): ``out`` holds the
    old board or the new one, never a mix, also when the work is interrupted. ValueError
    (see ``check_board_options``) before anything is written; ``files.FolderInUse`` when another
    process writes ``out`` (``files.claim_output``). An old board is replaced only if it still
    holds nothing srhm did not write when it is replaced (``files.replace_dir``: ValueError).
    """
    results_dir, out = Path(results_dir), Path(out)
    out = check_board_options(results_dir, out, revision)
    with claim_output(out, "leaderboard", replace=True):
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        try:
            stage.chmod(0o777 & ~umask())  # mkdtemp makes 0700; the board follows the umask like its files
            summary = _render(results_dir, out, stage, revision)
            mark_owned(stage, "leaderboard")
            replace_dir(stage, out)
        finally:
            shutil.rmtree(stage, ignore_errors=True)  # gone already after a successful rename
    return summary


def _render(results_dir: Path, out: Path, stage: Path, revision: str | None) -> dict:
    """Write the board for ``out`` into the folder ``stage``; the summary names the files under ``out``."""
    entries, rejected, ignored = collect(results_dir, exclude=out, revision=revision)
    ranked = rank(entries)
    curves = curves_and_pstar(entries)
    written: list[str] = []
    summary: dict = {
        "configs": {},
        "rejected": [dataclasses.asdict(r) for r in rejected],
        "ignored": ignored,
        "files": written,
    }
    for config, by_p in ranked.items():
        folder = stage / config
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
        rev = dataset_revision(config_entries[0])[0]
        rows = table_rows(by_p, curves, config, results_dir)
        write_markdown(folder / "leaderboard.md", config, rows, images, rev)
        write_html(folder / "leaderboard.html", config, rows, images, rev)
        written += [str(out / config / f) for f in ("leaderboard.md", "leaderboard.html")] + [
            str(out / config / i) for i in images if not i.startswith("../")
        ]
        summary["configs"][config] = {
            "revision": rev,
            "rows": [dict(zip(COLUMNS, r)) for r in rows],
            "curves": {m: dict(info) for (c, m), info in curves.items() if c == config},
        }
    ours = our_pstar_points(curves)
    plot_pstar_laws(stage / "pstar_laws.png", ours)
    write_index(stage, ranked, rejected, ours, ignored, results_dir)
    written += [str(out / name) for name in ("pstar_laws.png", "index.md", "index.html", "leaderboard.json")]
    atomic_write(stage / "leaderboard.json", json.dumps(summary, indent=2) + "\n")
    return summary
