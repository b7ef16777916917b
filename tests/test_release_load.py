"""Loading a release: ``load_split`` and ``load_rules`` refuse a source, a config name or a keyword that is not
what they can prove, with a ValueError naming the parameter before any loading; what they load is what they prove."""

from __future__ import annotations

import re
import shutil

import datasets
import pytest
from click.testing import CliRunner

from srhm_datasets import load_rules
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.release.load import load_split

from .release_helpers import TINY, TINY_NAME


def test_load_rules_refuses_a_config_name_that_is_a_path(tiny_release, tmp_path):
    release = tmp_path / "release"
    shutil.copytree(tiny_release, release)
    (tmp_path / "elsewhere.json").write_text('{"config": "not a rules file"}')
    for name in ("../elsewhere", "../../" + tmp_path.name + "/elsewhere", "", ".hidden"):
        with pytest.raises(ValueError, match=r"invalid parameter config_name=.*not a path"):
            load_rules(release, name)
    assert load_rules(release, TINY_NAME)["config"] == TINY.name


def test_load_split_refuses_paths_that_are_not_releases(tmp_path, monkeypatch, tiny_release_cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "keep.txt").write_text("x")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.csv").write_text("a\n1\n")
    for path in ("", tmp_path / "keep.txt", tmp_path / "notes", tmp_path):
        with pytest.raises(ValueError, match=r"invalid parameter repo_or_dir=.*must satisfy a release folder"):
            load_split(path, TINY_NAME, "test", cache_dir=tiny_release_cache)


def test_load_split_of_the_default_config_finds_its_probe_split(tiny_release, tiny_release_cache):
    probe = load_split(tiny_release, None, "probe", cache_dir=tiny_release_cache)
    assert len(probe) == TINY.split_sizes()["probe"]
    assert load_split(tiny_release, None, "test", cache_dir=tiny_release_cache).info.config_name == TINY_NAME


@pytest.mark.parametrize(
    "kwargs",
    [
        {"columns": ["label"]},
        {"data_files": f"{TINY_NAME}/test-*.parquet"},
        {"data_dir": TINY_NAME},
        {"features": None},
    ],
)
def test_load_split_refuses_keywords_that_change_what_is_loaded(tiny_release, kwargs, monkeypatch):
    def no_load(*args, **kw):
        raise AssertionError("loaded before refusing")

    monkeypatch.setattr(datasets, "load_dataset", no_load)
    (key,) = kwargs
    with pytest.raises(ValueError, match=f"invalid parameter {key}=.*: must satisfy not given: load_split loads"):
        load_split(tiny_release, TINY_NAME, "test", **kwargs)


def test_load_split_passes_on_where_and_how_to_load(tiny_release, tiny_release_cache):
    ds = load_split(tiny_release, TINY_NAME, "test", cache_dir=tiny_release_cache, keep_in_memory=True)
    assert len(ds) == TINY.split_sizes()["test"]


def _never_load(monkeypatch) -> None:
    def no_load(*args, **kw):
        raise AssertionError("loaded before refusing")

    monkeypatch.setattr(datasets, "load_dataset", no_load)
    monkeypatch.setattr(datasets, "load_dataset_builder", no_load)


@pytest.mark.parametrize(
    ("config", "suggestion"),
    [("fig2", ""), ("A_L2_s2_s0-2_v10_nc10_m10_seed1", ""), (f"../{TINY_NAME}", f"; did you mean {TINY_NAME!r}?")],
)
def test_load_split_names_the_configs_of_a_local_release_without_the_one_asked(
    tiny_release, config, suggestion, monkeypatch
):
    _never_load(monkeypatch)
    want = f"invalid parameter config={config!r}: no such config in {tiny_release}; it has: {TINY_NAME}{suggestion}"
    with pytest.raises(ValueError, match=re.escape(want) + "$"):
        load_split(tiny_release, config, "train")


def test_train_names_the_configs_of_a_local_release_without_the_one_asked(tiny_release, tmp_path):
    args = ["train", "--config", "fig1", "--data", str(tiny_release), "--P", "10", "--max-steps", "1", "--no-progress"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    fig1 = get_config("fig1").name
    assert (
        f"Error: invalid parameter config={fig1!r}: no such config in {tiny_release}; it has: {TINY_NAME}" in res.output
    )
    assert "BuilderConfig" not in res.output


@pytest.mark.parametrize("source", ["nonexistent_dir/", "./releasee", "a/b/c"])
def test_load_split_refuses_a_source_that_is_neither_a_folder_nor_a_repo_id(source, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _never_load(monkeypatch)
    with pytest.raises(
        ValueError, match=re.escape(f"invalid parameter repo_or_dir={source!r}: must satisfy an existing")
    ):
        load_split(source, TINY_NAME, "train")
