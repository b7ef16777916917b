"""Faults found by trying the package as a new user, by kind of fault.

Each test reproduces one case that the earlier fixes missed: zero-row batches (a raw numpy
error), non-canonical config names, unbounded or orphaned build workers, paths and damaged
shards reaching ``datasets``, the default config's probe split, path-like config names, and
ill-typed arguments of the torch adapters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from srhm_datasets import generate, load_rules, perturb
from srhm_datasets.baselines import train as train_mod
from srhm_datasets.baselines.models import build_model, count_parameters
from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.config import SRHMConfig, is_canonical_name
from srhm_datasets.generate import expand
from srhm_datasets.hashing import content_hash
from srhm_datasets.protocol import DEFAULT_WIDTH, HIERARCHICAL_ARCHS, MAX_PARAMETERS, TrainOptions, num_parameters
from srhm_datasets.release.build import build_release
from srhm_datasets.release.load import load_split
from srhm_datasets.release.publish import publish_release
from srhm_datasets.torch import SRHMDataset, encode

from . import fakehub
from .processes import alive, children
from .release_helpers import SMALL
from .strategies import small_configs
from .test_provenance import _offline

DEMO = SMALL["demo"]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qa") / "r"
    build_release([DEMO], out, progress=False)
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("hf-cache"))


# ---- kind 9: raw library exceptions ------------------------------------------------------


@pytest.mark.parametrize("kind", ["synonym", "diffeo"])
def test_perturb_and_expand_of_zero_rows_give_zero_rows(kind):
    empty = generate(DEMO, "test", 0, 0)
    assert perturb(DEMO, empty, kind, 1).shape == (0, DEMO.d)
    latents, tokens = expand(DEMO, empty["label"], empty["synonyms"], empty["placements"])
    assert latents.shape == (0, DEMO.num_nodes) and tokens.shape == (0, DEMO.d)


def test_encode_refuses_a_d_that_is_not_an_int():
    tokens = torch.zeros(2, DEMO.d, dtype=torch.uint8)
    for d in ("16", True, 16.0):
        with pytest.raises(ValueError, match=r"invalid parameter d=.*must satisfy an int, 1 <= d <= 65536"):
            encode(tokens, DEMO.v, d=d)


def test_get_batch_refuses_float_indices(release, cache):
    ds = SRHMDataset(release, "demo", "test", load_kwargs={"cache_dir": cache})
    with pytest.raises(ValueError, match=r"invalid parameter indices=\[0\.5, 1\.7\]: must satisfy ints"):
        ds.get_batch([0.5, 1.7])  # was silently rows 0 and 1
    with pytest.raises(ValueError, match="invalid parameter indices="):
        ds.get_batch(np.array([True, False]))
    assert ds.get_batch(torch.tensor([2, 0]))["label"].tolist() == ds.targets[[2, 0]].tolist()


# ---- kind 8: inputs from somewhere else ---------------------------------------------------


@pytest.mark.parametrize("name", [DEMO.name + "\n", DEMO.name.replace("_L2_", "_L02_"), DEMO.name + "_test007"])
def test_from_name_refuses_spellings_other_than_the_canonical_one(name):
    assert not is_canonical_name(name)
    with pytest.raises(ValueError, match="invalid parameter name="):
        SRHMConfig.from_name(name)
    assert SRHMConfig.from_name(DEMO.name) == DEMO


def test_load_rules_refuses_a_config_name_that_is_a_path(release):
    (release.parent / "elsewhere.json").write_text('{"config": "not a rules file"}')
    for name in ("../elsewhere", "../../" + release.parent.name + "/elsewhere", "", ".hidden"):
        with pytest.raises(ValueError, match=r"invalid parameter config_name=.*not a path"):
            load_rules(release, name)
    assert load_rules(release, "demo")["config"] == DEMO.name


# ---- kind 3: unbounded resources from a parameter -----------------------------------------


def test_build_refuses_more_workers_than_cpus_before_any_work(tmp_path):
    out = tmp_path / "r"
    bound = r"invalid parameter workers=~1.00e30 \(31 digits\): must satisfy 1 <= workers <= \d+ \(the CPU count"
    with pytest.raises(ValueError, match=bound):
        build_release([DEMO], out, workers=10**30, progress=False)
    res = CliRunner().invoke(main, ["build", "demo", "--out", str(out), "--workers", str(10**30)])
    assert res.exit_code == 2 and "invalid parameter --workers=" in res.output, res.output
    assert "Traceback" not in res.output and os.listdir(tmp_path) == []


# ---- kind 6: interruption -------------------------------------------------------------------


def test_workers_of_a_killed_build_end_with_it(tmp_path):
    """SIGKILL (the OOM killer, a scheduler's kill -9) cannot be handled: the workers watch their parent."""
    srhm_cli = Path(sys.executable).with_name("srhm")
    proc = subprocess.Popen(
        [str(srhm_cli), "build", "grid_L3_s0-2_v10", "--out", "r", "--workers", "2", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(2400):  # until blocks flow from the workers into a shard
            workers = children(proc.pid)
            if len(workers) >= 3 and list(tmp_path.glob(".r.partial-*/*/train-00000-*")):
                break
            time.sleep(0.05)
        assert proc.poll() is None and len(workers) >= 3, "the build did not start its workers"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for _ in range(1200):
        if not any(alive(p) for p in workers):
            break
        time.sleep(0.05)
    left = [p for p in workers if alive(p)]
    for p in left:  # do not leave them to the rest of the suite
        os.kill(p, signal.SIGKILL)
    assert not left


# ---- kind 7 and 9: paths and damaged files reaching datasets ------------------------------


def test_load_split_refuses_paths_that_are_not_releases(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "keep.txt").write_text("x")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.csv").write_text("a\n1\n")
    for path in ("", tmp_path / "keep.txt", tmp_path / "notes", tmp_path):
        with pytest.raises(ValueError, match=r"invalid parameter repo_or_dir=.*must satisfy a release folder"):
            load_split(path, "demo", "test", cache_dir=cache)


def test_load_split_of_a_damaged_shard_is_one_value_error(release, tmp_path):
    copy = tmp_path / "r"
    shutil.copytree(release, copy)
    shard = copy / "demo" / "test-00000-of-00001.parquet"
    os.truncate(shard, shard.stat().st_size // 2)
    damaged = (
        r"invalid parameter repo_or_dir=.*demo/test-00000-of-00001.parquet: not a readable Parquet file.*srhm verify"
    )
    with pytest.raises(ValueError, match=damaged):  # a cache of its own: datasets would serve the intact copy's rows
        load_split(copy, "demo", "test", cache_dir=str(tmp_path / "cache"))


def test_load_split_of_the_default_config_finds_its_probe_split(release, cache):
    probe = load_split(release, None, "probe", cache_dir=cache)
    assert len(probe) == DEMO.split_sizes()["probe"]
    assert load_split(release, None, "test", cache_dir=cache).info.config_name == "demo"


# ---- streaming parallelism ---------------------------------------------------------------


def test_train_of_sixteen_thousand_rows_is_sixteen_shards_of_one_row_group(tmp_path):
    cfg = SRHMConfig(L=2, s=2, s0=1, v=8, nc=8, m=8, seed=7, n_test=10, n_probe=10, n_train=16 * 1024 + 5)
    build_release([cfg], tmp_path / "r", progress=False)
    files = sorted((tmp_path / "r" / cfg.name).glob("train-*.parquet"))
    assert [f.name for f in files] == [f"train-{i:05d}-of-00016.parquet" for i in range(16)]
    metas = [pq.ParquetFile(f).metadata for f in files]
    assert [m.num_row_groups for m in metas] == [1] * 16
    assert [m.num_rows for m in metas] == [1025] * 15 + [16 * 1024 + 5 - 15 * 1025]
    doc = load_rules(str(tmp_path / "r"), cfg.name)
    assert doc["splits"]["train"]["content_hash"] == content_hash(generate(cfg, "train"))


# ---- kind 4: options checked before the work ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--n", "0"], "'--n': 0 is not in the range 1<=x<=1000"),
        (["--n", "-1"], "'--n': -1 is not in the range 1<=x<=1000"),
        (["--n", "100000000"], "'--n': 100000000 is not in the range 1<=x<=1000"),
        (["--start", "-1"], "'--start': -1 is not in the range x>=0"),
        (["--start", "12708"], "'--start': 12708: must satisfy 0 <= --start < 12708"),
    ],
)
def test_sample_bounds_its_options_before_generating(args, named, monkeypatch):
    def no_rows(*args, **kwargs):
        raise AssertionError("generated rows for a bad option")

    monkeypatch.setattr(sys.modules["srhm_datasets.generate"], "generate", no_rows)
    result = CliRunner().invoke(main, ["sample", "demo", "--split", "train", *args])  # 12,708 train rows
    assert result.exit_code == 2, result.output
    assert named in result.output


# ---- kind 3: resources bounded by a training option --------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    cfg=small_configs(L=st.integers(1, 2), s=st.integers(2, 3), s0=st.integers(0, 1)),
    arch=st.sampled_from(HIERARCHICAL_ARCHS),
    width=st.integers(1, 6),
    bias=st.booleans(),
)
def test_num_parameters_is_the_models_count(cfg, arch, width, bias):
    assert num_parameters(arch, cfg, width, bias) == count_parameters(build_model(arch, cfg, width, bias=bias))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"width": 10**30}, "width=~1.00e30 (31 digits): must satisfy a network of at most 2**31 = 2,147,483,648"),
        ({"width": 10**8}, "width=100000000: must satisfy a network of at most 2**31 = 2,147,483,648 parameters"),
        ({"width": 25_000}, "(cnn on A_L2_s2_s0-1_v4_nc4_m4_seed0 at this width has 2500500000)"),
        ({"threads": 100_000}, f"threads=100000: must satisfy threads <= {os.cpu_count()} (the CPU count)"),
    ],
)
def test_train_options_bound_width_and_threads_before_any_work(options, named, tmp_path):
    with pytest.raises(ValueError, match="invalid parameter ") as err:
        train_mod.resolve(TrainOptions(config=DEMO, P=10, out=str(tmp_path / "run"), **options))
    assert named in str(err.value)
    assert not (tmp_path / "run").exists()


