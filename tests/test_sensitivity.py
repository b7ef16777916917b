"""Sensitivities S_{k,l}, D_{k,l} (paper section 3) on any module."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srhm_datasets import SRHMConfig, generate, perturb
from srhm_datasets.baselines.models import build_model
from srhm_datasets.catalog import get_config
from srhm_datasets.evaluation.oracle import RulesParser
from srhm_datasets.evaluation.probes import generator_probe
from srhm_datasets.evaluation.sensitivity import (
    PairwiseMoments,
    compute_sensitivities,
    pairwise_mean_sq_distance,
)
from srhm_datasets.torch import encode

DEMO = get_config("demo")  # L=2, s=2, s0=1, v=nc=m=4: d=16, 400 probe points
DEEP_B = SRHMConfig(L=3, s=2, s0=1, v=4, nc=3, m=3, sparsity="B", seed=5)
NO_SYNONYMS = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=1)  # m = 1
NO_PLACEMENTS = SRHMConfig(L=2, s=2, s0=0, v=4, nc=4, m=4)  # K = 1


def whiten_np(tokens: np.ndarray, v: int) -> np.ndarray:
    """[n, d] -> [n, v, d] float64, format.md §7's whitening, written independently of encode()."""
    x = np.full(tokens.shape[:1] + (v,) + tokens.shape[1:], -1.0 / math.sqrt(v - 1))
    n_idx, d_idx = np.nonzero(tokens < v)
    x[n_idx, tokens[n_idx, d_idx], d_idx] = 1.0
    return x


def direct_ratio(f: np.ndarray, g: np.ndarray) -> float:
    """mean_i ||f_i - g_i||^2 / mean_{i,j} ||f_i - f_j||^2 with the full n x n matrix."""
    f = f.reshape(len(f), -1)
    g = g.reshape(len(g), -1)
    num = ((f - g) ** 2).sum(1).mean()
    den = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1).mean()
    return num / den


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_moments_denominator_equals_direct_pairs(offset):
    g = torch.Generator().manual_seed(0)
    f = torch.randn(300, 17, generator=g, dtype=torch.float64) * 0.5 + offset
    full = ((f[:, None] - f[None]) ** 2).sum(-1).mean().item()  # all 300^2 ordered pairs, i = j included
    moments = PairwiseMoments()
    for a in range(0, 300, 37):  # uneven blocks
        moments.update(f[a : a + 37])
    assert moments.n == 300
    assert moments.value() == pytest.approx(full, rel=1e-9)
    assert pairwise_mean_sq_distance(f, chunk=64) == pytest.approx(full, rel=1e-12)
    assert not moments.degenerate()


def test_moments_degenerate_for_identical_rows():
    moments = PairwiseMoments()
    moments.update(torch.full((10, 4), 3.7))
    moments.update(torch.full((5, 4), 3.7))
    assert moments.value() == pytest.approx(0.0, abs=1e-9)
    assert moments.degenerate()


@pytest.mark.parametrize("cfg", [DEMO, DEEP_B], ids=["demo", "L3_sparsityB"])
def test_rules_oracle_is_invariant_at_output(cfg):
    probe = generator_probe(cfg)
    model = RulesParser(cfg)
    x = torch.as_tensor(probe.tokens)
    assert (model(encode(x, cfg.v, "whiten")).argmax(1).numpy() == probe.label).all()
    table = compute_sensitivities(model, probe.tokens, probe.perturbed(), cfg.v, device="cpu")
    assert table.layers == model.hidden_layer_names() + ["output"]
    for kind in ("synonym", "diffeo"):
        assert table.values[kind]["output"] == [0.0] * cfg.L
        # the depth-(L-1-j) symbol string ignores perturbations at levels <= j+1, not above
        for j, layer in enumerate(model.hidden_layer_names()):
            vals = table.values[kind][layer]
            assert vals[: j + 1] == [0.0] * (j + 1)
            assert all(val > 0.05 for val in vals[j + 1 :]), (kind, layer, vals)
    assert table.denominators["output"] > 0


def test_identity_on_encoded_input_matches_numpy():
    cfg = DEMO
    probe = generator_probe(cfg, num_points=120)
    table = compute_sensitivities(
        torch.nn.Identity(),
        probe.tokens,
        probe.perturbed(),
        cfg.v,
        layers=["input", "output"],
        batch_size=50,
        device="cpu",
    )
    x = whiten_np(probe.tokens.astype(np.int64), cfg.v)
    for kind, copies in (("synonym", probe.synonym), ("diffeo", probe.diffeo)):
        for level in range(1, cfg.L + 1):
            expected = direct_ratio(x, whiten_np(copies[:, level - 1].astype(np.int64), cfg.v))
            assert expected > 0.1
            for layer in ("input", "output"):
                assert table.values[kind][layer][level - 1] == pytest.approx(expected, rel=1e-6), (kind, level, layer)


