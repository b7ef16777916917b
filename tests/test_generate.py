"""Rows of a split (format.md §2-§5): structure re-derived by an independent parser, chunking
invariance, golden content hashes."""

import importlib
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig, generate, sample_rules
from srhm_datasets.hashing import content_hash, rules_hash

from .golden import GOLDEN
from .strategies import small_configs


def parse(cfg: SRHMConfig, rules, tokens) -> tuple[int, list, list, list]:
    """Bottom-up parse of one token string, written from format.md §2-§4 alone.

    Returns (label, latents, synonyms, placements) in heap order; asserts on any
    structure the grammar cannot produce.
    """
    parent_of = [
        {tuple(rules[k][a][r]): (a, r) for a in range(len(rules[k])) for r in range(cfg.m)} for k in range(cfg.L)
    ]
    subsets = list(itertools.combinations(range(cfg.S), cfg.s))
    level = [None if t == cfg.blank else int(t) for t in tokens]  # symbols (None = blank)
    per_depth = {}
    for k in range(cfg.L - 1, -1, -1):
        up, nodes = [], []
        for j in range(0, len(level), cfg.S):
            patch = level[j : j + cfg.S]
            slots = tuple(i for i, x in enumerate(patch) if x is not None)
            if not slots:
                up.append(None)
                continue
            assert len(slots) == cfg.s, f"patch {patch} has {len(slots)} informative slots"
            if cfg.sparsity == "A":
                offsets = [slot - i * (cfg.s0 + 1) for i, slot in enumerate(slots)]
                assert all(0 <= o <= cfg.s0 for o in offsets), f"slots {slots} break sparsity A"
                q = sum(o * (cfg.s0 + 1) ** (cfg.s - 1 - i) for i, o in enumerate(offsets))
            else:
                q = subsets.index(slots)
            a, r = parent_of[k][tuple(patch[i] for i in slots)]
            up.append(a)
            nodes.append((a, r, q))
        per_depth[k] = nodes
        level = up
    assert len(level) == 1 and level[0] is not None
    heap = [node for k in range(cfg.L) for node in per_depth[k]]
    return level[0], [n[0] for n in heap], [n[1] for n in heap], [n[2] for n in heap]


@settings(max_examples=60, deadline=None)
@given(small_configs(), st.sampled_from(["train", "test", "probe"]), st.integers(0, 10))
def test_rows_parse_back_to_their_label_and_indices(cfg, split, start):
    size = cfg.split_sizes()[split]
    start = min(start, size)
    batch = generate(cfg, split, start, min(size, start + 8))
    rules = [t.tolist() for t in sample_rules(cfg)]
    n = len(batch["label"])
    assert batch["tokens"].shape == (n, cfg.d) and batch["latents"].shape == (n, cfg.num_nodes)
    assert ((batch["tokens"] != cfg.blank).sum(axis=1) == cfg.s**cfg.L).all()
    assert (batch["tokens"] <= cfg.v).all() and (batch["label"] < cfg.nc).all()
    assert (batch["synonyms"] < cfg.m).all() and (batch["placements"] < cfg.placements_per_node).all()
    assert np.array_equal(batch["latents"][:, 0], batch["label"])
    for i in range(n):
        label, latents, synonyms, placements = parse(cfg, rules, batch["tokens"][i])
        assert label == batch["label"][i]
        assert latents == batch["latents"][i].tolist()
        assert synonyms == batch["synonyms"][i].tolist()
        assert placements == batch["placements"][i].tolist()


@given(small_configs())
def test_rules_are_unambiguous_and_in_range(cfg):
    rules = sample_rules(cfg)
    assert len(rules) == cfg.L
    for k, table in enumerate(rules):
        assert table.shape == ((cfg.nc if k == 0 else cfg.v), cfg.m, cfg.s)
        assert table.min() >= 0 and table.max() < cfg.v
        flat = table.reshape(-1, cfg.s)
        assert np.unique(flat, axis=0).shape[0] == flat.shape[0]  # every tuple has one parent
    assert rules_hash(rules) == rules_hash([t.tolist() for t in sample_rules(cfg)])


def test_rules_depend_on_the_seed_only_through_the_config():
    a = SRHMConfig(L=2, s=2, s0=1, v=8, nc=4, m=4, seed=1)
    b = SRHMConfig(L=2, s=2, s0=1, v=8, nc=4, m=4, seed=2)
    assert rules_hash(sample_rules(a)) != rules_hash(sample_rules(b))
    with pytest.raises(ValueError):
        sample_rules(a)[0][0, 0, 0] = 1  # read-only: a shared cache must not be corrupted


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=5), st.integers(1, 3))
def test_rows_do_not_depend_on_chunking_or_workers(cuts, workers):
    cfg = SRHMConfig(L=3, s=2, s0=1, v=6, nc=3, m=3, sparsity="B", seed=7)
    whole = generate(cfg, "train", 100, 100 + sum(cuts), workers=1)
    bounds = np.cumsum([100] + cuts)
    pieces = [generate(cfg, "train", a, b, workers=workers) for a, b in zip(bounds[:-1], bounds[1:])]
    for column, values in whole.items():
        assert np.array_equal(values, np.concatenate([p[column] for p in pieces]))


def test_threads_give_the_same_rows():
    cfg = SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, seed=1)
    one, many = generate(cfg, "train", 0, 100_000, workers=1), generate(cfg, "train", 0, 100_000, workers=4)
    assert all(np.array_equal(one[c], many[c]) for c in one)


def test_column_dtypes_follow_spec_4():
    small = generate(SRHMConfig(L=2, s=2, s0=1, v=8, nc=4, m=4), "test", 0, 3)
    assert small["tokens"].dtype == np.uint8 and small["synonyms"].dtype == np.uint8
    wide = generate(SRHMConfig(L=1, s=2, s0=0, v=300, nc=300, m=300), "test", 0, 3)
    assert wide["tokens"].dtype == np.uint16 and wide["latents"].dtype == np.uint16
    assert wide["synonyms"].dtype == np.uint16 and wide["placements"].dtype == np.uint8


def test_bad_ranges_are_clear_errors():
    cfg = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4)
    with pytest.raises(ValueError, match="split='val'"):
        generate(cfg, "val", 0, 1)
    with pytest.raises(ValueError, match="stop=99999"):
        generate(cfg, "test", 0, 99999)


@pytest.mark.parametrize("name, split, start, stop, expected", GOLDEN)
def test_golden_content_hashes(name, split, start, stop, expected):
    cfg = SRHMConfig.from_name(name)
    assert content_hash(generate(cfg, split, start, stop)) == expected


@pytest.mark.parametrize(
    "name",
    ["A_L2_s2_s0-2_v10_nc10_m10_seed1", "B_L3_s3_s0-2_v10_nc10_m100_seed3", "A_L1_s2_s0-0_v300_nc300_m300_seed0"],
)
def test_leaf_patch_table_and_leaf_scatter_agree(name, monkeypatch):
    module = importlib.import_module("srhm_datasets.generate")  # the package attribute is the function
    cfg = SRHMConfig.from_name(name)
    with_table = generate(cfg, "test", 0, 500)
    monkeypatch.setattr(module, "MAX_PATCH_TABLE", 0)
    module.leaf_patches.cache_clear()
    try:
        assert module.leaf_patches(cfg, np.dtype(np.uint8)) is None
        without = generate(cfg, "test", 0, 500)
    finally:
        module.leaf_patches.cache_clear()
    assert all(np.array_equal(with_table[c], without[c]) for c in with_table)
