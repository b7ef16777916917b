"""``srhm train`` and ``srhm learning-curve``: thin click commands over ``train`` and ``run_learning_curve``.

Every training option is derived from its one declaration in ``protocol.OPTIONS`` (flag, type,
default, help), so this module imports no torch: the commands import ``train`` and
``learning_curve`` (torch) when they run, for the start-up time of ``srhm --help``.
"""

from __future__ import annotations

import os

import click
from click.core import ParameterSource

from ..cli_args import config_arg
from ..protocol import EPSILON_STAR, OPTIONS, Option, TrainOptions


def _click_option(o: Option):
    """The click option of the declared option ``o`` (``protocol.OPTIONS``): its flag, type, default, help."""
    flag = o.flag or "--" + o.name.replace("_", "-")
    shown = {"show_default": True} if o.default is not None else {}
    if o.cli == "flag":
        return click.option(flag, o.name, is_flag=True, default=o.default, help=o.help)
    if o.cli == "pair":
        return click.option(f"{flag}/--no-{flag[2:]}", o.name, default=o.default, help=o.help, **shown)
    kind = click.Choice(o.choices) if o.choices is not None else o.kind
    return click.option(flag, o.name, type=kind, default=o.default, help=o.help, **shown)


def _training_options(f):
    """Options shared by ``train`` and ``learning-curve``: ``--config`` and every option of ``OPTIONS``."""
    options = [
        click.option("--config", required=True, callback=config_arg, help="Catalog name or canonical config name."),
        *[_click_option(o) for o in OPTIONS if o.cli is not None],
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _options(kw, P, out):
    """The ``TrainOptions`` of the command's arguments ``kw`` with ``P`` and ``out``, after the options typed on the
    command line are checked to apply to the run (``train.check_scopes``: ``--momentum 0.9 --optimizer adamw``
    is refused like ``--momentum 0.5 --optimizer adamw``)."""
    from .train import check_scopes

    opt = TrainOptions(
        config=kw["config"],
        P=P,
        out=out,
        overwrite=kw.get("overwrite", False),
        **{o.name: kw[o.name] for o in OPTIONS if o.cli is not None},
    )
    source = click.get_current_context().get_parameter_source
    typed = [o.name for o in OPTIONS if o.cli is not None and source(o.name) is ParameterSource.COMMANDLINE]
    check_scopes(opt, given=typed)
    return opt


@click.command()
@_training_options
@click.option("--P", "P", type=int, required=True, help="Training-set size: train[:P].")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Run folder (results.json, checkpoint.pt)."
)
@click.option("--overwrite", is_flag=True, help="Replace a finished run already in --out (refused otherwise).")
def train(**kw):
    """Train a reference network (CNN, LCN, FCN, transformer) or your model (--factory) on train[:P] of CONFIG.

    SGD (momentum 0.9; AdamW for the transformer; or --optimizer) on cross-entropy over the task's
    scored targets at a constant learning rate (lr*width for the CNN, LCN, FCN), until the
    train loss falls below --loss-threshold or the step budget is spent; keeps the
    checkpoint with the lowest test error. Launch with torchrun for data parallelism.
    checkpoint.pt and results.json are written together once the results validate; a
    folder that already holds a finished run is refused unless --overwrite.
    """
    from .train import train as run

    try:
        results = run(_options(kw, kw["P"], kw["out"]))
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    t = results["training"]
    click.echo(
        f"{results['dataset']['config']} {results['model'].get('name', results['model']['arch'])} P={results['P']}: "
        f"best test error {results['best_test_error']:.4f}, final {results['final_test_error']:.4f}, "
        f"stop {t['stop_reason']} after {t['steps']} steps, {t['wall_time_s']:.1f} s, "
        f"{t['samples_per_s']:.0f} samples/s on {t['device']}"
    )


