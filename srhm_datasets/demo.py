"""``srhm demo``: the README's main job, end to end on a built-in default config.

1. build a release folder of the ``demo`` config (Parquet, rules, card) and verify it;
2. load it back with ``datasets.load_dataset`` and check rows against the generator;
3. train the CNN baseline briefly on ``train[:P]`` from that release;
4. evaluate the run (test error, synonym and diffeomorphism sensitivities);
5. render the leaderboard of the runs folder.

Every option is checked before step 1 (the training options with ``baselines.train.resolve``).
``--out`` is a folder srhm owns as a demo (``files.check_output_folder``, kind ``demo``:
new, empty, or an earlier demo's holding only ``release/``, ``runs/`` and
``leaderboard/``); running the demo again replaces its own release, run and board, so the
command can be repeated as is.
"""

from __future__ import annotations

import dataclasses

import click
import numpy as np

from .catalog import DEFAULT_CONFIG
from .cli_args import config_arg
from .config import format_count
from .files import check_output_folder, claim_output, mark_owned

#: What ``srhm demo`` writes in its ``--out`` folder.
DEMO_ENTRIES = ("release", "runs", "leaderboard")


@click.command()
@click.option(
    "--config", default=DEFAULT_CONFIG, show_default=True, callback=config_arg, help="Catalog or canonical config name."
)
@click.option(
    "--out",
    default="demo_run",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for release, run and leaderboard.",
)
@click.option(
    "--P", "P", default=1000, show_default=True, type=click.IntRange(min=1), help="Training-set size train[:P]."
)
@click.option("--arch", default="cnn", show_default=True, type=click.Choice(["cnn", "lcn", "fcn"]))
@click.option("--width", default=256, show_default=True, type=click.IntRange(min=1), help="Channels per hidden layer.")
@click.option("--max-steps", default=1000, show_default=True, type=click.IntRange(min=1), help="Step budget.")
def demo(config, out, P, arch, width, max_steps):
    """Build, load, train, evaluate and rank on one small config (default ``demo``)."""
    from .baselines.train import TrainOptions, resolve

    cfg = config
    options = TrainOptions(config=cfg, P=P, arch=arch, width=width, max_steps=max_steps, progress=False)
    try:
        resolve(options)  # every training option, before anything is built
        out = check_output_folder(out, "demo", replace=True)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    with claim_output(out, "demo", replace=True):  # one writer; a failed demo leaves no new folder
        _run_demo(cfg, out, options)


def _run_demo(cfg, out, options) -> None:
    """The five steps of ``demo`` into the folder ``out`` (held by the caller)."""
    import datasets

    from .baselines.train import train
    from .catalog import release_name
    from .evaluation.evaluate import evaluate_run, format_evaluation
    from .evaluation.leaderboard import build_leaderboard
    from .generate import generate
    from .release.build import build_release
    from .release.verify import verify_release

    name, P, arch, width, max_steps = release_name(cfg), options.P, options.arch, options.width, options.max_steps
    mark_owned(out, "demo", list(DEMO_ENTRIES))
    release, run = out / "release", out / "runs" / f"{name}-{arch}-P{P}"
    click.echo(f"[1/5] building release {release} for {name} ({cfg.name}), P_max={format_count(cfg.data_space_size)}")
    build_release([cfg], release, overwrite=True, progress=False)
    report = verify_release(release)
    click.echo(f"      srhm verify: {'OK' if report.ok else 'FAILED'} ({len(report.checks)} checks)")
    if not report.ok:
        raise click.ClickException(report.format())

    click.echo(f"[2/5] load_dataset({str(release)!r}, {name!r})")
    ds = datasets.load_dataset(str(release), name)
    click.echo(f"      splits {dict(ds.num_rows)}; features: {', '.join(ds['train'].features)}")
    rows = ds["train"].select(range(100)).with_format("numpy")[:]
    expected = generate(cfg, "train", 0, 100)
    same = all(
        np.array_equal(np.stack(list(rows[c])) if rows[c].dtype == object else rows[c], expected[c]) for c in expected
    )
    click.echo(f"      first 100 train rows equal generate(): {same}")
    if not same:
        raise click.ClickException("loaded rows differ from the generator")

    click.echo(f"[3/5] training {arch} (width {width}) on train[:{P}] for at most {max_steps} steps")
    results = train(dataclasses.replace(options, out=str(run), data=str(release), overwrite=True))
    click.echo(
        f"      best test error {results['best_test_error']:.4f} (chance {1 - 1 / cfg.nc:.2f}), "
        f"stopped: {results['training']['stop_reason']}"
    )

    click.echo(f"[4/5] srhm evaluate {run}")
    evaluated = evaluate_run(run)
    click.echo(format_evaluation(evaluated["evaluation"], title=f"{name} {arch} P={P}"))

    board = out / "leaderboard"
    click.echo(f"[5/5] srhm leaderboard {run.parent} --out {board}")
    summary = build_leaderboard(run.parent, board)
    click.echo(
        f"      wrote {len(summary['files'])} files, e.g. {board / 'index.md'} and "
        f"{board / cfg.name / 'leaderboard.md'}"
    )
