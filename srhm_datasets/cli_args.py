"""Arguments shared by the ``srhm`` commands (click callbacks), below every command module."""

from __future__ import annotations

import click

from .catalog import get_config


def os_error(err: OSError) -> str:
    """One line for an ``OSError``: its reason and the path it concerns."""
    reason = err.strerror or str(err) or type(err).__name__
    return f"{reason}: {err.filename}" if err.filename else reason


def config_arg(ctx, param, value):
    """click callback: turn a CONFIG string into an SRHMConfig, as a usage error if bad."""
    try:
        if isinstance(value, tuple):
            return tuple(get_config(v) for v in value)
        return None if value is None else get_config(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None


def _sbatch(ctx, param, values):
    """``--sbatch KEY=VALUE`` (repeatable) -> {KEY: VALUE}."""
    options = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"{item!r} is not KEY=VALUE (an sbatch option without its dashes, e.g. qos=high)", ctx=ctx, param=param
            )
        options[key.strip().lstrip("-")] = value
    return options or None


#: The SLURM options of ``srhm sweep`` and ``srhm build`` (None when not given), passed as keywords of these names.
SLURM_OPTIONS = (
    click.option("--partition", default=None, help="slurm: partition [default: the cluster's]."),
    click.option(
        "--time-min", type=click.IntRange(min=1), default=None, help="slurm: time limit per job, minutes [default: 60]."
    ),
    click.option("--cpus-per-task", type=click.IntRange(min=1), default=None, help="slurm: CPUs per job [default: 1]."),
    click.option("--gpus-per-node", type=click.IntRange(min=0), default=None, help="slurm: GPUs per job [default: 0]."),
    click.option(
        "--mem-gb", type=click.FloatRange(min=0, min_open=True), default=None, help="slurm: memory per job, GB."
    ),
    click.option("--account", default=None, help="slurm: account to charge."),
    click.option(
        "--array-parallelism",
        type=click.IntRange(min=1),
        default=None,
        help="slurm: most jobs of the array running at once [default: 64].",
    ),
    click.option(
        "--sbatch",
        "sbatch",
        multiple=True,
        callback=_sbatch,
        metavar="KEY=VALUE",
        help="slurm: extra sbatch option, repeatable (e.g. --sbatch qos=high --sbatch constraint=a100).",
    ),
)


def with_slurm_options(command):
    """Decorator: add :data:`SLURM_OPTIONS` to a click command."""
    for option in reversed(SLURM_OPTIONS):
        command = option(command)
    return command


#: ``--poll``: seconds between looks at the SLURM queue while ``--wait`` waits.
poll_option = click.option(
    "--poll",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="slurm --wait: seconds between looks at the queue.",
)


def echo_submitted(slurm_ids: list[str], logs) -> None:
    """Say which SLURM jobs were submitted and where their logs go."""
    click.echo(f"submitted {len(slurm_ids)} job(s) to SLURM: {', '.join(slurm_ids)}; logs in {logs}")


def slurm_usage(executor: str, options: dict, wait: bool) -> None:
    """UsageError when SLURM options or ``--wait`` are given without ``--executor slurm``."""
    given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
    if executor != "slurm" and (given or wait):
        raise click.UsageError(f"{', '.join(given + ['--wait'] * wait)} go(es) with --executor slurm")
