"""Exact inference (format.md §16) against brute-force enumeration of the whole data space.

Every sample of a small config is built by ``generate.expand`` from its digit vector;
the posterior of anything is the weighted count of the samples, each weighted by the
likelihood of the evidence given its tokens (1 or 0 without noise).
"""

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig, generate, inference
from srhm_datasets.inference import (
    bayes_optimal,
    channel,
    covariance,
    figure_sums,
    lca_level,
    leaf_likelihood,
    next_token_predictive,
    pair_marginals,
    posteriors,
)
from srhm_datasets.tasks import mask_id, unobserved_id
from tests.enumeration import CONFIGS, space
from tests.strategies import small_configs

TOL = 1e-10
MAX_SPACE = 1 << 16  # data spaces enumerated by the hypothesis tests


def weights(cfg: SRHMConfig, evidence: np.ndarray, noise: float) -> np.ndarray:
    """P(evidence row | sample) for every sample: [B, P]."""
    table, tokens = channel(cfg.v, noise), space(cfg)["tokens"].astype(np.int64)
    out = np.ones((evidence.shape[0], tokens.shape[0]))
    for p in range(cfg.d):
        out *= table[evidence[:, p][:, None], tokens[None, :, p]]
    return out


def counts(w: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """sum_n w[b, n] [values[n] == x] / sum_n w[b, n]: [B, size]."""
    onehot = np.zeros((values.shape[0], size))
    onehot[np.arange(values.shape[0]), values] = 1.0
    return (w @ onehot) / w.sum(1, keepdims=True)


def random_evidence(cfg: SRHMConfig, rng, n: int, noise: float) -> np.ndarray:
    """Evidence of random samples: each position observed, masked (if informative) or unobserved; tokens noised."""
    tokens = space(cfg)["tokens"][rng.integers(0, cfg.data_space_size, n)].astype(np.int64)
    kind = rng.integers(0, 4, tokens.shape)  # 0, 1 observed, 2 masked, 3 unobserved
    evidence = tokens.copy()
    informative = tokens != cfg.v
    flip = informative & (kind < 2) & (rng.random(tokens.shape) < noise)
    evidence[flip] = (tokens[flip] + rng.integers(1, cfg.v, flip.sum())) % cfg.v
    evidence[(kind == 2) & informative] = mask_id(cfg.v)
    evidence[kind == 3] = unobserved_id(cfg.v)
    return evidence


def check_against_enumeration(cfg: SRHMConfig, evidence: np.ndarray, noise: float) -> None:
    sample = space(cfg)
    w = weights(cfg, evidence, noise)
    post = posteriors(cfg, evidence, noise, nodes=True)
    np.testing.assert_allclose(post.label, counts(w, sample["label"], cfg.nc), rtol=0, atol=TOL)
    top = max(cfg.nc, cfg.v)
    for h in range(cfg.num_nodes):
        np.testing.assert_allclose(post.latents[:, h], counts(w, sample["latents"][:, h], top), rtol=0, atol=TOL)
    for p in range(cfg.d):
        expected = counts(w, sample["tokens"][:, p].astype(np.int64), cfg.v + 1)
        np.testing.assert_allclose(post.tokens[:, p], expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(post.log_likelihood, np.log(w.sum(1) / cfg.data_space_size), rtol=1e-10)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_posteriors_equal_enumeration(cfg, noise):
    evidence = random_evidence(cfg, np.random.default_rng(cfg.seed), 4, noise)
    check_against_enumeration(cfg, evidence, noise)


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cfg=small_configs(), noise=st.sampled_from([0.0, 0.05, 0.5]), seed=st.integers(0, 2**32 - 1))
def test_posteriors_equal_enumeration_property(cfg, noise, seed):
    if cfg.data_space_size > MAX_SPACE or cfg.d > 64:
        return
    check_against_enumeration(cfg, random_evidence(cfg, np.random.default_rng(seed), 2, noise), noise)


SMALL = [cfg for cfg in CONFIGS if cfg.data_space_size * cfg.d <= 1 << 16]


def check_next_and_pairs(cfg: SRHMConfig, evidence: np.ndarray, noise: float, position: int) -> None:
    sample = space(cfg)
    tokens = sample["tokens"].astype(np.int64)
    predictive = next_token_predictive(cfg, evidence, noise)
    for i in range(cfg.d):
        prefix = evidence.copy()
        prefix[:, i:] = unobserved_id(cfg.v)
        expected = counts(weights(cfg, prefix, noise), tokens[:, i], cfg.v + 1)
        np.testing.assert_allclose(predictive[:, i], expected, rtol=0, atol=TOL)
    joint = pair_marginals(cfg, evidence, position, noise)
    w = weights(cfg, evidence, noise)
    for j in range(cfg.d):
        pairs = counts(w, tokens[:, position] * (cfg.v + 1) + tokens[:, j], (cfg.v + 1) ** 2)
        np.testing.assert_allclose(joint[:, j].reshape(len(w), -1), pairs, rtol=0, atol=TOL)


@pytest.mark.parametrize("cfg", SMALL, ids=lambda c: c.name)
def test_next_token_and_pair_marginals_equal_enumeration(cfg):
    rng = np.random.default_rng(cfg.seed + 100)
    check_next_and_pairs(cfg, random_evidence(cfg, rng, 3, 0.1), 0.1, int(rng.integers(cfg.d)))
    check_next_and_pairs(cfg, random_evidence(cfg, rng, 2, 0.0), 0.0, int(rng.integers(cfg.d)))


@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cfg=small_configs(), noise=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 2**32 - 1))
def test_next_token_and_pair_marginals_property(cfg, noise, seed):
    if cfg.data_space_size * cfg.d > 1 << 15:
        return
    rng = np.random.default_rng(seed)
    check_next_and_pairs(cfg, random_evidence(cfg, rng, 2, noise), noise, int(rng.integers(cfg.d)))


