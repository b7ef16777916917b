"""Release build (format.md §8): load_dataset on built folders, card, croissant, streaming, atomicity."""

from __future__ import annotations

import json
import os

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import srhm_datasets as srhm
from srhm_datasets.catalog import release_name
from srhm_datasets.cli import main
from srhm_datasets.config import SRHMConfig, decimal_string
from srhm_datasets.generate import column_dtypes
from srhm_datasets.hashing import content_hash
from srhm_datasets.probe import make_block
from srhm_datasets.release import build as build_mod
from srhm_datasets.release.build import build_release
from srhm_datasets.release.card import read_header
from srhm_datasets.release.load import load_split
from srhm_datasets.release.rules_file import load_rules
from srhm_datasets.release.verify import verify_release

from .release_helpers import SMALL, rows

ZERO = SRHMConfig(L=1, s=2, s0=0, v=2, nc=2, m=1)  # P_max = 2: test and probe have 0 rows


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("rel") / "release"
    results = build_release(list(SMALL.values()) + [ZERO], out, progress=False)
    return out, {r.name: r for r in results}


@pytest.mark.parametrize("key", ["demo", "grid_L2_s0-0_v3", "B_small", "s3_small", "L3_small", "wide_v", "m1"])
def test_load_dataset_features_counts_rows(release, key):
    out, _ = release
    cfg = SMALL[key]
    name = release_name(cfg)
    dd = datasets.load_dataset(str(out), name)
    assert set(dd) == {"train", "test"}
    dtypes = column_dtypes(cfg)
    tok = "uint16" if cfg.v >= 255 else "uint8"
    for split, ds in dd.items():
        f = ds.features
        assert f["tokens"] == datasets.List(datasets.Value(tok), length=cfg.d)
        assert f["label"] == datasets.ClassLabel(names=[str(i) for i in range(cfg.nc)])
        for col in ("latents", "synonyms", "placements"):
            assert f[col] == datasets.List(datasets.Value(str(dtypes[col])), length=cfg.num_nodes)
        assert ds.num_rows == cfg.split_sizes()[split]
        got, want = rows(ds), srhm.generate(cfg, split)
        for col in want:
            np.testing.assert_array_equal(got[col], want[col], err_msg=f"{name} {split} {col}")
    probe = load_split(out, cfg.name, "probe")  # canonical name works too
    assert probe.num_rows == cfg.split_sizes()["probe"]
    assert probe.features["synonym_tokens"] == datasets.List(
        datasets.List(datasets.Value(tok), length=cfg.d), length=cfg.L
    )
    got, want = rows(probe), make_block(cfg, "probe", 0, probe.num_rows)
    base = srhm.generate(cfg, "probe")
    for level in range(1, cfg.L + 1):
        if cfg.m >= 2:
            np.testing.assert_array_equal(
                got["synonym_tokens"][:, level - 1], srhm.perturb(cfg, base, "synonym", level)
            )
        else:  # undefined: the unperturbed tokens
            np.testing.assert_array_equal(got["synonym_tokens"][:, level - 1], base["tokens"])
        if cfg.placements_per_node >= 2:
            np.testing.assert_array_equal(got["diffeo_tokens"][:, level - 1], srhm.perturb(cfg, base, "diffeo", level))
        else:
            np.testing.assert_array_equal(got["diffeo_tokens"][:, level - 1], base["tokens"])
    assert content_hash(got) == content_hash(want)


