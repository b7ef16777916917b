"""Exact inference (format.md §17) against brute-force enumeration of the whole data space.

Every sample of a small config is built by ``generate.expand`` from its digit vector;
the posterior of anything is the weighted count of the samples, each weighted by the
likelihood of the evidence given its tokens (1 or 0 without noise).
"""

import re
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig
from srhm_datasets.generate import expand
from srhm_datasets.inference import (
    channel,
    leaf_likelihood,
    mask_id,
    posteriors,
    unobserved_id,
)
from tests.strategies import small_configs

TOL = 1e-10
MAX_SPACE = 1 << 16  # data spaces enumerated by the hypothesis tests

CONFIGS = [
    SRHMConfig(L=1, s=2, s0=0, v=3, nc=2, m=2),
    SRHMConfig(L=2, s=2, s0=0, v=3, nc=3, m=2, seed=1),
    SRHMConfig(L=3, s=2, s0=0, v=2, nc=2, m=2, seed=2),
    SRHMConfig(L=2, s=3, s0=0, v=2, nc=2, m=2, seed=3),
    SRHMConfig(L=3, s=3, s0=0, v=2, nc=2, m=2, seed=4),
    SRHMConfig(L=1, s=2, s0=1, v=3, nc=2, m=2, seed=5),
    SRHMConfig(L=2, s=2, s0=1, v=2, nc=2, m=2, seed=6),
    SRHMConfig(L=2, s=2, s0=2, v=3, nc=3, m=1, seed=7),
    SRHMConfig(L=3, s=2, s0=1, v=2, nc=2, m=1, seed=8),
    SRHMConfig(L=2, s=3, s0=1, v=2, nc=2, m=1, seed=9),
    SRHMConfig(L=1, s=2, s0=1, v=3, nc=2, m=2, sparsity="B", seed=10),
    SRHMConfig(L=2, s=2, s0=1, v=2, nc=2, m=2, sparsity="B", seed=11),
    SRHMConfig(L=2, s=2, s0=2, v=3, nc=2, m=1, sparsity="B", seed=12),
    SRHMConfig(L=2, s=3, s0=1, v=2, nc=2, m=1, sparsity="B", seed=13),
    SRHMConfig(L=3, s=2, s0=1, v=2, nc=2, m=1, sparsity="B", seed=14),
]


@lru_cache(maxsize=32)
def space(cfg: SRHMConfig) -> dict:
    """Every sample of the data space once: label [P], latents [P, N], tokens [P, d]."""
    P, N, K = cfg.data_space_size, cfg.num_nodes, cfg.placements_per_node
    index = np.arange(P, dtype=np.int64)
    label = index % cfg.nc
    rest = index // cfg.nc
    synonyms, placements = np.empty((P, N), np.int64), np.empty((P, N), np.int64)
    for h in range(N):
        synonyms[:, h], rest = rest % cfg.m, rest // cfg.m
        placements[:, h], rest = rest % K, rest // K
    latents, tokens = expand(cfg, label, synonyms, placements, dtype=np.uint8)
    return {"label": label, "latents": latents, "tokens": tokens}


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
