"""The release catalog (format.md §1.5): coverage of the paper's experiments, distinct entries, valid names."""

from __future__ import annotations

import re

import pytest

from srhm_datasets.catalog import CATALOG, DEFAULT_CONFIG, catalog_name, get_config, release_name
from srhm_datasets.config import SRHMConfig


def test_entries_distinct_and_names_usable_as_hf_configs():
    assert len(set(CATALOG.values())) == len(CATALOG)  # a config maps back to one name
    for name, cfg in CATALOG.items():
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", name), name  # no <>:/\|?* (datasets' config names)
        assert catalog_name(cfg) == name == release_name(cfg)
        assert get_config(name) is cfg and get_config(cfg.name) == cfg
    assert DEFAULT_CONFIG == "demo" and "demo" in CATALOG


def test_paper_configs_present():
    assert CATALOG["fig1"] == SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, sparsity="A", seed=1)
    grid = [c for n, c in CATALOG.items() if n.startswith("grid_")]
    assert {(c.L, c.s0, c.v) for c in grid} == {
        (L, s0, v) for L in (2, 3) for s0 in (0, 1, 2, 4, 6) for v in range(3, 13)
    }
    assert all(c.s == 2 and c.nc == c.m == c.v and c.sparsity == "A" for c in grid)
    s3 = [c for n, c in CATALOG.items() if n.startswith("s3_")]
    assert {(c.L, c.v) for c in s3} == {(2, 4), (2, 6), (3, 4)}
    assert all(c.s == 3 and c.m == c.v**2 and c.nc == c.v for c in s3)
    sparse_b = [c for n, c in CATALOG.items() if n.startswith("sparseB_")]
    assert {(c.L, c.s0, c.v) for c in sparse_b} == {(L, s0, v) for L in (2, 3) for s0 in (1, 2, 4) for v in (6, 10)}
    assert all(c.sparsity == "B" and c.nc == c.m == c.v for c in sparse_b)
    # the paper's training sets reach about 10**6: every big config's train split allows it
    assert max(c.split_sizes()["train"] for c in CATALOG.values()) == 2**20


def test_get_config_errors_name_the_parameter():
    with pytest.raises(ValueError, match="config='fig_1'"):
        get_config("fig_1")
    with pytest.raises(ValueError, match="nc\\*m"):
        get_config("A_L2_s2_s0-1_v3_nc20_m1_seed0")