def test_prior_covariance_is_zero_across_blocks_only_through_the_root():
    """Positions in different blocks of depth 1 are correlated only through the root: covariance != 0 exactly
    where the enumeration says so, and the LCA level is that of the block tree."""
    cfg = CONFIGS[6]
    nothing = np.full((1, cfg.d), unobserved_id(cfg.v))
    cov = covariance(pair_marginals(cfg, nothing, 0)[0])
    tokens = space(cfg)["tokens"].astype(np.int64)
    for j in range(cfg.d):
        joint = np.zeros((cfg.v + 1, cfg.v + 1))
        np.add.at(joint, (tokens[:, 0], tokens[:, j]), 1.0 / len(tokens))
        np.testing.assert_allclose(cov[j], covariance(joint), rtol=0, atol=TOL)
    assert lca_level(cfg, 0, np.arange(1, cfg.d)).tolist() == [1] * 3 + [2] * 12


def test_impossible_evidence_is_nan_with_log_likelihood_minus_inf():
    cfg = CONFIGS[6]
    evidence = np.full((1, cfg.d), cfg.v)  # all blank: no sample
    post = posteriors(cfg, evidence, nodes=True)
    assert post.log_likelihood[0] == -np.inf
    assert np.isnan(post.label).all() and np.isnan(post.tokens).all()


def test_leaf_likelihood_codes():
    cfg = CONFIGS[5]  # v = 3
    lik = leaf_likelihood(cfg, [[0, 3, 4, 5] + [5] * (cfg.d - 4)], 0.3)[0]
    np.testing.assert_allclose(lik[0], [0.7, 0.15, 0.15, 0.0])  # observed token through the channel
    np.testing.assert_allclose(lik[1], [0, 0, 0, 1])  # observed blank, exact
    np.testing.assert_allclose(lik[2], [1, 1, 1, 0])  # MASK: informative
    np.testing.assert_allclose(lik[3], [1, 1, 1, 1])  # UNOBSERVED


@pytest.mark.parametrize(
    "evidence, noise, name",
    [
        (np.zeros((1, 3), np.int64), 0.0, "evidence.shape"),
        (np.full((1, 16), 7), 0.0, "max(evidence)"),
        (np.full((1, 16), -1), 0.0, "min(evidence)"),
        (np.zeros((1, 16)), 0.0, "evidence.dtype"),
        (np.zeros((1, 16), np.int64), 1.0, "noise"),
        (np.zeros((1, 16), np.int64), -0.1, "noise"),
        (np.zeros((1, 16), np.int64), True, "noise"),
    ],
)
def test_bad_input_is_refused_naming_it(evidence, noise, name):
    with pytest.raises(ValueError, match=re.escape(f"invalid parameter {name}=")):
        posteriors(CONFIGS[6], evidence, noise)


