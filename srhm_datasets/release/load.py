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

import os
from pathlib import Path

from ..catalog import release_name, resolve
from ..config import require
from ..probe import PROBE_SUFFIX
from .arguments import require_path, require_type
from .rules_file import CONFIG_NAME_RE, SPLITS, candidate_names, check_local_revision

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
            name = release_name(resolve(config))
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
    require_type(split, str, "split", "'train', 'test' or 'probe'")
    if split not in SPLITS:
        raise ValueError(f"invalid parameter split={split!r}: must be one of 'train', 'test', 'probe'")
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
    if any(CONFIG_NAME_RE.fullmatch(n) and (rules / f"{n}.json").is_file() for n in candidate_names(config)):
        return
    names = sorted(p.stem for p in rules.glob("*.json"))
    raise ValueError(
        f"invalid parameter config={config!r}: no such config in {folder}; it has: {', '.join(names) or 'none'}"
    )


def load_split(repo_or_dir: str | Path, config: str | None, split: str, revision: str | None = None, **kwargs):
    """``datasets.load_dataset`` of one split (``train``, ``test`` or ``probe``), checked against its rules file.

    ``config``: catalog name (e.g. ``fig1``) or canonical name, or None for the
    release's default config; ``revision``: Hub tag, branch or commit, for a Hub repo
    only (a local folder has no revisions: ``ValueError``, as in ``load_rules``). Extra
    kwargs go to ``load_dataset``: only those of ``LOAD_KWARGS`` (where and how to load); one
    that would change what is loaded (``columns``, ``data_files``, ...) is a ``ValueError``
    naming it, before anything is loaded. Returns a ``datasets.Dataset`` (``IterableDataset``
    with ``streaming=True``) whose rows are proven to be those of ``revision``
    (:func:`check_provenance`); ``ValueError`` otherwise. No network: ``HubUnreachable``.
    """
    check_load_arguments(repo_or_dir, config, split, revision)
    check_load_kwargs(kwargs)
    import datasets

    source = os.fspath(repo_or_dir)
    try:
        if config is None:  # the release's default config (its probe split lives in <default>_probe)
            builder = datasets.load_dataset_builder(source, revision=revision, cache_dir=kwargs.get("cache_dir"))
            config = builder.config.name.removesuffix(PROBE_SUFFIX)
        ds = datasets.load_dataset(
            source, hf_config_name(source, config, split), split=split, revision=revision, **kwargs
        )
    except OSError as err:
        if _unreachable(err):
            what = (
                f"the {split} split of config {hf_config_name(source, config, split)}"
                if config
                else "the default config"
            )
            raise _hub_unreachable(what, source, revision, err) from None
        raise
    except datasets.exceptions.DatasetGenerationError as err:  # a damaged or truncated shard
        cause = err.__cause__ or err
        raise ValueError(
            f"invalid parameter repo_or_dir={source!r}: the {split} shards of {config} cannot be read "
            f"({type(cause).__name__}: {cause}); check the release with `srhm verify` and rebuild or download it again"
        ) from None
    check_provenance(ds, source, config, split, revision)
    return ds


def _expected(source: str, config: str, split: str, revision: str | None) -> tuple[dict, dict]:
    """(rules document, its ``splits[split]`` entry) of ``revision``; ``ValueError`` if unreadable."""
    from .rules_file import load_rules

    name = hf_config_name(source, config, "train")  # the file's name in the release (the catalog name on the Hub)
    try:
        doc = load_rules(source, name, revision=revision)
    except (OSError, ValueError) as err:
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
    file's config (a different seed, config or generator gives other rows).
    """
    import datasets

    doc, entry = _expected(source, config, split, revision)
    where = f"{split} of {config} in {source} at revision {revision or 'main'}"
    hint = (
        "datasets returned rows of another revision (e.g. its offline cache of a newer release); "
        "load it online once, or clear the datasets cache of this repo"
    )
    if isinstance(ds, datasets.IterableDataset):
        _check_stream_head(ds, doc, split, where, hint)
        return
    if len(ds) != entry["num_rows"]:
        raise ValueError(f"{where}: got {len(ds)} rows, its rules file expects {entry['num_rows']}; {hint}")
    got = dataset_content_hash(ds)
    if got != entry["content_hash"]:
        raise ValueError(f"{where}: got content hash {got}, its rules file expects {entry['content_hash']}; {hint}")


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
