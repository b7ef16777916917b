"""``verify_release``: re-derive every row of a release folder and check format.md §8.9.

Per config (one ``rules/<name>.json`` each):

* rules file: keys and format, parameters and sizes consistent with the canonical
  name, the tables well formed (shape [n_k, m, s], symbols in [0, v), the n_k*m
  tuples of a depth distinct) and equal to ``sample_rules``, ``rules_hash``.
* every split, streamed in row batches: Parquet schema = the declared features;
  shard names complete; value ranges; ``latents`` and ``tokens`` decoded from
  (label, synonyms, placements) with the *file's* rule tables by a node-by-node
  decoder written independently of ``generate``; (label, synonyms, placements)
  equal to the sampler's row i of the split; probe columns equal to the forced
  perturbations (or the unperturbed tokens where undefined); row counts; the
  content hash against the rules file and against the split's own row of the card's
  hash table (a split of 0 rows: no shard, the hash of zero rows).
* no duplicate (label, synonyms, placements) within or across splits (``duplicates``:
  64-bit fingerprints, the rows of equal fingerprints compared exactly).
* the card: configs, data_files, features, split sizes, the rules hash row; for the
  whole release, a ``license`` and ``default: true`` on exactly one config (the
  catalog's default config ``demo`` when the release has it).
* ``croissant.json``: present, JSON, a file set naming every shard and a record set
  with the split's columns.

Corrupt inputs (unreadable Parquet, a card whose YAML does not parse, rules files of
the wrong shape) are failures with a reason, never an exception. The result is a
``Report``; ``Report.ok`` is False on any failure.

Memory is bounded in bytes, as the build's: rows are read and re-derived in blocks of
``block_rows`` rows, whose working arrays (the rows read, their re-derived tokens and
latents in the columns' own narrow dtypes, the probe columns) add up to about
``BLOCK_BYTES``, a quarter of the build's row group; the content hash widens to int64
``hashing.HASH_CHUNK_BYTES`` at a time. The only state that grows with a split is its
rows' fingerprints (8 bytes a row), dropped once the config is checked: the report keeps
only the checks' text, so the peak does not grow with the number of configs.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..catalog import DEFAULT_CONFIG
from ..config import SPLITS, decimal_string, require, require_type
from ..generate import column_dtypes
from ..hashing import SplitHasher
from ..perturb import fingerprint
from ..probe import PROBE_COLUMNS, PROBE_SUFFIX, probe_columns, probe_defined, split_columns
from ..rules import sample_rules
from ..sampler import split_digits
from .arguments import require_path
from .build import ROW_GROUP_BYTES, row_bytes
from .card import HASH_ROW
from .duplicates import shared, surplus
from .features import arrow_schema, from_arrow, hf_features, yaml_features
from .folder_check import parquet_errors, read_card, shard_set
from .manifest import card_rows, config_problems, extra_configs, selected_names
from .rules_file import (
    FORMAT,
    candidate_names,
    config_from_rules,
    empty_content_hash,
    structure_problems,
    tables_hash,
)

PARQUET_ERRORS = parquet_errors()
#: Read-ahead buffer of a Parquet column chunk: a shard's row groups are not read whole.
READ_BUFFER_BYTES = 1 << 20
#: Bytes the Parquet reader holds per value while it decodes a batch, beside the Arrow result:
#: the value's physical INT32 (uint8 and uint16 are stored as INT32) and its int16
#: definition and repetition levels (list columns).
DECODE_BYTES_PER_VALUE = 8
#: Bytes of the working arrays of one verified block: a quarter of the build's row group
#: (``build.ROW_GROUP_BYTES``), so that verify, which also keeps 8 bytes a row of fingerprints,
#: peaks below the build of the same config (whose writer holds row groups and their encoding).
BLOCK_BYTES = ROW_GROUP_BYTES // 4
#: The ``Check.config`` of release-wide checks (the card's license and default config).
RELEASE = "(release)"


@dataclasses.dataclass
class Check:
    """One verified item: ``problems`` empty means it passed."""

    config: str
    item: str
    problems: list[str]
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclasses.dataclass
class Report:
    """All checks of a verification run."""

    folder: str
    checks: list[Check] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def format(self) -> str:
        """A human-readable report: one line per check, problems indented, a summary."""
        lines = [f"srhm verify {self.folder}"]
        for c in self.checks:
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.config:<28} {c.item:<9} {c.detail}")
            lines.extend(f"          - {p}" for p in c.problems[:20])
            if len(c.problems) > 20:
                lines.append(f"          - ... {len(c.problems) - 20} more")
        n_fail = len(self.failures)
        configs = len({c.config for c in self.checks} - {RELEASE, "-"})
        lines.append(
            f"{'OK' if self.ok else 'FAILED'}: {configs} config(s), {len(self.checks)} checks, {n_fail} failed"
        )
        return "\n".join(lines)


# ---- independent decoder -------------------------------------------------------


def _slot_of(cfg, q: np.ndarray, i: int) -> np.ndarray:
    """Slot (0..S-1) of child i for placement indices q (format.md §3), computed directly."""
    if cfg.sparsity == "A":
        base = cfg.s0 + 1
        offset = (q // base ** (cfg.s - 1 - i)) % base
        return i * base + offset
    return _combinations(cfg.S, cfg.s)[q, i]


@lru_cache(maxsize=16)
def _combinations(S: int, s: int) -> np.ndarray:
    """Order-preserving s-subsets of range(S), in itertools order: [comb(S, s), s]."""
    return np.array(list(itertools.combinations(range(S), s)), dtype=np.int64)


def decode(cfg, tables: list[np.ndarray], label, synonyms, placements) -> tuple[np.ndarray, np.ndarray]:
    """Latents [n, N] and tokens [n, d] from sample indices, node by node.

    tables: the rule tables [n_k, m, s] (from the rules file), symbols in [0, v).
    label [n], synonyms / placements [n, N] (heap order), any integer dtype. Independent
    of ``generate``: walks the heap node by node, placing each child at its parent's
    block start plus its slot times the child block size. The outputs have the dtypes of
    the published columns (``generate.column_dtypes``: tokens uint8 if v < 255 else
    uint16, latents the smallest unsigned type), so their memory is that of the rows
    read; the per-node temporaries are [n] and [n, N] int64.

    Examples
    --------
    >>> from srhm_datasets import SRHMConfig, generate, sample_rules
    >>> cfg = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, seed=0)
    >>> rows = generate(cfg, "test", 0, 3)
    >>> latents, tokens = decode(cfg, sample_rules(cfg), rows["label"], rows["synonyms"], rows["placements"])
    >>> bool((tokens == rows["tokens"]).all()), tokens.dtype.name
    (True, 'uint8')
    """
    dtypes = column_dtypes(cfg)
    label = np.asarray(label)
    syn = np.asarray(synonyms)
    pl = np.asarray(placements)
    n, N = syn.shape
    rows = np.arange(n)
    latents = np.zeros((n, N), dtype=dtypes["latents"])
    start = np.zeros((n, N), dtype=np.int64)
    latents[:, 0] = label
    tokens = np.full((n, cfg.d), cfg.blank, dtype=dtypes["tokens"])
    depths = [k for k in range(cfg.L) for _ in cfg.depth_nodes(k)]
    for j in range(N):
        depth = depths[j]
        child_block = cfg.S ** (cfg.L - depth - 1)
        for i in range(cfg.s):
            symbol = tables[depth][latents[:, j], syn[:, j], i]
            pos = start[:, j] + _slot_of(cfg, pl[:, j].astype(np.int64), i) * child_block
            c = j * cfg.s + 1 + i
            if c < N:
                latents[:, c] = symbol
                start[:, c] = pos
            else:
                tokens[rows, pos] = symbol
    return latents, tokens


# ---- checks --------------------------------------------------------------------


def _check_rules(name: str, doc) -> tuple[Check, object, list | None]:
    problems: list[str] = []
    wrong = structure_problems(doc)
    if wrong:
        return Check(name, "rules", wrong), None, None
    if doc["format"] != FORMAT:
        problems.append(f"format {doc['format']} != {FORMAT}")
    try:
        cfg = config_from_rules(doc)
    except (ValueError, TypeError) as err:
        return Check(name, "rules", [f"config {doc['config']!r}: {err}"]), None, None
    if doc["parameters"] != cfg.parameters():
        problems.append(f"parameters {doc['parameters']} != those of {cfg.name}: {cfg.parameters()}")
    sizes = {
        "d": cfg.d,
        "num_nodes": cfg.num_nodes,
        "placements_per_node": cfg.placements_per_node,
        "data_space_size": decimal_string(cfg.data_space_size),
    }
    for key, value in sizes.items():
        if doc["sizes"].get(key) != value:
            problems.append(f"sizes.{key} = {doc['sizes'].get(key)!r}, expected {value!r}")
    if doc["blank"] != cfg.blank:
        problems.append(f"blank = {doc['blank']}, expected v = {cfg.v}")
    tables = None
    try:
        tables = [np.asarray(t, dtype=np.int64) for t in doc["rules"]]
        if len(tables) != cfg.L:
            raise ValueError(f"{len(tables)} rule tables, expected L = {cfg.L}")
        for k, t in enumerate(tables):
            shape = (cfg.nc if k == 0 else cfg.v, cfg.m, cfg.s)
            if t.shape != shape:
                raise ValueError(f"rules[{k}] has shape {t.shape}, expected {shape}")
            if t.min() < 0 or t.max() >= cfg.v:
                problems.append(f"rules[{k}] has symbols outside [0, v={cfg.v})")
            flat = t.reshape(-1, cfg.s)
            if len(np.unique(flat, axis=0)) != len(flat):
                problems.append(f"rules[{k}] repeats a production tuple (ambiguous grammar)")
        expected = sample_rules(cfg)
        if any(not np.array_equal(a, b) for a, b in zip(tables, expected)):
            problems.append("rule tables differ from sample_rules(config) of this generator")
    except (ValueError, TypeError) as err:
        problems.append(f"rule tables malformed: {err}")
        tables = None
    computed = tables_hash(doc)
    if doc["rules_hash"] != computed:
        problems.append(f"rules_hash {doc['rules_hash']} != hash of the tables {computed}")
    for split in SPLITS:
        info = doc["splits"].get(split)
        if info is None or "num_rows" not in info or "content_hash" not in info:
            problems.append(f"splits.{split} missing or without num_rows/content_hash")
    return Check(name, "rules", problems, f"{cfg.name} {doc['rules_hash'][:19]}..."), cfg, tables


def _card_row_problems(card_table: dict, name: str, item: str, digest: str, rows: int | None) -> list[str]:
    """Problems of the card's hash-table row for (config, split or ``rules``)."""
    entries = card_table.get((name, item), [])
    if not entries:
        return [f"hash {digest} not in the card: its hash table has no row for {name} {item}"]
    problems = []
    if len(entries) > 1:
        problems.append(f"the card's hash table has {len(entries)} rows for {name} {item}")
    got = {h for _, h in entries}
    if got != {digest}:
        problems.append(f"hash {digest} not in the card's row for {name} {item} (it has {', '.join(sorted(got))})")
    if rows is not None and {r for r, _ in entries} != {str(rows)}:
        problems.append(f"the card's row for {name} {item} says {entries[0][0] or 'no'} rows, expected {rows}")
    return problems


