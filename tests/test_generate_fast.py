"""The fast generator paths against the straightforward ones they replace or shortcut.

``generate`` expands node-major straight into its output (``generate._expand_into``); it
must give the rows of ``expand(split_digits(...))`` (the per-level gather that ``expand``
and ``perturb`` use). The two-limb Feistel tabulates its round functions for small
radices; the tables must give what the hashed rounds give. Limbs are peeled into digits
with divisions by scalars; the digits must be the layout's mixed-radix digits, computed
here with Python ints. ``mix64`` is splitmix64 in place; it must match the formula.
"""

import importlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.config import SPLITS
from srhm_datasets.generate import column_dtypes, expand
from srhm_datasets.prng import mix64
from srhm_datasets.sampler import (
    _feistel,
    _feistel2,
    _peel,
    _split_index,
    layout,
    permute_int,
    split_digits,
)

from .strategies import small_configs

generate_module = importlib.import_module("srhm_datasets.generate")  # the package attribute is the function
sampler_module = importlib.import_module("srhm_datasets.sampler")

# spaces beyond 2**64: L=3, s=3 has 13 internal nodes of radix m*K up to 4*64
big_configs = small_configs(L=st.just(3), s=st.just(3), s0=st.integers(1, 3), m=st.integers(2, 4))


@st.composite
def ranges(draw, cfg):
    split = draw(st.sampled_from([s for s in SPLITS if cfg.split_sizes()[s] > 0] or ["test"]))
    size = cfg.split_sizes()[split]
    start = draw(st.integers(0, size))
    return split, start, draw(st.integers(start, min(size, start + 300)))


def check_against_expand(cfg, data):
    split, start, stop = data.draw(ranges(cfg))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(generate_module, "CHUNK", data.draw(st.integers(1, 64)))  # several blocks per call
        got = generate(cfg, split, start, stop, workers=data.draw(st.sampled_from([1, 2])))
    digits = split_digits(cfg, split, start, stop)
    label, synonyms, placements = digits[:, 0], digits[:, 1::2], digits[:, 2::2]
    latents, tokens = expand(cfg, label, synonyms, placements, dtype=column_dtypes(cfg)["tokens"])
    want = {"tokens": tokens, "label": label, "latents": latents, "synonyms": synonyms, "placements": placements}
    for column, values in want.items():
        assert got[column].dtype == column_dtypes(cfg)[column]
        assert np.array_equal(got[column], values), column


@settings(max_examples=60, deadline=None)
@given(small_configs(), st.data())
def test_generate_gives_the_rows_of_expand(cfg, data):
    check_against_expand(cfg, data)


@settings(max_examples=15, deadline=None)
@given(big_configs, st.data())
def test_generate_gives_the_rows_of_expand_beyond_2_64(cfg, data):
    assume(cfg.data_space_size > 2**64)
    check_against_expand(cfg, data)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 3000), st.integers(2, 3000), st.integers(0, 2**64 - 1), st.data())
def test_tabulated_two_limb_feistel_is_the_hashed_one(a, b, key, data):
    x = np.array(data.draw(st.lists(st.integers(0, a * b - 1), min_size=1, max_size=50)), dtype=np.uint64)
    lo, hi = x % np.uint64(a), x // np.uint64(a)
    want = _feistel([lo, hi], [a, b], key)
    got_lo, got_hi = lo.copy(), hi.copy()
    _feistel2(got_lo, got_hi, a, b, key)
    assert np.array_equal(got_lo, want[0]) and np.array_equal(got_hi, want[1])


@settings(max_examples=20, deadline=None)
@given(st.integers(2**20 + 1, 2**30), st.integers(0, 2**64 - 1), st.data())
def test_permute_int_with_and_without_round_tables(n, key, data):
    index = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=50)), dtype=np.int64)
    tabulated = permute_int(index, n, key)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(sampler_module, "ROUND_TABLE_MAX", 0)
        hashed = permute_int(index, n, key)
    assert np.array_equal(tabulated, hashed)


def peel_reference(limb_values: list[int], lay) -> list[int]:
    """The digits of one sample from its limb values, with Python ints (Layout's docstring)."""
    digits = [0] * len(lay.digit_radices)
    for x, pieces in zip(limb_values, lay.limbs):
        for digit, radix, weight in pieces:
            x, piece = divmod(x, radix)
            digits[digit] += piece * weight
    return digits


@settings(max_examples=40, deadline=None)
@given(st.one_of(small_configs(), big_configs), st.data())
def test_peeled_digits_are_the_layouts_mixed_radix_digits(cfg, data):
    lay = layout(cfg)
    rows = data.draw(st.lists(st.tuples(*[st.integers(0, r - 1) for r in lay.radices]), min_size=1, max_size=20))
    limbs = [np.array(column, dtype=np.uint64) for column in zip(*rows)]
    got = _peel(limbs, lay)
    assert got.shape == (len(lay.digit_radices), len(rows))
    assert got.T.tolist() == [peel_reference(list(row), lay) for row in rows]


@given(st.lists(st.integers(0, 2**62 - 1), min_size=1, max_size=20), st.lists(st.integers(2, 2**40), min_size=1))
def test_split_index_is_mixed_radix(values, radices):
    limbs = _split_index(np.array(values, dtype=np.int64), tuple(radices))
    for i, value in enumerate(values):
        for limb, radix in zip(limbs, radices):
            value, digit = divmod(value, radix)
            assert int(limb[i]) == digit


def splitmix64(x: int) -> int:
    """The splitmix64 finaliser with Python ints."""
    mask = 2**64 - 1
    x = (x + 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=30))
def test_mix64_is_splitmix64(values):
    x = np.array(values, dtype=np.uint64)
    assert mix64(x).tolist() == [splitmix64(v) for v in values]
    assert x.tolist() == values  # the input is not written
    assert int(mix64(x[0])) == splitmix64(values[0])  # numpy scalars too


def test_results_do_not_share_the_scratch_reused_from_call_to_call():
    cfg = SRHMConfig(L=3, s=2, s0=1, v=4, nc=4, m=3)
    first = generate(cfg, "train", 0, 200)
    digits = split_digits(cfg, "train", 0, 200)
    kept = {name: values.copy() for name, values in first.items()}, digits.copy()
    generate(cfg, "train", 200, 400)
    generate(SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10), "test", 0, 300)
    split_digits(cfg, "train", 300, 500)
    assert all(np.array_equal(first[name], kept[0][name]) for name in first)
    assert np.array_equal(digits, kept[1])
