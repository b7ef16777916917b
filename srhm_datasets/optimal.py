"""``srhm optimal``: the Bayes-optimal figures of a task on a split, by exact BP (format.md §16).

The figures are ``bayes_optimal.optimal_figures``'s (re-exported here with ``task_evidence``,
``check_options`` and ``BLOCK``); this module is the command that prints and writes them.
"""

from __future__ import annotations

import json

import click

from .bayes_optimal import BLOCK, check_options, optimal_figures, task_evidence
from .cli_args import config_arg
from .config import SPLITS
from .files import atomic_write
from .inference import FIGURES
from .tasks import TASKS

__all__ = ["BLOCK", "check_options", "optimal", "optimal_figures", "task_evidence"]


@click.command()
@click.argument("config", callback=config_arg)
@click.option("--task", default="class", show_default=True, type=click.Choice(TASKS))
@click.option(
    "--context", type=int, default=None, help="last: the window j-t+1..j ending at the masked position j (1 <= t <= d)."
)
@click.option("--mask-rate", type=float, default=None, help="mlm: probability of masking an informative token.")
@click.option("--noise", type=float, default=0.0, show_default=True, help="eps of the symmetric channel, 0 <= eps < 1.")
@click.option("--split", default="test", show_default=True, type=click.Choice(SPLITS))
@click.option("--rows", type=int, default=None, help="First rows of the split scored [default: all].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the figures here.")
def optimal(config, task, context, mask_rate, noise, split, rows, json_path):
    """Print the Bayes-optimal error and cross-entropy of a task on a split (exact BP)."""
    try:
        check_options(config, task, split, rows, context, mask_rate, noise)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    result = optimal_figures(config, task, split, rows, context, mask_rate, noise)
    for key in ("config", "task", "split", "context", "mask_rate", "noise") + FIGURES:
        value = result[key]
        click.echo(f"{key:<26}{value:.6g}" if isinstance(value, float) else f"{key:<26}{value}")
    if json_path:
        atomic_write(json_path, json.dumps(result, indent=2) + "\n")