def test_probe_copies_are_the_forced_key0_perturbations():
    cfg = DEMO
    probe = generator_probe(cfg, num_points=50)
    batch = generate(cfg, "probe", 0, 50)
    for level in range(1, cfg.L + 1):
        np.testing.assert_array_equal(
            probe.synonym[:, level - 1], perturb(cfg, batch, "synonym", level, force=True, key=0)
        )
        np.testing.assert_array_equal(
            probe.diffeo[:, level - 1], perturb(cfg, batch, "diffeo", level, force=True, key=0)
        )
        assert (probe.diffeo[:, level - 1] != probe.tokens).any(axis=1).all()  # the change is forced


def test_random_init_cnn_finite_and_positive():
    cfg = DEMO
    probe = generator_probe(cfg, num_points=200)
    for arch in ("cnn", "lcn", "fcn"):
        model = build_model(arch, cfg, width=32, seed=1)
        table = compute_sensitivities(model, probe.tokens, probe.perturbed(), cfg.v, device="cpu")
        assert table.layers == model.hidden_layer_names() + ["output"]
        for kind in ("synonym", "diffeo"):
            for layer in table.layers:
                vals = table.values[kind][layer]
                assert len(vals) == cfg.L
                assert all(val is not None and math.isfinite(val) and val > 0 for val in vals), (
                    arch,
                    kind,
                    layer,
                    vals,
                )


def test_batch_size_does_not_change_values():
    cfg = DEMO
    probe = generator_probe(cfg, num_points=90)
    model = build_model("cnn", cfg, width=16, seed=0)
    small = compute_sensitivities(model, probe.tokens, probe.perturbed(), cfg.v, batch_size=7, device="cpu")
    large = compute_sensitivities(model, probe.tokens, probe.perturbed(), cfg.v, batch_size=10_000, device="cpu")
    for kind in ("synonym", "diffeo"):
        for layer in small.layers:
            np.testing.assert_allclose(small.values[kind][layer], large.values[kind][layer], rtol=1e-5)


@pytest.mark.parametrize(
    "cfg,undefined_kind", [(NO_SYNONYMS, "synonym"), (NO_PLACEMENTS, "diffeo")], ids=["m=1", "K=1"]
)
def test_undefined_kind_gives_none(cfg, undefined_kind):
    probe = generator_probe(cfg)
    assert getattr(probe, undefined_kind) is None
    table = compute_sensitivities(
        torch.nn.Identity(), probe.tokens, probe.perturbed(), cfg.v, layers=["output"], device="cpu"
    )
    assert table.undefined == {"synonym": undefined_kind == "synonym", "diffeo": undefined_kind == "diffeo"}
    assert table.values[undefined_kind]["output"] == [None] * cfg.L
    other = "diffeo" if undefined_kind == "synonym" else "synonym"
    assert all(val > 0 for val in table.values[other]["output"])


def test_constant_layer_is_none_not_a_number():
    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.zero = torch.nn.Identity()

        def forward(self, x):
            return self.zero(x * 0.0) + 1.0

    probe = generator_probe(DEMO, num_points=20)
    table = compute_sensitivities(
        Constant(), probe.tokens, probe.perturbed(), DEMO.v, layers=["zero", "output"], device="cpu"
    )
    assert table.values["synonym"]["zero"] == [None, None]
    assert table.values["diffeo"]["output"] == [None, None]


def test_unknown_layer_is_named_in_error():
    probe = generator_probe(DEMO, num_points=10)
    with pytest.raises(ValueError, match="layers=\\['nope'\\]"):
        compute_sensitivities(
            torch.nn.Identity(), probe.tokens, probe.perturbed(), DEMO.v, layers=["nope"], device="cpu"
        )


