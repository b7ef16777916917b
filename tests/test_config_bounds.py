"""Bounds beyond format.md §1.1 (format.md §1.3): every derived size is checked before it is computed."""

import decimal
import math
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig
from srhm_datasets.catalog import CATALOG
from srhm_datasets.cli import main
from srhm_datasets.config import MAX_D, MAX_SPACE_BITS, decimal_digits, decimal_string, format_count

FIG1 = {"L": 2, "s": 2, "s0": 2, "v": 10, "nc": 10, "m": 10, "sparsity": "A", "seed": 1}
#: Peak Python memory allowed for constructing (or refusing) one config.
BUDGET = 1 << 20


def peak_bytes(fields: dict) -> tuple[int, Exception | None]:
    """Peak traced memory of SRHMConfig(**fields), and the exception it raised, if any."""
    tracemalloc.start()
    try:
        SRHMConfig(**fields)
        error = None
    except ValueError as err:
        error = err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


def test_a_depth_of_100_is_refused_at_once():
    # N = 2**100 - 1 nodes: the old code computed (m*K)**N and climbed past 20 GB.
    peak, error = peak_bytes({"L": 100, "s": 2, "s0": 1, "v": 4, "nc": 4, "m": 4})
    assert "invalid parameter L=100: must satisfy" in str(error) and "L <= 16" in str(error)
    assert peak < BUDGET


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"L": 17}, "L=17: must satisfy 1 <= L <= 16"),
        ({"L": 2.5}, "L=2.5: must satisfy an int, 1 <= L <= 16"),
        ({"s": 62}, "s=62: must satisfy 2 <= s <= 61"),
        ({"s0": 40000}, "s0=40000: must satisfy 0 <= s0 <= 32767"),
        ({"nc": 2**22}, "nc=4194304: must satisfy 2 <= nc <= 2097152"),
        ({"m": 10**5000}, "m=~1.00e5000 (5001 digits)"),  # compact, not 5001 digits of text
        ({"seed": 2**64}, "seed=18446744073709551616: must satisfy 0 <= seed <= 18446744073709551615"),
        ({"n_train": True}, "n_train=True: must satisfy an int"),
        ({"L": None}, "L=None"),
        ({"s": "2"}, "s='2'"),
        ({"L": 1, "s0": 2047}, "placements_per_node*s=8388608: must satisfy <= 2**22"),
        ({"v": 2**11, "nc": 2, "m": 2**10}, "(nc+(L-1)*v)*m*s=4198400: must satisfy <= 2**22"),
        ({"L": 4, "s0": 15}, "d=1048576: must satisfy d = S**L <= 2**16"),
        ({"L": 16, "s0": 0, "v": 16, "nc": 16, "m": 16}, "log2(P_max)=262144.0: must satisfy <= 2**16"),
        (
            {"n_train": 2**62 + 1},
            "n_train=4611686018427387905: must satisfy 0 <= n_train <= 4611686018427387904",
        ),
        (
            {"L": 4, "s0": 1, "v": 16, "nc": 16, "m": 16, "n_test": 2**62},
            "n_test+n_probe+n_train=4611686018428438080: must satisfy <= data_space_size = "
            "19807040628566084398385987584 (and <= 2**62)",
        ),
    ],
)
def test_each_bound_names_parameter_value_and_bound(change, fragment):
    peak, error = peak_bytes({**FIG1, **change})
    assert isinstance(error, ValueError), change
    assert fragment in str(error)
    assert peak < BUDGET


def huge_or_odd():
    """Any value a typo or a fuzzer could pass: small, huge, negative, or not an int."""
    return st.one_of(
        st.integers(-3, 40),
        st.integers(0, 2**4096),
        st.integers(-(2**4096), -1),
        st.floats(allow_nan=True),
        st.booleans(),
        st.none(),
        st.text(max_size=5),
        st.integers(0, 2**63 - 1).map(np.int64),
    )


