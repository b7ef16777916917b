"""The ``srhm`` command line: thin click commands over library functions.

Commands that need heavy libraries live in their own modules and are imported only
when invoked (``LazyGroup``), so ``srhm info`` answers at once.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import threading

import click

from .catalog import get_config, list_configs
from .cli_args import config_arg, os_error
from .config import SPLITS, format_count
from .files import FolderInUse
from .version import __version__

#: command name -> "module:attribute" of a click command, imported on first use.
LAZY_COMMANDS = {
    "demo": "srhm_datasets.demo:demo",
    "build": "srhm_datasets.release.cli:build",
    "verify": "srhm_datasets.release.cli:verify",
    "publish": "srhm_datasets.release.cli:publish",
    "train": "srhm_datasets.baselines.cli:train",
    "learning-curve": "srhm_datasets.baselines.cli:learning_curve",
    "evaluate": "srhm_datasets.evaluation.cli:evaluate",
    "leaderboard": "srhm_datasets.evaluation.cli:leaderboard",
    "sweep": "srhm_datasets.sweep.cli:sweep",
    "optimal": "srhm_datasets.optimal:optimal",
}


class LazyGroup(click.Group):
    """A click group that imports a ``LAZY_COMMANDS`` module only when its command runs.

    A ``ConnectionError`` that ends a command (no network, ``HF_ENDPOINT`` down: e.g.
    ``release.load.HubUnreachable``), an output folder another process writes
    (``files.FolderInUse``) and any other ``OSError`` (a full or read-only disk) are one line
    and exit 1, not a traceback. Run as the process's program (``args`` from ``sys.argv``),
    a SIGTERM, SIGINT or SIGHUP that arrives once the command has ended (during the
    interpreter's shutdown) is ignored: a finished command keeps its exit status.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ConnectionError, FolderInUse) as err:
            raise click.ClickException(" ".join(str(err).split()) or type(err).__name__) from None
        except OSError as err:  # what the command created is removed (files.claim_output)
            full = err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
            hint = "free space, or choose another output folder" if full else "choose another output folder"
            message = f"{os_error(err)}; partial output removed, finished files kept: {hint}"
            raise click.ClickException(message) from None

    def main(self, args=None, *rest, **kwargs):
        try:
            return super().main(args, *rest, **kwargs)
        finally:
            if args is None and threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, *EXIT_SIGNALS):
                    signal.signal(sig, signal.SIG_IGN)

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


def _exit_on_signal(signum, frame):
    """SIGTERM / SIGHUP in the srhm process: leave through ``SystemExit(128 + signum)``, so every
    ``finally`` and ``except BaseException`` runs (temp files removed, DataLoader workers shut
    down, nothing half-written). A child that inherited the handler (a forked worker) dies
    of the signal as before."""
    if os.getpid() != _MAIN_PID[0]:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    name = signal.Signals(signum).name
    click.echo(f"srhm: stopped by {name}; partial output removed, finished files kept", err=True)
    raise SystemExit(128 + signum)


_MAIN_PID = [os.getpid()]
#: Signals that end a command cleanly (SIGINT already raises KeyboardInterrupt: "Aborted!", exit 1).
EXIT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def install_signal_handlers(ctx: click.Context) -> None:
    """``_exit_on_signal`` for ``EXIT_SIGNALS`` while the command runs (main thread only), restored after."""
    if threading.current_thread() is not threading.main_thread():
        return
    _MAIN_PID[0] = os.getpid()
    previous = {sig: signal.signal(sig, _exit_on_signal) for sig in EXIT_SIGNALS}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    ctx.call_on_close(restore)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="srhm")
@click.pass_context
def main(ctx):
    """Sparse Random Hierarchy Model datasets: generate, release, load, train, evaluate."""
    install_signal_handlers(ctx)


@main.command()
@click.argument("config", callback=config_arg)
def info(config):
    """Print a config's parameters and derived sizes."""
    cfg = config
    click.echo(f"config              {cfg.name}")
    for key, value in cfg.parameters().items():
        click.echo(f"{key:<20}{value}")
    click.echo(f"{'patch size S':<20}{cfg.S}")
    click.echo(f"{'input length d':<20}{cfg.d}")
    click.echo(f"{'informative':<20}{cfg.num_informative}")
    click.echo(f"{'internal nodes N':<20}{cfg.num_nodes}")
    click.echo(f"{'placements K':<20}{cfg.placements_per_node}")
    P = cfg.data_space_size
    formula = f"{cfg.nc}*{cfg.m * cfg.placements_per_node}**{cfg.num_nodes}"
    click.echo(f"{'data space P_max':<20}{format_count(P)} = {formula} (~2^{P.bit_length() - 1})")
    for split, n in cfg.split_sizes().items():
        click.echo(f"{'rows ' + split:<20}{n}")


@main.command()
def configs():
    """List the catalog: each config's name, parameters and sizes (format.md §1.5)."""
    head = ("L", 3), ("s", 3), ("s0", 4), ("v", 4), ("nc", 4), ("m", 4), ("sp", 3), ("seed", 5), ("d", 6)
    sizes = ("train", 9), ("test", 7), ("probe", 7)
    click.echo("name".ljust(22) + "".join(title.rjust(width) for title, width in head + sizes))
    for name in list_configs():
        cfg = get_config(name)
        values = [cfg.L, cfg.s, cfg.s0, cfg.v, cfg.nc, cfg.m, cfg.sparsity, cfg.seed, cfg.d]
        values += [cfg.split_sizes()[split] for split, _ in sizes]
        click.echo(name.ljust(22) + "".join(str(x).rjust(width) for x, (_, width) in zip(values, head + sizes)))


#: Most rows ``srhm sample`` prints: it is for looking at rows (``srhm build`` writes splits).
MAX_SAMPLE_ROWS = 1000


@main.command()
@click.argument("config", callback=config_arg)
@click.option(
    "--n",
    "n",
    default=5,
    show_default=True,
    type=click.IntRange(1, MAX_SAMPLE_ROWS),
    help=f"Number of rows to print (1 to {MAX_SAMPLE_ROWS}; fewer at the end of the split).",
)
@click.option("--split", default="train", show_default=True, type=click.Choice(SPLITS))
@click.option("--start", default=0, show_default=True, type=click.IntRange(min=0), help="First row index.")
def sample(config, n, split, start):
    """Print a few rows readably (blank shown as _)."""
    from .generate import generate

    cfg = config
    rows = cfg.split_sizes()[split]
    if start >= rows:
        raise click.BadParameter(
            f"{start}: must satisfy 0 <= --start < {rows} (the rows of split {split!r} of {cfg.name})",
            param_hint="'--start'",
        )
    stop = min(start + n, rows)
    batch = generate(cfg, split, start, stop)
    width = len(str(cfg.v - 1))
    for i in range(stop - start):
        tokens = " ".join("_" * width if t == cfg.blank else f"{t:>{width}}" for t in batch["tokens"][i])
        click.echo(f"{split}[{start + i}] label={batch['label'][i]}")
        click.echo(f"  tokens     {tokens}")
        click.echo(f"  latents    {batch['latents'][i].tolist()}")
        click.echo(f"  synonyms   {batch['synonyms'][i].tolist()}")
        click.echo(f"  placements {batch['placements'][i].tolist()}")
