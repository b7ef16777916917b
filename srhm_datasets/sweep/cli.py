"""``srhm sweep FILE --out DIR`` and ``srhm sweep status DIR`` (a click group, loaded lazily by ``srhm``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli_args import echo_submitted, poll_option, slurm_usage, with_slurm_options
from ..executors import EXECUTORS


class SweepGroup(click.Group):
    """A group whose default command is ``run``: ``srhm sweep FILE ...`` is ``srhm sweep run FILE ...``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=SweepGroup)
def sweep():
    """Run a grid of learning curves (a sweep file) locally or on SLURM; report on a sweep folder.

    \b
    srhm sweep FILE --out DIR [--executor local|slurm] [--wait]   run what is missing
    srhm sweep status DIR                                          done / running / failed / pending
    """


@sweep.command("run")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Sweep folder (runs, job records, logs, leaderboard, P* summary); resumed when it exists.",
)
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="local: a process pool here (blocks). slurm: one job array through submitit (returns after submitting).",
)
@click.option("--wait", is_flag=True, help="slurm: wait for the jobs to leave the queue, then evaluate and summarise.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="local: worker processes [default: sweep file, else CPUs].",
)
@with_slurm_options
@poll_option
@click.option("--progress/--no-progress", default=True, show_default=True)
def run(file, out, executor, wait, workers, poll, progress, **slurm):
    """Run the sweep of FILE in --out: skip what is done, run the rest, then evaluate and summarise.

    Every job is one learning curve (config x arch x width x lr x seed of the sweep file).
    Finished runs with the same settings are skipped; a killed or failed job is redone
    (reported first, with its error or the end of its SLURM log); a job alive in the SLURM
    queue is left alone. Once every job is done, every run is evaluated (S and D) and
    --out gets leaderboard/ and pstar.md. The slurm options override the sweep file's executor.slurm.
    """
    from .run import run_sweep

    slurm_usage(executor, slurm, wait)
    if executor == "slurm" and workers is not None:
        raise click.UsageError("--workers goes with --executor local")
    options = {"workers": workers} if executor == "local" else slurm
    try:
        report = run_sweep(file, out, executor=executor, wait=wait, options=options, progress_bar=progress, poll_s=poll)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    except RuntimeError as err:  # SLURM refused the submission
        raise click.ClickException(str(err)) from None
    for s in report.before:
        if s.state == "failed":
            click.echo(f"redo {s.job.id}: {s.reason}")
    if report.slurm_ids:
        echo_submitted(report.slurm_ids, out / "logs")
    elif report.executor == "local":
        click.echo(f"ran {len(report.started)} job(s) on the local pool")
    for job_id, error in report.errors.items():
        click.echo(f"FAILED {job_id}: {error.strip().splitlines()[-1]}", err=True)
    _print_counts(report.after)
    if report.finished is not None:
        click.echo((Path(report.finished["pstar"])).read_text(encoding="utf-8"))
        click.echo(f"leaderboard: {report.finished['leaderboard']}; P* summary: {report.finished['pstar']}")
        rejected = report.finished["rejected"]
        if rejected:  # e.g. evaluations on part of the splits: the board ranks whole-split ones (format.md §12.4)
            first = rejected[0]
            click.echo(
                f"leaderboard: {len(rejected)} result(s) rejected, e.g. {first['path']}: {first['reason']}", err=True
            )
    elif not any(s.live for s in report.after):
        click.echo(f"not every job is done: see `srhm sweep status {out}`; rerun this command to redo the failed ones")
    if any(s.state == "failed" for s in report.after):
        raise SystemExit(1)


@sweep.command("status")
@click.argument("out", type=click.Path(file_okay=False, exists=True, path_type=Path))
def status(out):
    """Print every job of the sweep folder OUT: done / running / failed / pending, with the reason."""
    from .run import sweep_status

    try:
        found = sweep_status(out)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    for s in found:
        click.echo(f"{s.state:<8} {s.job.id}  {s.reason}")
    _print_counts(found)


def _print_counts(found) -> None:
    from .plan import STATES

    counts = {state: sum(s.state == state for s in found) for state in STATES}
    click.echo(", ".join(f"{n} {state}" for state, n in counts.items()) + f" ({len(found)} jobs)")


__all__ = ["sweep"]

if __name__ == "__main__":  # python -m srhm_datasets.sweep.cli
    sweep()