def _seeds_arg(ctx, param, value):
    """``--seeds 0,1,2`` as a list of ints (None when not given); their bounds are checked by the curve."""
    if value is None:
        return None
    try:
        return [int(seed) for seed in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: must be comma-separated int seeds, e.g. 0,1,2") from None


@click.command("learning-curve")
@_training_options
@click.option("--P-min", "P_min", type=int, required=True, help="Smallest training-set size.")
@click.option("--P-max", "P_max", type=int, required=True, help="Largest training-set size (<= train split size).")
@click.option("--points", type=int, default=8, show_default=True, help="Number of log-spaced P values.")
@click.option("--threshold", type=float, default=EPSILON_STAR, show_default=True, help="Test error defining P*.")
@click.option("--metric", type=click.Choice(["best", "final"]), default="best", show_default=True)
@click.option(
    "--seeds",
    callback=_seeds_arg,
    default=None,
    metavar="S,S,...",
    help="Seeds of the runs, comma-separated (runs in seed<S>/P<P>/; not with --seed) "
    "[default: --seed, runs in P<P>/].",
)
@click.option(
    "--group-size",
    type=int,
    default=None,
    help="Runs trained at once as one stacked model (each the same run as srhm train makes) [default: "
    "automatic, 16 on CUDA, on a CPU by the network's size]; 1 trains one run after another. "
    "Always 1 under torchrun (WORLD_SIZE > 1).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder of run folders P<P>/ (seed<S>/P<P>/ for several seeds), summary.json, learning_curve.png.",
)
def learning_curve(**kw):
    """Train at log-spaced P for every seed (resumable), estimate P* at test error --threshold, plot error vs P.

    The runs still to train are trained in groups of --group-size, one stacked model
    per group. A finished run in --out is reused only if it was trained with the same
    settings (config, model or factory, lr and its scaling, optimiser, seed, task, encoding,
    budget, ...: every option that defines a run) and, with --factory, the same source of the
    factory's module; otherwise the command stops and names the differing setting: use a new
    --out for another curve.
    """
    from .learning_curve import run_learning_curve

    _check_seeds(kw)
    try:
        summary = run_learning_curve(
            _options(kw, kw["P_max"], None),
            kw["out"],
            kw["P_min"],
            kw["P_max"],
            kw["points"],
            threshold=kw["threshold"],
            metric=kw["metric"],
            group_size=kw["group_size"],
            seeds=kw["seeds"],
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 reports
        _report_curve(summary)


def _check_seeds(kw) -> None:
    """``--seed`` and ``--seeds`` name the seeds of the runs two ways: given both, the command stops
    (a usage error naming both; ``--seed 0`` included, though it is the default)."""
    source = click.get_current_context().get_parameter_source("seed")
    if kw["seeds"] is not None and source is not ParameterSource.DEFAULT:
        seeds = ",".join(map(str, kw["seeds"]))
        raise click.UsageError(
            f"--seed {kw['seed']} and --seeds {seeds} both give the seeds of the runs: use --seeds alone "
            "(runs in seed<S>/P<P>/) or --seed alone (runs in P<P>/)"
        )


def _report_curve(summary: dict) -> None:
    """One line per run, P* (with several seeds: of the mean curve, and per seed) and the arch's law."""
    metric, several = summary["metric"], len(summary["seeds"]) > 1
    for r in summary["runs"]:
        seed = f"seed {r['seed']}  " if several else ""
        click.echo(
            f"{seed}P={r['P']:>8}  {metric} test error {r[metric + '_test_error']:.4f}  "
            f"({r['stop_reason']}{', skipped' if r['skipped'] else ''})"
        )
    law = f"{summary['law']} = {summary['law_x']:.4g}" if summary["law_x"] is not None else "no law for this arch"
    mean = " of the mean over seeds" if several else ""
    click.echo(f"P*{mean} (test error {summary['threshold']:g}) = {_p_star_text(summary)}; {law}")
    if several:
        spread = summary["P_star_seeds"]
        per_seed = ", ".join(f"seed {p['seed']}: {_p_star_text(p)}" for p in summary["P_star_per_seed"])
        click.echo(
            f"P* per seed: {per_seed}; {spread['crossed']}/{len(summary['seeds'])} crossed, geometric mean "
            f"{_p(spread['geomean'])}, min {_p(spread['min'])}, max {_p(spread['max'])}"
        )


def _p_star_text(est: dict) -> str:
    """P* as the leaderboard prints it (``board_render.fmt_p``), else its status (``above_range``, ...)."""
    return _p(est["P_star"]) if est["P_star"] is not None else est["P_star_status"]


def _p(value) -> str:
    """A P* as the leaderboard prints it: an integer to three significant digits (``board_render.fmt_p``); ``-``
    for none."""
    from ..evaluation.board_render import fmt_p

    return "-" if value is None else fmt_p(value)