def test_model_mode_is_restored():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5))
    model.train()
    probe = generator_probe(DEMO, num_points=10)
    table = compute_sensitivities(model, probe.tokens, probe.perturbed(), DEMO.v, layers=["output"], device="cpu")
    assert model.training
    # dropout off during the measurement: identical to the identity map
    ident = compute_sensitivities(
        torch.nn.Identity(), probe.tokens, probe.perturbed(), DEMO.v, layers=["output"], device="cpu"
    )
    assert table.values["synonym"]["output"] == pytest.approx(ident.values["synonym"]["output"], rel=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu():
    probe = generator_probe(DEMO)
    model = build_model("cnn", DEMO, width=64, seed=3)
    cpu = compute_sensitivities(model, probe.tokens, probe.perturbed(), DEMO.v, device="cpu")
    gpu = compute_sensitivities(model, probe.tokens, probe.perturbed(), DEMO.v, device="cuda")
    for kind in ("synonym", "diffeo"):
        for layer in cpu.layers:
            np.testing.assert_allclose(gpu.values[kind][layer], cpu.values[kind][layer], rtol=1e-4)


def test_hooks_copy_activations_before_in_place_ops():
    """Conv1d -> ReLU(inplace=True): the conv layer's recorded output is its own, not the ReLU'd tensor."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(DEMO.v, 6, kernel_size=2, stride=2), torch.nn.ReLU(inplace=True))
    probe = generator_probe(DEMO, num_points=40)
    table = compute_sensitivities(model, probe.tokens, probe.perturbed(), DEMO.v, layers=["0", "1"], device="cpu")
    x = encode(torch.as_tensor(probe.tokens), DEMO.v)
    with torch.no_grad():
        conv = model[0](x)
    assert (conv < 0).any()  # the ReLU changes it
    for kind in ("synonym", "diffeo"):
        assert table.values[kind]["0"] != pytest.approx(table.values[kind]["1"], rel=1e-3), kind
    # and the conv layer's value is that of the conv output itself
    f = conv.reshape(len(conv), -1).double()
    with torch.no_grad():
        g = model[0](encode(torch.as_tensor(probe.synonym[:, 0]), DEMO.v)).reshape(len(conv), -1).double()
    expected = ((f - g) ** 2).sum(1).mean() / pairwise_mean_sq_distance(f)
    assert table.values["synonym"]["0"][0] == pytest.approx(float(expected), rel=1e-6)


def test_input_layer_is_copied_before_the_model_runs():
    class ClearFirstHalf(torch.nn.Module):  # rewrites its input in place
        def forward(self, x):
            x[..., : x.shape[-1] // 2] = 0.0
            return x

    model = ClearFirstHalf()
    probe = generator_probe(DEMO, num_points=30)
    table = compute_sensitivities(
        model, probe.tokens, probe.perturbed(), DEMO.v, layers=["input", "output"], device="cpu"
    )
    ident = compute_sensitivities(
        torch.nn.Identity(), probe.tokens, probe.perturbed(), DEMO.v, layers=["input"], device="cpu"
    )
    assert table.values["synonym"]["input"] == pytest.approx(ident.values["synonym"]["input"], rel=1e-9)
    assert table.values["synonym"]["input"] != pytest.approx(table.values["synonym"]["output"], rel=1e-3)


def test_one_device_autodetection_for_training_and_evaluation(monkeypatch):
    """cuda, then mps, then cpu, from one function (srhm_datasets.torch.default_device) everywhere."""
    from srhm_datasets import torch as srhm_torch
    from srhm_datasets.baselines import train
    from srhm_datasets.evaluation import measure, sensitivity

    assert not hasattr(train, "autodetect_device")
    assert sensitivity.default_device is srhm_torch.default_device  # imported, not a second definition
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert srhm_torch.default_device() == torch.device("mps")
    assert train.check_device(None) == "mps"  # what srhm train and srhm evaluate use when --device is not given
    assert measure.check_device is train.check_device
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert train.check_device(None) == "cpu"
    with pytest.raises(ValueError, match="device='mps'.*MPS is not available"):
        train.check_device("mps")


class _RowCounter(torch.nn.Module):
    """Identity on the encoded input that records the rows of every forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []

    def forward(self, x):
        self.rows.append(len(x))
        return x.flatten(1)


@pytest.mark.parametrize("encoding", ["whiten", "tokens"])
def test_forward_passes_are_bounded_in_bytes(monkeypatch, encoding):
    """A forward pass holds at most FORWARD_BYTES of encoded input whatever batch_size asks,
    and the values do not depend on the bound."""
    from srhm_datasets import protocol

    probe = generator_probe(DEEP_B, 200)
    model = _RowCounter()
    whole = compute_sensitivities(model, probe.tokens, probe.perturbed(), DEEP_B.v, ["output"], encoding, 10**6, "cpu")
    assert max(model.rows) > 1000  # one pass: the bound did not bite
    per_row = 8 * DEEP_B.d if encoding == "tokens" else 4 * DEEP_B.v * DEEP_B.d
    monkeypatch.setattr(protocol, "FORWARD_BYTES", 100 * per_row)
    model.rows.clear()
    small = compute_sensitivities(model, probe.tokens, probe.perturbed(), DEEP_B.v, ["output"], encoding, 10**6, "cpu")
    assert 0 < max(model.rows) <= 100
    for kind in ("synonym", "diffeo"):
        np.testing.assert_allclose(small.values[kind]["output"], whole.values[kind]["output"], rtol=1e-9)


def test_test_error_passes_are_bounded_in_bytes(monkeypatch):
    """``evaluate_model`` measures the test error in forward passes of at most FORWARD_BYTES of input too."""
    from srhm_datasets import protocol
    from srhm_datasets.evaluation.measure import evaluate_model

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[int] = []
            self.head = torch.nn.Linear(DEEP_B.v * DEEP_B.d, DEEP_B.nc)

        def forward(self, x):
            self.rows.append(len(x))
            return self.head(x.flatten(1))

    monkeypatch.setattr(protocol, "FORWARD_BYTES", 50 * 4 * DEEP_B.v * DEEP_B.d)
    model = Logits()
    evaluate_model(model, DEEP_B, layers=["output"], num_test=300, num_probe=20, batch_size=10**6, device="cpu")
    assert 0 < max(model.rows) <= 50