def test_max_bytes_chunks_without_changing_results():
    cfg = CONFIGS[11]
    evidence = random_evidence(cfg, np.random.default_rng(0), 7, 0.1)
    whole = posteriors(cfg, evidence, 0.1, nodes=True)
    small = posteriors(cfg, evidence, 0.1, nodes=True, max_bytes=200_000)
    for a, b in zip(whole.__dict__.values(), small.__dict__.values()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="invalid parameter max_bytes="):
        posteriors(cfg, evidence, max_bytes=10)


LIMIT_CONFIGS = [
    SRHMConfig(L=3, s=2, s0=0, v=4, nc=4, m=4, seed=1),
    SRHMConfig(L=2, s=3, s0=1, v=3, nc=3, m=2, seed=2),
    SRHMConfig(L=2, s=2, s0=2, v=6, nc=6, m=6, sparsity="B", seed=2),
    SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, seed=1),
]


@pytest.mark.parametrize("cfg", LIMIT_CONFIGS, ids=lambda c: c.name)
def test_all_tokens_seen_class_posterior_one_hot_and_bayes_error_zero(cfg):
    rows = generate(cfg, "test", 0, 100)
    post = posteriors(cfg, rows["tokens"])
    np.testing.assert_array_equal(post.label, np.eye(cfg.nc)[rows["label"]])
    figures = bayes_optimal(cfg, rows["tokens"], rows["label"])
    assert figures["rows"] == figures["scored"] == 100
    assert figures["expected_error"] == figures["empirical_error"] == figures["expected_cross_entropy"] == 0.0