def test_rules_file_keys_and_hashes(release):
    out, _ = release
    doc = srhm.load_rules(str(out), "demo")
    for key in ("format", "generator", "config", "parameters", "sizes", "blank", "rules", "splits", "rules_hash"):
        assert key in doc
    assert doc["format"] == {"name": "srhm-rules", "version": 1}
    assert doc["generator"] == {"name": "srhm_datasets", "version": srhm.__version__}
    cfg = SMALL["demo"]
    assert doc["config"] == cfg.name and doc["parameters"] == cfg.parameters() and doc["blank"] == cfg.v
    assert doc["sizes"]["data_space_size"] == decimal_string(cfg.data_space_size)
    assert [np.asarray(t).shape for t in doc["rules"]] == [t.shape for t in srhm.sample_rules(cfg)]
    for split in ("train", "test", "probe"):
        cols = make_block(cfg, split, 0, cfg.split_sizes()[split])
        assert doc["splits"][split] == {"num_rows": cfg.split_sizes()[split], "content_hash": content_hash(cols)}
    assert srhm.load_rules(str(out), cfg.name) == doc  # canonical name finds the catalog-named file
    with pytest.raises(ValueError, match="revision"):
        srhm.load_rules(str(out), "demo", revision="v1.0.0")
    with pytest.raises(ValueError, match=r"invalid parameter revision='v1.0.0': a local folder .* has no revisions"):
        load_split(out, "demo", "train", revision="v1.0.0")
    with pytest.raises(FileNotFoundError, match="fig1"):
        srhm.load_rules(str(out), "fig1")


def test_zero_row_splits_have_no_shard_and_no_card_entry(release):
    out, _ = release
    name = ZERO.name
    assert sorted(p.name for p in (out / name).iterdir()) == ["train-00000-of-00001.parquet"]
    doc = json.loads((out / "rules" / f"{name}.json").read_text())
    # a split of 0 rows has the well-defined hash of zero rows over its columns (format.md §8)
    empty_test = content_hash(srhm.generate(ZERO, "test", 0, 0))
    empty_probe = content_hash(make_block(ZERO, "probe", 0, 0))
    assert set(make_block(ZERO, "probe", 0, 0)) > {"synonym_tokens", "diffeo_tokens"}
    assert doc["splits"]["test"] == {"num_rows": 0, "content_hash": empty_test}
    assert doc["splits"]["probe"] == {"num_rows": 0, "content_hash": empty_probe} and empty_probe != empty_test
    assert f"| `{name}` | test | 0 | `{empty_test}` |" in (out / "README.md").read_text()
    report = verify_release(out, [name])
    assert report.ok, report.format()
    header = read_header(out / "README.md")
    entry = next(c for c in header["configs"] if c["config_name"] == name)
    assert [f["split"] for f in entry["data_files"]] == ["train"]
    assert name + "_probe" not in [c["config_name"] for c in header["configs"]]
    dd = datasets.load_dataset(str(out), name)
    assert list(dd) == ["train"] and dd["train"].num_rows == 2


def test_card_header_and_body(release):
    out, results = release
    header = read_header(out / "README.md")
    assert header["license"] == "cc-by-4.0" and header["pretty_name"] and header["tags"]
    assert header["size_categories"] == ["10K<n<100K"]
    defaults = [c["config_name"] for c in header["configs"] if c.get("default")]
    assert defaults == ["demo"]
    info = {i["config_name"]: i for i in header["dataset_info"]}
    demo = info["demo"]["splits"]
    assert [(s["name"], s["num_examples"]) for s in demo] == [("train", 12708), ("test", 3276)]
    assert all(s["num_bytes"] > 0 for s in demo)
    body = (out / "README.md").read_text()
    for res in results.values():
        for split in res.splits.values():
            assert split.content_hash in body
    assert "@inproceedings{tomasini2024srhm" in body and "@article{cagnetta2024rhm" in body
    assert "revision=" in body
    # the K = 1 config's diffeo quantity, and the m = 1 config's synonym quantity, are undefined
    assert "`grid_L2_s0-0_v3`: `diffeo_tokens` holds the unperturbed tokens" in body
    assert f"`{SMALL['m1'].name}`: `synonym_tokens` holds the unperturbed tokens" in body
    assert datasets.get_dataset_config_names(str(out))[0] == "demo"


