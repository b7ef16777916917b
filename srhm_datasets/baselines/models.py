"""The paper's reference networks: CNN, LCN and FCN in the mean-field parametrisation.

Every model maps an encoded input ``x`` of shape ``[B, v, d]`` (channels first, format.md §7)
to logits ``[B, nc]``. Hidden layers are named ``layer1 .. layerL`` and the readout
``output``; each is a submodule, so a forward hook on ``model.get_submodule(name)``
receives:

- ``layerK`` (CNN, LCN): the post-ReLU activation ``[B, H, d / S**K]``;
- ``layerK`` (FCN): the post-ReLU activation ``[B, H]``;
- ``output``: the logits ``[B, nc]``.

Mean-field parametrisation (Tomasini & Wyart 2024; reference_code.md 1.2, 2.3):

- every weight is drawn from N(0, 1);
- every pre-activation is divided by ``sqrt(fan_in)``: ``C_in * S`` for a filter of
  ``S = s*(s0+1)`` positions over ``C_in`` channels (``norm="fan_in"``, default), or
  ``C_in`` alone as in the authors' code (``norm="channels"``);
- the readout is the spatial mean followed by a linear map divided by the width H
  (not by sqrt(H)), so the output at initialisation is O(H**-1/2) and vanishes as H
  grows: features must move for the network to fit;
- the learning rate is multiplied by H by the training loop (``train.py``), not here.

CNN: L non-overlapping convolutions, filter = stride = S, weights shared across patches.
LCN: the same without weight sharing (one filter per patch position).
FCN: L fully connected hidden layers on the flattened ``[v*d]`` input.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ParameterTypeError, SRHMConfig, check_config, require, require_choice, require_int
from ..protocol import HIERARCHICAL_ARCHS, NORMS


def _randn(shape, generator: torch.Generator) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape, generator=generator))


class PatchConv(nn.Module):
    """Non-overlapping 1-d convolution, filter = stride = ``patch``, optionally unshared.

    x: [B, C_in, n*patch] -> ReLU(W * x / sqrt(fan_in) + 0.1 b): [B, C_out, n], fan_in = C_in * patch
    (``norm="fan_in"``) or C_in (``norm="channels"``).
    Shared (CNN): W [C_out, C_in, patch]. Unshared (LCN): W [n, C_out, C_in, patch].
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        patch: int,
        n_out: int,
        shared: bool,
        norm: str,
        bias: bool,
        generator: torch.Generator,
    ):
        super().__init__()
        self.patch, self.n_out, self.shared = patch, n_out, shared
        self.scale = 1.0 / math.sqrt(c_in * patch if norm == "fan_in" else c_in)
        shape = (c_out, c_in, patch) if shared else (n_out, c_out, c_in, patch)
        self.weight = _randn(shape, generator)
        if bias:  # the authors' convention: N(0,1) parameter times 0.1
            self.bias = _randn((c_out, 1) if shared else (c_out, n_out), generator)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, _ = x.shape
        patches = x.reshape(B, C, self.n_out, self.patch)  # [B, C_in, n, patch]
        if self.shared:  # a GEMM (conv1d's CPU backward is ~4x slower for these shapes)
            patches = patches.permute(0, 2, 1, 3).reshape(B, self.n_out, C * self.patch)  # [B, n, C_in*patch]
            z = (patches @ self.weight.reshape(self.weight.shape[0], -1).t()).transpose(1, 2)  # [B, C_out, n]
        else:
            z = torch.einsum("bcnp,nocp->bon", patches, self.weight)  # [B, C_out, n]
        z = z * self.scale
        if self.bias is not None:
            z = z + 0.1 * self.bias
        return torch.relu(z)


class Dense(nn.Module):
    """Fully connected layer: x [B, n_in] -> ReLU(W x / sqrt(n_in) + 0.1 b) [B, n_out]."""

    def __init__(self, n_in: int, n_out: int, bias: bool, generator: torch.Generator):
        super().__init__()
        self.scale = 1.0 / math.sqrt(n_in)
        self.weight = _randn((n_out, n_in), generator)
        if bias:
            self.bias = _randn((n_out,), generator)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = nn.functional.linear(x, self.weight) * self.scale
        if self.bias is not None:
            z = z + 0.1 * self.bias
        return torch.relu(z)


class MeanFieldReadout(nn.Module):
    """Spatial mean, then a linear map divided by the width.

    h: [B, H, n] or [B, H] -> logits [B, nc] = mean_n(h) @ beta / H, beta ~ N(0,1) [H, nc].
    """

    def __init__(self, width: int, nc: int, generator: torch.Generator):
        super().__init__()
        self.width = width
        self.beta = _randn((width, nc), generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() == 3:
            h = h.mean(dim=-1)
        return h @ self.beta / self.width


class HierarchicalNet(nn.Module):
    """L named hidden layers (``layer1 .. layerL``) and a mean-field readout (``output``).

    Input x: [B, v, d] float; output: logits [B, nc].
    """

    def __init__(
        self, arch: str, cfg: SRHMConfig, width: int = 512, seed: int = 0, norm: str = "fan_in", bias: bool = False
    ):
        super().__init__()
        check_config(cfg)
        require_choice("arch", arch, HIERARCHICAL_ARCHS)
        require_choice("norm", norm, NORMS)
        width = require_int("width", width, 1)
        seed = require_int("seed", seed, 0, 2**63 - 1)
        require(isinstance(bias, bool), "bias", bias, "True or False", ParameterTypeError)
        self.arch, self.width, self.depth, self.norm = arch, width, cfg.L, norm
        self.v, self.d, self.nc, self.S = cfg.v, cfg.d, cfg.nc, cfg.S
        g = torch.Generator().manual_seed(int(seed))
        for k in range(1, cfg.L + 1):
            c_in = cfg.v if k == 1 else width
            if arch == "fcn":
                layer = Dense(cfg.v * cfg.d if k == 1 else width, width, bias, g)
            else:
                n_out = cfg.d // cfg.S**k
                layer = PatchConv(c_in, width, cfg.S, n_out, arch == "cnn", norm, bias, g)
            self.add_module(f"layer{k}", layer)
        self.output = MeanFieldReadout(width, cfg.nc, g)

    def hidden_layer_names(self) -> list[str]:
        """``["layer1", ..., "layerL"]``: modules whose output is a post-ReLU activation."""
        return [f"layer{k}" for k in range(1, self.depth + 1)]

    def layer_names(self) -> list[str]:
        """Hidden layer names followed by ``"output"`` (the logits)."""
        return self.hidden_layer_names() + ["output"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, v, d] -> logits [B, nc]."""
        if x.dim() != 3 or x.shape[1] != self.v or x.shape[2] != self.d:
            raise ValueError(f"invalid input shape {tuple(x.shape)}: expected [B, v={self.v}, d={self.d}]")
        h = x.flatten(1) if self.arch == "fcn" else x
        for name in self.hidden_layer_names():
            h = getattr(self, name)(h)
        return self.output(h)


def build_model(
    arch: str, cfg: SRHMConfig, width: int = 512, seed: int = 0, norm: str = "fan_in", bias: bool = False
) -> HierarchicalNet:
    """The reference network ``arch`` ('cnn', 'lcn', 'fcn') for ``cfg``.

    The initialisation is a pure function of ``seed`` (its own torch.Generator), on CPU;
    move the model with ``.to(device)``.
    """
    return HierarchicalNet(arch, cfg, width=width, seed=seed, norm=norm, bias=bias)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
