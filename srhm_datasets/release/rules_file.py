"""``rules/<config>.json`` (format.md §8): writing its content, and ``load_rules``.

The file is one JSON object: format and generator versions, the canonical config
name, the format.md §1 parameters, derived sizes (``data_space_size`` as a decimal
string), the blank id, the rule tables ``rules[k][a][r]`` (an s-tuple), their
``rules_hash``, and per split ``{"num_rows", "content_hash"}`` (a split of 0 rows has
the hash of zero rows, :func:`empty_content_hash`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..catalog import catalog_name, get_config, release_name
from ..config import SPLITS, SRHMConfig, decimal_string, did_you_mean, require, require_type
from ..hashing import content_hash, rules_hash
from ..probe import split_columns
from ..rules import sample_rules
from ..version import __version__

FORMAT = {"name": "srhm-rules", "version": 1}
#: The keys every rules file has (format.md §8.4), with their types (``bool`` is not an int here).
KEY_TYPES = {
    "format": dict,
    "generator": dict,
    "config": str,
    "parameters": dict,
    "sizes": dict,
    "blank": int,
    "rules": list,
    "rules_hash": str,
    "splits": dict,
}
REQUIRED_KEYS = tuple(KEY_TYPES)
#: A config name in a release (the stem of ``rules/<name>.json``): never a path.
CONFIG_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", re.ASCII)


def rules_document(cfg: SRHMConfig, splits: dict[str, dict], probe: dict | None = None) -> dict:
    """The rules file's content for a config.

    ``splits``: split name -> {"num_rows": int, "content_hash": "sha256:<hex>"}.
    ``probe``: how the probe columns were made (levels, force, key, defined-ness).
    """
    tables = [t.tolist() for t in sample_rules(cfg)]
    doc = {
        "format": dict(FORMAT),
        "generator": {"name": "srhm_datasets", "version": __version__},
        "config": cfg.name,
        "release_name": release_name(cfg),
        "parameters": cfg.parameters(),
        "split_size_overrides": {s: getattr(cfg, f"n_{s}") for s in SPLITS if getattr(cfg, f"n_{s}") is not None},
        "sizes": {
            "d": cfg.d,
            "num_nodes": cfg.num_nodes,
            "placements_per_node": cfg.placements_per_node,
            "data_space_size": decimal_string(cfg.data_space_size),
            "patch_size": cfg.S,
            "num_informative": cfg.num_informative,
        },
        "blank": cfg.blank,
        "rules": tables,
        "rules_hash": rules_hash(tables),
        "splits": {s: dict(splits[s]) for s in SPLITS if s in splits},
    }
    if probe is not None:
        doc["probe"] = probe
    return doc


def empty_content_hash(split: str) -> str:
    """The content hash (format.md §8) of 0 rows of ``split``: every column of the split hashed empty.

    What ``content_hash(generate(cfg, split, 0, 0))`` gives (plus the probe columns for
    ``probe``); the rules file and the card carry it for a split of 0 rows.
    """
    return content_hash({name: np.zeros(0, dtype=np.int64) for name in split_columns(split)})


def dumps(doc: dict) -> str:
    """Stable text of a rules document: one sorted top-level key per line, values compact."""
    lines = [f"  {json.dumps(k)}: {json.dumps(doc[k], sort_keys=True, separators=(',', ':'))}" for k in sorted(doc)]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def structure_problems(doc) -> list[str]:
    """Why ``doc`` is not a rules document (format.md §8.4): not an object, missing keys, keys or
    per-split entries of the wrong type; ``[]`` when its structure is sound."""
    if not isinstance(doc, dict):
        return [f"not a JSON object but a {type(doc).__name__}"]
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        return [f"missing keys {missing}"]
    problems = []
    for key, typ in KEY_TYPES.items():
        value = doc[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            problems.append(f"{key} is {type(value).__name__} {json.dumps(value)[:60]}, expected {typ.__name__}")
    if isinstance(doc["splits"], dict):
        for split, info in doc["splits"].items():
            if not isinstance(info, dict):
                problems.append(f"splits.{split} is {type(info).__name__}, expected an object")
                continue
            rows, digest = info.get("num_rows"), info.get("content_hash")
            if "num_rows" in info and (not isinstance(rows, int) or isinstance(rows, bool)):
                problems.append(f"splits.{split}.num_rows is {type(rows).__name__}, expected int")
            if "content_hash" in info and not isinstance(digest, str):
                problems.append(f'splits.{split}.content_hash is {json.dumps(digest)}, expected "sha256:<hex>"')
    return problems


def tables_hash(doc: dict) -> str:
    """The rules hash (format.md §2.2) of a rules document's tables, or why they cannot be hashed."""
    try:
        return rules_hash(doc["rules"])
    except (ValueError, TypeError) as err:
        return f"(unhashable tables: {err})"


def parse_rules(text: str, where: str, hint: str) -> dict:
    """A rules document from the text of ``where`` (a rules file), checked: valid JSON, the keys and
    types of format.md §8.4, and a ``rules_hash`` equal to the hash of its tables (§2.2), so tables
    edited after the build are refused. ``ValueError`` naming ``where``, what is wrong, and ``hint``."""
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise ValueError(f"the rules file {where} is damaged: not valid JSON ({err}); {hint}") from None
    problems = structure_problems(doc)
    if not problems and doc["rules_hash"] != tables_hash(doc):
        problems = [f"its rule tables hash to {tables_hash(doc)}, not its rules_hash {doc['rules_hash']}"]
    if problems:
        raise ValueError(f"the rules file {where} is damaged: {'; '.join(problems)}; {hint}")
    return doc