@given(
    fields=st.fixed_dictionaries(
        {k: huge_or_odd() for k in ("L", "s", "s0", "v", "nc", "m")},
        optional={
            "seed": huge_or_odd(),
            "n_test": huge_or_odd(),
            "n_probe": huge_or_odd(),
            "n_train": huge_or_odd(),
            "sparsity": st.sampled_from(["A", "B", "C", 1]),
        },
    )
)
def test_any_parameters_are_answered_within_a_small_memory_budget(fields):
    peak, error = peak_bytes(fields)
    assert peak < BUDGET, fields
    if error is not None:
        assert str(error).startswith("invalid parameter ") and "must satisfy" in str(error)
        assert len(str(error)) < 1000  # huge values are shown compactly


@given(
    L=st.integers(1, 16),
    s=st.integers(2, 61),
    s0=st.integers(0, 2**15),
    v=st.integers(2, 2**16),
    nc=st.integers(2, 2**21),
    m=st.integers(1, 2**20),
    sparsity=st.sampled_from("AB"),
)
def test_configs_near_the_bounds_either_fit_them_or_are_refused(L, s, s0, v, nc, m, sparsity):
    peak, error = peak_bytes({"L": L, "s": s, "s0": s0, "v": v, "nc": nc, "m": m, "sparsity": sparsity})
    assert peak < BUDGET
    if error is None:
        cfg = SRHMConfig(L=L, s=s, s0=s0, v=v, nc=nc, m=m, sparsity=sparsity)
        assert cfg.d <= MAX_D and cfg.data_space_size.bit_length() <= MAX_SPACE_BITS + 1


def test_catalog_fits_the_bounds_with_room():
    assert max(cfg.d for cfg in CATALOG.values()) == 9261 < MAX_D
    assert max(math.log2(cfg.data_space_size) for cfg in CATALOG.values()) < MAX_SPACE_BITS / 100


def test_numpy_integers_are_accepted_and_stored_as_ints():
    cfg = SRHMConfig(L=np.int64(2), s=np.int32(2), s0=np.uint8(1), v=4, nc=4, m=4, n_test=np.int64(10))
    assert cfg == SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, n_test=10)
    assert type(cfg.L) is int and type(cfg.n_test) is int and cfg.name.startswith("A_L2_s2_s0-1_")


def test_from_name_refuses_numbers_too_long_for_python():
    # Before: Python's "Exceeds the limit (4300 digits) for integer string conversion".
    with pytest.raises(ValueError, match=r"invalid parameter seed='9999.*at most 20 digits"):
        SRHMConfig.from_name("A_L2_s2_s0-1_v4_nc4_m4_seed" + "9" * 5000)
    with pytest.raises(ValueError, match="canonical config name"):
        SRHMConfig.from_name("A_L\u0662_s2_s0-1_v4_nc4_m4_seed0")  # an Arabic-Indic digit is not canonical


def test_info_of_a_config_with_a_huge_space_is_compact():
    # Before: a traceback ("Exceeds the limit (4300 digits) for integer string conversion").
    result = CliRunner().invoke(main, ["info", "A_L12_s2_s0-0_v16_nc16_m16_seed0"])
    assert result.exit_code == 0, result.output
    assert "~1.18e4932 (4933 digits) = 16*16**4095 (~2^16384)" in result.output
    assert "input length d      4096" in result.output


def test_huge_counts_print_exactly_or_compactly():
    P = SRHMConfig.from_name("A_L12_s2_s0-0_v16_nc16_m16_seed0").data_space_size  # 2**16384
    text = decimal_string(P)
    assert len(text) == decimal_digits(P) == 4933 and int(decimal.Decimal(text)) == P
    assert format_count(2**94) == str(2**94)
    assert format_count(10**30) == "~1.00e30 (31 digits)" and format_count(10**30 - 1) == "9" * 30
    assert format_count(-(10**40)) == "-~1.00e40 (41 digits)"
    assert format_count(2**10**6) == "~2^1000000"


@given(st.integers(0, 10**200))
def test_decimal_digits_match_str(n):
    assert decimal_digits(n) == len(str(n))