def verify_row_bytes(cfg, split: str) -> int:
    """Bytes of verify's working arrays per row of a split: the Parquet reader's decoding
    (``DECODE_BYTES_PER_VALUE`` per value), the row read (``build.row_bytes``), its
    re-derived columns (as many bytes again: tokens and latents, or the probe columns),
    the mismatch mask (d bools) and 8 int64 per node (positions, digits, fingerprints).

    Examples
    --------
    >>> from srhm_datasets import SRHMConfig
    >>> cfg = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, seed=0)  # d = 16, N = 3
    >>> verify_row_bytes(cfg, "train") < verify_row_bytes(cfg, "probe")
    True
    """
    values = cfg.d * (1 + (2 * cfg.L if split == "probe" else 0)) + 1 + 3 * cfg.num_nodes
    return DECODE_BYTES_PER_VALUE * values + 2 * row_bytes(cfg, split) + cfg.d + 64 * (cfg.num_nodes + 1)


def block_rows(cfg, split: str) -> int:
    """Rows verified at once: their working arrays (``verify_row_bytes``) fill about
    ``BLOCK_BYTES``, at least one row. Sized in bytes, so the memory of a block is the same
    at any d.

    Examples
    --------
    >>> from srhm_datasets import SRHMConfig
    >>> wide = SRHMConfig(L=3, s=3, s0=6, v=4, nc=4, m=16, seed=2)
    >>> block_rows(wide, "train") * verify_row_bytes(wide, "train") <= BLOCK_BYTES
    True
    """
    return max(1, BLOCK_BYTES // verify_row_bytes(cfg, split))


def _check_split(
    folder: Path, name: str, cfg, tables, doc: dict, split: str, card_table: dict, fps: dict[str, np.ndarray]
) -> Check:
    """Every row of one split: schema, ranges, rules, row index, probe columns, hash, duplicates.

    The split's row fingerprints, sorted, go to ``fps[split]`` for ``_check_overlap``.
    """
    n_expected = cfg.split_sizes()[split]
    info = doc["splits"].get(split, {})
    problems: list[str] = []
    if info.get("num_rows") != n_expected:
        problems.append(f"rules num_rows = {info.get('num_rows')}, expected {n_expected}")
    files, shard_problems = shard_set(folder, name, split)
    problems += shard_problems
    if n_expected == 0:
        return _check_empty_split(name, split, info, files, card_table, problems)
    if not files:
        return Check(name, split, problems + [f"no shard {name}/{split}-*.parquet"], "")
    hasher, at = SplitHasher(), 0
    prints, extra = np.empty(n_expected, dtype=np.uint64), []  # extra: rows beyond n_expected
    for cols in _split_columns(files, cfg, split, problems):
        a, at = at, at + len(cols["label"])
        hasher.update(cols)
        problems += _row_problems(cfg, tables, split, cols, a, n_expected)
        block = fingerprint(cols)
        prints[a : min(at, n_expected)] = block[: max(0, n_expected - a)]
        extra += [block[max(0, n_expected - a) :]] if at > n_expected else []
        del cols, block  # the block's arrays go before the next block is read
    if at != n_expected:
        problems.append(f"{at} rows in the shards, expected {n_expected}")
    digest = hasher.hexdigest()
    if info.get("content_hash") != digest:
        problems.append(f"content hash {digest} != rules file {info.get('content_hash')}")
    problems += [f"content {p}" for p in _card_row_problems(card_table, name, split, digest, n_expected)]
    prints = np.concatenate([prints, *extra]) if extra else prints[: min(at, n_expected)]
    prints.sort()
    fps[split] = prints
    duplicates = surplus(prints, _rereader(folder, name, cfg, split))
    if duplicates:
        problems.append(f"{duplicates} duplicate samples (label, synonyms, placements) within the split")
    return Check(name, split, problems, f"{at} rows, {len(files)} shard(s), {digest[:19]}...")


def _check_empty_split(
    name: str, split: str, info: dict, files: list[Path], card_table: dict, problems: list[str]
) -> Check:
    """A split of 0 rows: no shard, and the hash of zero rows in the rules file and the card."""
    if files:
        problems.append(f"a 0-row split must have no shard, found {[f.name for f in files]}")
    digest = empty_content_hash(split)
    if info.get("content_hash") != digest:
        problems.append(f"content hash {digest} (of 0 rows) != rules file {info.get('content_hash')}")
    problems += _card_row_problems(card_table, name, split, digest, 0)
    return Check(name, split, problems, f"0 rows (no shard), {digest[:19]}...")


def _split_columns(files: list[Path], cfg, split: str, problems: list[str]):
    """The numpy columns of a split's shards, ``block_rows`` rows at a time; unreadable or mistyped
    shards become problems."""
    schema = arrow_schema(cfg, split)
    declared = [(x.name, x.type) for x in schema]
    rows = block_rows(cfg, split)
    for f in files:
        try:
            pf = pq.ParquetFile(f, buffer_size=READ_BUFFER_BYTES)
            got = pf.schema_arrow
        except PARQUET_ERRORS as err:
            problems.append(f"{f.name}: not a readable Parquet file ({type(err).__name__}: {err})")
            continue
        if [(x.name, x.type) for x in got] != declared:
            shown = [(x.name, str(x.type)) for x in got]
            problems.append(f"{f.name}: schema {shown} != declared {[(x.name, str(x.type)) for x in schema]}")
            continue
        if _features_of(got) != hf_features(cfg, split):
            problems.append(f"{f.name}: the features in its 'huggingface' metadata differ from the declared ones")
        for rb in _record_batches(pf, f.name, rows, problems):
            yield from_arrow(rb)


def _row_problems(cfg, tables, split: str, cols: dict, a: int, n_expected: int) -> list[str]:
    """Problems of rows a.. of a split: value ranges, tokens and latents against the rules
    (``tables``, None when the rules file failed), the row index (row i of the split), probe columns."""
    b = a + len(cols["label"])
    where = f"rows {a}..{b - 1}"
    label, syn, pl = cols["label"], cols["synonyms"], cols["placements"]
    if label.min() < 0 or label.max() >= cfg.nc:
        return [f"{where}: label outside [0, nc={cfg.nc})"]
    if syn.max() >= cfg.m or pl.max() >= cfg.placements_per_node:
        return [f"{where}: synonym >= m or placement >= K"]
    problems = []
    if tables is not None:
        latents, tokens = decode(cfg, tables, label, syn, pl)
        bad = np.flatnonzero((latents != cols["latents"]).any(1) | (tokens != cols["tokens"]).any(1))
        if bad.size:
            problems.append(
                f"{where}: {bad.size} rows whose latents/tokens do not follow from the rules (first row {a + bad[0]})"
            )
    if b <= n_expected:
        digits = split_digits(cfg, split, a, b)
        same = (digits[:, 0] == label) & (digits[:, 1::2] == syn).all(1) & (digits[:, 2::2] == pl).all(1)
        if not same.all():
            first = a + int(np.flatnonzero(~same)[0])
            problems.append(f"{where}: {(~same).sum()} rows are not row i of split {split} (first row {first})")
    if split == "probe":
        defined, want = probe_defined(cfg), probe_columns(cfg, cols)
        for column in PROBE_COLUMNS:
            for level in range(1, cfg.L + 1):
                if not np.array_equal(cols[column][:, level - 1], want[column][:, level - 1]):
                    expected = "forced perturbation" if defined[column] else "unperturbed tokens"
                    problems.append(f"{where}: {column}[level {level}] differs from the {expected}")
    return problems


def _features_of(schema):
    """The ``datasets.Features`` a Parquet schema's ``huggingface`` metadata declares (None if none)."""
    import datasets

    meta = (schema.metadata or {}).get(b"huggingface")
    if meta is None:
        return None
    try:
        return datasets.Features.from_dict(json.loads(meta)["info"]["features"])
    except (ValueError, KeyError, TypeError):
        return None


def _record_batches(pf, file_name: str, rows: int, problems: list[str]):
    """The record batches of ``rows`` rows of a Parquet file; a read error ends them with a problem."""
    batches = pf.iter_batches(batch_size=rows)
    read = 0
    while True:
        try:
            rb = next(batches, None)
        except PARQUET_ERRORS as err:
            problems.append(f"{file_name}: unreadable after {read} rows ({type(err).__name__}: {err})")
            return
        if rb is None:
            return
        read += rb.num_rows
        yield rb


def _rereader(folder: Path, name: str, cfg, split: str):
    """A callable reading a split's column blocks anew (for ``duplicates``; problems already reported)."""
    return lambda: _split_columns(shard_set(folder, name, split)[0], cfg, split, [])


def _check_overlap(folder: Path, name: str, cfg, fps: dict) -> Check:
    """No sample in two splits (``fps``: split -> its rows' sorted fingerprints)."""
    problems = []
    splits = sorted(fps)
    for x, y in itertools.combinations(splits, 2):
        both = shared(fps[x], fps[y], _rereader(folder, name, cfg, x), _rereader(folder, name, cfg, y))
        if both:
            problems.append(f"{both} samples in both {x} and {y}")
    return Check(name, "overlap", problems, f"splits {', '.join(splits)} disjoint" if not problems else "")


def _named_entries(header: dict, key: str, problems: list[str]) -> dict:
    """``header[key]`` (a list of mappings with ``config_name``) by config name."""
    entries = header.get(key, [])
    if not isinstance(entries, list):
        problems.append(f"card {key} is a {type(entries).__name__}, expected a list")
        return {}
    out = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("config_name"), str):
            problems.append(f"card {key} entry {str(entry)[:60]!r} has no config_name")
            continue
        out[entry["config_name"]] = entry
    return out