def test_croissant_validates_and_reads(release):
    mlc = pytest.importorskip("mlcroissant")
    from srhm_datasets.release.croissant import validate_croissant

    out, _ = release
    problems = validate_croissant(out / "croissant.json")
    assert not [p for p in problems if "recommended" not in p], problems
    ds = mlc.Dataset(jsonld=str(out / "croissant.json"))
    records = list(ds.records(record_set="demo_test"))
    assert len(records) == 3276
    want = srhm.generate(SMALL["demo"], "test", 0, 1)
    assert list(records[0]["demo_test/tokens"]) == want["tokens"][0].tolist()


def test_streaming_shards_row_groups_and_determinism(tmp_path, monkeypatch):
    cfg = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, seed=7, n_test=100, n_probe=30, n_train=5000)
    monkeypatch.setattr(build_mod, "MIN_GROUP_ROWS", 16)
    monkeypatch.setattr(build_mod, "ROW_GROUP_BYTES", 300 * build_mod.row_bytes(cfg, "train"))
    monkeypatch.setattr(build_mod, "SHARD_BYTES", 1700 * build_mod.row_bytes(cfg, "train"))
    monkeypatch.setattr(build_mod, "MIN_TRAIN_SHARDS", 2)  # 3 shards by bytes: ceil(5000 / 1700)
    sizes = []
    real = build_mod.make_block
    monkeypatch.setattr(build_mod, "make_block", lambda c, s, a, b, **k: sizes.append(b - a) or real(c, s, a, b, **k))
    build_release([cfg], tmp_path / "a", progress=False)
    assert max(sizes) == 300  # never more than one row group in memory per block
    files = sorted(p.name for p in (tmp_path / "a" / cfg.name).glob("train-*"))
    assert files == [f"train-{i:05d}-of-00003.parquet" for i in range(3)]
    groups = [pq.ParquetFile(tmp_path / "a" / cfg.name / f).metadata.num_row_groups for f in files]
    assert groups == [5, 6, 6]  # 17 row groups of 300 rows (the last 200) spread evenly
    doc = srhm.load_rules(str(tmp_path / "a"), cfg.name)
    assert doc["splits"]["train"]["content_hash"] == content_hash(srhm.generate(cfg, "train"))
    # rebuilding, and building with worker processes, gives the same hashes and bytes
    build_release([cfg], tmp_path / "b", progress=False, workers=2)
    assert srhm.load_rules(str(tmp_path / "b"), cfg.name)["splits"] == doc["splits"]
    for f in files:
        assert (tmp_path / "a" / cfg.name / f).read_bytes() == (tmp_path / "b" / cfg.name / f).read_bytes()


class Boom(RuntimeError):
    pass


def test_interrupted_build_leaves_nothing_complete(tmp_path, monkeypatch):
    cfg = SMALL["B_small"]
    calls = []
    real = build_mod.to_arrow

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # in the middle: the first config is written, the second has begun
            raise Boom("interrupted")
        return real(*args, **kwargs)

    monkeypatch.setattr(build_mod, "to_arrow", failing)
    out = tmp_path / "release"
    with pytest.raises(Boom):
        build_release([cfg, SMALL["m1"]], out, progress=False)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone too
    # an existing release is kept intact when a rebuild over it fails
    monkeypatch.setattr(build_mod, "to_arrow", real)
    build_release([cfg], out, progress=False)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    calls.clear()
    monkeypatch.setattr(build_mod, "to_arrow", failing)
    with pytest.raises(Boom):
        build_release([cfg, SMALL["m1"]], out, progress=False, overwrite=True)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["release"]


def test_release_folder_mode_follows_umask(tmp_path):
    old = os.umask(0o027)
    try:
        build_release([ZERO], tmp_path / "r1", progress=False)
    finally:
        os.umask(old)
    assert (tmp_path / "r1").stat().st_mode & 0o777 == 0o750  # not mkdtemp's 0700
    build_release([ZERO], tmp_path / "r2", progress=False)
    assert (tmp_path / "r2").stat().st_mode & 0o777 == 0o777 & ~old


