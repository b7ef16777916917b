"""``verify_release``: re-derive every row of a release folder and check SPEC 4, 5, 6 and 8.

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
  content hash against the rules file and the card.
* no duplicate (label, synonyms, placements) within or across splits.
* the card: configs, data_files, features, split sizes, hashes in the body.

The result is a ``Report``; ``Report.ok`` is False on any failure.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..hashing import SplitHasher, rules_hash
from ..perturb import perturb
from ..rules import sample_rules
from ..sampler import split_digits
from .build import PROBE_FORCE, PROBE_KEY, probe_defined
from .card import PROBE_SUFFIX, read_header
from .features import PROBE_COLUMNS, PROBE_KINDS, arrow_schema, from_arrow, yaml_features
from .rules_file import FORMAT, SPLITS, candidate_names, config_from_rules

REQUIRED_KEYS = ("format", "generator", "config", "parameters", "sizes", "blank", "rules", "rules_hash", "splits")
BATCH_ROWS = 1 << 15
SHARD_RE = re.compile(r"^(?P<split>\w+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")


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
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.config:<28} {c.item:<8} {c.detail}")
            lines.extend(f"          - {p}" for p in c.problems[:20])
            if len(c.problems) > 20:
                lines.append(f"          - ... {len(c.problems) - 20} more")
        n_fail = len(self.failures)
        configs = len({c.config for c in self.checks})
        lines.append(
            f"{'OK' if self.ok else 'FAILED'}: {configs} config(s), {len(self.checks)} checks, {n_fail} failed"
        )
        return "\n".join(lines)


# ---- independent decoder -------------------------------------------------------


def _slot_of(cfg, q: np.ndarray, i: int) -> np.ndarray:
    """Slot (0..S-1) of child i for placement indices q (SPEC 3), computed directly."""
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
    """Latents [n, N] and tokens [n, d] (int64) from sample indices, node by node.

    tables: the rule tables [n_k, m, s] (from the rules file). Independent of
    ``generate``: walks the heap node by node, placing each child at its parent's
    block start plus its slot times the child block size.
    """
    label = np.asarray(label, dtype=np.int64)
    syn = np.asarray(synonyms, dtype=np.int64)
    pl = np.asarray(placements, dtype=np.int64)
    n, N = syn.shape
    rows = np.arange(n)
    latents = np.zeros((n, N), dtype=np.int64)
    start = np.zeros((n, N), dtype=np.int64)
    latents[:, 0] = label
    tokens = np.full((n, cfg.d), cfg.blank, dtype=np.int64)
    depths = [k for k in range(cfg.L) for _ in cfg.depth_nodes(k)]
    for j in range(N):
        depth = depths[j]
        child_block = cfg.S ** (cfg.L - depth - 1)
        for i in range(cfg.s):
            symbol = tables[depth][latents[:, j], syn[:, j], i]
            pos = start[:, j] + _slot_of(cfg, pl[:, j], i) * child_block
            c = j * cfg.s + 1 + i
            if c < N:
                latents[:, c] = symbol
                start[:, c] = pos
            else:
                tokens[rows, pos] = symbol
    return latents, tokens


# ---- checks --------------------------------------------------------------------


def _check_rules(name: str, doc: dict) -> tuple[Check, object, list | None]:
    problems: list[str] = []
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        return Check(name, "rules", [f"missing keys {missing}"]), None, None
    if doc["format"] != FORMAT:
        problems.append(f"format {doc['format']} != {FORMAT}")
    try:
        cfg = config_from_rules(doc)
    except ValueError as err:
        return Check(name, "rules", [f"config {doc['config']!r}: {err}"]), None, None
    if doc["parameters"] != cfg.parameters():
        problems.append(f"parameters {doc['parameters']} != those of {cfg.name}: {cfg.parameters()}")
    sizes = {"d": cfg.d, "num_nodes": cfg.num_nodes, "placements_per_node": cfg.placements_per_node,
             "data_space_size": str(cfg.data_space_size)}
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
    if doc["rules_hash"] != rules_hash(doc["rules"]):
        problems.append(f"rules_hash {doc['rules_hash']} != hash of the tables {rules_hash(doc['rules'])}")
    for split in SPLITS:
        info = doc["splits"].get(split)
        if info is None or "num_rows" not in info or "content_hash" not in info:
            problems.append(f"splits.{split} missing or without num_rows/content_hash")
    return Check(name, "rules", problems, f"{cfg.name} {doc['rules_hash'][:19]}..."), cfg, tables


def _shards(folder: Path, name: str, split: str) -> tuple[list[Path], list[str]]:
    files = sorted((folder / name).glob(f"{split}-*.parquet"))
    problems = []
    total = len(files)
    for i, f in enumerate(files):
        m = SHARD_RE.match(f.name)
        if m is None or int(m["i"]) != i or int(m["n"]) != total or m["split"] != split:
            problems.append(f"shard {f.name}: expected {split}-{i:05d}-of-{total:05d}.parquet")
    return files, problems


def _check_split(folder: Path, name: str, cfg, tables, doc: dict, split: str, card_hashes: set, keys: dict) -> Check:
    n_expected = cfg.split_sizes()[split]
    info = doc["splits"].get(split, {})
    problems: list[str] = []
    if info.get("num_rows") != n_expected:
        problems.append(f"rules num_rows = {info.get('num_rows')}, expected {n_expected}")
    files, shard_problems = _shards(folder, name, split)
    problems += shard_problems
    if n_expected == 0:
        if files:
            problems.append(f"a 0-row split must have no shard, found {[f.name for f in files]}")
        if info.get("content_hash") is not None:
            problems.append("a 0-row split must have content_hash null")
        return Check(name, split, problems, "0 rows (no shard)")
    if not files:
        return Check(name, split, problems + [f"no shard {name}/{split}-*.parquet"], "")
    schema = arrow_schema(cfg, split)
    hasher = SplitHasher()
    defined = probe_defined(cfg)
    split_keys = []
    at = 0
    for f in files:
        pf = pq.ParquetFile(f)
        got = pf.schema_arrow
        if [(x.name, x.type) for x in got] != [(x.name, x.type) for x in schema]:
            problems.append(f"{f.name}: schema {[(x.name, str(x.type)) for x in got]} != declared {[(x.name, str(x.type)) for x in schema]}")
            continue
        for rb in pf.iter_batches(batch_size=BATCH_ROWS):
            cols = from_arrow(rb)
            a, b = at, at + rb.num_rows
            at = b
            hasher.update(cols)
            where = f"rows {a}..{b - 1}"
            label, syn, pl = cols["label"], cols["synonyms"], cols["placements"]
            if label.min() < 0 or label.max() >= cfg.nc:
                problems.append(f"{where}: label outside [0, nc={cfg.nc})")
                continue
            if syn.max() >= cfg.m or pl.max() >= cfg.placements_per_node:
                problems.append(f"{where}: synonym >= m or placement >= K")
                continue
            if tables is not None:
                latents, tokens = decode(cfg, tables, label, syn, pl)
                bad = np.flatnonzero((latents != cols["latents"]).any(1) | (tokens != cols["tokens"]).any(1))
                if bad.size:
                    problems.append(f"{where}: {bad.size} rows whose latents/tokens do not follow from the rules (first row {a + bad[0]})")
            if b <= n_expected:
                digits = split_digits(cfg, split, a, b)
                same = (digits[:, 0] == label) & (digits[:, 1::2] == syn).all(1) & (digits[:, 2::2] == pl).all(1)
                if not same.all():
                    first = a + int(np.flatnonzero(~same)[0])
                    problems.append(f"{where}: {(~same).sum()} rows are not row i of split {split} (first row {first})")
            if split == "probe":
                for column in PROBE_COLUMNS:
                    for level in range(1, cfg.L + 1):
                        if defined[column]:
                            want = perturb(cfg, cols, kind=PROBE_KINDS[column], level=level, force=PROBE_FORCE, key=PROBE_KEY)
                        else:
                            want = cols["tokens"]
                        if not np.array_equal(cols[column][:, level - 1], want):
                            problems.append(f"{where}: {column}[level {level}] differs from the {'forced perturbation' if defined[column] else 'unperturbed tokens'}")
            split_keys.append(np.column_stack([label, syn, pl]).astype(np.uint32))
    if at != n_expected:
        problems.append(f"{at} rows in the shards, expected {n_expected}")
    digest = hasher.hexdigest()
    if info.get("content_hash") != digest:
        problems.append(f"content hash {digest} != rules file {info.get('content_hash')}")
    if digest not in card_hashes:
        problems.append(f"content hash {digest} not in the card")
    if split_keys:
        k = np.concatenate(split_keys)
        dups = len(k) - len(_unique_rows(k))
        if dups:
            problems.append(f"{dups} duplicate samples (label, synonyms, placements) within the split")
        keys[split] = k
    return Check(name, split, problems, f"{at} rows, {len(files)} shard(s), {digest[:19]}...")


def _unique_rows(k: np.ndarray) -> np.ndarray:
    view = np.ascontiguousarray(k).view(np.dtype((np.void, k.dtype.itemsize * k.shape[1])))
    return np.unique(view)


def _check_overlap(name: str, keys: dict) -> Check:
    problems = []
    splits = sorted(keys)
    for x, y in itertools.combinations(splits, 2):
        both = np.concatenate([_unique_rows(keys[x]), _unique_rows(keys[y])])
        shared = len(both) - len(np.unique(both))
        if shared:
            problems.append(f"{shared} samples in both {x} and {y}")
    return Check(name, "overlap", problems, f"splits {', '.join(splits)} disjoint" if not problems else "")


def _check_card(folder: Path, name: str, cfg, doc: dict, header: dict | None) -> Check:
    if header is None:
        return Check(name, "card", ["README.md missing or without YAML header"])
    problems = []
    configs = {c["config_name"]: c for c in header.get("configs", [])}
    infos = {c["config_name"]: c for c in header.get("dataset_info", [])}
    sizes = cfg.split_sizes()
    groups = {name: [s for s in ("train", "test") if sizes[s]], name + PROBE_SUFFIX: ["probe"] if sizes["probe"] else []}
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
        got = {s["name"]: s.get("num_examples") for s in info.get("splits", [])}
        want = {s: sizes[s] for s in splits}
        if got != want:
            problems.append(f"config {hf_name}: split sizes {got} != {want}")
    return Check(name, "card", problems, "configs, data_files, features, sizes")


def verify_release(folder: str | Path, configs: list[str] | None = None) -> Report:
    """Verify a release folder; ``configs`` restricts to some config names (catalog or canonical)."""
    folder = Path(folder)
    report = Report(str(folder))
    rules_dir = folder / "rules"
    if configs:
        names = []
        for c in configs:
            found = next((n for n in candidate_names(c) if (rules_dir / f"{n}.json").is_file()), None)
            if found is None:
                report.checks.append(Check(c, "rules", [f"no rules file for {c!r} in {rules_dir}"]))
            else:
                names.append(found)
    else:
        names = sorted(p.stem for p in rules_dir.glob("*.json"))
        if not names:
            report.checks.append(Check("-", "rules", [f"no rules/*.json in {folder}"]))
    card = folder / "README.md"
    try:
        header = read_header(card) if card.is_file() else None
        body = card.read_text(encoding="utf-8") if card.is_file() else ""
    except (ValueError, OSError) as err:
        header, body = None, ""
        report.checks.append(Check("-", "card", [f"README.md unreadable: {err}"]))
    card_hashes = set(re.findall(r"sha256:[0-9a-f]{64}", body))
    for name in names:
        try:
            doc = json.loads((rules_dir / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            report.checks.append(Check(name, "rules", [f"unreadable: {err}"]))
            continue
        check, cfg, tables = _check_rules(name, doc)
        report.checks.append(check)
        if cfg is None:
            continue
        keys: dict = {}
        for split in SPLITS:
            report.checks.append(_check_split(folder, name, cfg, tables, doc, split, card_hashes, keys))
        report.checks.append(_check_overlap(name, keys))
        report.checks.append(_check_card(folder, name, cfg, doc, header))
    return report
