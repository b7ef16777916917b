"""Write a release folder (format.md §8): Parquet shards, rules files, card, croissant.json.

Layout written::

    README.md                                  card (written last)
    croissant.json
    rules/<config>.json
    <config>/train-00000-of-000NN.parquet      NN: see ``shard_ranges``
    <config>/test-00000-of-00001.parquet
    <config>/probe-00000-of-00001.parquet

``<config>`` is the catalog name (``release_name``). Rows are generated in blocks of
``row_group_rows`` rows (one Parquet row group each), so memory is bounded by a few
blocks whatever the split size. With ``workers > 1`` a process pool generates
blocks ahead (at most ``2 * workers`` in flight) and the parent writes and hashes
them in order. Everything is written into a hidden temporary folder
``.<out>.partial-<pid>-<host>-<random>`` next to ``out`` and renamed into place at the
end (with the permissions of a folder made under the umask): an interrupted build
leaves no folder that looks complete and removes its temporary folder when it can. A
killed build cannot, so each build first removes the partial folders of the same
``out`` name left by processes of this host that no longer exist.

Safety (``srhm_datasets.files``): ``out`` is checked before any work; the current
folder, its parents and folders srhm did not write are refused, and ``overwrite``
replaces only a release folder srhm built (it carries the marker ``.srhm-owner.json``
listing its entries) holding nothing else. SIGTERM and SIGINT end the build through
the same clean-up path as any error: worker processes are terminated and the
temporary folder removed (``BuildInterrupted``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import itertools
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from collections import deque
from pathlib import Path

import pyarrow.parquet as pq

from ..catalog import release_name
from ..config import SPLITS, SRHMConfig, require, require_type
from ..files import MARKER as MARKER_NAME
from ..files import check_output_folder, claim_output, mark_owned, process_exists, read_marker, replace_dir, umask
from ..generate import column_dtypes
from ..hashing import SplitHasher
from ..pools import process_pool
from ..probe import make_block, probe_document
from .arguments import check_release_version, check_repo_id, require_path
from .features import arrow_schema, to_arrow
from .rules_file import dumps, empty_content_hash, rules_document

#: Target uncompressed (Arrow) bytes of one row group: small enough for the Hub viewer.
ROW_GROUP_BYTES = 16 << 20
#: Bounds on rows per row group (and per generated block).
MIN_GROUP_ROWS, MAX_GROUP_ROWS = 1024, 1 << 17
#: Most uncompressed (Arrow) bytes of one train shard: about 100 MB on disk at the catalog's
#: least compressible rows (fig1, 5x), less for sparser configs.
SHARD_BYTES = 512 << 20
#: Train is written in at least this many shards (and row groups) when it has this many times
#: ``MIN_GROUP_ROWS`` rows, so that streaming ``DataLoader`` workers and ranks (which split
#: shards) all get some.
MIN_TRAIN_SHARDS = 16
#: Parquet writer options (deterministic for a given pyarrow version).
PARQUET_OPTIONS = {"compression": "zstd", "write_page_index": True, "write_statistics": True}


@dataclasses.dataclass
class SplitResult:
    """What was written for one split: rows, Arrow bytes, content hash, shard files."""

    split: str
    num_rows: int
    num_bytes: int
    content_hash: str
    files: list[str]  # paths relative to the release folder
    download_size: int


@dataclasses.dataclass
class ConfigResult:
    """A built config: its release name, config, per-split results and rules document."""

    name: str
    cfg: SRHMConfig
    splits: dict[str, SplitResult]
    rules: dict


def row_bytes(cfg: SRHMConfig, split: str) -> int:
    """Uncompressed bytes of one row of a split."""
    dt = column_dtypes(cfg)
    tokens = cfg.d * dt["tokens"].itemsize
    meta = 8 + cfg.num_nodes * sum(dt[c].itemsize for c in ("latents", "synonyms", "placements"))
    return tokens * (1 + (2 * cfg.L if split == "probe" else 0)) + meta


def row_group_rows(cfg: SRHMConfig, split: str, num_rows: int) -> int:
    """Rows per row group (and per generated block) of a split of ``num_rows`` rows.

    About ``ROW_GROUP_BYTES`` of Arrow data, between ``MIN_GROUP_ROWS`` and ``MAX_GROUP_ROWS``
    rows; a train row group also holds at most ``ceil(num_rows / MIN_TRAIN_SHARDS)`` rows (but
    ``MIN_GROUP_ROWS`` at least), so that train has ``MIN_TRAIN_SHARDS`` row groups, hence
    shards, whenever it has ``MIN_TRAIN_SHARDS * MIN_GROUP_ROWS`` rows (format.md §8.3).
    """
    rows = min(MAX_GROUP_ROWS, max(MIN_GROUP_ROWS, ROW_GROUP_BYTES // row_bytes(cfg, split)))
    if split == "train":
        rows = min(rows, max(MIN_GROUP_ROWS, -(-num_rows // MIN_TRAIN_SHARDS)))
    return int(rows)


def shard_ranges(cfg: SRHMConfig, split: str, num_rows: int) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of a split's shards; test and probe have one shard.

    Train shards hold whole row groups, as evenly as possible: ``max(MIN_TRAIN_SHARDS,
    ceil(bytes / SHARD_BYTES))`` shards, but never more shards than row groups (so at least
    ``MIN_TRAIN_SHARDS`` from ``MIN_TRAIN_SHARDS * MIN_GROUP_ROWS`` rows on, see
    ``row_group_rows``). The content hash does not depend on the shards (format.md §8).
    """
    if num_rows == 0:
        return []
    if split != "train":
        return [(0, num_rows)]
    group = row_group_rows(cfg, split, num_rows)
    groups = -(-num_rows // group)
    by_bytes = -(-num_rows * row_bytes(cfg, split) // SHARD_BYTES)
    shards = min(groups, max(MIN_TRAIN_SHARDS, by_bytes))
    starts = [i * groups // shards * group for i in range(shards)] + [num_rows]
    return list(itertools.pairwise(starts))


def _worker_block(args):
    cfg, split, start, stop = args
    return make_block(cfg, split, start, stop, threads=1)


def _blocks(cfg: SRHMConfig, split: str, ranges: list[tuple[int, int]], pool):
    """Yield the blocks of ``ranges`` in order (generated ahead in ``pool`` when given)."""
    if pool is None:
        for a, b in ranges:
            yield make_block(cfg, split, a, b)
        return
    ahead = 2 * pool.srhm_workers
    pending: deque = deque()
    todo = iter(ranges)
    for a, b in todo:
        pending.append(pool.submit(_worker_block, (cfg, split, a, b)))
        if len(pending) >= ahead:
            break
    while pending:
        block = pending.popleft().result()
        nxt = next(todo, None)
        if nxt is not None:
            pending.append(pool.submit(_worker_block, (cfg, split, *nxt)))
        yield block


def write_split(cfg: SRHMConfig, split: str, root: Path, name: str, pool=None, progress=None) -> SplitResult | None:
    """Write a split's shards under ``root/name/``; None for a 0-row split (no shard).

    Blocks of one row group are generated in one pass over the split (ahead in ``pool``
    across shard boundaries) and each goes to the shard that holds it.
    """
    n = cfg.split_sizes()[split]
    shards = shard_ranges(cfg, split, n)
    if not shards:
        return None
    group = row_group_rows(cfg, split, n)
    schema = arrow_schema(cfg, split)
    hasher = SplitHasher()
    files = [f"{name}/{split}-{i:05d}-of-{len(shards):05d}.parquet" for i in range(len(shards))]
    shard_at = {a: i for i, (a, _) in enumerate(shards)}
    ranges = [(x, min(x + group, n)) for x in range(0, n, group)]
    num_bytes = 0
    (root / name).mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        writer = None
        for (a, _), block in zip(ranges, _blocks(cfg, split, ranges, pool)):
            if a in shard_at:
                stack.close()
                writer = stack.enter_context(pq.ParquetWriter(root / files[shard_at[a]], schema, **PARQUET_OPTIONS))
            table = to_arrow(cfg, block, split)
            writer.write_table(table, row_group_size=table.num_rows)
            hasher.update(block)
            num_bytes += table.nbytes
            if progress is not None:
                progress.update(table.num_rows)
    size = sum((root / f).stat().st_size for f in files)
    return SplitResult(split, n, num_bytes, hasher.hexdigest(), files, size)


def build_config(cfg: SRHMConfig, root: Path, pool=None, progress: bool = True) -> ConfigResult:
    """Write one config's shards and rules file into ``root``."""
    from tqdm.auto import tqdm

    name = release_name(cfg)
    sizes = cfg.split_sizes()
    results: dict[str, SplitResult] = {}
    with tqdm(total=sum(sizes.values()), desc=name, unit="row", unit_scale=True, disable=not progress) as bar:
        for split in SPLITS:
            res = write_split(cfg, split, root, name, pool, bar)
            if res is not None:
                results[split] = res
    splits = {
        s: {"num_rows": sizes[s], "content_hash": results[s].content_hash if s in results else empty_content_hash(s)}
        for s in SPLITS
    }
    doc = rules_document(cfg, splits, probe_document(cfg))
    (root / "rules").mkdir(exist_ok=True)
    (root / "rules" / f"{name}.json").write_text(dumps(doc), encoding="utf-8")
    return ConfigResult(name, cfg, results, doc)


def _check_configs(configs) -> list[SRHMConfig]:
    if isinstance(configs, (str, SRHMConfig)) or not hasattr(configs, "__iter__"):
        raise TypeError(f"invalid parameter configs={configs!r}: must be a list of SRHMConfig")
    configs = list(configs)
    if not configs:
        raise ValueError("invalid parameter configs=[]: must name at least one config")
    for cfg in configs:
        require_type(
            cfg, SRHMConfig, "configs", "a list of SRHMConfig (srhm_datasets.get_config gives one from a name)"
        )
    names = [release_name(c) for c in configs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"invalid parameter configs: {dup} given more than once (each config once)")
    return configs


def check_out(out, overwrite: bool) -> Path:
    """The absolute release folder ``out`` (a symbolic link's target), checked before any work
    (``files.check_output_folder``).

    ``FileExistsError`` for a non-empty ``out`` without ``overwrite``; ``ValueError`` naming
    ``out`` for a path inside a file, the current folder or a parent of it, a folder srhm
    did not build, and (with ``overwrite``) a release holding entries srhm did not write.
    """
    require_path(out, "out")
    out = Path(out).absolute()
    parent = next(p for p in out.parents if p.exists())
    if not parent.is_dir():
        raise ValueError(f"invalid parameter out={str(out)!r}: must be a path inside a folder ({parent} is a file)")
    try:
        real = check_output_folder(out, "release", replace=overwrite)
    except ValueError as err:
        if read_marker(out) is None and (out / "README.md").is_file() and (out / "rules").is_dir():
            raise ValueError(
                f"{err} (releases built before srhm wrote {MARKER_NAME} have none either: rebuild into a "
                "new folder, or move the old one away yourself)"
            ) from None
        raise
    if real.exists() and any(real.iterdir()) and not overwrite:
        raise FileExistsError(f"invalid parameter out={str(out)!r}: already exists (pass overwrite=True)")
    return real


def build_release(
    configs,
    out: str | Path,
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    release_version: str | None = None,
    repo_id: str | None = None,
) -> list[ConfigResult]:
    """Build the release folder ``out`` for ``configs`` (SRHMConfig objects), atomically.

    ``workers``: processes generating blocks (1 = in this process, with threads).
    ``overwrite``: replace an existing release folder srhm built (else a non-empty
    ``out`` is a ``FileExistsError``); anything else at ``out`` is refused (``check_out``).
    ``repo_id`` (``ORG/NAME``) and ``release_version`` (``X.Y.Z``) only fill the card's
    examples and ``croissant.json``. Every argument is checked before any work
    (``TypeError``/``ValueError`` naming it). SIGTERM/SIGINT raise ``BuildInterrupted``
    after worker processes are ended and the temporary folder removed; ``OSError`` (disk
    full, read-only) likewise leaves ``out`` untouched. ``out`` is held for the call
    (``files.claim_output``: another writer is refused with ``files.FolderInUse``) and checked
    again when it is replaced (``files.replace_dir``: nothing srhm did not write is removed).
    Returns the per-config results.
    Rebuilding gives identical content hashes.
    """
    configs, out = check_build(
        configs,
        out,
        workers=workers,
        overwrite=overwrite,
        progress=progress,
        release_version=release_version,
        repo_id=repo_id,
    )
    with claim_output(out, "release", replace=overwrite), _interrupts_raise() as deferred:
        remove_stale_partials(out)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_partial_prefix(out)}{os.getpid()}-{_host_tag()}-", dir=out.parent))
        try:
            with block_pool(workers) as pool:
                results = [build_config(cfg, tmp, pool, progress) for cfg in configs]
            seal(tmp, results, release_version, repo_id)
            with deferred():  # a signal here waits for the renames: never an old release half moved away
                replace_dir(tmp, out, overwrite)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return results


def check_build(
    configs,
    out,
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    release_version: str | None = None,
    repo_id: str | None = None,
) -> tuple[list[SRHMConfig], Path]:
    """``build_release``'s arguments checked before any work (``TypeError``/``ValueError`` naming the parameter,
    ``FileExistsError`` for ``out``); returns the configs as a list and ``out`` as an absolute path."""
    configs = _check_configs(configs)
    require_type(workers, int, "workers", "an int >= 1")
    most = max_workers()
    require(
        1 <= workers <= most,
        "workers",
        workers,
        f"1 <= workers <= {most} (the CPU count: more processes only add memory)",
    )
    for flag, value in (("overwrite", overwrite), ("progress", progress)):
        require_type(value, bool, flag, "a bool")
    if release_version is not None:
        check_release_version(release_version)
    if repo_id is not None:
        check_repo_id(repo_id, "repo_id")
    return configs, check_out(out, overwrite)


@contextlib.contextmanager
def block_pool(workers: int):
    """A process pool of ``workers`` generating blocks ahead for ``build_config`` (None when ``workers == 1``).

    Its workers are ended at once when the body raises (an error or ``BuildInterrupted``).
    """
    if workers == 1:
        yield None
        return
    with process_pool(workers) as pool:
        pool.srhm_workers = workers  # blocks generated ahead: 2 * workers
        yield pool


def seal(root: Path, results: list[ConfigResult], release_version: str | None, repo_id: str | None) -> None:
    """Complete the built folder ``root``: ``croissant.json``, the card (last: a folder with README.md is
    complete), the permissions of an ordinary folder and the owner marker listing its entries."""
    from .card import write_card
    from .croissant import write_croissant

    write_croissant(root, results, release_version, repo_id)
    write_card(root, results, release_version, repo_id)
    os.chmod(root, 0o777 & ~umask())  # mkdtemp makes 0700; a release folder is an ordinary one
    mark_owned(root, "release")


class BuildInterrupted(KeyboardInterrupt):
    """A build ended by a signal (``signum``: SIGTERM or SIGINT); its clean-up has run."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def _interrupts_raise():
    """SIGTERM and SIGINT raise ``BuildInterrupted`` while active (main thread only; old handlers restored).

    Yields ``deferred``: a context inside which a signal is held and raised at its end.
    A signal the process ignores (SIGINT of a background job) stays ignored.
    """
    state = {"defer": False, "pending": None}

    def handler(signum, frame):
        if state["defer"]:
            state["pending"] = signum
        else:
            raise BuildInterrupted(signum)

    @contextlib.contextmanager
    def deferred():
        state["defer"] = True
        try:
            yield
        finally:
            state["defer"] = False
        if state["pending"] is not None:
            raise BuildInterrupted(state["pending"])

    if threading.current_thread() is not threading.main_thread():
        yield contextlib.nullcontext
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s, previous in old.items():
        if previous is not signal.SIG_IGN:
            signal.signal(s, handler)
    try:
        yield deferred
    finally:
        for s, previous in old.items():
            signal.signal(s, previous)


def max_workers() -> int:
    """Most ``workers`` of a build: the CPU count (at least 2)."""
    return max(2, os.cpu_count() or 1)


def _host_tag() -> str:
    """This host's name as it appears in partial folder names (letters, digits, ``_`` and ``.``)."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:64] or "host"


def _partial_prefix(out: Path) -> str:
    return f".{out.name}.partial-"


def remove_stale_partials(out: str | Path) -> list[Path]:
    """Remove the temporary folders of killed builds of ``out``; returns those removed.

    A build writes into ``.<out>.partial-<pid>-<host>-<random>``; a folder whose process
    no longer exists on this host (and is not this process) is stale. Folders of other
    hosts (a shared filesystem) and of running processes are kept.
    """
    out = Path(out).absolute()
    pattern = re.compile(rf"^{re.escape(_partial_prefix(out))}(?P<pid>\d+)-(?P<host>[A-Za-z0-9_.]+)-[^-]+$")
    removed = []
    for path in out.parent.glob(f"{glob.escape(_partial_prefix(out))}*"):
        m = pattern.match(path.name)
        if m is None or not path.is_dir() or path.is_symlink():
            continue
        pid = int(m["pid"])
        if m["host"] != _host_tag() or pid == os.getpid() or process_exists(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


__all__ = [
    "BuildInterrupted",
    "ConfigResult",
    "SplitResult",
    "block_pool",
    "build_config",
    "build_release",
    "check_build",
    "check_out",
    "remove_stale_partials",
    "row_group_rows",
    "seal",
    "shard_ranges",
]
