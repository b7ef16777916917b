"""Provenance objects of a results file: ``package`` and ``dataset`` (format.md §12.2).

Built here once, for the runs of ``srhm train`` (``baselines.train``) and the submissions
of ``srhm evaluate --factory`` (``evaluation.submission``). No torch, no pyarrow: the
release-side fields a run fills in after reading a release (``resolved_commit``,
``train_content_hash``, the release's ``rules_hash``) are set by its caller.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .catalog import catalog_name
from .config import SRHMConfig
from .hashing import rules_hash
from .rules import sample_rules
from .version import __version__

PACKAGE_NAME = "srhm-datasets"


def git_commit() -> str | None:
    """The git commit of the package source if it is a checkout, else None (never raises)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):  # no git, a timeout
        return None


def package_info(commit: str | None) -> dict:
    """The ``package`` object: name, ``__version__`` and the source's git ``commit`` (None for a submission)."""
    return {"name": PACKAGE_NAME, "version": __version__, "git_commit": commit}


def dataset_info(cfg: SRHMConfig, data: str | None = None, revision: str | None = None) -> dict:
    """The ``dataset`` object of a model trained or evaluated on ``cfg``.

    ``source`` is "release" when ``data`` (a release folder or Hub repo id) is given, else
    "generator"; ``rules_hash`` is the hash of the config's rules (format.md §2.2);
    ``resolved_commit`` and ``train_content_hash`` are None (known only after reading a release).
    """
    return {
        "source": "release" if data else "generator",
        "repo_or_dir": data,
        "revision": revision,
        "resolved_commit": None,
        "config": cfg.name,
        "catalog_name": catalog_name(cfg),
        "parameters": cfg.parameters(),
        "rules_hash": rules_hash(sample_rules(cfg)),
        "train_content_hash": None,
    }
