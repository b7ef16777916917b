"""Provenance (format.md §8.8): whatever loads a published split proves its rows are those of the revision it records.

The upstream fault, reproduced with the in-process fake Hub: offline, with v1.0.0 and
v1.1.0 of one repo in the cache, ``datasets.load_dataset(..., revision="v1.0.0")``
returns v1.1.0's rows (datasets 5.2 falls back to the latest cached copy of the config
with only a log line), while ``huggingface_hub`` serves v1.0.0's rules file.
"""

from __future__ import annotations

import shutil

import datasets
import numpy as np
import pytest
from click.testing import CliRunner

import srhm_datasets as srhm
from srhm_datasets import catalog
from srhm_datasets.cli import main
from srhm_datasets.config import SRHMConfig
from srhm_datasets.release import load as load_mod
from srhm_datasets.release.build import build_release
from srhm_datasets.release.load import load_split
from srhm_datasets.release.publish import publish_release
from srhm_datasets.release.rules_file import load_rules
from srhm_datasets.torch import SRHMDataset

from . import fakehub
from .release_helpers import TINY, TINY_NAME, rows

REPO = "srhm-org/srhm"
NAME = TINY_NAME
V1 = TINY  # release v1.0.0: tiny_release
V2 = SRHMConfig(L=2, s=2, s0=0, v=3, nc=3, m=3, seed=9)  # release v1.1.0: same name, other rows


@pytest.fixture
def two_releases_cached(fake_hub, tiny_release, monkeypatch, tmp_path):
    """v1.0.0 (V1) and v1.1.0 (V2) of REPO published, both loaded once (cached), then offline."""
    publish_release(tiny_release, REPO, "v1.0.0")
    monkeypatch.setitem(catalog.CATALOG, NAME, V2)
    build_release([V2], tmp_path / "r2", progress=False)
    publish_release(tmp_path / "r2", REPO, "v1.1.0")
    monkeypatch.setitem(catalog.CATALOG, NAME, V1)
    for revision, cfg in (("v1.0.0", V1), ("v1.1.0", V2)):  # online: right rows, now in the cache
        for split in ("train", "test", "probe"):
            got = rows(load_split(REPO, NAME, split, revision=revision))
            np.testing.assert_array_equal(got["label"], srhm.generate(cfg, split)["label"])
    fakehub.offline(monkeypatch)
    return fake_hub


def test_offline_datasets_returns_the_newer_cached_release(two_releases_cached):
    """What datasets does today (the upstream fault this module guards against)."""
    ds = datasets.load_dataset(REPO, NAME, split="train", revision="v1.0.0")
    np.testing.assert_array_equal(rows(ds)["label"], srhm.generate(V2, "train")["label"])  # v1.1.0's rows
    assert load_rules(REPO, NAME, revision="v1.0.0")["config"] == V1.name  # while the rules file is v1.0.0's


def test_load_split_refuses_another_revisions_rows(two_releases_cached):
    with pytest.raises(ValueError) as info:
        load_split(REPO, NAME, "train", revision="v1.0.0")
    message = str(info.value)
    want = load_rules(REPO, NAME, revision="v1.0.0")["splits"]["train"]["content_hash"]
    got = srhm.load_rules(REPO, NAME, revision="v1.1.0")["splits"]["train"]["content_hash"]
    assert f"train of {NAME} in {REPO} at revision v1.0.0" in message
    assert f"got content hash {got}, its rules file expects {want}" in message
    # the revision datasets did return passes: its rows are those of its rules file
    np.testing.assert_array_equal(
        rows(load_split(REPO, NAME, "train", revision="v1.1.0"))["label"], srhm.generate(V2, "train")["label"]
    )


def test_torch_dataset_refuses_another_revisions_rows(two_releases_cached):
    with pytest.raises(ValueError, match=r"at revision v1\.0\.0: got content hash"):
        SRHMDataset(REPO, config=NAME, split="train", revision="v1.0.0")


def test_cli_train_and_evaluate_refuse_another_revisions_rows(two_releases_cached, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        [
            "train",
            "--config",
            NAME,
            "--data",
            REPO,
            "--revision",
            "v1.0.0",
            "--P",
            "10",
            "--out",
            str(out),
            "--width",
            "8",
            "--max-steps",
            "1",
            "--num-test",
            "5",
            "--device",
            "cpu",
            "--no-progress",
        ],
    )
    assert res.exit_code != 0 and "at revision v1.0.0: got content hash" in res.output
    assert not (out / "results.json").exists()
    # a run trained on the generator, evaluated against v1.0.0 of the release
    assert (
        CliRunner()
        .invoke(
            main,
            [
                "train",
                "--config",
                NAME,
                "--P",
                "10",
                "--out",
                str(out),
                "--width",
                "8",
                "--max-steps",
                "1",
                "--num-test",
                "5",
                "--device",
                "cpu",
                "--no-progress",
            ],
        )
        .exit_code
        == 0
    )
    before = (out / "results.json").read_bytes()
    res = CliRunner().invoke(main, ["evaluate", str(out), "--data", REPO, "--revision", "v1.0.0", "--num-test", "5"])
    assert res.exit_code != 0 and "at revision v1.0.0: got content hash" in res.output
    assert (out / "results.json").read_bytes() == before


