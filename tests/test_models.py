"""The reference networks: shapes, layer names and hooks, mean-field scaling, weight sharing."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig
from srhm_datasets.baselines import build_model, count_parameters
from srhm_datasets.protocol import HIERARCHICAL_ARCHS as ARCHS
from srhm_datasets.protocol import num_parameters
from srhm_datasets.torch import encode

from .strategies import small_configs

torch.set_num_threads(1)

CONFIGS = [
    SRHMConfig(L=2, s=2, s0=0, v=4, nc=4, m=4),
    SRHMConfig(L=2, s=2, s0=1, v=4, nc=3, m=2),
    SRHMConfig(L=2, s=3, s0=2, v=3, nc=2, m=3),
    SRHMConfig(L=3, s=2, s0=1, v=3, nc=3, m=3),
    SRHMConfig(L=2, s=2, s0=3, v=5, nc=5, m=5),
    SRHMConfig(L=2, s=2, s0=4, v=3, nc=2, m=2, sparsity="B"),
    SRHMConfig(L=3, s=3, s0=0, v=3, nc=3, m=3),
]


def _random_input(cfg, B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.v + 1, (B, cfg.d), generator=g)  # includes blanks (= v)
    return encode(tokens, cfg.v, "whiten")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_shapes_and_layer_hooks(arch, cfg):
    model = build_model(arch, cfg, width=16, seed=0)
    assert model.hidden_layer_names() == [f"layer{k}" for k in range(1, cfg.L + 1)]
    assert model.layer_names() == model.hidden_layer_names() + ["output"]
    seen = {}
    for name in model.layer_names():
        model.get_submodule(name).register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, out))
    x = _random_input(cfg, B=3)
    assert x.shape == (3, cfg.v, cfg.d)
    y = model(x)
    assert y.shape == (3, cfg.nc)
    assert torch.equal(seen["output"], y)
    for k in range(1, cfg.L + 1):
        h = seen[f"layer{k}"]
        expected = (3, 16) if arch == "fcn" else (3, 16, cfg.d // cfg.S**k)
        assert tuple(h.shape) == expected
        assert (h >= 0).all()  # post-ReLU


def test_wrong_input_shape_is_rejected():
    cfg = CONFIGS[1]
    model = build_model("cnn", cfg, width=8)
    with pytest.raises(ValueError, match="expected"):
        model(torch.zeros(2, cfg.v + 1, cfg.d))


def test_bad_arguments_name_parameter():
    with pytest.raises(ValueError, match="arch='resnet'"):
        build_model("resnet", CONFIGS[0])
    with pytest.raises(ValueError, match="width=0"):
        build_model("cnn", CONFIGS[0], width=0)


def test_init_is_a_function_of_seed():
    cfg = CONFIGS[1]
    a, b, c = (build_model("lcn", cfg, width=8, seed=s) for s in (1, 1, 2))
    x = _random_input(cfg)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), c(x))


def test_weight_sharing_cnn_vs_lcn():
    cfg = CONFIGS[1]  # d = 16, S = 4: layer1 has 4 patches
    cnn, lcn = build_model("cnn", cfg, width=8), build_model("lcn", cfg, width=8)
    assert cnn.layer1.weight.shape == (8, cfg.v, cfg.S)
    assert lcn.layer1.weight.shape == (cfg.d // cfg.S, 8, cfg.v, cfg.S)
    # CNN: equivariant to permuting patches (same filter everywhere), so the readout mean is invariant
    x = _random_input(cfg, B=2)
    perm = x.reshape(2, cfg.v, cfg.d // cfg.S, cfg.S)[:, :, [1, 0, 2, 3]].reshape(2, cfg.v, cfg.d)
    h, hp = cnn.layer1(x), cnn.layer1(perm)
    assert torch.allclose(hp[:, :, [1, 0, 2, 3]], h, atol=1e-6)
    assert not torch.allclose(lcn.layer1(perm)[:, :, [1, 0, 2, 3]], lcn.layer1(x), atol=1e-3)
    assert count_parameters(lcn) > count_parameters(cnn)


def test_cnn_matches_a_strided_convolution():
    cfg = CONFIGS[3]
    model = build_model("cnn", cfg, width=8, norm="fan_in")
    x = _random_input(cfg, B=2)
    w = model.layer1.weight
    ref = torch.relu(torch.nn.functional.conv1d(x, w, stride=cfg.S) / math.sqrt(cfg.v * cfg.S))
    assert torch.allclose(model.layer1(x), ref, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_mean_field_output_shrinks_with_width(arch):
    """Readout = mean_h(beta_h f_h)/H with O(1) features: the output std at init is
    O(H**-1/2) (the 1/H prefactor times sqrt(H) independent terms), i.e. it vanishes
    with the width, unlike the standard 1/sqrt(H) readout whose output stays O(1)."""
    cfg = CONFIGS[1]
    x = _random_input(cfg, B=64, seed=1)

    def output_std(width):
        outs = [build_model(arch, cfg, width=width, seed=s)(x) for s in range(24)]
        return torch.stack(outs).std().item()

    small, large = output_std(64), output_std(1024)
    exponent = math.log(large / small) / math.log(1024 / 64)
    assert -0.65 < exponent < -0.35, exponent  # ~ width**-1/2
    model = build_model(arch, cfg, width=64)
    features = model.get_submodule("layer2")
    h = []
    features.register_forward_hook(lambda m, i, o: h.append(o))
    model(x)
    assert 0.05 < h[0].pow(2).mean().sqrt().item() < 5  # hidden features stay O(1)


@settings(max_examples=25, deadline=None)
@given(
    cfg=small_configs(L=st.integers(1, 2), s=st.integers(2, 3), s0=st.integers(0, 1)),
    arch=st.sampled_from(ARCHS),
    width=st.integers(1, 6),
    bias=st.booleans(),
)
def test_num_parameters_is_the_models_count(cfg, arch, width, bias):
    assert num_parameters(arch, cfg, width, bias) == count_parameters(build_model(arch, cfg, width, bias=bias))
