"""``load_split``: one split of a release config as a ``datasets.Dataset``, in one call, with its provenance proven.

``datasets.load_dataset`` may return rows of another revision than the one asked for
(offline, it falls back to the most recent cached copy of a config with only a log
line). ``load_split`` therefore checks the rows it got against ``rules/<config>.json``
*of the same revision* (fetched by ``huggingface_hub`` for exactly that revision): the
row count and the split's content hash (format.md §8, over every row: about 1 s for fig1's
1M train rows, as long again as ``load_dataset`` from its cache), and refuses a mismatch with a ``ValueError``
naming both. A streamed split (``streaming=True``) cannot be hashed before it is read:
its first rows are compared with the generator's rows of the rules file's config instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..catalog import get_config, release_name
from ..config import SPLITS, did_you_mean, require, require_choice, require_type
from ..files import MARKER
from ..probe import PROBE_SUFFIX
from .arguments import require_path
from .folder_check import (
    check_release_folder,
    damaged_folder,
    default_config,
    shard_set,
    shards_content_hash,
    unreadable_rows,
)
from .rules_file import CONFIG_NAME_RE, candidate_names, check_local_revision, local_hint

#: Rows of a streamed split compared with the generator.
STREAM_CHECK_ROWS = 64


class HubUnreachable(ConnectionError):
    """A release on the Hub could not be read: no network, ``HF_ENDPOINT`` down, or offline
    (``HF_HUB_OFFLINE``) without a cached copy. The message names the file or split tried and what to do."""


def _unreachable(err: BaseException) -> bool:
    """Whether ``err`` is a failure to reach the Hub (not a missing repo, file or revision)."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    return isinstance(err, (ConnectionError, LocalEntryNotFoundError))


def _hub_unreachable(what: str, source: str, revision: str | None, err: BaseException) -> HubUnreachable:
    from huggingface_hub import constants

    reason = " ".join(str(err).split())[:300] or type(err).__name__
    return HubUnreachable(
        f"could not read {what} of dataset repo {source} at revision {revision or 'main'} from the Hub "
        f"({type(err).__name__}: {reason}); check the network connection and HF_ENDPOINT ({constants.ENDPOINT}), "
        "or give a local release folder"
    )


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
            name = release_name(get_config(config))
        except ValueError:
            name = config
    return name + PROBE_SUFFIX if split == "probe" else name


#: ``datasets.load_dataset`` keywords ``load_split`` passes on: where and how to load, never which rows or
#: columns (``columns``, ``data_files``, ``data_dir``, ``features``, ``name``, ``split`` ... would change what
#: is loaded, and the provenance check would then blame another revision).
LOAD_KWARGS = (
    "cache_dir",
    "download_config",
    "download_mode",
    "keep_in_memory",
    "num_proc",
    "storage_options",
    "streaming",
    "token",
    "verification_mode",
)


def check_load_kwargs(kwargs: dict) -> None:
    """``ValueError`` naming the first keyword of ``kwargs`` not in ``LOAD_KWARGS``."""
    for key in sorted(set(kwargs) - set(LOAD_KWARGS)):
        require(
            False,
            key,
            kwargs[key],
            f"not given: load_split loads whole splits of whole configs and proves them against their rules file; "
            f"it passes only {', '.join(LOAD_KWARGS)} to datasets.load_dataset (select columns or rows on the "
            "returned dataset, e.g. ds.select_columns(...))",
        )