def _check_card(folder: Path, name: str, cfg, doc: dict, header: dict | None, card_table: dict) -> Check:
    if header is None:
        return Check(name, "card", ["README.md missing or without a readable YAML header"])
    problems = []
    configs = _named_entries(header, "configs", problems)
    infos = _named_entries(header, "dataset_info", problems)
    sizes = cfg.split_sizes()
    groups = {
        name: [s for s in ("train", "test") if sizes[s]],
        name + PROBE_SUFFIX: ["probe"] if sizes["probe"] else [],
    }
    for hf_name, splits in groups.items():
        if not splits:
            if hf_name in configs:
                problems.append(f"config {hf_name} lists only empty splits")
            continue
        entry, info = configs.get(hf_name), infos.get(hf_name)
        if entry is None or info is None:
            problems.append(f"config {hf_name} missing from configs/dataset_info")
            continue
        want_files = [{"split": s, "path": f"{name}/{s}-*.parquet"} for s in splits]
        if entry.get("data_files") != want_files:
            problems.append(f"config {hf_name}: data_files {entry.get('data_files')} != {want_files}")
        feats = yaml_features(cfg, splits[0])
        if info.get("features") != feats:
            problems.append(f"config {hf_name}: features differ from the declared ones")
        splits_info = info.get("splits", [])
        got = (
            {s.get("name"): s.get("num_examples") for s in splits_info if isinstance(s, dict)}
            if isinstance(splits_info, list)
            else splits_info
        )
        want = {s: sizes[s] for s in splits}
        if got != want:
            problems.append(f"config {hf_name}: split sizes {got} != {want}")
        elif isinstance(splits_info, list):
            num_bytes = sum(s.get("num_bytes") or 0 for s in splits_info if isinstance(s, dict))
            if info.get("dataset_size") != num_bytes:
                problems.append(
                    f"config {hf_name}: dataset_size {info.get('dataset_size')} != the splits' num_bytes {num_bytes}"
                )
            on_disk = sum(f.stat().st_size for s in splits for f in shard_set(folder, name, s)[0])
            if info.get("download_size") != on_disk:
                problems.append(
                    f"config {hf_name}: download_size {info.get('download_size')} != the shards' {on_disk} bytes"
                )
    problems += _card_row_problems(card_table, name, "rules", doc["rules_hash"], None)
    return Check(name, "card", problems, "configs, data_files, features, sizes, hash table")


