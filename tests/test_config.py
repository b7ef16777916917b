"""SRHMConfig: validation messages, derived sizes, canonical names (format.md §1, §9)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig
from srhm_datasets.catalog import get_config
from srhm_datasets.config import is_canonical_name

from .strategies import small_configs

FIG1 = dict(L=2, s=2, s0=2, v=10, nc=10, m=10, sparsity="A", seed=1)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"L": 0}, "L=0"),
        ({"s": 1}, "s=1"),
        ({"s0": -1}, "s0=-1"),
        ({"v": 1}, "v=1"),
        ({"v": 70000}, "v=70000"),
        ({"nc": 1}, "nc=1"),
        ({"m": 0}, "m=0"),
        ({"nc": 11, "m": 10}, "nc*m=110"),
        ({"v": 3, "nc": 2, "m": 4}, "v*m=12"),
        ({"sparsity": "C"}, "sparsity='C'"),
        ({"seed": -1}, "seed=-1"),
        ({"L": 2.0}, "L=2.0"),
        ({"s": 3, "s0": 300}, "placements_per_node"),
        ({"n_test": 10**7}, "n_test+n_probe+n_train"),
        ({"n_train": -1}, "n_train=-1"),
    ],
)
def test_invalid_parameters_name_parameter_value_and_bound(change, fragment):
    with pytest.raises(ValueError) as err:
        SRHMConfig(**{**FIG1, **change})
    message = str(err.value)
    assert fragment in message
    assert "must" in message  # states the bound


def test_derived_sizes_of_fig1():
    cfg = SRHMConfig(**FIG1)
    assert (cfg.S, cfg.d, cfg.num_nodes, cfg.placements_per_node) == (6, 36, 3, 9)
    assert cfg.data_space_size == 10 * (10 * 9) ** 3 == 7_290_000
    assert cfg.split_sizes() == {"train": 2**20, "test": 20000, "probe": 1000}


def test_sparsity_b_counts_order_preserving_subsets():
    cfg = SRHMConfig(**{**FIG1, "sparsity": "B"})
    assert cfg.placements_per_node == math.comb(6, 2) == 15


def test_data_space_is_exact_beyond_int64():
    cfg = SRHMConfig(L=3, s=3, s0=2, v=10, nc=10, m=100)
    assert cfg.data_space_size == 10 * (100 * 27) ** 13
    assert cfg.data_space_size > 2**64
    big = SRHMConfig(L=4, s=2, s0=0, v=16, nc=16, m=16)
    assert big.data_space_size == 16**16 == 2**64


def test_tiny_spaces_give_tiny_splits():
    cfg = SRHMConfig(L=1, s=2, s0=0, v=2, nc=2, m=1)  # P_max = 2
    assert cfg.data_space_size == 2
    assert cfg.split_sizes() == {"train": 2, "test": 0, "probe": 0}


def test_overridden_test_size_leaves_the_rest_to_train():
    cfg = SRHMConfig(**FIG1, n_test=100, n_probe=10)
    assert cfg.split_sizes() == {"train": 2**20, "test": 100, "probe": 10}
    assert cfg.split_offset("train") == 110


@given(small_configs(L=st.integers(1, 4), n_test=st.one_of(st.none(), st.integers(0, 5))))
def test_name_round_trips(cfg):
    assert SRHMConfig.from_name(cfg.name) == cfg
    assert get_config(cfg.name) == cfg
    assert not set(cfg.name) & set("<>:/\\|?* ")  # legal as a Hub config name and a folder


def test_unknown_config_name_is_a_clear_error():
    with pytest.raises(ValueError, match="config='nope'"):
        get_config("nope")


DEMO = get_config("demo")


@pytest.mark.parametrize("name", [DEMO.name + "\n", DEMO.name.replace("_L2_", "_L02_"), DEMO.name + "_test007"])
def test_from_name_refuses_spellings_other_than_the_canonical_one(name):
    assert not is_canonical_name(name)
    with pytest.raises(ValueError, match="invalid parameter name="):
        SRHMConfig.from_name(name)
    assert SRHMConfig.from_name(DEMO.name) == DEMO