def check_load_arguments(repo_or_dir, config, split, revision) -> None:
    """Types and values of ``load_split``'s arguments (``TypeError``/``ValueError`` naming the parameter).

    ``repo_or_dir``: a release folder (it has ``rules/``), or a Hub repo id (no such local path);
    an empty string, an existing file and a folder without ``rules/`` are refused.
    """
    require_path(repo_or_dir, "repo_or_dir")
    path = Path(repo_or_dir)
    rules = path / "rules"
    release_files = (rules, path / "croissant.json", path / MARKER)  # what only a release folder holds
    if os.fspath(repo_or_dir) != "" and path.is_dir() and not rules.is_dir() and any(map(Path.exists, release_files)):
        what = "not a folder" if rules.exists() else "missing (a release has one rules file per config there)"
        raise ValueError(damaged_folder(path, [f"rules/: {what}"]))
    require(
        os.fspath(repo_or_dir) != ""
        and (path.is_dir() or not path.exists())
        and (not path.is_dir() or (path / "rules").is_dir()),
        "repo_or_dir",
        os.fspath(repo_or_dir),
        "a release folder (with rules/, see `srhm build`) or a Hub dataset repo id ORG/NAME",
    )
    if not path.is_dir():
        check_hub_source(os.fspath(repo_or_dir))
    if config is not None:
        require_type(config, str, "config", "a config name (str) or None for the default config")
        if path.is_dir():
            check_local_config(path, config)
    require_choice("split", split, SPLITS)
    if revision is not None:
        require_type(revision, str, "revision", "a Hub tag, branch or commit (str) or None")
    check_local_revision(repo_or_dir, revision)