def _check_release_card(header: dict | None, all_names: list[str], read_problem: str | None) -> Check:
    """Release-wide card fields: ``license``, and ``default: true`` on one config (``demo`` if present)."""
    if header is None:
        return Check(RELEASE, "card", [read_problem or "README.md missing or without a YAML header"])
    problems = []
    license_ = header.get("license")
    if not license_ or not isinstance(license_, (str, list)):
        problems.append("the card's header has no license")
    configs = _named_entries(header, "configs", problems)
    defaults = sorted(n for n, c in configs.items() if c.get("default") is True)
    if DEFAULT_CONFIG in all_names:
        if defaults != [DEFAULT_CONFIG]:
            problems.append(
                f"the card must declare default: true on {DEFAULT_CONFIG!r} (and no other config), has {defaults}"
            )
    elif len(defaults) != 1:
        problems.append(f"the card must declare default: true on exactly one config, has {defaults}")
    return Check(RELEASE, "card", problems, f"license {license_}, {len(defaults)} default config")


def _load_croissant(folder: Path):
    """``croissant.json`` as a dict, or a string saying why not."""
    path = folder / "croissant.json"
    if not path.is_file():
        return "croissant.json missing"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"croissant.json unreadable: {err}"
    return doc if isinstance(doc, dict) else f"croissant.json is a {type(doc).__name__}, not a JSON-LD object"


