"""Copy what is committed of the baseline sweeps: ``baselines/runs/<sweep>/`` -> ``baselines/results/<sweep>/``.

Usage (from the repository root)::

    python baselines/collect.py [--runs baselines/runs] [--out baselines/results] [--max-plot-kb 100]

For every sweep folder under RUNS (a folder holding ``plan.json``, format.md §14.3), the copy
keeps the sweep folder's layout, so that the package's own readers work on it
(``sweep.plan.read_plan``, ``sweep.run.pstar_summary``, ``srhm leaderboard``):

- ``sweep.yaml``, ``plan.json``;
- for each job that is done (``srhm sweep status``: every run finished and evaluated, its
  ``summary.json`` written): ``runs/<job>/P<P>/results.json`` (with the evaluation;
  validated and written as compact JSON, the same object in a fifth of the bytes),
  ``runs/<job>/summary.json``, ``runs/<job>/learning_curve.png`` (when at most
  ``--max-plot-kb``) and the job's record ``jobs/<job>.json`` (its attempts' start times);
- ``pstar.json`` and ``pstar.md`` (both) once every job of the sweep is done.

Never copied: checkpoints, owner markers, logs, the sweep's own leaderboard, the lock. Every
file is written atomically (``files.atomic_write``) and only when its content changed; nothing
is ever deleted, and nothing is written into an OUT/<sweep> that is neither new, empty nor an
earlier collection (one with a ``plan.json`` and no srhm owner marker). Jobs not done are
listed with their state; files under OUT/<sweep> that this call did not copy (left from an
older collection) are listed as stale, not removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import click

from srhm_datasets.config import require
from srhm_datasets.files import MARKER, FolderInUse, atomic_write, folder_lock, read_marker
from srhm_datasets.protocol import PLOT_FILE, RESULTS_FILE, SUMMARY_FILE
from srhm_datasets.results import read_results
from srhm_datasets.sweep.plan import PLAN, PSTAR_JSON, PSTAR_MD, SWEEP_COPY, record_path, run_dir
from srhm_datasets.sweep.run import sweep_status

#: Learning-curve plots larger than this are not copied (``--max-plot-kb``).
MAX_PLOT_KB = 100


@dataclasses.dataclass
class SweepCopy:
    """What one sweep folder gave: the files to copy (relative paths) and the jobs not done."""

    name: str
    files: list[str]
    done: int
    total: int
    incomplete: list[tuple[str, str, str]]  # (job id, state, reason)
    written: int = 0
    stale: list[str] = dataclasses.field(default_factory=list)


def sweep_folders(runs: Path) -> list[Path]:
    """The sweep folders directly under ``runs`` (those holding ``plan.json``), sorted by name."""
    return sorted(p for p in runs.iterdir() if p.is_dir() and (p / PLAN).is_file())


def job_files(src: Path, job, max_plot_bytes: int) -> list[str]:
    """Relative paths of a done job's files to commit: its runs' results, summary, small plot, record."""
    curve = job.folder(src)
    files = [run_dir(src, job, P) / RESULTS_FILE for P in job.Ps] + [curve / SUMMARY_FILE]
    plot = curve / PLOT_FILE
    if plot.is_file() and plot.stat().st_size <= max_plot_bytes:
        files.append(plot)
    record = record_path(src, job)
    if record.is_file():
        files.append(record)
    return [f.relative_to(src).as_posix() for f in files]


def plan_copy(src: Path, max_plot_bytes: int) -> SweepCopy:
    """The files of sweep folder ``src`` to commit (see the module docstring) and its jobs not done."""
    states = sweep_status(src)
    done = [s for s in states if s.state == "done"]
    files = [PLAN, SWEEP_COPY] + [f for s in done for f in job_files(src, s.job, max_plot_bytes)]
    pstar = [PSTAR_JSON, PSTAR_MD]
    if len(done) == len(states) and all((src / name).is_file() for name in pstar):
        files += pstar
    incomplete = [(s.job.id, s.state, s.reason) for s in states if s.state != "done"]
    return SweepCopy(src.name, files, len(done), len(states), incomplete)


def committed_bytes(path: Path) -> bytes:
    """The content committed for ``path``: a ``results.json`` validated (``results.read_results``) and
    written as compact JSON (a fifth of the size of the indented original, the same object); any
    other file as it is."""
    if path.name == RESULTS_FILE:
        return (json.dumps(read_results(path), separators=(",", ":"), allow_nan=False) + "\n").encode()
    return path.read_bytes()


def copy_files(src: Path, dst: Path, files: list[str]) -> int:
    """Copy ``files`` (relative paths) from ``src`` to ``dst`` atomically (``committed_bytes``), each
    only when it differs; returns how many were written."""
    written = 0
    for rel in files:
        data = committed_bytes(src / rel)
        target = dst / rel
        if not target.is_file() or target.read_bytes() != data:
            atomic_write(target, data)
            written += 1
    return written


def stale_files(dst: Path, files: list[str]) -> list[str]:
    """Files under ``dst`` that are not in ``files`` (hidden ones skipped): left by an older collection."""
    if not dst.is_dir():
        return []
    keep = set(files)
    found = (p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    return sorted(f for f in found if f not in keep and not any(part.startswith(".") for part in f.split("/")))


def check_folders(runs: Path, out: Path) -> tuple[Path, Path]:
    """``runs`` an existing folder, ``out`` neither inside it nor holding it (ValueError otherwise)."""
    runs, out = runs.absolute(), out.absolute()
    require(runs.is_dir(), "runs", str(runs), "an existing folder of srhm sweep folders")
    require(not out.exists() or out.is_dir(), "out", str(out), "a folder (or a path to create)")
    overlap = out == runs or runs in out.parents or out in runs.parents
    require(not overlap, "out", str(out), f"outside --runs {str(runs)!r} and not holding it")
    return runs, out


def check_sweeps(runs: Path, sweeps: list[Path]) -> None:
    """At least one sweep folder under ``runs`` (ValueError naming runs; a sweep folder itself is named as such)."""
    bound = "a folder holding srhm sweep folders (<sweep>/plan.json)"
    if (runs / PLAN).is_file():
        bound += f"; {runs.name} is a sweep folder itself: pass its parent"
    require(bool(sweeps), "runs", str(runs), bound)


def check_target(dst: Path) -> None:
    """``dst`` (``out/<sweep>``) new, empty, or an earlier collection: a folder with a ``plan.json`` and no
    srhm owner marker (a sweep folder, a run, a release carry one). ValueError naming out otherwise: a
    collection never writes into a folder it did not make. ``plan_copy`` lists plan.json first, so an
    interrupted collection is still recognised."""
    earlier = (dst / PLAN).is_file() and read_marker(dst) is None
    ok = not dst.exists() or (dst.is_dir() and (earlier or not any(dst.iterdir())))
    bound = f"a folder whose {dst.name}/ is new, empty or an earlier collection (plan.json, no {MARKER})"
    require(ok, "out", str(dst.parent), bound)


def collect(runs: str | Path, out: str | Path, max_plot_kb: int = MAX_PLOT_KB) -> list[SweepCopy]:
    """Copy every sweep folder of ``runs`` into ``out/<sweep>`` (module docstring); returns what was done.

    ValueError (the package's form) for a missing ``runs`` or one without sweep folders, an
    ``out`` overlapping it or whose ``out/<sweep>`` is neither new, empty nor an earlier
    collection (``check_target``), or ``max_plot_kb`` < 0, before anything is written;
    ``files.FolderInUse`` when another process writes an ``out/<sweep>``.
    """
    runs, out = check_folders(Path(runs), Path(out))
    require(isinstance(max_plot_kb, int) and max_plot_kb >= 0, "max_plot_kb", max_plot_kb, "an int >= 0")
    sources = sweep_folders(runs)
    check_sweeps(runs, sources)
    with contextlib.ExitStack() as held:
        for src in sources:  # one writer per OUT/<sweep> (files.folder_lock), checked under its lock
            held.enter_context(folder_lock(out / src.name))
            check_target(out / src.name)
        copies = [plan_copy(src, max_plot_kb * 1000) for src in sources]
        for c in copies:
            c.written = copy_files(runs / c.name, out / c.name, c.files)
            c.stale = stale_files(out / c.name, c.files)
    return copies


def report(copies: list[SweepCopy], out: Path) -> str:
    """One paragraph per sweep: done jobs, files written, the jobs not done, stale files."""
    lines = []
    for c in copies:
        lines.append(
            f"{c.name}: {c.done}/{c.total} jobs done, {len(c.files)} files ({c.written} written) in {out / c.name}"
        )
        lines += [f"  not done: {job} ({state}: {reason})" for job, state, reason in c.incomplete]
        if c.incomplete:
            lines.append("  pstar.json/pstar.md: not copied until every job is done")
        elif PSTAR_JSON not in c.files:
            lines.append("  pstar.json/pstar.md: not written yet by the sweep (srhm sweep again on it writes them)")
        lines += [f"  stale (not from this collection, left in place): {f}" for f in c.stale]
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--runs",
    default="baselines/runs",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder of srhm sweep folders.",
)
@click.option(
    "--out",
    default="baselines/results",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where the committed copy goes (one folder per sweep).",
)
@click.option(
    "--max-plot-kb",
    default=MAX_PLOT_KB,
    show_default=True,
    type=int,
    help="Learning-curve plots above this size (kB) are not copied.",
)
def main(runs: Path, out: Path, max_plot_kb: int) -> None:
    """Copy each sweep folder under --runs into --out/<sweep>: the done jobs' results.json (compact JSON),
    summary.json, small learning_curve.png and job records, sweep.yaml, plan.json, and pstar.json /
    pstar.md once every job is done. Never checkpoints; nothing is deleted."""
    try:
        copies = collect(runs, out, max_plot_kb)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    except (FolderInUse, OSError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(report(copies, out))
    if any(c.incomplete for c in copies):
        click.echo(f"incomplete: {sum(len(c.incomplete) for c in copies)} job(s) not done yet", err=True)


if __name__ == "__main__":
    main()