def local_hint(folder) -> str:
    """What to do about a damaged file of the release folder ``folder``."""
    return f"run `srhm verify {folder}` for every problem, then rebuild the release or copy it again"


def check_local_revision(repo_or_dir: str | Path, revision: str | None) -> None:
    """Raise ``ValueError`` when a ``revision`` is given for a local folder (it has none)."""
    path = Path(repo_or_dir)
    if revision is not None and path.is_dir():
        raise ValueError(f"invalid parameter revision={revision!r}: a local folder ({path}) has no revisions")


def config_from_rules(doc: dict) -> SRHMConfig:
    """The SRHMConfig a rules document describes (its canonical ``config`` name)."""
    return SRHMConfig.from_name(doc["config"])


def candidate_names(config_name: str) -> list[str]:
    """File stems to try for a CONFIG: as given, then its catalog and canonical names."""
    names = [config_name]
    try:
        cfg = get_config(config_name)
    except ValueError:
        return names
    for alt in (catalog_name(cfg), cfg.name):
        if alt and alt not in names:
            names.append(alt)
    return names


def load_rules(repo_or_dir: str | Path, config_name: str, revision: str | None = None) -> dict:
    """The rules file of a published config, ``rules/<config>.json`` (format.md §8.4).

    Parameters
    ----------
    repo_or_dir : str or os.PathLike
        A local release folder or a Hub dataset repo id ``ORG/NAME``.
    config_name : str
        The config's name in the release (catalog name, e.g. ``"fig1"``) or its
        canonical name.
    revision : str or None
        For a Hub repo, the tag, branch or commit that pins the file (None: the main
        branch). A local folder takes none.

    Returns
    -------
    dict
        The JSON object: ``format``, ``generator``, ``config`` (canonical name),
        ``parameters`` (format.md §1), ``sizes``, ``blank``, ``rules`` (``rules[k][a][r]``,
        an s-tuple, as :func:`srhm_datasets.sample_rules`), ``rules_hash``, and per split
        ``{"num_rows", "content_hash"}``.

    Raises
    ------
    TypeError
        An argument of the wrong type.
    ValueError
        A config name that is a path, a revision for a local folder, or a damaged rules
        file (not JSON, keys of format.md §8.4 missing or of the wrong type, tables that
        do not hash to its ``rules_hash``, §2.2), named.
    FileNotFoundError
        No rules file for the config (for a local folder, with the closest names).

    Examples
    --------
    >>> import tempfile, srhm_datasets as srhm
    >>> from srhm_datasets.release import build_release
    >>> cfg = srhm.SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, n_train=64, n_test=32, n_probe=16)
    >>> folder = tempfile.mkdtemp() + "/release"
    >>> _ = build_release([cfg], folder, progress=False)
    >>> doc = srhm.load_rules(folder, cfg.name)
    >>> doc["config"] == cfg.name, doc["splits"]["train"]["num_rows"]
    (True, 64)
    >>> doc["rules"][0][0][0] == srhm.sample_rules(cfg)[0][0, 0].tolist()
    True
    """
    from .arguments import require_path

    require_path(repo_or_dir, "repo_or_dir")
    require_type(config_name, str, "config_name", "a config name (str)")
    require(
        CONFIG_NAME_RE.fullmatch(config_name) is not None,
        "config_name",
        config_name,
        "a config name: letters, digits, '_', '-' and '.', not a path",
    )
    if revision is not None:
        require_type(revision, str, "revision", "a Hub tag, branch or commit (str) or None")
    path = Path(repo_or_dir)
    names = candidate_names(config_name)
    if path.is_dir():
        check_local_revision(path, revision)
        for name in names:
            f = path / "rules" / f"{name}.json"
            if f.exists():  # a directory or a special file there: _read_text names it
                return parse_rules(_read_text(f, local_hint(path)), str(f), local_hint(path))
        have = sorted(p.stem for p in (path / "rules").glob("*.json"))
        raise FileNotFoundError(
            f"no rules file for config {config_name!r} in {path / 'rules'} (tried {names})"
            + did_you_mean(config_name, have)
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    for name in names:
        try:
            local = hf_hub_download(str(repo_or_dir), f"rules/{name}.json", repo_type="dataset", revision=revision)
        except LocalEntryNotFoundError:  # the Hub was not reached (and no cached copy): not a missing file
            raise
        except EntryNotFoundError:
            continue
        where = f"rules/{name}.json of dataset repo {repo_or_dir} at revision {revision or 'main'}"
        hint = f"download it again (remove {local} from the Hub cache), or tell the repo's owner"
        return parse_rules(_read_text(Path(local), hint), where, hint)
    raise FileNotFoundError(
        f"no rules file for config {config_name!r} in dataset repo {repo_or_dir!r} at revision {revision or 'main'} "
        f"(tried {['rules/' + n + '.json' for n in names]})"
    )


def _read_text(path: Path, hint: str) -> str:
    """The UTF-8 text of ``path``; ``ValueError`` naming it when it cannot be read (permissions, encoding)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the rules file {path} ({type(err).__name__}: {err}); {hint}") from None


__all__ = ["config_from_rules", "dumps", "empty_content_hash", "load_rules", "rules_document"]
