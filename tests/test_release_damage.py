"""Every way a release folder or its ``datasets`` cache can be damaged is one ``ValueError`` naming the file.

A tiny release is damaged in one way per case; ``load_split`` and ``SRHMDataset`` must raise one
``ValueError`` naming the damaged file and what is wrong, with the hint to run ``srhm verify``
(a damaged cache: the cache folder to remove, never the release), and ``srhm train --data`` /
``srhm evaluate --data`` must exit non-zero with one error line and no traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from srhm_datasets.cli import main
from srhm_datasets.release import build as build_mod
from srhm_datasets.release.build import build_release
from srhm_datasets.release.load import load_split
from srhm_datasets.torch import SRHMDataset

from .release_helpers import TINY, TINY_NAME, rewrite

ZERO = TINY  # the config of tiny_release: 49 train, 16 test, 16 probe rows; a catalog config
NAME = TINY_NAME
SPLIT = "test"  # the split every case damages: srhm train and srhm evaluate both read it
VERIFY = "srhm verify"


def _shard(root: Path, split: str = SPLIT) -> Path:
    return next((root / NAME).glob(f"{split}-*.parquet"))


def _rules(root: Path) -> Path:
    return root / "rules" / f"{NAME}.json"


def _edit_rules(root: Path, change) -> None:
    doc = json.loads(_rules(root).read_text())
    change(doc)
    _rules(root).write_text(json.dumps(doc))


def _edit_card(root: Path, old: str, new: str) -> None:
    card = root / "README.md"
    text = card.read_text()
    assert old in text, old
    card.write_text(text.replace(old, new, 1))


def _replace_by_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "x").write_text("x")


def _cast_tokens(root: Path) -> None:
    table = pq.read_table(_shard(root))
    tokens = table.column("tokens").cast(pa.list_(pa.int64(), ZERO.d))
    pq.write_table(table.set_column(0, "tokens", tokens), _shard(root))


def _corrupt_pages(root: Path) -> None:
    """Flip the bytes of the shard's data pages, its footer intact."""
    data = bytearray(_shard(root).read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    for i in range(4, len(data) - 8 - footer):
        data[i] ^= 0x5A
    _shard(root).write_bytes(bytes(data))


def _drop_a_row(root: Path) -> None:
    pq.write_table(pq.read_table(_shard(root)).slice(1), _shard(root))


def _edit_label(cols) -> None:
    cols["label"][0] = (cols["label"][0] + 1) % ZERO.nc


def _cache_files(cache: Path) -> list[Path]:
    return sorted(cache.rglob(f"*{SPLIT}.arrow"))


def _truncate_cache(cache: Path) -> None:
    for f in _cache_files(cache):
        f.write_bytes(f.read_bytes()[:200])


def _damage_cache_info(cache: Path) -> None:
    for f in _cache_files(cache):
        (f.parent / "dataset_info.json").write_text("{oops")


def _edit_cache_rows(cache: Path) -> None:
    for f in _cache_files(cache):
        with pa.memory_map(str(f)) as source:
            table = pa.ipc.open_stream(source).read_all()
        label = table.column("label").to_numpy().copy()
        label[0] = (label[0] + 1) % ZERO.nc
        i = table.column_names.index("label")
        table = table.set_column(i, table.schema.field("label"), pa.array(label, table.schema.field("label").type))
        with pa.OSFile(str(f), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)


#: (case, damage of the release folder, what the message must say after the folder's name).
FOLDER_DAMAGE = {
    "card YAML that does not parse": (
        lambda r: _edit_card(r, "configs:\n", "configs:\n  - : [\n"),
        r"README.md: its YAML header does not parse \(.* at line \d+, column \d+\)",
    ),
    "card deleted": (lambda r: (r / "README.md").unlink(), "README.md: missing"),
    "card header not closed": (
        lambda r: (r / "README.md").write_text((r / "README.md").read_text().replace("\n---\n", "\n", 1)),
        "README.md: unreadable .*no YAML header between two '---' lines",
    ),
    "card header a list": (
        lambda r: (r / "README.md").write_text("---\n- a\n---\nbody\n"),
        "README.md: its YAML header is a list, not a mapping",
    ),
    "card a folder": (lambda r: _replace_by_folder(r / "README.md"), r"README.md: unreadable \(IsADirectoryError"),
    "card without the config": (
        lambda r: _edit_card(r, f"- config_name: {NAME}\n", "- config_name: other\n"),
        f"README.md: its header has no entry for config {NAME} under configs",
    ),
    "card without the split's data files": (
        lambda r: _edit_card(r, f"path: {NAME}/test-*.parquet", f"path: {NAME}/tests-*.parquet"),
        f"README.md: config {NAME} has data_files .*, without",
    ),
    "card with another split size": (
        lambda r: _edit_card(r, "num_examples: 16", "num_examples: 17"),
        f"README.md: config {NAME} declares 17 test rows, its rules file 16",
    ),
    "shard deleted": (lambda r: _shard(r).unlink(), rf"no shard {NAME}/test-\*.parquet"),
    "a browser's copy beside the shard": (
        lambda r: shutil.copy(_shard(r), _shard(r).parent / "test-00000-of-00001 (1).parquet"),
        r"stray file test-00000-of-00001 \(1\).parquet beside the 1 shard\(s\)",
    ),
    "a stale shard of another build": (
        lambda r: shutil.copy(_shard(r), _shard(r).parent / "test-00000-of-00008.parquet"),
        "stray file test-00000-of-00008.parquet beside the 1 shard",
    ),
    "shard of zero bytes": (
        lambda r: _shard(r).write_bytes(b""),
        r"test-00000-of-00001.parquet: an empty file \(0 bytes\)",
    ),
    "shard truncated": (
        lambda r: os.truncate(_shard(r), _shard(r).stat().st_size // 2),
        r"test-00000-of-00001.parquet: not a readable Parquet file \(ArrowInvalid",
    ),
    "shard with corrupt data pages": (
        _corrupt_pages,
        r"test-00000-of-00001.parquet: its rows cannot be read \(OSError",
    ),
    "shard not Parquet": (
        lambda r: _shard(r).write_text("a,b\n1,2\n"),
        "test-00000-of-00001.parquet: not a readable Parquet file",
    ),
    "shard a folder": (lambda r: _replace_by_folder(_shard(r)), r"test-00000-of-00001.parquet: not a file"),
    "shard of another split": (
        lambda r: shutil.copy(_shard(r, "train"), _shard(r)),
        f"the test shards of {NAME} hold 49 rows, its rules file 16",
    ),
    "shard of the probe split (another schema)": (
        lambda r: shutil.copy(_shard(r, "probe"), _shard(r)),
        r"test-00000-of-00001.parquet: columns differ from the declared schema \(unexpected \['synonym_tokens",
    ),
    "shard with a wider token dtype": (
        _cast_tokens,
        r"test-00000-of-00001.parquet: columns differ from the declared schema \(unexpected \['tokens: fixed_size",
    ),
    "shard missing a row": (_drop_a_row, f"the test shards of {NAME} hold 15 rows, its rules file 16"),
    "shard whose rows were edited": (
        lambda r: rewrite(_shard(r), _edit_label),
        rf"test of \S+ in .*: got content hash .*; the shards differ from its rules file .*rules/{NAME}.json",
    ),
    "rules folder deleted": (lambda r: shutil.rmtree(r / "rules"), "rules/: missing"),
    "rules file deleted": (lambda r: _rules(r).unlink(), f"rules/{NAME}.json: missing, though {NAME}/ holds"),
    "rules file a folder": (lambda r: _replace_by_folder(_rules(r)), f"rules/{NAME}.json: not a file"),
    "rules file not JSON": (lambda r: _rules(r).write_text("{oops"), f"rules/{NAME}.json is damaged: not valid JSON"),
    "rules file of zero bytes": (lambda r: _rules(r).write_bytes(b""), f"rules/{NAME}.json is damaged: not valid JSON"),
    "rules tables edited": (
        lambda r: _edit_rules(r, lambda d: d["rules"][1][0].reverse()),
        f"rules/{NAME}.json is damaged: its rule tables hash to sha256:[0-9a-f]+, not its rules_hash",
    ),
    "rules file missing a key": (
        lambda r: _edit_rules(r, lambda d: d.pop("splits")),
        rf"rules/{NAME}.json is damaged: missing keys \['splits'\]",
    ),
    "rules file with a mistyped value": (
        lambda r: _edit_rules(r, lambda d: d["splits"]["test"].update(num_rows="16")),
        f"rules/{NAME}.json is damaged: splits.test.num_rows is str, expected int",
    ),
}

#: (case, damage of the datasets cache after one good load, what the message must say).
CACHE_DAMAGE = {
    "cache file truncated": (_truncate_cache, r"the datasets cache at .* is damaged \(ArrowInvalid"),
    "cache file deleted": (lambda c: [f.unlink() for f in _cache_files(c)], "the datasets cache at .* is damaged"),
    "cache info not JSON": (_damage_cache_info, r"the datasets cache at .* is damaged \(JSONDecodeError"),
    "cache rows edited": (_edit_cache_rows, "its shards are right, so the datasets cache at .* is damaged or stale"),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run folder of ZERO trained on the generator, for ``srhm evaluate --data``."""
    out = tmp_path_factory.mktemp("run") / "run"
    args = ["--config", NAME, "--P", "10", "--width", "4", "--max-steps", "1", "--num-test", "5", "--device", "cpu"]
    res = CliRunner().invoke(main, ["train", *args, "--no-progress", "--threads", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def damaged(request, tiny_release, tmp_path, monkeypatch):
    """(a copy of the release, damaged as the case says, the regex its message must match); the
    datasets cache is a fresh folder of the test's own, for the Python calls and the commands alike."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    copy = tmp_path / "r"
    shutil.copytree(tiny_release, copy)
    case = request.param
    if case in CACHE_DAMAGE:
        damage, expected = CACHE_DAMAGE[case]
        load_split(copy, NAME, SPLIT)  # fills the cache
        damage(cache)
        return copy, expected + ".*remove that cache folder"
    damage, expected = FOLDER_DAMAGE[case]
    damage(copy)
    return copy, f"{expected}.*{VERIFY} {re.escape(str(copy))}"


CASES = pytest.mark.parametrize("damaged", [*FOLDER_DAMAGE, *CACHE_DAMAGE], indirect=True)


@CASES
def test_load_split_of_a_damaged_release_is_one_value_error_naming_the_file(damaged):
    folder, expected = damaged
    with pytest.raises(ValueError, match=expected) as info:
        load_split(folder, NAME, SPLIT)
    err = info.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)  # no library traceback


@CASES
def test_srhm_dataset_of_a_damaged_release_is_one_value_error_naming_the_file(damaged):
    folder, expected = damaged
    with pytest.raises(ValueError, match=expected):
        SRHMDataset(folder, NAME, SPLIT)


def _one_error_line(res, expected: str) -> None:
    assert res.exit_code in (1, 2), res.output
    assert "Traceback" not in res.output and isinstance(res.exception, (SystemExit, type(None))), res.output
    lines = [line for line in res.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, res.output
    assert re.search(expected, lines[0]), lines[0]


@CASES
def test_srhm_train_on_a_damaged_release_is_one_line(damaged, tmp_path):
    folder, expected = damaged
    args = ["--config", NAME, "--data", str(folder), "--P", "10", "--width", "4", "--max-steps", "1"]
    res = CliRunner().invoke(main, ["train", *args, "--device", "cpu", "--no-progress", "--out", str(tmp_path / "o")])
    _one_error_line(res, expected)
    assert not (tmp_path / "o").exists()


#: What ``srhm evaluate`` (it reads the probe config first) says of a test split whose card glob matches no file:
#: ``datasets`` resolves the globs of every config, so the probe config cannot be read either.
GLOB_UNMATCHED = rf"no shard {NAME}/tests?-\*.parquet \(config {NAME}, split test\)"


@CASES
def test_srhm_evaluate_on_a_damaged_release_is_one_line(damaged, run):
    folder, expected = damaged
    before = (run / "results.json").read_text()
    res = CliRunner().invoke(main, ["evaluate", str(run), "--data", str(folder), "--device", "cpu"])
    _one_error_line(res, f"({expected}|{GLOB_UNMATCHED}.*{VERIFY})")
    assert (run / "results.json").read_text() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_shard_is_one_value_error_naming_it(tiny_release, tmp_path):
    copy = tmp_path / "r"
    shutil.copytree(tiny_release, copy)
    _shard(copy).chmod(0)
    with pytest.raises(ValueError, match=r"test-00000-of-00001.parquet: cannot be read \(Permission denied\)"):
        load_split(copy, NAME, SPLIT, cache_dir=str(tmp_path / "cache"))


def test_a_deleted_shard_among_several_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(build_mod, "MIN_GROUP_ROWS", 4)
    monkeypatch.setattr(build_mod, "ROW_GROUP_BYTES", 8 * build_mod.row_bytes(ZERO, "train"))
    build_release([ZERO], tmp_path / "r", progress=False)
    shards = sorted((tmp_path / "r" / NAME).glob("train-*.parquet"))
    assert len(shards) >= 3
    shards[1].unlink()
    with pytest.raises(ValueError, match=rf"{NAME}/: missing shard {shards[1].name};.*{VERIFY}"):
        load_split(tmp_path / "r", NAME, "train", cache_dir=str(tmp_path / "cache"))


def test_srhm_dataset_refuses_streaming_naming_the_parameter(tiny_release, tmp_path):
    with pytest.raises(ValueError, match=r"invalid parameter load_kwargs=\{'streaming': True\}: .*SRHMStream"):
        SRHMDataset(tiny_release, NAME, "test", load_kwargs={"streaming": True})
    with pytest.raises(ValueError, match=r"invalid parameter load_kwargs=\['cache_dir'\]: must satisfy None or a dict"):
        SRHMDataset(tiny_release, NAME, "test", load_kwargs=["cache_dir"])


@pytest.mark.parametrize("damaged", list(FOLDER_DAMAGE), indirect=True)
def test_srhm_verify_the_hint_reports_every_damage_without_a_traceback(damaged):
    folder, _ = damaged
    res = CliRunner().invoke(main, ["verify", str(folder)])
    assert res.exit_code == 1 and isinstance(res.exception, (SystemExit, type(None))), res.output
    assert "Traceback" not in res.output and res.output.strip().splitlines()[-1].startswith("FAILED"), res.output


RULES_DAMAGE = {
    "not JSON": (lambda r: _rules(r).write_text("{oops"), "is damaged: not valid JSON"),
    "a JSON list": (lambda r: _rules(r).write_text("[]"), "is damaged: not a JSON object but a list"),
    "a key missing": (lambda r: _edit_rules(r, lambda d: d.pop("rules_hash")), r"missing keys \['rules_hash'\]"),
    "a value of another type": (lambda r: _edit_rules(r, lambda d: d.update(blank="3")), "blank is str"),
    "tables edited": (
        lambda r: _edit_rules(r, lambda d: d["rules"][0][0].reverse()),
        "its rule tables hash to sha256:[0-9a-f]{64}, not its rules_hash sha256:",
    ),
    "a folder": (lambda r: _replace_by_folder(_rules(r)), r"\(IsADirectoryError"),
    "not UTF-8": (
        lambda r: _rules(r).write_bytes(b"\xff\xfe{}"),
        r"\(UnicodeDecodeError",
    ),
}


@pytest.mark.parametrize("case", list(RULES_DAMAGE))
def test_load_rules_refuses_a_damaged_rules_file_naming_it(tiny_release, tmp_path, case):
    from srhm_datasets import load_rules

    copy = tmp_path / "r"
    shutil.copytree(tiny_release, copy)
    damage, expected = RULES_DAMAGE[case]
    damage(copy)
    with pytest.raises(
        ValueError, match=f"{re.escape(str(_rules(copy)))}.*{expected}.*{VERIFY} {re.escape(str(copy))}"
    ):
        load_rules(copy, NAME)
    assert load_rules(tiny_release, NAME)["rules_hash"].startswith("sha256:")  # the intact release still loads


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("", "none of its 2 configs is marked default: true"),
        ("  default: true\n- config_name: other\n  default: true\n", "it marks 2 configs default: true"),
    ],
)
def test_the_default_config_of_a_card_without_one_default_is_named(tiny_release, tmp_path, change, expected):
    copy = tmp_path / "r"
    shutil.copytree(tiny_release, copy)
    _edit_card(copy, "  default: true\n", change)
    with pytest.raises(ValueError, match=f"README.md: {expected}; run `{VERIFY} .*; or pass config="):
        load_split(copy, None, SPLIT, cache_dir=str(tmp_path / "cache"))
    if "other" in change:  # datasets refuses a card with two defaults whatever config is asked for
        with pytest.raises(ValueError, match=f"README.md: {expected}; run `{VERIFY}"):
            load_split(copy, NAME, SPLIT, cache_dir=str(tmp_path / "cache"))
    else:  # without a default, a config named still loads
        assert len(load_split(copy, NAME, SPLIT, cache_dir=str(tmp_path / "cache"))) == ZERO.split_sizes()[SPLIT]


def test_load_split_of_a_damaged_shard_is_one_value_error(tiny_release, tmp_path):
    copy = tmp_path / "r"
    shutil.copytree(tiny_release, copy)
    shard = copy / NAME / "test-00000-of-00001.parquet"
    os.truncate(shard, shard.stat().st_size // 2)
    damaged = (
        rf"invalid parameter repo_or_dir=.*{NAME}/test-00000-of-00001.parquet: not a readable Parquet file.*srhm verify"
    )
    with pytest.raises(ValueError, match=damaged):  # a cache of its own: datasets would serve the intact copy's rows
        load_split(copy, NAME, "test", cache_dir=str(tmp_path / "cache"))
