"""The files of a local release folder, checked before ``datasets`` reads them (format.md §8.8).

``load_split`` hands a folder to ``datasets.load_dataset`` only once these cheap checks
pass; each failure is one ``ValueError`` naming the folder, the file and what is wrong,
with the hint to run ``srhm verify`` (which checks every row). No row is read, only:

* the card: ``README.md`` is a readable file whose YAML header parses to a mapping, has
  the HF config (format.md §8.2) with the data files of the split, and declares the
  split's size of the rules file (``datasets`` would otherwise end in a YAML traceback,
  "BuilderConfig not found" or ``NonMatchingSplitsSizesError``);
* the shard set: the files ``<name>/<split>-*.parquet`` (the card's glob) are exactly
  ``<split>-<i>-of-<n>.parquet`` for ``i < n`` (:func:`shard_set`): none missing and none
  stray, such as a browser's ``name (1).parquet`` copy or a shard of an earlier build;
* every shard's Parquet footer: a regular, readable, non-empty Parquet file with the
  declared schema (format.md §4.1, ``features.arrow_schema``), the row counts summing to
  the rules file's ``num_rows``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..hashing import SplitHasher
from .rules_file import config_from_rules, local_hint

SHARD_RE = re.compile(r"^(?P<split>\w+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
#: Rows per batch when hashing shards.
HASH_BATCH_ROWS = 1 << 15


def parquet_errors() -> tuple[type[BaseException], ...]:
    """The errors of reading a Parquet file that mean a corrupt or truncated shard (imports pyarrow:
    this module imports no heavy library, ``load_split`` being importable from the package root)."""
    import pyarrow as pa

    return (pa.ArrowException, OSError, ValueError, EOFError)


def shard_set(folder: Path, name: str, split: str) -> tuple[list[Path], list[str]]:
    """The files ``folder/name/<split>-*.parquet`` in order, and what is wrong with them as one shard set.

    The set is ``<split>-<i>-of-<n>.parquet`` for every ``i < n``, one ``n``: the ``n`` of the
    most complete set found is taken, its absent shards are missing, every other file is stray.
    """
    files = sorted((folder / name).glob(f"{split}-*.parquet"))
    shards: dict[int, set[int]] = {}
    for f in files:
        m = SHARD_RE.match(f.name)
        if m is not None and m["split"] == split and int(m["i"]) < int(m["n"]):
            shards.setdefault(int(m["n"]), set()).add(int(m["i"]))
    if not shards:
        return files, [f"stray file {f.name} (not a shard name {split}-<i>-of-<n>.parquet)" for f in files]
    n = max(shards, key=lambda k: (len(shards[k]) / k, k))
    want = {f"{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)}
    names = {f.name for f in files}
    problems = [f"missing shard {m}" for m in sorted(want - names)]
    problems += [
        f"stray file {s} beside the {n} shard(s) {split}-*-of-{n:05d}.parquet (a copy, or left by another build?)"
        for s in sorted(names - want)
    ]
    return files, problems


def damaged_folder(folder: Path, problems: list[str]) -> str:
    """The message of a damaged release folder: the folder, each problem (file: what), the hint."""
    return (
        f"invalid parameter repo_or_dir={str(folder)!r}: the release folder is damaged: "
        f"{'; '.join(problems)}; {local_hint(folder)}"
    )


def check_release_folder(folder: Path, name: str, hf_name: str, splits: tuple[str, ...], doc: dict) -> None:
    """``ValueError`` naming ``folder`` and the damaged file when the card or the shards of config ``name``
    (rules document ``doc``) are not as format.md §8 says, for every split of the HF config ``hf_name``
    (``splits``: ``datasets`` prepares them all, whichever one is asked for). Splits of 0 rows have no
    shard and no card entry."""
    header, problem = read_card(folder / "README.md")
    problems = [problem] if problem else _default_problems(header)
    splits = [s for s in splits if doc["splits"].get(s, {}).get("num_rows")]  # a split it lacks: not checked
    for split in splits if not problems else ():
        problems += config_problems(header, hf_name, name, split, doc["splits"][split]["num_rows"])
    problems = [f"README.md: {p}" for p in problems]
    for split in splits if not problems else ():
        problems += shard_problems(folder, name, split, doc)
    problems += [] if problems else unmatched_data_files(folder, header)
    if problems:
        raise ValueError(damaged_folder(folder, problems))


def read_card(card: Path) -> tuple[dict | None, str | None]:
    """(the YAML header of the card ``card``, None) or (None, why it cannot be read)."""
    from .card import read_header

    try:
        header = read_header(card)
    except FileNotFoundError:
        return None, "missing (the card declares the configs datasets loads)"
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        at = f" at line {mark.line + 2}, column {mark.column + 1}" if mark is not None else ""
        return None, f"its YAML header does not parse ({err.problem or err.context}{at})"
    except (OSError, ValueError, UnicodeDecodeError, yaml.YAMLError) as err:
        return None, f"unreadable ({type(err).__name__}: {' '.join(str(err).split())})"
    if not isinstance(header, dict):
        return None, f"its YAML header is a {type(header).__name__}, not a mapping"
    return header, None


def _config_names(header: dict) -> tuple[list, list]:
    """(the config names of a card's header, those marked ``default: true``)."""
    entries = header.get("configs")
    entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    return [e.get("config_name") for e in entries], [e.get("config_name") for e in entries if e.get("default") is True]


def _default_problems(header: dict) -> list[str]:
    """A card marking several configs ``default: true`` (``datasets`` then refuses every config)."""
    defaults = _config_names(header)[1]
    return [f"it marks {len(defaults)} configs default: true"] if len(defaults) > 1 else []


def default_config(folder: Path) -> str:
    """The HF config a release folder's card marks ``default: true`` (its only config when it marks
    none, as ``datasets`` does); ``ValueError`` naming the card when it has no single default."""
    header, problem = read_card(folder / "README.md")
    names, defaults = _config_names(header) if header else ([], [])
    found = defaults or (names if len(names) == 1 else [])
    if problem is None and len(found) == 1 and isinstance(found[0], str):
        return found[0]
    what = problem or (_default_problems(header) or [f"none of its {len(names)} configs is marked default: true"])[0]
    raise ValueError(damaged_folder(folder, [f"README.md: {what}"]) + "; or pass config=")


def config_problems(header: dict, hf_name: str, name: str, split: str, num_rows: int) -> list[str]:
    """What keeps ``datasets`` from reading ``split`` of ``hf_name`` through the card's header ``header``."""
    entry = _named(header.get("configs"), hf_name)
    files = entry.get("data_files") if entry else None
    want = {"split": split, "path": f"{name}/{split}-*.parquet"}
    if entry is None:
        return [f"its header has no entry for config {hf_name} under configs"]
    if not isinstance(files, list) or want not in files:
        return [f"config {hf_name} has data_files {files}, without {want}"]
    info = _named(header.get("dataset_info"), hf_name) or {}
    sizes = info.get("splits") if isinstance(info.get("splits"), list) else []
    declared = [s.get("num_examples") for s in sizes if isinstance(s, dict) and s.get("name") == split]
    if declared and declared != [num_rows]:
        return [f"config {hf_name} declares {declared[0]} {split} rows, its rules file {num_rows}"]
    return []


def unmatched_data_files(folder: Path, header: dict) -> list[str]:
    """The card's ``data_files`` globs, of every config, that match no file: ``datasets`` resolves them
    all whichever config it loads, and refuses the whole folder over one of them."""
    entries = header.get("configs") if isinstance(header.get("configs"), list) else []
    problems = []
    for entry in entries:
        files = entry.get("data_files") if isinstance(entry, dict) else None
        for item in files if isinstance(files, list) else []:
            glob = item.get("path") if isinstance(item, dict) else None
            if isinstance(glob, str) and not any(f.is_file() for f in folder.glob(glob)):
                problems.append(f"no shard {glob} (config {entry.get('config_name')}, split {item.get('split')})")
    return problems


def _named(entries, hf_name: str) -> dict | None:
    """The mapping of ``entries`` (a YAML list) whose ``config_name`` is ``hf_name``, or None."""
    if not isinstance(entries, list):
        return None
    found = [e for e in entries if isinstance(e, dict) and e.get("config_name") == hf_name]
    return found[0] if found else None


def shard_problems(folder: Path, name: str, split: str, doc: dict) -> list[str]:
    """The shard set of ``split`` and each shard's footer: a readable Parquet file with the declared
    schema; their rows add up to the rules file's ``num_rows``."""
    from .features import arrow_schema

    files, problems = shard_set(folder, name, split)
    if not files:
        return [f"no shard {name}/{split}-*.parquet"]
    if problems:
        return [f"{name}/: {p}" for p in problems]
    declared = [(x.name, x.type) for x in arrow_schema(config_from_rules(doc), split)]
    rows = 0
    for f in files:
        problem, count = _footer_problem(f, declared)
        if problem:
            return [f"{name}/{f.name}: {problem}"]
        rows += count
    if rows != doc["splits"][split]["num_rows"]:
        return [f"the {split} shards of {name} hold {rows} rows, its rules file {doc['splits'][split]['num_rows']}"]
    return []


def _footer_problem(path: Path, declared: list) -> tuple[str | None, int]:
    """(what is wrong with the shard ``path``, or None; its row count), from its Parquet footer only."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return "not a file (a directory or a special file)", 0
    if path.stat().st_size == 0:
        return "an empty file (0 bytes)", 0
    try:
        meta = pq.ParquetFile(path).metadata
        got = [(x.name, x.type) for x in meta.schema.to_arrow_schema()]
    except PermissionError as err:
        return f"cannot be read ({err.strerror})", 0
    except parquet_errors() as err:
        return f"not a readable Parquet file ({type(err).__name__}: {' '.join(str(err).split())})", 0
    if got != declared:
        wrong = [f"{n}: {t}" for n, t in got if (n, t) not in declared]
        absent = [n for n, _ in declared if n not in {g for g, _ in got}]
        return f"columns differ from the declared schema (unexpected {wrong or 'none'}, missing {absent or 'none'})", 0
    return None, meta.num_rows


def shards_content_hash(files: list[Path]) -> str:
    """The content hash (format.md §8.5) of the rows of Parquet shards ``files``, read batch by batch."""
    import pyarrow.parquet as pq

    from .features import from_arrow

    hasher = SplitHasher()
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=HASH_BATCH_ROWS):
            hasher.update(from_arrow(batch))
    return hasher.hexdigest()


def unreadable_rows(folder: Path, name: str, splits) -> str | None:
    """The first shard of ``splits`` of config ``name`` whose rows cannot be read past its footer (a
    corrupt data page), as ``"<name>/<file>: why"``, or None; reads every row (a failure path only)."""
    import pyarrow.parquet as pq

    for split in splits:
        for f in shard_set(folder, name, split)[0]:
            try:
                for _ in pq.ParquetFile(f).iter_batches(batch_size=HASH_BATCH_ROWS):
                    pass
            except parquet_errors() as err:
                return f"{name}/{f.name}: its rows cannot be read ({type(err).__name__}: {' '.join(str(err).split())})"
    return None
