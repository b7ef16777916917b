"""Write a release folder (SPEC 8): Parquet shards, rules files, card, croissant.json.

Layout written::

    README.md                                  card (written last)
    croissant.json
    rules/<config>.json
    <config>/train-00000-of-000NN.parquet      NN = ceil(train bytes / SHARD_BYTES)
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
"""

from __future__ import annotations

import dataclasses
import glob
import multiprocessing
import os
import re
import shutil
import socket
import tempfile
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..catalog import release_name
from ..config import SRHMConfig
from ..files import replace_dir, umask
from ..generate import column_dtypes, generate
from ..hashing import SplitHasher
from ..perturb import forced_change_possible, perturb
from .features import PROBE_COLUMNS, PROBE_KINDS, arrow_schema, to_arrow
from .rules_file import SPLITS, dumps, empty_content_hash, rules_document

#: Target uncompressed (Arrow) bytes of one row group: small enough for the Hub viewer.
ROW_GROUP_BYTES = 16 << 20
#: Bounds on rows per row group (and per generated block).
MIN_GROUP_ROWS, MAX_GROUP_ROWS = 1024, 1 << 17
#: Target uncompressed bytes of one train shard.
SHARD_BYTES = 1 << 30
#: Parquet writer options (deterministic for a given pyarrow version).
PARQUET_OPTIONS = dict(compression="zstd", write_page_index=True, write_statistics=True)
#: Perturbation parameters of the probe columns (SPEC 6).
PROBE_FORCE, PROBE_KEY = True, 0


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


def row_group_rows(cfg: SRHMConfig, split: str) -> int:
    """Rows per row group (and per generated block) of a split."""
    return int(min(MAX_GROUP_ROWS, max(MIN_GROUP_ROWS, ROW_GROUP_BYTES // row_bytes(cfg, split))))


def shard_ranges(cfg: SRHMConfig, split: str, num_rows: int) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of a split's shards; test and probe have one shard.

    Train shards hold whole row groups and at most about ``SHARD_BYTES`` each.
    """
    if num_rows == 0:
        return []
    if split != "train":
        return [(0, num_rows)]
    group = row_group_rows(cfg, split)
    groups = -(-num_rows // group)
    per_shard = max(1, SHARD_BYTES // (group * row_bytes(cfg, split)))
    shards = -(-groups // per_shard)
    step = -(-groups // shards) * group
    return [(a, min(a + step, num_rows)) for a in range(0, num_rows, step)]


def probe_defined(cfg: SRHMConfig) -> dict[str, bool]:
    """Per probe column, whether its forced change is possible (``forced_change_possible``)."""
    possible = forced_change_possible(cfg)
    return {column: possible[kind] for column, kind in PROBE_KINDS.items()}


def probe_columns(cfg: SRHMConfig, batch: dict) -> dict[str, np.ndarray]:
    """The probe columns of the rows in ``batch`` (label, synonyms, placements, tokens [n, d]).

    Each is [n, L, d] tokens, index l-1 the forced perturbation at level l, or the
    unperturbed tokens where that change is impossible (``probe_defined``).
    """
    defined = probe_defined(cfg)
    tokens = batch["tokens"]
    columns = {}
    for column in PROBE_COLUMNS:
        out = np.empty((tokens.shape[0], cfg.L, cfg.d), dtype=tokens.dtype)
        for level in range(1, cfg.L + 1):
            if defined[column]:
                out[:, level - 1] = perturb(
                    cfg, batch, kind=PROBE_KINDS[column], level=level, force=PROBE_FORCE, key=PROBE_KEY
                )
            else:
                out[:, level - 1] = tokens
        columns[column] = out
    return columns


def make_block(cfg: SRHMConfig, split: str, start: int, stop: int, threads: int | None = None) -> dict[str, np.ndarray]:
    """Rows start..stop-1 of a split as numpy columns; probe adds ``probe_columns`` ([n, L, d] each)."""
    batch = generate(cfg, split, start, stop, workers=threads)
    if split == "probe":
        batch.update(probe_columns(cfg, batch))
    return batch


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
    """Write a split's shards under ``root/name/``; None for a 0-row split (no shard)."""
    n = cfg.split_sizes()[split]
    shards = shard_ranges(cfg, split, n)
    if not shards:
        return None
    group = row_group_rows(cfg, split)
    schema = arrow_schema(cfg, split)
    hasher = SplitHasher()
    files, num_bytes = [], 0
    (root / name).mkdir(parents=True, exist_ok=True)
    for i, (a, b) in enumerate(shards):
        rel = f"{name}/{split}-{i:05d}-of-{len(shards):05d}.parquet"
        ranges = [(x, min(x + group, b)) for x in range(a, b, group)]
        with pq.ParquetWriter(root / rel, schema, **PARQUET_OPTIONS) as writer:
            for block in _blocks(cfg, split, ranges, pool):
                table = to_arrow(cfg, block, split)
                writer.write_table(table, row_group_size=table.num_rows)
                hasher.update(block)
                num_bytes += table.nbytes
                if progress is not None:
                    progress.update(table.num_rows)
        files.append(rel)
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
    probe = {
        "levels": list(range(1, cfg.L + 1)),
        "level_index": "column[l - 1] holds level l (l = 1 acts on depth L - 1, l = L under the root)",
        "force": PROBE_FORCE,
        "key": PROBE_KEY,
        "defined": probe_defined(cfg),
    }
    doc = rules_document(cfg, splits, probe)
    (root / "rules").mkdir(exist_ok=True)
    (root / "rules" / f"{name}.json").write_text(dumps(doc), encoding="utf-8")
    return ConfigResult(name, cfg, results, doc)


def _check_configs(configs) -> list[SRHMConfig]:
    configs = list(configs)
    if not configs:
        raise ValueError("invalid parameter configs=[]: must name at least one config")
    names = [release_name(c) for c in configs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"invalid parameter configs: {dup} given more than once (each config once)")
    return configs


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
    ``overwrite``: replace an existing ``out`` (else it is an error). ``repo_id``
    and ``release_version`` only fill the card's examples. Returns the
    per-config results. Rebuilding gives identical content hashes.
    """
    from .card import write_card
    from .croissant import write_croissant

    configs = _check_configs(configs)
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"invalid parameter workers={workers!r}: must satisfy workers >= 1")
    out = Path(out).absolute()
    if out.exists() and not overwrite:
        raise FileExistsError(f"invalid parameter out={str(out)!r}: already exists (pass overwrite=True / --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_partial_prefix(out)}{os.getpid()}-{_host_tag()}-", dir=out.parent))
    pool = None
    try:
        if workers > 1:
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            pool.srhm_workers = workers  # blocks generated ahead: 2 * workers
        results = [build_config(cfg, tmp, pool, progress) for cfg in configs]
        write_croissant(tmp, results, release_version, repo_id)
        write_card(tmp, results, release_version, repo_id)  # last: a folder with README.md is complete
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; a release folder is an ordinary one
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return results


def _host_tag() -> str:
    """This host's name as it appears in partial folder names (letters, digits, ``_`` and ``.``)."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:64] or "host"


def _partial_prefix(out: Path) -> str:
    return f".{out.name}.partial-"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return True  # unknown: keep the folder
    try:  # a killed process not yet reaped (a zombie) still answers kill(pid, 0)
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


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
        if m["host"] != _host_tag() or pid == os.getpid() or _process_exists(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


__all__ = ["build_release", "build_config", "make_block", "shard_ranges", "row_group_rows", "ConfigResult", "remove_stale_partials"]
