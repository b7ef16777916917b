"""``load_split``: one split of a release config as a ``datasets.Dataset``, in one call."""

from __future__ import annotations

from pathlib import Path

from ..catalog import release_name, resolve
from .card import PROBE_SUFFIX
from .rules_file import SPLITS, candidate_names


def hf_config_name(repo_or_dir: str | Path, config: str, split: str) -> str:
    """The HF config holding ``split`` of ``config`` (catalog or canonical name).

    ``probe`` lives in ``<name>_probe``. For a local folder the name is matched to
    the folder's rules files; for a Hub repo the catalog name is preferred.
    """
    path = Path(repo_or_dir)
    if path.is_dir():
        names = candidate_names(config)
        name = next((n for n in names if (path / "rules" / f"{n}.json").is_file()), config)
    else:
        try:
            name = release_name(resolve(config))
        except ValueError:
            name = config
    return name + PROBE_SUFFIX if split == "probe" else name


def check_local_revision(repo_or_dir: str | Path, revision: str | None) -> None:
    """Raise ``ValueError`` when a ``revision`` is given for a local folder (it has none)."""
    path = Path(repo_or_dir)
    if revision is not None and path.is_dir():
        raise ValueError(f"invalid parameter revision={revision!r}: a local folder ({path}) has no revisions")


def load_split(repo_or_dir: str | Path, config: str, split: str, revision: str | None = None, **kwargs):
    """``datasets.load_dataset`` of one split: ``train``, ``test`` or ``probe``.

    ``config``: catalog name (e.g. ``fig1``) or canonical name; ``revision``: Hub tag,
    branch or commit, for a Hub repo only (a local folder has no revisions: ``ValueError``,
    as in ``load_rules``). Extra kwargs go to ``load_dataset``.
    """
    if split not in SPLITS:
        raise ValueError(f"invalid parameter split={split!r}: must be one of 'train', 'test', 'probe'")
    check_local_revision(repo_or_dir, revision)
    import datasets

    name = hf_config_name(repo_or_dir, config, split)
    return datasets.load_dataset(str(repo_or_dir), name, split=split, revision=revision, **kwargs)