def _check_croissant(folder: Path, name: str, croissant) -> Check:
    """Every shard of the config is in a file set of ``croissant.json``, every split has its record set."""
    if isinstance(croissant, str):
        return Check(name, "croissant", [croissant])
    problems = []
    globs = []
    for entry in croissant.get("distribution", []) if isinstance(croissant.get("distribution"), list) else []:
        if isinstance(entry, dict):
            for key in ("includes", "contentUrl"):
                value = entry.get(key)
                globs += (
                    [value]
                    if isinstance(value, str)
                    else [v for v in value if isinstance(v, str)]
                    if isinstance(value, list)
                    else []
                )
    records = (
        {r.get("@id"): r for r in croissant.get("recordSet", []) if isinstance(r, dict)}
        if isinstance(croissant.get("recordSet"), list)
        else {}
    )
    named = 0
    for split in SPLITS:
        files, _ = shard_set(folder, name, split)
        if not files:
            continue
        for f in files:
            rel = f"{name}/{f.name}"
            if any(fnmatchcase(rel, g) for g in globs):
                named += 1
            else:
                problems.append(f"croissant.json has no file set naming {rel}")
        record = records.get(f"{name}_{split}")
        fields = record.get("field") if record else None
        got = [x.get("name") for x in fields if isinstance(x, dict)] if isinstance(fields, list) else None
        if record is None:
            problems.append(f"croissant.json has no record set {name}_{split}")
        elif got != list(split_columns(split)):
            problems.append(
                f"croissant.json record set {name}_{split} has fields {got}, expected {list(split_columns(split))}"
            )
    return Check(name, "croissant", problems, f"{named} shard(s) named")