def test_width_is_bounded_by_the_parameters_of_the_arch():
    assert train_mod.resolve(TrainOptions(config=DEMO, P=10, arch="fcn", width=25_000)).width == 25_000  # 626,700,000
    assert num_parameters("cnn", DEMO, DEFAULT_WIDTH) < MAX_PARAMETERS  # the defaults stay far inside


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--config", "demo", "--P", "10", "--width", str(10**30), "--out"],
        ["train", "--config", "demo", "--P", "10", "--width", "100000000", "--max-steps", "1", "--out"],
        ["train", "--config", "demo", "--P", "10", "--threads", "100000", "--out"],
        ["learning-curve", "--config", "demo", "--P-min", "10", "--P-max", "20", "--threads", "100000", "--out"],
        ["demo", "--width", "100000000", "--out"],
    ],
)
def test_train_commands_refuse_a_huge_width_or_thread_count_as_a_usage_error(args, tmp_path):
    result = CliRunner().invoke(main, [*args, str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "invalid parameter width=" in result.output or "invalid parameter threads=100000" in result.output
    assert not (tmp_path / "out").exists()


# ---- kind 7: failures of the outside world -----------------------------------------------

REPO = "srhm-org/srhm"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The in-process fake Hub (fresh HF_HOME); ``offline()`` then cuts it off as a lost network does."""
    fake = fakehub.install(monkeypatch, tmp_path / "hf_home")
    yield fake
    fakehub.uninstall()


def _no_network(monkeypatch, hub) -> None:
    """Offline (``HF_HUB_OFFLINE``), and the fake Hub's client refusing requests as huggingface_hub's own does."""
    import httpx2
    from huggingface_hub.utils import _http

    _offline(monkeypatch)
    hooks = {"request": [_http.hf_request_event_hook]}
    _http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub.handler), event_hooks=hooks))
    _http.close_session()


def _tiny_run(out: Path) -> None:
    args = ["--config", "demo", "--P", "10", "--width", "4", "--max-steps", "1", "--num-test", "5", "--device", "cpu"]
    res = CliRunner().invoke(main, ["train", *args, "--no-progress", "--threads", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output


def _one_error_line(res) -> str:
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def test_evaluate_without_network_is_one_line_and_exit_1(hub, monkeypatch, tmp_path):
    _tiny_run(tmp_path / "run")
    _no_network(monkeypatch, hub)
    line = _one_error_line(CliRunner().invoke(main, ["evaluate", str(tmp_path / "run"), "--data", REPO]))
    assert f"could not read the probe split of config demo_probe of dataset repo {REPO} at revision main" in line
    assert "check the network connection and HF_ENDPOINT" in line
    assert "evaluation" not in json.loads((tmp_path / "run" / "results.json").read_text())


def test_train_without_network_names_the_rules_file_it_tried(hub, monkeypatch, tmp_path):
    build_release([DEMO], tmp_path / "r", progress=False)
    publish_release(tmp_path / "r", REPO, "v1.0.0")
    for split in ("train", "test"):  # the rows are cached, the rules file is not (publish cached it: removed)
        datasets.load_dataset(REPO, "demo", split=split)
    shutil.rmtree(tmp_path / "hf_home" / "hub")
    _no_network(monkeypatch, hub)
    args = ["train", "--config", "demo", "--data", REPO, "--P", "10", "--width", "4", "--max-steps", "1"]
    res = CliRunner().invoke(main, [*args, "--no-progress", "--out", str(tmp_path / "run")])
    line = _one_error_line(res)
    assert f"could not read rules/demo.json of dataset repo {REPO} at revision main from the Hub" in line
    assert "A_L2" not in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["", "../demo", "rules/demo"])
def test_verify_refuses_a_config_option_that_is_not_a_name(release, name):
    result = CliRunner().invoke(main, ["verify", str(release), "--config", name])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--config': {name!r}: must be a config name" in result.output


# ---- kind 2: what load_split loads is what it proves ---------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"columns": ["label"]}, {"data_files": "demo/test-*.parquet"}, {"data_dir": "demo"}, {"features": None}],
)
def test_load_split_refuses_keywords_that_change_what_is_loaded(release, kwargs, monkeypatch):
    def no_load(*args, **kw):
        raise AssertionError("loaded before refusing")

    monkeypatch.setattr(datasets, "load_dataset", no_load)
    (key,) = kwargs
    with pytest.raises(ValueError, match=f"invalid parameter {key}=.*: must satisfy not given: load_split loads"):
        load_split(release, "demo", "test", **kwargs)


def test_load_split_passes_on_where_and_how_to_load(release, cache):
    assert len(load_split(release, "demo", "test", cache_dir=cache, keep_in_memory=True)) == DEMO.split_sizes()["test"]


# ---- load_split: a config or a source that is not there is our ValueError, before any loading -------------


def _never_load(monkeypatch) -> None:
    def no_load(*args, **kw):
        raise AssertionError("loaded before refusing")

    monkeypatch.setattr(datasets, "load_dataset", no_load)
    monkeypatch.setattr(datasets, "load_dataset_builder", no_load)


@pytest.mark.parametrize(
    ("config", "suggestion"),
    [("fig2", ""), ("A_L2_s2_s0-2_v10_nc10_m10_seed1", ""), ("../demo", "; did you mean 'demo'?")],
)
def test_load_split_names_the_configs_of_a_local_release_without_the_one_asked(
    release, config, suggestion, monkeypatch
):
    _never_load(monkeypatch)
    want = f"invalid parameter config={config!r}: no such config in {release}; it has: demo{suggestion}"
    with pytest.raises(ValueError, match=re.escape(want) + "$"):
        load_split(release, config, "train")


def test_train_names_the_configs_of_a_local_release_without_the_one_asked(release, tmp_path):
    args = ["train", "--config", "fig1", "--data", str(release), "--P", "10", "--max-steps", "1", "--no-progress"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    fig1 = get_config("fig1").name
    assert f"Error: invalid parameter config={fig1!r}: no such config in {release}; it has: demo" in res.output
    assert "BuilderConfig" not in res.output


@pytest.mark.parametrize("source", ["nonexistent_dir/", "./releasee", "a/b/c"])
def test_load_split_refuses_a_source_that_is_neither_a_folder_nor_a_repo_id(source, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _never_load(monkeypatch)
    with pytest.raises(
        ValueError, match=re.escape(f"invalid parameter repo_or_dir={source!r}: must satisfy an existing")
    ):
        load_split(source, "demo", "train")
