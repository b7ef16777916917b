"""``srhm build``, ``srhm verify``, ``srhm publish``: thin click commands over the release modules."""

from __future__ import annotations

import sys

import click

from ..catalog import CATALOG, DEFAULT_CONFIG
from ..cli_args import config_arg


@click.command()
@click.argument("configs", nargs=-1, callback=config_arg)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Release folder to write.")
@click.option("--all", "all_configs", is_flag=True, help="Build every catalog config (large: hours, tens of GB).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Processes generating rows.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder (atomically, at the end).")
@click.option("--repo", "repo_id", default=None, help="Hub repo id ORG/NAME to write into the card's examples.")
@click.option("--release-version", default=None, help="Release version for the card (default: the catalog's).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def build(configs, out, all_configs, workers, overwrite, repo_id, release_version, quiet):
    """Write a release folder (format.md §8) for CONFIG... (catalog or canonical names; default: demo).

    --overwrite replaces only a release folder srhm built; SIGTERM/SIGINT end the
    workers and remove the temporary folder (exit 128 + signal number).
    """
    from .build import BuildInterrupted, build_release

    if all_configs and configs:
        raise click.UsageError("give CONFIG names or --all, not both")
    cfgs = list(CATALOG.values()) if all_configs else (list(configs) or [CATALOG[DEFAULT_CONFIG]])
    try:
        results = build_release(cfgs, out, workers=workers, overwrite=overwrite, progress=not quiet,
                                release_version=release_version, repo_id=repo_id)
    except FileExistsError as err:
        raise click.BadParameter(str(err), param_hint="--out") from None
    except (ValueError, TypeError) as err:
        raise click.UsageError(str(_cli_names(err))) from None
    except BuildInterrupted as err:
        click.echo(f"srhm build: {err}; worker processes ended and the temporary folder removed", err=True)
        sys.exit(128 + err.signum)
    except OSError as err:  # disk full, read-only or vanished folder: nothing was written
        raise click.ClickException(
            f"could not write the release ({_os_error(err)}); nothing was written and the temporary folder "
            f"was removed: free space or choose another --out"
        ) from None
    for res in results:
        for split, info in res.rules["splits"].items():
            click.echo(f"{res.name:<28} {split:<6} {info['num_rows']:>9} rows  {info['content_hash']}")
    click.echo(f"wrote {out}")


def _cli_names(err: Exception) -> str:
    """An API error message with the CLI's option names (``repo_id=`` -> ``--repo=``)."""
    text = str(err)
    for api, cli in (("repo_id=", "--repo="), ("release_version=", "--release-version="), ("out=", "--out=")):
        text = text.replace(f"parameter {api}", f"parameter {cli}")
    return text


def _os_error(err: OSError) -> str:
    """One line for an ``OSError``: its reason and the path it concerns."""
    reason = err.strerror or str(err) or type(err).__name__
    return f"{reason}: {err.filename}" if err.filename else reason


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--config", "configs", multiple=True, help="Only this config (repeatable; catalog or canonical name).")
def verify(folder, configs):
    """Re-derive every row of a release FOLDER and check it against format.md §8.9; exit 1 on any failure."""
    from .verify import verify_release

    report = verify_release(folder, list(configs) or None)
    click.echo(report.format())
    sys.exit(0 if report.ok else 1)


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--repo", "repo_id", required=True, help="Dataset repo ORG/NAME (created if missing).")
@click.option("--tag", required=True, help="Release tag vX.Y.Z; refused if it already exists.")
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--verify/--no-verify", "run_verify", default=True, show_default=True,
              help="Run `srhm verify` on FOLDER before uploading.")
def publish(folder, repo_id, tag, private, run_verify):
    """Upload a release FOLDER to the Hub in one commit and tag it (token: login or HF_TOKEN).

    The arguments and the token are checked before the (slow) verification; a failed Hub
    call is one line naming the step and what to do (exit 1); the token is never printed.
    """
    from .publish import HubError, TagExistsError, check_publish, publish_release

    try:
        check_publish(folder, repo_id, tag)
    except (ValueError, TypeError) as err:
        raise click.UsageError(str(err).replace("parameter repo=", "parameter --repo=").replace(
            "parameter tag=", "parameter --tag=")) from None
    except HubError as err:
        raise click.ClickException(str(err)) from None
    if run_verify:
        from .verify import verify_release

        report = verify_release(folder)
        if not report.ok:
            click.echo(report.format(), err=True)
            raise click.ClickException("verification failed; nothing uploaded")
    try:
        result = publish_release(folder, repo_id, tag, private=private)
    except (TagExistsError, HubError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"published {repo_id} commit {result.commit} tagged {result.tag}")
    click.echo(result.url)
