"""Synonym exchange and diffeomorphism (format.md §6)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig, generate, perturb
from srhm_datasets.catalog import get_config
from srhm_datasets.generate import expand
from srhm_datasets.perturb import perturb_indices

from .golden import PERTURBATION_HASH, perturbation_hash
from .strategies import small_configs


def draw_case(cfg, data):
    """A level to perturb and up to 50 test rows of the config (rejects empty splits)."""
    level = data.draw(st.integers(1, cfg.L))
    n = min(50, cfg.split_sizes()["test"])
    assume(n > 0)
    return level, generate(cfg, "test", 0, n)


@settings(max_examples=40, deadline=None)
@given(small_configs(m=st.integers(2, 4)), st.data())
def test_synonym_exchange_keeps_blanks_and_label_and_changes_every_tuple(cfg, data):
    level, batch = draw_case(cfg, data)
    k = cfg.L - level
    tokens = perturb(cfg, batch, "synonym", level)
    assert np.array_equal(tokens == cfg.blank, batch["tokens"] == cfg.blank)  # placements kept
    synonyms, placements = perturb_indices(cfg, batch, "synonym", level)
    assert np.array_equal(placements, batch["placements"])
    latents, again = expand(cfg, batch["label"], synonyms, placements)
    assert np.array_equal(again, tokens) and np.array_equal(latents[:, 0], batch["label"])
    nodes = cfg.depth_nodes(k)
    assert (synonyms[:, nodes.start : nodes.stop] != batch["synonyms"][:, nodes.start : nodes.stop]).all()
    assert np.array_equal(synonyms[:, : nodes.start], batch["synonyms"][:, : nodes.start])  # above: kept
    # every tuple produced at depth k differs (the rules are unambiguous)
    kids_old = _children(cfg, batch["latents"], batch["tokens"], k)
    kids_new = _children(cfg, latents, tokens, k)
    assert (kids_old != kids_new).any(axis=-1).all()


def _children(cfg, latents, tokens, k):
    """Child symbols [n, s**k, s] of the depth-k nodes (latents below, informative tokens at the leaves)."""
    if k < cfg.L - 1:
        below = cfg.depth_nodes(k + 1)
        values = np.asarray(latents)[:, below.start : below.stop]
    else:
        values = np.asarray(tokens)[np.asarray(tokens) != cfg.blank].reshape(len(tokens), -1)
    return values.reshape(len(values), cfg.s**k, cfg.s)


@settings(max_examples=40, deadline=None)
@given(small_configs(s0=st.integers(1, 3)), st.data())
def test_diffeo_keeps_the_informative_sequence_and_moves_it(cfg, data):
    level, batch = draw_case(cfg, data)
    tokens = perturb(cfg, batch, "diffeo", level)
    n = len(tokens)
    before = batch["tokens"][batch["tokens"] != cfg.blank].reshape(n, -1)
    after = tokens[tokens != cfg.blank].reshape(n, -1)
    assert np.array_equal(before, after)  # same symbols in the same order
    assert ((tokens == cfg.blank) != (batch["tokens"] == cfg.blank)).any(axis=1).all()  # every row moved
    synonyms, placements = perturb_indices(cfg, batch, "diffeo", level)
    assert np.array_equal(synonyms, batch["synonyms"])
    nodes = cfg.depth_nodes(cfg.L - level)
    assert (placements[:, nodes.start : nodes.stop] != batch["placements"][:, nodes.start : nodes.stop]).all()


def test_perturbation_is_a_function_of_the_sample_not_the_batch():
    cfg = SRHMConfig(L=3, s=2, s0=1, v=8, nc=4, m=4, seed=5)
    batch = generate(cfg, "probe", 0, 200)
    whole = perturb(cfg, batch, "synonym", 2)
    part = perturb(cfg, {c: v[50:80] for c, v in batch.items()}, "synonym", 2)
    assert np.array_equal(whole[50:80], part)
    assert np.array_equal(whole, perturb(cfg, batch, "synonym", 2))
    assert not np.array_equal(whole, perturb(cfg, batch, "synonym", 2, key=1))
    assert not np.array_equal(whole, perturb(SRHMConfig(**{**cfg.parameters(), "seed": 6}), batch, "synonym", 2))


def test_plain_redraw_sometimes_keeps_the_old_index():
    cfg = SRHMConfig(L=2, s=2, s0=2, v=4, nc=4, m=2)
    batch = generate(cfg, "train", 0, 4000)
    synonyms, _ = perturb_indices(cfg, batch, "synonym", 2, force=False)
    same = (synonyms[:, 0] == batch["synonyms"][:, 0]).mean()
    assert 0.45 < same < 0.55  # uniform redraw over m = 2 values


def test_forced_change_that_cannot_happen_is_an_error():
    single = SRHMConfig(L=2, s=2, s0=1, v=4, nc=2, m=1)
    with pytest.raises(ValueError, match="m=1"):
        perturb_indices(single, generate(single, "test", 0, 2), "synonym", 1)
    cfg = SRHMConfig(L=2, s=2, s0=0, v=4, nc=2, m=2)
    with pytest.raises(ValueError, match="placements_per_node=1"):
        perturb(cfg, generate(cfg, "test", 0, 2), "diffeo", 1)
    with pytest.raises(ValueError, match="level=3"):
        perturb(cfg, generate(cfg, "test", 0, 2), "synonym", 3)
    with pytest.raises(ValueError, match="kind='rotate'"):
        perturb(cfg, generate(cfg, "test", 0, 2), "rotate", 1)


def test_golden_perturbation_hash():
    assert perturbation_hash(perturb) == PERTURBATION_HASH


@pytest.mark.parametrize("kind", ["synonym", "diffeo"])
def test_perturb_and_expand_of_zero_rows_give_zero_rows(kind):
    DEMO = get_config("demo")
    empty = generate(DEMO, "test", 0, 0)
    assert perturb(DEMO, empty, kind, 1).shape == (0, DEMO.d)
    latents, tokens = expand(DEMO, empty["label"], empty["synonyms"], empty["placements"])
    assert latents.shape == (0, DEMO.num_nodes) and tokens.shape == (0, DEMO.d)
