"""The keyed permutation of the data space (format.md §5): bijective, disjoint, uniform."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.sampler import (
    TABLE_MAX,
    _feistel,
    layout,
    permute_int,
    permuted_digits,
)

from .strategies import small_configs


def sample_keys(batch) -> np.ndarray:
    """(label, synonyms, placements) of each row as one row of an int64 matrix."""
    return np.column_stack([batch["label"], batch["synonyms"], batch["placements"]]).astype(np.int64)


def digits_to_index(cfg, digits) -> list[int]:
    """Mixed-radix value of digit vectors (label most significant), as Python ints."""
    radices = layout(cfg).digit_radices
    out = []
    for row in digits.tolist():
        value = 0
        for d, r in zip(row, radices):
            value = value * r + d
        out.append(value)
    return out


@pytest.mark.parametrize("n", [1, 2, 7, 1000, TABLE_MAX, TABLE_MAX + 1, 3_000_017])
def test_permute_int_is_a_bijection(n):
    image = permute_int(np.arange(n), n, key=12345)
    assert image.min() >= 0 and image.max() < n
    assert np.unique(image).size == n


def test_permute_int_depends_on_key_and_not_on_batching():
    n = 5_000_000
    idx = np.arange(1000, 3000)
    a = permute_int(idx, n, key=1)
    assert not np.array_equal(a, permute_int(idx, n, key=2))
    parts = np.concatenate([permute_int(idx[:777], n, key=1), permute_int(idx[777:], n, key=1)])
    assert np.array_equal(a, parts)


@pytest.mark.parametrize("radices", [[7, 11, 13], [2, 3, 5, 7], [1000, 3]])
def test_multi_limb_feistel_is_a_bijection(radices):
    grid = np.stack(np.meshgrid(*[np.arange(r) for r in radices], indexing="ij"), -1).reshape(-1, len(radices))
    limbs = [grid[:, j].astype(np.uint64) for j in range(len(radices))]
    out = np.stack(_feistel(limbs, radices, key=99), -1).astype(np.int64)
    assert all((out[:, j] < r).all() for j, r in enumerate(radices))
    assert np.unique(out, axis=0).shape[0] == math.prod(radices)


@settings(max_examples=40, deadline=None)
@given(small_configs(L=st.integers(1, 2), s=st.just(2), s0=st.integers(0, 2)))
def test_splits_partition_an_enumerated_small_space(cfg):
    P = cfg.data_space_size
    if P > 50_000:
        return
    full = dataclasses.replace(cfg, n_test=P // 5, n_probe=P // 7, n_train=P - P // 5 - P // 7)
    batches = [generate(full, split) for split in ("test", "probe", "train")]
    label = np.concatenate([b["label"] for b in batches])
    nodes = [np.concatenate([b[c] for b in batches]).astype(np.int64) for c in ("synonyms", "placements")]
    digits = np.column_stack([label, np.stack(nodes, -1).reshape(len(label), -1)])  # label, r0, q0, r1, ...
    assert sorted(digits_to_index(full, digits)) == list(range(P))  # every sample exactly once


def test_whole_feistel_space_is_enumerated_once():
    # P_max = 3 * (2*4)**7 > TABLE_MAX: the cycle-walking Feistel path, enumerated.
    cfg = SRHMConfig(L=3, s=2, s0=1, v=3, nc=3, m=2)
    P = cfg.data_space_size
    assert TABLE_MAX < P < 10**7
    digits = permuted_digits(cfg, np.arange(P))
    radices = np.array(layout(cfg).digit_radices, dtype=np.int64)
    index = np.zeros(P, dtype=np.int64)
    for j, r in enumerate(radices):
        index = index * r + digits[:, j]
    assert np.array_equal(np.sort(index), np.arange(P))


@pytest.mark.parametrize(
    "cfg",
    [
        SRHMConfig(L=4, s=2, s0=1, v=16, nc=16, m=16),  # 2**94, two limbs
        SRHMConfig(L=3, s=3, s0=2, v=10, nc=10, m=100, sparsity="B"),  # ~2**155, three limbs
    ],
)
def test_large_spaces_have_no_duplicates_within_or_across_splits(cfg):
    assert cfg.data_space_size > 2**64 and len(layout(cfg).radices) >= 2
    keys = np.concatenate(
        [
            sample_keys(generate(cfg, "test", 0, 20000)),
            sample_keys(generate(cfg, "probe")),
            sample_keys(generate(cfg, "train", 0, 60000)),
        ]
    )
    assert np.unique(keys, axis=0).shape[0] == keys.shape[0]


def test_layout_limbs_are_balanced_and_bounded():
    cfg = SRHMConfig(L=4, s=2, s0=1, v=16, nc=16, m=16)
    radices = layout(cfg).radices
    assert math.prod(radices) == cfg.data_space_size
    assert all(r < 2**60 for r in radices)
    assert max(radices).bit_length() - min(radices).bit_length() <= 8


def chi_square_ok(values: np.ndarray, k: int) -> bool:
    """Uniformity on k categories: the statistic below mean + 6 sd of chi2(k-1)."""
    counts = np.bincount(values.ravel(), minlength=k)
    expected = values.size / k
    stat = ((counts - expected) ** 2 / expected).sum()
    return stat < (k - 1) + 6 * math.sqrt(2 * (k - 1))


@pytest.mark.parametrize(
    "cfg, P",
    [
        (SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, seed=1), 50_000),  # one-limb Feistel
        (SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, sparsity="B"), 5_000),  # explicit table
        (SRHMConfig(L=4, s=2, s0=1, v=16, nc=16, m=16), 50_000),  # multi-limb
    ],
)
def test_prefixes_of_train_are_uniform(cfg, P):
    batch = generate(cfg, "train", 0, P)
    assert chi_square_ok(batch["label"], cfg.nc)
    for k in range(cfg.L):
        nodes = cfg.depth_nodes(k)
        assert chi_square_ok(batch["synonyms"][:, nodes.start : nodes.stop].astype(np.int64), cfg.m), k
        assert chi_square_ok(
            batch["placements"][:, nodes.start : nodes.stop].astype(np.int64), cfg.placements_per_node
        ), k
    # pairs of digits are independent too (label x root placement)
    joint = batch["label"] * cfg.placements_per_node + batch["placements"][:, 0]
    assert chi_square_ok(joint, cfg.nc * cfg.placements_per_node)


def test_chi_square_check_can_fail():
    skewed = np.concatenate([np.zeros(600, dtype=np.int64), np.arange(400) % 10])
    assert not chi_square_ok(skewed, 10)


@pytest.mark.parametrize(
    "cfg",
    [SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, seed=1), SRHMConfig(L=4, s=2, s0=1, v=16, nc=16, m=16)],
)
def test_consecutive_rows_are_independent(cfg):
    # Consecutive global indices differ only in their low limb; after the Feistel rounds
    # the labels (and root placements) of rows i and i+1 must look independent.
    batch = generate(cfg, "train", 0, 40_000)
    label, root_q = batch["label"], batch["placements"][:, 0].astype(np.int64)
    assert chi_square_ok(label[:-1] * cfg.nc + label[1:], cfg.nc**2)
    K = cfg.placements_per_node
    assert chi_square_ok(root_q[:-1] * K + root_q[1:], K * K)
