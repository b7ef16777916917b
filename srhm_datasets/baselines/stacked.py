"""Stacked reference networks: G independent CNNs, LCNs or FCNs evaluated as one model.

A :class:`StackedNet` holds the parameters of G networks of the same architecture, config
and width with a leading group dimension G, under the same names as the single network
(``layer1.weight`` ... ``output.beta``): member g's slice ``p[g]`` of every parameter is
that member's parameter. The forward pass maps inputs ``[G, B, v, d]`` (member g's batch in
row g) to logits ``[G, B, nc]`` with batched matrix products (``bmm`` / batched ``einsum``),
computing for every member exactly the function of ``models.HierarchicalNet`` (same
mean-field scales, same 0.1 bias factor, same layer order): no operation mixes members,
so the gradient of a sum of per-member losses with respect to slice g is member g's own
gradient.

Initialisation: :func:`build_stacked` builds the G single networks with their own seeds
(``models.build_model``) and stacks their parameters, so member g starts exactly where a
single run with seed ``seeds[g]`` starts. :meth:`StackedNet.member_state` returns member g
as a single network's ``state_dict`` (the checkpoint format of ``srhm train``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import SRHMConfig, require
from .models import Dense, HierarchicalNet, MeanFieldReadout, PatchConv, build_model


def _stack(layers: list[nn.Module], name: str) -> nn.Parameter | None:
    """The parameter ``name`` of every layer stacked along a new leading dim (None when absent)."""
    tensors = [getattr(layer, name) for layer in layers]
    if tensors[0] is None:
        return None
    return nn.Parameter(torch.stack([t.detach() for t in tensors]))


class _Stacked(nn.Module):
    """Common part of the stacked layers: parameters with a leading member dim, and selection."""

    def __init__(self, layers: list[nn.Module], names: tuple[str, ...]):
        super().__init__()
        self._names = names
        for name in names:
            param = _stack(layers, name)
            if param is None:
                self.register_parameter(name, None)
            else:
                setattr(self, name, param)

    def select_(self, rows: torch.Tensor) -> None:
        """Keep only the members ``rows`` (index tensor into the member dim), in that order."""
        for name in self._names:
            param = getattr(self, name)
            if param is not None:
                setattr(self, name, nn.Parameter(param.detach().index_select(0, rows.to(param.device))))


class StackedPatchConv(_Stacked):
    """G non-overlapping convolutions (``models.PatchConv``), filter = stride = ``patch``.

    x: [G, B, C_in, n*patch] -> ReLU(W_g * x_g / sqrt(fan_in) + 0.1 b_g): [G, B, C_out, n].
    Shared (CNN): weight [G, C_out, C_in, patch], bias [G, C_out, 1].
    Unshared (LCN): weight [G, n, C_out, C_in, patch], bias [G, C_out, n].
    """

    def __init__(self, layers: list[PatchConv]):
        super().__init__(layers, ("weight", "bias"))
        first = layers[0]
        self.patch, self.n_out, self.shared, self.scale = first.patch, first.n_out, first.shared, first.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G, B, C, _ = x.shape
        patches = x.reshape(G, B, C, self.n_out, self.patch)  # [G, B, C_in, n, patch]
        if self.shared:  # W [G, C_out, C_in*patch] @ patches^T: the weight gradient comes out in W's layout
            rows = patches.permute(0, 1, 3, 2, 4).reshape(G, B * self.n_out, C * self.patch)  # [G, B*n, C_in*patch]
            w = self.weight.reshape(G, self.weight.shape[1], -1)
            z = torch.bmm(w, rows.transpose(1, 2)) * self.scale  # [G, C_out, B*n]
            if self.bias is not None:
                z = z + 0.1 * self.bias
            return torch.relu(z).reshape(G, -1, B, self.n_out).transpose(1, 2)  # [G, B, C_out, n]
        z = torch.einsum("gbcnp,gnocp->gbon", patches, self.weight) * self.scale  # [G, B, C_out, n]
        if self.bias is not None:
            z = z + 0.1 * self.bias.unsqueeze(1)
        return torch.relu(z)


class StackedDense(_Stacked):
    """G fully connected layers (``models.Dense``): x [G, B, n_in] -> [G, B, n_out]; weight [G, n_out, n_in]."""

    def __init__(self, layers: list[Dense]):
        super().__init__(layers, ("weight", "bias"))
        self.scale = layers[0].scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.bmm(self.weight, x.transpose(1, 2)) * self.scale  # [G, n_out, B]
        if self.bias is not None:
            z = z + 0.1 * self.bias.unsqueeze(-1)
        return torch.relu(z).transpose(1, 2)


class StackedReadout(_Stacked):
    """G mean-field readouts (``models.MeanFieldReadout``): h [G, B, H, n] or [G, B, H] -> [G, B, nc]."""

    def __init__(self, layers: list[MeanFieldReadout]):
        super().__init__(layers, ("beta",))
        self.width = layers[0].width

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() == 4:
            h = h.mean(dim=-1)
        return torch.bmm(h, self.beta) / self.width


_STACKED = {PatchConv: StackedPatchConv, Dense: StackedDense, MeanFieldReadout: StackedReadout}


class StackedNet(nn.Module):
    """G networks of one architecture, config and width, trained as one model.

    Input x: [G, B, v, d] float (member g's inputs in row g); output: logits [G, B, nc].
    Parameters carry the single network's names with a leading dim of size ``size``.
    """

    def __init__(self, models: list[HierarchicalNet]):
        super().__init__()
        require(len(models) >= 1, "models", len(models), ">= 1 network to stack")
        first = models[0]
        same = all(
            (m.arch, m.width, m.depth, m.norm, m.v, m.d, m.nc, m.S)
            == (first.arch, first.width, first.depth, first.norm, first.v, first.d, first.nc, first.S)
            for m in models
        )
        require(same, "models", [m.arch for m in models], "networks of one arch, config, width and norm")
        self.arch, self.width, self.depth, self.v, self.d, self.nc = (
            first.arch,
            first.width,
            first.depth,
            first.v,
            first.d,
            first.nc,
        )
        self._layer_names = first.layer_names()
        for name in self._layer_names:
            layers = [m.get_submodule(name) for m in models]
            self.add_module(name, _STACKED[type(layers[0])](layers))

    @property
    def size(self) -> int:
        """The number of members G."""
        return self.output.beta.shape[0]

    def layer_names(self) -> list[str]:
        """Hidden layer names followed by ``"output"`` (as ``HierarchicalNet.layer_names``)."""
        return list(self._layer_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [G, B, v, d] -> logits [G, B, nc]."""
        if x.dim() != 4 or x.shape[0] != self.size or x.shape[2] != self.v or x.shape[3] != self.d:
            raise ValueError(
                f"invalid input shape {tuple(x.shape)}: expected [G={self.size}, B, v={self.v}, d={self.d}]"
            )
        h = x.flatten(2) if self.arch == "fcn" else x
        for name in self._layer_names:
            h = getattr(self, name)(h)
        return h

    def member_state(self, g: int) -> dict[str, torch.Tensor]:
        """Member ``g`` as a single network's ``state_dict`` (CPU copies; loads into ``build_model``)."""
        require(0 <= g < self.size, "g", g, f"0 <= g < {self.size} members")
        return {k: v[g].detach().to("cpu", copy=True) for k, v in self.state_dict().items()}

    def member(self, g: int) -> MemberView:
        """Member ``g`` seen as a single network by code that reads one (``parameters``, ``state_dict``,
        ``layer_names``)."""
        require(0 <= g < self.size, "g", g, f"0 <= g < {self.size} members")
        return MemberView(self, g)

    def select_(self, rows: torch.Tensor) -> StackedNet:
        """Keep only the members ``rows`` (int64 indices), in that order; returns self."""
        for name in self._layer_names:
            getattr(self, name).select_(rows)
        return self


class MemberView:
    """Member ``g`` of a :class:`StackedNet`, read like a single ``HierarchicalNet``: ``parameters()``
    (the member's slices, views of the stack), ``state_dict()`` (CPU copies, ``member_state``),
    ``layer_names()``. For ``count_parameters``, ``train.evaluation_point`` and ``train.run_results``."""

    def __init__(self, stack: StackedNet, g: int):
        self.stack, self.g = stack, g

    def parameters(self):
        return (p[self.g] for p in self.stack.parameters())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.stack.member_state(self.g)

    def layer_names(self) -> list[str]:
        return self.stack.layer_names()


def build_stacked(
    arch: str, cfg: SRHMConfig, seeds: list[int], width: int = 512, norm: str = "fan_in", bias: bool = False
) -> StackedNet:
    """G = len(seeds) networks ``build_model(arch, cfg, width, seed, norm, bias)``, stacked.

    Member g's initial parameters equal those of ``build_model(..., seed=seeds[g])``
    exactly (the single networks are built, then their parameters stacked). On CPU.
    """
    return StackedNet([build_model(arch, cfg, width=width, seed=s, norm=norm, bias=bias) for s in seeds])