def check_hub_source(source: str) -> None:
    """``ValueError`` naming ``repo_or_dir`` when ``source`` (no local folder) is not a valid Hub repo id either
    (e.g. ``./releasee``, ``missing_dir/``): checked offline by ``huggingface_hub.utils.validate_repo_id``."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(source)
    except HFValidationError as err:
        require(
            False,
            "repo_or_dir",
            source,
            f"an existing release folder or a Hub dataset repo id ORG/NAME (no such folder, and not a repo id: {err})",
        )


def check_local_config(folder: Path, config: str) -> None:
    """``ValueError`` naming ``config`` and the release's configs (their release names, the stems of
    ``rules/*.json``) when ``folder`` has no rules file for ``config`` (catalog or canonical name)."""
    rules = folder / "rules"
    names = [n for n in candidate_names(config) if CONFIG_NAME_RE.fullmatch(n)]
    if any((rules / f"{n}.json").is_file() for n in names):
        return
    for n in names:
        if (rules / f"{n}.json").exists():
            raise ValueError(damaged_folder(folder, [f"rules/{n}.json: not a file (a directory or a special file)"]))
        if (folder / n).is_dir():
            raise ValueError(damaged_folder(folder, [f"rules/{n}.json: missing, though {n}/ holds its shards"]))
    names = sorted(p.stem for p in rules.glob("*.json") if p.is_file())
    raise ValueError(
        f"invalid parameter config={config!r}: no such config in {folder}; it has: {', '.join(names) or 'none'}"
        + did_you_mean(config, names)
    )


def load_split(repo_or_dir: str | Path, config: str | None, split: str, revision: str | None = None, **kwargs):
    """One split of a published config, as a ``datasets.Dataset`` whose rows are proven (format.md §8.8).

    ``datasets.load_dataset`` of the split's Hugging Face config, then a check of the rows
    against ``rules/<config>.json`` of the same revision (row count and content hash,
    format.md §8.5): a cache of another revision or edited rows are refused.

    Parameters
    ----------
    repo_or_dir : str or os.PathLike
        A local release folder (``srhm build``) or a Hub dataset repo id ``ORG/NAME``.
    config : str or None
        A catalog name (``"fig1"``) or canonical name of a config in the release, or
        None for the release's default config.
    split : {"train", "test", "probe"}
        The split (``probe`` lives in the release's ``<config>_probe`` HF config).
    revision : str or None
        Hub tag (``"v1.0.0"``), branch or commit; None is the main branch. A local
        folder has no revisions.
    **kwargs
        Keywords of ``datasets.load_dataset`` that say where and how to load
        (``cache_dir``, ``streaming``, ``keep_in_memory``, ...; ``LOAD_KWARGS``).

    Returns
    -------
    datasets.Dataset
        Columns ``tokens`` [d] (uint8 or uint16), ``label`` (ClassLabel), ``latents``,
        ``synonyms``, ``placements`` [N] (format.md §4.1), plus the probe columns of
        format.md §6.3 for ``probe``; an ``IterableDataset`` with ``streaming=True``
        (its first rows are compared with the generator's).

    Raises
    ------
    TypeError
        An argument of the wrong type.
    ValueError
        A path that is not a release folder, a config the release lacks (with the
        closest names), a keyword that would change what is loaded, a damaged release
        folder (card, rules file, shard: checked before ``datasets`` reads it,
        ``folder_check``) or ``datasets`` cache (the message names the file or the cache
        folder, with the hint to run ``srhm verify``), or rows that differ from the rules
        file.
    HubUnreachable
        A Hub repo that cannot be reached (a ``ConnectionError``).

    Examples
    --------
    >>> import tempfile, srhm_datasets as srhm
    >>> from srhm_datasets.release import build_release
    >>> cfg = srhm.SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, n_train=64, n_test=32, n_probe=16)
    >>> tmp = tempfile.mkdtemp()
    >>> _ = build_release([cfg], tmp + "/release", progress=False)
    >>> train = srhm.load_split(tmp + "/release", cfg.name, "train", cache_dir=tmp + "/cache")
    >>> train.num_rows, train.column_names
    (64, ['tokens', 'label', 'latents', 'synonyms', 'placements'])
    >>> train[0]["tokens"] == srhm.generate(cfg, "train", 0, 1)["tokens"][0].tolist()
    True
    """
    check_load_arguments(repo_or_dir, config, split, revision)
    check_load_kwargs(kwargs)
    import datasets

    source = os.fspath(repo_or_dir)
    folder = Path(source) if Path(source).is_dir() else None
    if folder is not None:
        if config is None:  # the card's default config (its probe split lives in <default>_probe)
            config = default_config(folder).removesuffix(PROBE_SUFFIX)
        splits = ("probe",) if split == "probe" else ("train", "test")  # datasets prepares the HF config's splits
        doc = _expected(source, config, split, None)[0]
        check_release_folder(
            folder, hf_config_name(source, config, "train"), hf_config_name(source, config, split), splits, doc
        )
    try:
        if config is None:
            builder = datasets.load_dataset_builder(source, revision=revision, cache_dir=kwargs.get("cache_dir"))
            config = builder.config.name.removesuffix(PROBE_SUFFIX)
        ds = datasets.load_dataset(
            source, hf_config_name(source, config, split), split=split, revision=revision, **kwargs
        )
    except Exception as err:
        hf_name = hf_config_name(source, config, split) if config else None
        mapped = _load_error(err, source, folder, hf_name, split, revision, kwargs.get("cache_dir"))
        if mapped is err:
            raise
        raise mapped from None
    check_provenance(ds, source, config, split, revision)
    return ds


def _load_error(err: Exception, source: str, folder, hf_name, split: str, revision, cache_dir) -> Exception:
    """What to raise for ``err`` from ``datasets`` loading ``split`` of ``hf_name``: ``err`` itself for a Hub
    repo, config or revision that does not exist (an ``OSError``, a ``ValueError``) or any other exception;
    ``HubUnreachable`` for no network; a ``ValueError`` naming the damaged shards (``DatasetGenerationError``)
    or the damaged ``datasets`` cache folder (an Arrow or JSON error reading it), never the release for that."""
    import datasets
    import pyarrow as pa

    if folder is None and _unreachable(err):
        what = f"the {split} split of config {hf_name}" if hf_name else "the default config"
        return _hub_unreachable(what, source, revision, err)
    cause = err.__cause__ or err
    reason = f"{type(cause).__name__}: {_short(cause)}"
    repo = f"the {split} split of config {hf_name} of dataset repo {source} at revision {revision or 'main'}"
    cache = cache_folder(source, hf_name, cache_dir) if hf_name else None
    from_cache = isinstance(err, (pa.ArrowException, json.JSONDecodeError)) or (
        isinstance(err, OSError) and cache is not None and str(cache.parent) in str(err)
    )
    if isinstance(err, datasets.exceptions.DatasetGenerationError):  # a shard unreadable past its footer
        if folder is not None:
            name = hf_name.removesuffix(PROBE_SUFFIX)
            shard = unreadable_rows(folder, name, ("probe",) if name != hf_name else ("train", "test"))
            return ValueError(damaged_folder(folder, [shard or f"the {split} shards cannot be read ({reason})"]))
        return ValueError(f"{repo} cannot be read ({reason}); tell the repo's owner")
    if folder is not None and not from_cache:  # what the folder checks did not foresee
        return ValueError(damaged_folder(folder, [f"datasets cannot load its {split} split ({reason})"]))
    if folder is None and not (from_cache and cache is not None and cache.exists()):
        if isinstance(err, datasets.exceptions.DatasetsError) and not isinstance(err, FileNotFoundError):
            return ValueError(f"{repo} does not match its card ({reason}); tell the repo's owner")
        return err  # no such repo, config or revision: datasets' own error
    where = f"the release folder {folder}" if folder is not None else f"dataset repo {source}"
    return ValueError(
        f"the datasets cache at {cache} is damaged ({reason}); {where} is not the cause: remove that cache "
        "folder (or pass cache_dir= another folder) and load again"
    )


def _short(err: BaseException) -> str:
    """``err``'s message on one line, at most 300 characters."""
    return " ".join(str(err).split())[:300] or type(err).__name__


def cache_folder(source: str, hf_name: str, cache_dir) -> Path:
    """Where ``datasets`` caches the config ``hf_name`` of a release folder or Hub repo ``source``: the
    builder's own folder when its cache can be opened offline (a local folder), else the folder of all
    cached versions of that config."""
    import datasets

    if Path(source).is_dir():
        try:
            return Path(datasets.load_dataset_builder(source, hf_name, cache_dir=cache_dir).cache_dir)
        except Exception:  # noqa: BLE001 - a cache too damaged to open: name the folder holding it
            pass
    name = Path(source).name if Path(source).is_dir() else source.replace("/", "___")
    return Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / name / hf_name


def _expected(source: str, config: str, split: str, revision: str | None) -> tuple[dict, dict]:
    """(rules document, its ``splits[split]`` entry) of ``revision``; ``ValueError`` if unreadable."""
    from .rules_file import load_rules

    name = hf_config_name(source, config, "train")  # the file's name in the release (the catalog name on the Hub)
    try:
        doc = load_rules(source, name, revision=revision)
    except OSError as err:  # a damaged rules file is a ValueError naming it, raised as it is
        if _unreachable(err):
            raise _hub_unreachable(f"rules/{name}.json", source, revision, err) from None
        raise ValueError(
            f"cannot prove that the {split} rows of {config} in {source} are those of revision {revision or 'main'}: "
            f"its rules/{name}.json is unreadable ({type(err).__name__}: {err})"
        ) from None
    entry = doc.get("splits", {}).get(split) if isinstance(doc, dict) else None
    if not isinstance(entry, dict) or "num_rows" not in entry or "content_hash" not in entry:
        raise ValueError(
            f"rules/{name}.json of {source} at revision {revision or 'main'} has no splits.{split} "
            "row count and content hash"
        )
    return doc, entry


def check_provenance(ds, source: str, config: str, split: str, revision: str | None) -> None:
    """Refuse (``ValueError``) rows that are not those of ``split`` of ``config`` at ``revision``.

    A ``datasets.Dataset``: its row count and content hash (every column, format.md §8) must
    equal ``splits[split]`` of the rules file of that revision. An ``IterableDataset``:
    its first ``STREAM_CHECK_ROWS`` rows must equal the generator's rows of the rules
    file's config (a different seed, config or generator gives other rows). The message
    says why: for a Hub repo, rows of another revision (``datasets``' offline cache); for a
    local folder, shards that differ from its rules file (run ``srhm verify``), or, when
    the shards themselves hash right, a damaged ``datasets`` cache (:func:`_local_mismatch`).
    """
    import datasets

    doc, entry = _expected(source, config, split, revision)
    local = Path(source).is_dir()
    where = f"{split} of {config} in {source}" + ("" if local else f" at revision {revision or 'main'}")
    rules = Path(source) / "rules" / f"{hf_config_name(source, config, 'train')}.json"
    hint = (
        f"the shards differ from its rules file {rules}; {local_hint(source)}"
        if local
        else "datasets returned rows of another revision (e.g. its offline cache of a newer release); "
        "load it online once, or clear the datasets cache of this repo"
    )
    if isinstance(ds, datasets.IterableDataset):
        _check_stream_head(ds, doc, split, where, hint)
        return
    if len(ds) != entry["num_rows"]:
        got = f"got {len(ds)} rows, its rules file expects {entry['num_rows']}"
    else:
        digest = dataset_content_hash(ds)
        if digest == entry["content_hash"]:
            return
        got = f"got content hash {digest}, its rules file expects {entry['content_hash']}"
    if local:
        hint = _local_mismatch(ds, Path(source), hf_config_name(source, config, "train"), split, entry, hint)
    raise ValueError(f"{where}: {got}; {hint}")


def _local_mismatch(ds, folder: Path, name: str, split: str, entry: dict, hint: str) -> str:
    """Why the loaded rows of a local folder differ from its rules file: the shards (``hint``), or, when
    the shards hash to the rules file's content hash, the ``datasets`` cache the rows came from."""
    files = shard_set(folder, name, split)[0]
    if not files or shards_content_hash(files) != entry["content_hash"]:
        return hint
    cache = sorted({str(Path(f["filename"]).parent) for f in ds.cache_files}) or ["(in memory)"]
    return (
        f"its shards are right, so the datasets cache at {', '.join(cache)} is damaged or stale (datasets "
        "may serve the cache of an earlier folder of the same name): "
        "remove that cache folder (or pass cache_dir= another folder) and load again"
    )


def dataset_content_hash(ds) -> str:
    """The content hash (format.md §8) of every column of a ``datasets.Dataset``, read in Arrow batches.

    List columns (fixed-size or not) are hashed as their values row after row, as format.md §8 says.
    Batches hold about one of the build's row groups (``build.ROW_GROUP_BYTES`` of Arrow data, at
    least one row), and the hash widens them to int64 ``hashing.HASH_CHUNK_BYTES`` at a time:
    memory does not grow with d or the row count.
    """
    from ..hashing import SplitHasher
    from .build import ROW_GROUP_BYTES

    hasher = SplitHasher()
    row = -(-ds.data.nbytes // max(1, ds.data.num_rows))
    for batch in ds.with_format("arrow").iter(batch_size=max(1, ROW_GROUP_BYTES // max(1, row))):
        hasher.update({name: _flat_values(batch.column(name)) for name in batch.column_names})
    return hasher.hexdigest()


def _flat_values(column):
    """The values of an Arrow column, list levels flattened, as numpy [n_values]."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    while (
        pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_fixed_size_list(column.type)
    ):
        column = column.flatten()
    return column.to_numpy(zero_copy_only=False)


def _check_stream_head(ds, doc: dict, split: str, where: str, hint: str) -> None:
    import numpy as np

    from ..generate import generate
    from .rules_file import config_from_rules

    cfg = config_from_rules(doc)
    n = min(STREAM_CHECK_ROWS, cfg.split_sizes()[split])
    if n == 0:
        return
    want = generate(cfg, split, 0, n)
    rows = list(ds.take(n))
    same = len(rows) == n and all(
        np.array_equal(np.asarray([row[c] for row in rows]), want[c]) for c in want if c in rows[0]
    )
    if not same:
        raise ValueError(f"{where}: its first {n} rows are not those of {cfg.name} (its rules file's config); {hint}")