def last_evidence(cfg: SRHMConfig, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last informative position j masked, the rest as seen (later positions: observed blanks)."""
    tokens = tokens.astype(np.int64)
    j = cfg.d - 1 - np.argmax(tokens[:, ::-1] != cfg.v, axis=1)
    evidence = tokens.copy()
    evidence[np.arange(len(j)), j] = mask_id(cfg.v)
    return evidence, np.arange(cfg.d)[None, :] == j[:, None]


@pytest.mark.parametrize("cfg", [c for c in LIMIT_CONFIGS if c.s == 2], ids=lambda c: c.name)
def test_last_token_bayes_error_is_positive_with_synonyms(cfg):
    """m > 1 with every tuple of the table in use (v = m, s = 2): the last token stays ambiguous.

    Not a law of every rule draw: with v = 3, s = 3, m = 2 (6 of 27 tuples used) the other
    children of a node identify its production, and the error is 0.
    """
    rows = generate(cfg, "test", 0, 200)
    evidence, scored = last_evidence(cfg, rows["tokens"])
    figures = bayes_optimal(cfg, evidence, rows["tokens"].astype(np.int64), scored)
    assert cfg.m > 1 and figures["scored"] == 200
    assert figures["expected_error"] > 0.0 and figures["expected_cross_entropy"] > 0.0
    assert figures["empirical_cross_entropy"] < np.inf


def test_last_token_can_be_determined_when_few_tuples_are_used():
    cfg = LIMIT_CONFIGS[1]
    rows = generate(cfg, "test", 0, 200)
    evidence, scored = last_evidence(cfg, rows["tokens"])
    assert bayes_optimal(cfg, evidence, rows["tokens"].astype(np.int64), scored)["expected_error"] < 1e-12


@pytest.mark.parametrize("cfg", LIMIT_CONFIGS, ids=lambda c: c.name)
def test_noise_at_one_minus_one_over_v_leaves_the_prior(cfg):
    rows = generate(cfg, "test", 0, 50)
    post = posteriors(cfg, rows["tokens"], 1.0 - 1.0 / cfg.v)
    np.testing.assert_allclose(post.label, 1.0 / cfg.nc, rtol=0, atol=1e-12)
    assert posteriors(cfg, rows["tokens"], 0.5 - 0.5 / cfg.v).label.max(1).mean() > 1.0 / cfg.nc + 1e-3


def test_figures_are_the_definitions():
    probabilities = np.array([[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]])
    truth = np.array([1, 1])
    sums = figure_sums(probabilities, truth)
    assert sums["scored"] == 2
    assert sums["expected_error"] == 0.5 and sums["empirical_error"] == 1.0
    np.testing.assert_allclose(sums["expected_cross_entropy"], -(0.5 * np.log(0.5) + 0.5 * np.log(0.25)))
    np.testing.assert_allclose(sums["empirical_cross_entropy"], np.log(4.0))


@pytest.mark.parametrize("cfg", [CONFIGS[4], CONFIGS[11], CONFIGS[13]], ids=lambda c: c.name)
def test_indexing_path_of_large_vocabularies_equals_enumeration(cfg, monkeypatch):
    """Rule tables too large for one-hot products gather and scatter by indexing: same posteriors."""
    monkeypatch.setattr(inference, "ONEHOT_MAX_V", 0)
    inference._rule_tables.cache_clear()
    try:
        assert all(table.onehot is None for table in inference._rule_tables(cfg))
        rng = np.random.default_rng(7)
        check_against_enumeration(cfg, random_evidence(cfg, rng, 3, 0.1), 0.1)
        if cfg.data_space_size * cfg.d <= 1 << 16:
            check_next_and_pairs(cfg, random_evidence(cfg, rng, 2, 0.1), 0.1, 3)
    finally:
        inference._rule_tables.cache_clear()


def test_class_alone_takes_the_upward_pass_and_agrees():
    cfg = CONFIGS[11]
    evidence = random_evidence(cfg, np.random.default_rng(3), 5, 0.2)
    full, alone = posteriors(cfg, evidence, 0.2), posteriors(cfg, evidence, 0.2, leaves=False)
    assert alone.tokens is None and alone.latents is None
    np.testing.assert_allclose(alone.label, full.label, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(alone.log_likelihood, full.log_likelihood)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"truth": np.zeros(3, np.int64)}, "truth.shape"),
        ({"truth": np.zeros(2)}, "truth.dtype"),
        ({"truth": np.full(2, 5)}, "truth"),
        ({"truth": np.zeros((2, 16), np.int64), "scored": np.ones((2, 15), bool)}, "scored"),
        ({"truth": np.zeros((2, 15), np.int64), "scored": np.ones((2, 16), bool)}, "truth.shape"),
    ],
)
def test_bayes_optimal_refuses_bad_targets(kwargs, name):
    cfg = CONFIGS[6]  # d = 16, nc = 2
    evidence = np.full((2, cfg.d), unobserved_id(cfg.v))
    with pytest.raises(ValueError, match=re.escape(f"invalid parameter {name}=")):
        bayes_optimal(cfg, evidence, **kwargs)


def test_pair_marginals_refuse_a_position_outside_the_row():
    cfg = CONFIGS[6]
    with pytest.raises(ValueError, match="invalid parameter position="):
        pair_marginals(cfg, np.full((1, cfg.d), unobserved_id(cfg.v)), cfg.d)


def test_no_underflow_where_the_evidence_probability_is_below_the_smallest_double():
    """L = 5, d = 59049, P_max ~ 2**1139: P(evidence) = 1/P_max underflows float64; the log-scales keep it.

    Every tuple is in use (m = v**(s-1)), so the tokens are uniform given the blanks and
    log P(evidence) = -log P_max exactly, with or without noise (the channel is doubly stochastic).
    """
    cfg = SRHMConfig(L=5, s=3, s0=2, v=5, nc=5, m=25)
    assert cfg.data_space_size.bit_length() > 1074
    rows = generate(cfg, "test", 0, 2)
    exact = posteriors(cfg, rows["tokens"], nodes=True)
    np.testing.assert_allclose(exact.log_likelihood, -math.log(cfg.data_space_size), rtol=1e-12)
    np.testing.assert_array_equal(exact.label, np.eye(cfg.nc)[rows["label"]])
    np.testing.assert_array_equal(exact.latents.argmax(-1), rows["latents"])
    np.testing.assert_allclose(exact.tokens.sum(-1), 1.0, rtol=0, atol=1e-12)
    noisy = posteriors(cfg, rows["tokens"], 0.3)
    np.testing.assert_allclose(noisy.log_likelihood, -math.log(cfg.data_space_size), rtol=1e-12)
    assert np.isfinite(noisy.label).all() and np.isfinite(noisy.tokens).all()