def _guarded(config: str, item: str, check, *args) -> Check:
    """Run a check; an exception no check foresaw (a corrupt input) becomes a failure, not a traceback."""
    try:
        return check(*args)
    except Exception as err:  # noqa: BLE001 - reported, with its type and message
        return Check(config, item, [f"could not be checked ({type(err).__name__}: {err})"])


def verify_release(folder: str | Path, configs: list[str] | None = None, manifest: str | Path | None = None) -> Report:
    """Verify a release folder (format.md §8.9); ``configs`` restricts to some config names (catalog or canonical).

    ``manifest``: a release manifest folder (``cards/v1.0.0`` of the repository, format.md §8.10);
    each config's rules file must then equal the manifest's and, for a whole release, the card's
    hash table too, and no config may be missing or extra.

    ``TypeError`` naming the parameter for a folder that is not a path or ``configs``
    that is not a list of names; everything about the folder's content is a failure in
    the ``Report``, never an exception.
    """
    require_path(folder, "folder")
    if configs is not None:
        require_type(configs, (list, tuple), "configs", "a list of config names or None")
        for name in configs:
            require_type(name, str, "configs", "a list of config names (str) or None")
            require(name.strip() != "", "configs", name, "non-empty config names")
    if manifest is not None:
        require_path(manifest, "manifest")
    folder = Path(folder)
    report = Report(str(folder))
    all_names = sorted(p.stem for p in (folder / "rules").glob("*.json"))
    names = _selected_configs(folder, all_names, configs, report)
    header, card_table, read_problem = _read_card(folder / "README.md")
    report.checks.append(_guarded(RELEASE, "card", _check_release_card, header, all_names, read_problem))
    croissant = _load_croissant(folder)
    for name in names:
        report.checks += _verify_config(folder, name, header, card_table, croissant)
    if manifest is not None:
        report.checks += _manifest_checks(folder, Path(manifest), configs)
    return report