def test_stale_partial_folders_of_killed_builds_are_removed(tmp_path):
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a finished process: its pid no longer exists
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # killed but not yet reaped
    stat = Path(f"/proc/{zombie.pid}/stat")
    for _ in range(300):
        if not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.01)
    host = build_mod._host_tag()
    assert host == "".join(c if c.isalnum() or c in "_." else "_" for c in socket.gethostname())[:64]
    stale = tmp_path / f".release.partial-{dead.pid}-{host}-abc_123x"
    alive = tmp_path / f".release.partial-{os.getppid()}-{host}-zzz"  # a running process (our parent)
    other_host = tmp_path / f".release.partial-{dead.pid}-elsewhere.example-qqq"
    other_name = tmp_path / f".other.partial-{dead.pid}-{host}-abc"
    stale_zombie = tmp_path / f".release.partial-{zombie.pid}-{host}-zzz9"
    for d in (stale, stale_zombie, alive, other_host, other_name):
        (d / "cfg").mkdir(parents=True)
    build_release([ZERO], tmp_path / "release", progress=False)
    zombie.wait()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["release", alive.name, other_host.name, other_name.name])
    assert build_mod.remove_stale_partials(tmp_path / "release") == []


def test_cli_build_and_errors(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r"
    res = runner.invoke(main, ["build", "grid_L2_s0-0_v3", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "sha256:" in res.output and (out / "README.md").is_file()
    res = runner.invoke(main, ["build", "grid_L2_s0-0_v3", "--out", str(out)])
    assert res.exit_code == 2 and "already exists (pass --overwrite)" in res.output
    assert "overwrite=True" not in res.output
    res = runner.invoke(main, ["build", "nonsense", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "config='nonsense'" in res.output
    res = runner.invoke(main, ["build", "A_L2_s2_s0-1_v3_nc20_m1_seed0", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "nc*m" in res.output
    res = runner.invoke(main, ["build", "demo", "--workers", "0", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--workers" in res.output
    assert not (tmp_path / "x").exists()
    assert os.listdir(tmp_path) == ["r"]


def test_rules_document_of_a_space_beyond_4300_digits():
    """P_max = 2**16384 (4933 digits): str() refuses it, the rules file holds its exact decimal."""
    from decimal import Decimal

    from srhm_datasets.release.rules_file import dumps, rules_document

    cfg = SRHMConfig.from_name("A_L12_s2_s0-0_v16_nc16_m16_seed0")
    doc = json.loads(dumps(rules_document(cfg, {})))
    assert int(Decimal(doc["sizes"]["data_space_size"])) == cfg.data_space_size == 2**16384


def test_cli_build_help_states_the_bound_of_workers():
    res = CliRunner().invoke(main, ["build", "--help"], terminal_width=200)
    assert res.exit_code == 0 and "(1 <= workers <= the CPU count)" in " ".join(res.output.split())


def test_train_of_sixteen_thousand_rows_is_sixteen_shards_of_one_row_group(tmp_path):
    cfg = SRHMConfig(L=2, s=2, s0=1, v=8, nc=8, m=8, seed=7, n_test=10, n_probe=10, n_train=16 * 1024 + 5)
    build_release([cfg], tmp_path / "r", progress=False)
    files = sorted((tmp_path / "r" / cfg.name).glob("train-*.parquet"))
    assert [f.name for f in files] == [f"train-{i:05d}-of-00016.parquet" for i in range(16)]
    metas = [pq.ParquetFile(f).metadata for f in files]
    assert [m.num_row_groups for m in metas] == [1] * 16
    assert [m.num_rows for m in metas] == [1025] * 15 + [16 * 1024 + 5 - 15 * 1025]
    doc = load_rules(str(tmp_path / "r"), cfg.name)
    assert doc["splits"]["train"]["content_hash"] == content_hash(srhm.generate(cfg, "train"))
