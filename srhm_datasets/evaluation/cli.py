"""``srhm evaluate`` and ``srhm leaderboard`` (click commands, loaded lazily by ``srhm``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..catalog import get_config
from ..protocol import ENCODINGS, FORWARD_BYTES, RESULTS_FILE
from ..tasks import TASKS


def _layers(ctx, param, value):
    if value is None:
        return None
    names = [x.strip() for x in value.split(",") if x.strip()]
    if not names:
        raise click.BadParameter("give at least one layer name", ctx=ctx, param=param)
    return names


def _as_click_error(err: ValueError) -> click.ClickException:
    """A bad option (the package's "invalid parameter NAME=VALUE: must satisfy BOUND") is a usage
    error; any other ValueError (a results file or checkpoint that does not fit) a plain error."""
    message = str(err)
    return click.UsageError(message) if message.startswith("invalid parameter ") else click.ClickException(message)


def _task_option(task, context, mask_rate, noise) -> dict | None:
    """``evaluate_factory``'s ``task`` from the options (None when none is given: the submission's task)."""
    if (task, context, mask_rate, noise) == (None, None, None, None):
        return None
    return {"name": task or "class", "context": context, "mask_rate": mask_rate, "noise": noise}


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--data",
    "data",
    default=None,
    metavar="DIR_OR_REPO",
    help="Release folder or Hub dataset repo for the test and probe splits (default: the run's, else the generator).",
)
@click.option("--revision", default=None, help="Hub revision (tag, branch, commit) of --data.")
@click.option(
    "--probe-source",
    type=click.Choice(["release", "generator"]),
    default=None,
    help="Where the probe points come from (default: release when there is one, else generator). "
    "Both give the same points.",
)
@click.option(
    "--factory",
    default=None,
    metavar="MODULE:FUNCTION",
    help="Evaluate your own model: an importable function taking the SRHMConfig and returning an nn.Module.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="With --factory: a state dict (torch.save) to load into the model (default for a submission evaluated "
    "again: the one it was evaluated with, in its folder).",
)
@click.option(
    "--config",
    "config_name",
    default=None,
    metavar="CONFIG",
    help="With --factory and no results.json yet: the config (catalog or canonical name).",
)
@click.option(
    "--P",
    "P",
    type=click.IntRange(min=1),
    default=None,
    help="With --factory and no results.json yet: the training-set size (1 <= P <= the config's train size).",
)
@click.option("--name", default=None, help="With --factory: the model's display name on the leaderboard.")
@click.option("--arch", default=None, help="With --factory: an architecture label (default 'custom').")
@click.option(
    "--encoding",
    type=click.Choice(ENCODINGS),
    default=None,
    help="Input encoding for --factory models (default: a submission's recorded one, else whiten); runs use their own.",
)
@click.option(
    "--task",
    type=click.Choice(TASKS),
    default=None,
    help="With --factory and no results.json yet: the task your model predicts (default class; format.md §15); "
    "the test error is this task's. A run folder and a submission name their own.",
)
@click.option(
    "--context",
    type=int,
    default=None,
    help="With --task last: the window j-t+1..j ending at the masked position j (1 <= t <= d).",
)
@click.option("--mask-rate", type=float, default=None, help="With --task mlm: masking probability (default 0.15).")
@click.option("--noise", type=float, default=None, help="With --factory: eps of the task's input noise, 0 <= eps < 1.")
@click.option(
    "--layers",
    callback=_layers,
    default=None,
    metavar="NAME,NAME,...",
    help="Layers to measure (module names, 'output', 'input'); default: a submission's recorded ones, else the "
    "model's hidden layers and output.",
)
@click.option(
    "--num-test",
    type=click.IntRange(min=1),
    default=None,
    help="Use only the first N test points, 1 <= N <= test split size (default: the whole test split).",
)
@click.option(
    "--num-probe",
    type=click.IntRange(min=2),
    default=None,
    help="Use only the first N probe points, 2 <= N <= probe split size (default: all).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help=f"Most rows per forward pass (fewer when their encoded input would pass {FORWARD_BYTES >> 20} MiB).",
)
@click.option("--device", default=None, help="cpu, cuda, cuda:N or mps (default: cuda, then mps, else cpu).")
@click.option("--no-write", is_flag=True, help="Print only; leave results.json unchanged.")
def evaluate(
    run_dir,
    data,
    revision,
    probe_source,
    factory,
    checkpoint,
    config_name,
    P,
    name,
    arch,
    encoding,
    task,
    context,
    mask_rate,
    noise,
    layers,
    num_test,
    num_probe,
    batch_size,
    device,
    no_write,
):
    """Add test error and the S and D tables to RUN_DIR/results.json, and print them.

    RUN_DIR is a run folder of `srhm train` (its checkpoint must match its results); or,
    with --factory, the folder where your model's results.json is written (created if
    needed) for a leaderboard submission: never a `srhm train` run folder. A submission
    evaluated again (the same factory, its code unchanged) keeps its task, and the options
    not given are those it was evaluated with: state dict, encoding, layers, release.
    The test error is that of the model's task (a run's, or --task with its options), on the
    test rows with the task's key 0, as training scores them. Undefined quantities (m = 1 for
    synonyms, K = 1 for diffeomorphisms, both for a task other than class) are printed as
    "undefined" and stored as null.
    """
    from . import evaluate as ev
    from .board_entries import results_task

    options = {"num_test": num_test, "num_probe": num_probe, "batch_size": batch_size, "device": device}
    try:
        if factory is None:
            for flag, value in (
                ("--checkpoint", checkpoint),
                ("--config", config_name),
                ("--P", P),
                ("--name", name),
                ("--arch", arch),
                ("--encoding", encoding),
                ("--task", task),
                ("--context", context),
                ("--mask-rate", mask_rate),
                ("--noise", noise),
                ("--layers", layers),
            ):
                if value is not None:
                    raise click.UsageError(f"{flag} goes with --factory (a run folder names its own model)")
            results = ev.evaluate_run(
                run_dir, data=data, revision=revision, probe_source=probe_source, write=not no_write, **options
            )
        else:
            results = ev.evaluate_factory(
                run_dir,
                factory,
                checkpoint=checkpoint,
                config=config_name,
                P=P,
                name=name,
                arch=arch,
                encoding=encoding,
                layers=layers,
                data=data,
                revision=revision,
                probe_source=probe_source,
                task=_task_option(task, context, mask_rate, noise),
                write=not no_write,
                **options,
            )
    except click.ClickException:
        raise
    except ValueError as err:
        raise _as_click_error(err) from None
    except (FileNotFoundError, TypeError, ImportError, KeyError, RuntimeError) as err:
        raise click.ClickException(str(err)) from None
    model = results["model"].get("name") or results["model"].get("arch")
    title = f"{results['dataset']['config']}  P={results.get('P')}  model={model}"
    task_label = results_task(results, get_config(results["dataset"]["config"]))
    click.echo(ev.format_evaluation(results["evaluation"], title=title, task=task_label))
    if not no_write:
        click.echo(f"\nwrote {run_dir / RESULTS_FILE}")


@click.command()
@click.argument("results_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (Markdown, HTML, PNG, leaderboard.json).",
)
@click.option(
    "--revision",
    default=None,
    help="Reference dataset revision for every config (default: the most common per config).",
)
@click.option("--strict", is_flag=True, help="Exit with status 1 if any file is rejected.")
@click.option(
    "--optimal",
    "optimal",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    metavar="FILE_OR_DIR",
    help="srhm optimal --json files (or folders of them): the Bayes-optimal limit rows; P* is then measured on "
    "the excess error. Such files under RESULTS_DIR are read too. Repeatable.",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Evaluate again every file that brings its model (a run folder with its checkpoint, a submission with "
    "its factory and state dict): marked verified when the test error matches within one test row, else rejected "
    "as a mismatch (or when the model is not one of the file's task); a file without its model, or one that "
    "cannot be evaluated here, stays reported (printed as NOT VERIFIED, with why). The Bayes-optimal files are "
    "computed again by exact BP. Needs torch.",
)
@click.option("--device", default=None, help="With --verify: cpu, cuda, cuda:N or mps (default: cuda, mps, cpu).")
def leaderboard(results_dir, out, revision, strict, optimal, verify, device):
    """Validate every results file under RESULTS_DIR and write per-config leaderboards to --out.

    For every config and task, models are ranked by P* (the training-set size at which
    the test error, less the Bayes-optimal error when --optimal gives one, falls to
    0.10), with the spread over seeds; the tables at each P follow. Rejected, with the
    reason printed: files failing the schema (NaN or infinity included), with parameters
    or a rules hash other than their config's, P outside 1..train size, on another
    dataset revision or training content hash than the config's, evaluated on part of
    the probe or test split or on another task, below the Bayes-optimal limit by more than
    sampling noise, or (--verify) whose test error is not the model's. Runs
    trained with --shuffle-labels are ranked as controls ("... (shuffled labels)") and
    get no P*; runs with non-default lr, norm, bias or encoding get their own learning
    curve.
    """
    from .leaderboard import build_leaderboard

    try:
        summary = build_leaderboard(results_dir, out, revision=revision, optimal=optimal, verify=verify, device=device)
    except ValueError as err:
        raise _as_click_error(err) from None
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    for r in summary["rejected"]:
        click.echo(f"REJECTED {r['path']}: {r['reason']}", err=True)
    for r in summary["unverified"]:
        click.echo(f"NOT VERIFIED {r['path']}: {r['reason']}", err=True)
    for r in summary["unused_optimal"]:
        click.echo(f"NOT USED {r['path']}: Bayes-optimal file of {r['reason']}", err=True)
    counts = {c: sum(len(t["rows"]) for t in info["tasks"].values()) for c, info in summary["configs"].items()}
    for config, n in counts.items():
        click.echo(f"{config}: {n} result(s) -> {out / config / 'leaderboard.html'}")
    click.echo(
        f"{sum(counts.values())} accepted, {len(summary['rejected'])} rejected, "
        f"{len(summary['ignored'])} ignored (JSON that is not a results file); index: {out / 'index.html'}"
    )
    if strict and summary["rejected"]:
        raise SystemExit(1)


__all__ = ["evaluate", "leaderboard"]