def _manifest_checks(folder: Path, manifest: Path, configs) -> list[Check]:
    """The folder against a release manifest: every (selected) config's rules file, and for a
    whole release no extra config and the card's hash table equal to the manifest's."""
    if not (manifest / "rules").is_dir():
        return [Check(RELEASE, "manifest", [f"{manifest} is not a release manifest (it has no rules/ folder)"])]
    names = selected_names(manifest, configs)
    checks = [Check(name, "manifest", config_problems(folder, manifest, name), "rules = manifest's") for name in names]
    if not configs:
        mine, theirs = card_rows(folder / "README.md"), card_rows(manifest / "README.md")
        problems = [f"config {name} is not in the manifest" for name in extra_configs(folder, manifest)]
        problems += [f"card row {' | '.join(row)} is not in the manifest's card" for row in sorted(mine - theirs)]
        problems += [f"the manifest's card row {' | '.join(row)} is missing" for row in sorted(theirs - mine)]
        checks.append(Check(RELEASE, "manifest", problems, f"{len(theirs)} card hash rows = manifest's"))
    return checks


def _selected_configs(folder: Path, all_names: list[str], configs, report: Report) -> list[str]:
    """The rules-file names to verify: all, or those of ``configs`` (a missing one is a failed check)."""
    if not configs:
        if not all_names:
            report.checks.append(Check("-", "rules", [f"no rules/*.json in {folder}"]))
        return all_names
    names = []
    for c in configs:
        found = next((n for n in candidate_names(c) if (folder / "rules" / f"{n}.json").is_file()), None)
        if found is None:
            report.checks.append(Check(c, "rules", [f"no rules file for {c!r} in {folder / 'rules'}"]))
        else:
            names.append(found)
    return names


