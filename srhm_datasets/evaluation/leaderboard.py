"""``srhm leaderboard``: validate results files, rank them per config, write Markdown, HTML, plots.

``build_leaderboard`` puts the parts together:

- ``board_entries``: find the ``*.json`` files under RESULTS_DIR, accept or reject each,
  the single-P ranking (the rules of the leaderboard are stated there);
- ``board_optimal``: the Bayes-optimal limits (``srhm optimal --json`` files among the
  inputs and in ``optimal``; with ``verify`` computed again by exact BP), and the rejection of
  results below them by more than sampling noise;
- ``board_verify``: with ``verify``, the files that bring their model are evaluated again
  and marked verified, or rejected as a mismatch (torch is imported only then);
- ``board_pstar``: learning curves, P* (on the excess error over the limit) and the P*
  ranking per (config, task);
- ``board_render``: the Markdown and HTML pages;
- ``board_plots``: the PNG figures.

Rejected files are listed with their reason. Output, per config, ``OUT/<config>/``:
``leaderboard.md``, ``leaderboard.html`` (one section per task: the P* ranking with the
limit row, then the single-P tables), ``test_error_vs_P.png`` (the class task;
``test_error_vs_P_<task>.png`` for another), ``sensitivity_<model>.png`` (S_{k,l} and
D_{k,l} vs P, one panel per layer, one line per level; ``_<task>`` appended for a task
other than class); at the top: ``index.md``, ``index.html``, ``pstar_laws.png`` (our P* against the
paper's laws and points; only when a CNN or LCN curve of the class task has a P*, the figure then linked
from the pages of the configs with such a curve) and ``leaderboard.json`` (everything in machine form).

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
    dataset_revision,
    file_test_error,
    find_results,
    is_control,
    is_results_candidate,
    model_name,
    rank,
)
from .board_optimal import below_limit, candidate_files, collect_limits, unused_limits
from .board_plots import plot_pstar_laws, plot_sensitivities, plot_test_error
from .board_pstar import curves_and_pstar, learning_curve, our_pstar_points, p_star, p_star_rule
from .board_render import COLUMNS, RANKING_COLUMNS, ranking_rows, table_rows, write_html, write_index, write_markdown
from .board_verify import verify as verify_entries

__all__ = [
    "COLUMNS",
    "CONTROL",
    "IGNORED",
    "RANKING_COLUMNS",
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


#: ``format`` of ``leaderboard.json`` (format.md §12.4): its version changes with its shape.
BOARD_FORMAT = {"name": "srhm-leaderboard", "version": 1}


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


def check_board_options(results_dir: Path, out: Path, revision, optimal=(), verify=False, device=None) -> Path:
    """The leaderboard's arguments, checked before anything is read or written: ``results_dir`` an
    existing folder, ``revision`` None or a str, every ``optimal`` path an existing file or folder,
    ``device`` None unless ``verify``, then a device of this machine (``torch_data.encoding.check_device``,
    torch imported only then), ``out`` a folder srhm may replace with a board
    (``files.check_output_folder``: not the current folder or a parent, new, empty, or a leaderboard
    srhm rendered holding nothing else). Returns ``out`` absolute."""
    require(results_dir.is_dir(), "results_dir", str(results_dir), "an existing folder of results files")
    require(revision is None or isinstance(revision, str), "revision", revision, "None or a str")
    for path in optimal:
        require(Path(path).exists(), "optimal", str(path), "an existing file or folder of srhm optimal --json files")
    require(device is None or verify, "device", device, "None unless verify (only re-evaluation runs a model)")
    if verify:
        from ..torch_data.encoding import check_device

        check_device(device)
    return check_output_folder(out, "leaderboard", replace=True)


def build_leaderboard(
    results_dir: str | os.PathLike,
    out: str | os.PathLike,
    revision: str | None = None,
    *,
    optimal=(),
    verify: bool = False,
    device: str | None = None,
) -> dict:
    """Validate, rank and render every results file under results_dir into out.

    ``optimal``: files or folders of ``srhm optimal --json`` objects (those among the JSON
    files under results_dir are read too): the limit rows, and the excess-error rule of P*; a results
    file below its limit by more than sampling noise is rejected (``board_optimal.below_limit``).
    ``verify``: evaluate again the files that bring their model (``board_verify``, on
    ``device``), marking them verified or rejecting them as a mismatch, and compute the
    Bayes-optimal files again by exact BP (``board_optimal.recomputed_mismatch``).

    Returns the summary also written to ``out/leaderboard.json``: ``format`` (``BOARD_FORMAT``),
    ``configs`` (per config: ``revision`` and ``tasks``, per task: ``limit``, ``p_star_rule``
    (``board_pstar.p_star_rule``: threshold, chance, whether P* is defined), ``ranking`` (the P* ranking rows),
    ``rows`` (the single-P tables, in rank order), ``curves``), ``rejected`` ([{path,
    reason}]), ``unverified`` ([{path, reason}]: with ``verify``, files whose model could not
    be evaluated again, ranked as reported), ``unused_optimal`` ([{path, reason}]: Bayes-optimal
    files superseded by another of their (config, task), or of a (config, task) without accepted
    results), ``ignored``, ``files`` (paths written). The
    board is rendered into a hidden temporary folder beside ``out``, marked as srhm's, and
    renamed into place (``files.replace_dir``): ``out`` holds the old board or the new one,
    never a mix, also when the work is interrupted. ValueError (see ``check_board_options``)
    before anything is written; ``files.FolderInUse`` when another process writes ``out``
    (``files.claim_output``). An old board is replaced only if it still holds nothing srhm
    did not write when it is replaced (``files.replace_dir``: ValueError).
    """
    results_dir, out = Path(results_dir), Path(out)
    out = check_board_options(results_dir, out, revision, optimal, verify, device)
    with claim_output(out, "leaderboard", replace=True):
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        try:
            stage.chmod(0o777 & ~umask())  # mkdtemp makes 0700; the board follows the umask like its files
            summary = _render(results_dir, out, stage, revision, optimal, verify, device)
            mark_owned(stage, "leaderboard")
            replace_dir(stage, out)
        finally:
            shutil.rmtree(stage, ignore_errors=True)  # gone already after a successful rename
    return summary


def _gather(results_dir: Path, out: Path, revision, optimal, verify: bool, device) -> tuple:
    """(entries, rejected, ignored, limits, unverified, unused): the accepted files (verified when asked), the
    rejections of every kind (a Bayes-optimal file whose figures are not exact inference's, with ``verify``
    computed again; a results file below its limit, ``board_optimal.below_limit``), the JSON files that are
    neither results nor Bayes-optimal, the limits,
    the files whose model could not be evaluated again, the Bayes-optimal files not used (superseded, or
    of a (config, task) without accepted results)."""
    entries, rejected, ignored = collect(results_dir, exclude=out, revision=revision)
    limits, bad_limits, ignored, unused = collect_limits([Path(p) for p in ignored] + candidate_files(optimal), verify)
    entries, below = below_limit(entries, limits)
    rejected += bad_limits + below
    unverified = []
    if verify:
        entries, mismatches, unverified = verify_entries(entries, device)
        rejected += mismatches
    unused += unused_limits(limits, {(e.config, e.task) for e in entries})
    return entries, rejected, ignored, limits, unverified, unused


def _render(results_dir: Path, out: Path, stage: Path, revision, optimal, verify: bool, device) -> dict:
    """Write the board for ``out`` into the folder ``stage``; the summary names the files under ``out``."""
    entries, rejected, ignored, limits, unverified, unused = _gather(
        results_dir, out, revision, optimal, verify, device
    )
    ranked = rank(entries)
    curves = curves_and_pstar(entries, limits)
    ours = our_pstar_points(curves)
    with_laws = {p["config"] for points in ours.values() for p in points}  # configs with a point on the laws
    written: list[str] = []
    summary: dict = {
        "format": dict(BOARD_FORMAT),
        "configs": {},
        "rejected": [dataclasses.asdict(r) for r in rejected],
        "unverified": [dataclasses.asdict(r) for r in unverified],
        "unused_optimal": [dataclasses.asdict(r) for r in unused],
        "ignored": ignored,
        "files": written,
    }
    for config, by_task in ranked.items():
        folder = stage / config
        folder.mkdir(exist_ok=True)
        images, sections = [], []
        for task, by_p in by_task.items():
            limit = limits.get((config, task))
            task_entries = [e for group in by_p.values() for e in group]
            images += _task_plots(folder, config, task, task_entries, curves, limit)
            sections.append(
                {
                    "task": task,
                    "limit": limit,
                    "rule": p_star_rule(config, task, limit),
                    "ranking": ranking_rows(curves, config, task, limit),
                    "rows": table_rows(by_p, curves, config, task, results_dir),
                }
            )
        if config in with_laws:
            images.append("../pstar_laws.png")
        first = next(e for by_p in by_task.values() for group in by_p.values() for e in group)
        rev = dataset_revision(first)[0]  # one revision per config (board_entries.check_revisions)
        write_markdown(folder / "leaderboard.md", config, sections, images, rev)
        write_html(folder / "leaderboard.html", config, sections, images, rev)
        written += [str(out / config / f) for f in ("leaderboard.md", "leaderboard.html")] + [
            str(out / config / i) for i in images if not i.startswith("../")
        ]
        summary["configs"][config] = {
            "revision": rev,
            "tasks": {s["task"]: _task_summary(s, curves, config) for s in sections},
        }
    if with_laws:
        plot_pstar_laws(stage / "pstar_laws.png", ours)
        written.append(str(out / "pstar_laws.png"))
    write_index(stage, ranked, rejected, ours, ignored, results_dir, unverified, unused)
    written += [str(out / name) for name in ("index.md", "index.html", "leaderboard.json")]
    atomic_write(stage / "leaderboard.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _task_summary(section: dict, curves: dict, config: str) -> dict:
    """The ``leaderboard.json`` record of one (config, task): limit, ranking and single-P rows, curves."""
    return {
        "limit": section["limit"],
        "p_star_rule": section["rule"],
        "ranking": [dict(zip(RANKING_COLUMNS, r)) for r in section["ranking"]],
        "rows": [dict(zip(COLUMNS, r)) for r in section["rows"]],
        "curves": {m: dict(info) for (c, t, m), info in curves.items() if (c, t) == (config, section["task"])},
    }


def _task_plots(folder: Path, config: str, task: str, entries: list[Entry], curves: dict, limit) -> list[str]:
    """The figures of one (config, task) in ``folder``: test error vs P and each model's sensitivities;
    their file names (``_<task>`` appended for a task other than class)."""
    suffix = "" if task == "class" else f"_{_slug(task)}"
    images = [f"test_error_vs_P{suffix}.png"]
    plot_test_error(folder / images[0], config, task, entries, curves, limit)
    slugs = unique_slugs(e.model for e in entries)
    for model in sorted(slugs):
        name = f"sensitivity_{slugs[model]}{suffix}.png"
        if plot_sensitivities(folder / name, config, model, [e for e in entries if e.model == model]):
            images.append(name)
    return images