def test_local_release_rows_are_checked(tiny_release, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(tiny_release, out)
    ds = load_split(str(out), NAME, "probe")
    assert len(ds) == V1.split_sizes()["probe"]
    doc = (out / "rules" / f"{NAME}.json").read_text()
    other = load_rules(str(out), NAME)["splits"]["test"]["content_hash"]
    (out / "rules" / f"{NAME}.json").write_text(doc.replace(other, "sha256:" + "0" * 64))
    with pytest.raises(
        ValueError,
        match=rf"test of grid_L2_s0-0_v3 in {out}: got content hash "
        rf"{other}, its rules file expects sha256:0+; the shards differ from its rules file "
        rf"{out}/rules/{NAME}.json; run `srhm verify {out}`",
    ):
        load_split(str(out), NAME, "test")


def test_row_count_is_checked_before_the_hash(tiny_release, tmp_path, monkeypatch):
    out = tmp_path / "r"
    shutil.copytree(tiny_release, out)
    monkeypatch.setattr(load_mod, "dataset_content_hash", lambda ds: pytest.fail("hashed"))
    ds = datasets.load_dataset(str(out), NAME, split="train").select(range(10))
    with pytest.raises(ValueError, match=rf"got 10 rows, its rules file expects {V1.split_sizes()['train']}"):
        load_mod.check_provenance(ds, str(out), NAME, "train", None)


def test_streamed_split_is_checked_on_its_first_rows(tiny_release, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(tiny_release, out)
    assert sum(1 for _ in load_split(str(out), NAME, "train", streaming=True)) == V1.split_sizes()["train"]
    doc = (out / "rules" / f"{NAME}.json").read_text()
    (out / "rules" / f"{NAME}.json").write_text(doc.replace(V1.name, V2.name))  # rules of another config
    with pytest.raises(ValueError, match=rf"its first \d+ rows are not those of {V2.name}"):
        load_split(str(out), NAME, "train", streaming=True)


def test_unreadable_rules_file_is_refused(tiny_release, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(tiny_release, out)
    (out / "rules" / f"{NAME}.json").write_text("{not json")
    with pytest.raises(
        ValueError,
        match=rf"the rules file {out}/rules/{NAME}.json is damaged: not valid JSON \(.*\); run `srhm verify {out}`",
    ):
        load_split(str(out), NAME, "train")


@pytest.mark.parametrize(
    ("args", "exc", "message"),
    [
        ((3, NAME, "train"), TypeError, "repo_or_dir=3"),
        (("x", 3, "train"), TypeError, "config=3"),
        (("x", NAME, ["train"]), TypeError, r"split=\['train'\]"),
        (("x", NAME, "valid"), ValueError, "split='valid'"),
        (("x", NAME, "train", 1), TypeError, "revision=1"),
    ],
)
def test_load_split_argument_types(args, exc, message):
    with pytest.raises(exc, match=message):
        load_split(*args)


def test_default_config_rows_are_checked_too(tiny_release, tmp_path):
    """``config=None`` (the release's default config) goes through the same check."""
    from srhm_datasets.torch import SRHMDataset

    out = tmp_path / "r"
    shutil.copytree(tiny_release, out)
    assert len(load_split(str(out), None, "train")) == len(SRHMDataset(str(out))) == V1.split_sizes()["train"]
    doc = load_rules(str(out), NAME)
    good = doc["splits"]["train"]["content_hash"]
    path = out / "rules" / f"{NAME}.json"
    path.write_text(path.read_text().replace(good, "sha256:" + "1" * 64))
    with pytest.raises(ValueError, match=rf"train of {NAME} in .*: got content hash {good}"):
        SRHMDataset(str(out))


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_damaged_cache_of_a_hub_repo_names_the_cache_never_the_repo(fake_hub, tiny_release, tmp_path, damage):
    publish_release(tiny_release, REPO, "v1.0.0")
    for split in ("train", "test"):
        load_split(REPO, NAME, split)  # now in the datasets cache
    cached = sorted((tmp_path / "hf_home" / "datasets").rglob("*-test.arrow"))
    assert cached
    for f in cached:
        f.write_bytes(f.read_bytes()[:200]) if damage == "truncated" else f.unlink()
    cache = tmp_path / "hf_home" / "datasets" / REPO.replace("/", "___") / NAME
    expected = f"the datasets cache at {cache} is damaged .*; dataset repo {REPO} is not the cause: remove that"
    with pytest.raises(ValueError, match=expected):
        load_split(REPO, NAME, "test")
    args = ["train", "--config", NAME, "--data", REPO, "--P", "10", "--width", "4", "--max-steps", "1"]
    res = CliRunner().invoke(main, [*args, "--device", "cpu", "--no-progress", "--out", str(tmp_path / "run")])
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    (line,) = [line for line in res.output.splitlines() if line.startswith("Error: ")]
    assert "not a release folder or a reachable" not in line and f"the datasets cache at {cache}" in line