def _read_card(card: Path) -> tuple[dict | None, dict, str | None]:
    """The card's YAML header (None if absent or unreadable), its hash table
    ``{(config, item): [(rows, hash), ...]}`` and the problem reading it, if any."""
    header, problem = read_card(card)
    try:
        body = card.read_text(encoding="utf-8") if header is not None else ""
    except (OSError, UnicodeDecodeError):  # read a moment ago: gone or replaced since
        body = ""
    card_table: dict = {}
    for m in HASH_ROW.finditer(body):
        card_table.setdefault((m["config"], m["item"]), []).append((m["rows"], m["hash"]))
    return header, card_table, f"README.md: {problem}" if problem else None


def _verify_config(folder: Path, name: str, header, card_table: dict, croissant) -> list[Check]:
    """The checks of one config: its rules file, each split, their overlap, its card entries, croissant."""
    try:
        doc = json.loads((folder / "rules" / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return [Check(name, "rules", [f"unreadable: {err}"])]
    try:
        check, cfg, tables = _check_rules(name, doc)
    except Exception as err:  # noqa: BLE001 - a rules file of a shape no check foresaw
        check, cfg, tables = Check(name, "rules", [f"could not be checked ({type(err).__name__}: {err})"]), None, None
    if cfg is None:
        return [check]
    fps: dict[str, np.ndarray] = {}  # the splits' row fingerprints, dropped when this config is done
    splits = [
        _guarded(name, split, _check_split, folder, name, cfg, tables, doc, split, card_table, fps) for split in SPLITS
    ]
    return [
        check,
        *splits,
        _guarded(name, "overlap", _check_overlap, folder, name, cfg, fps),
        _guarded(name, "card", _check_card, folder, name, cfg, doc, header, card_table),
        _guarded(name, "croissant", _check_croissant, folder, name, croissant),
    ]
