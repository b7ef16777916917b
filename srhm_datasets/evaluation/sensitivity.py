"""Synonymic and diffeomorphism sensitivities of any ``torch.nn.Module`` (paper section 3).

For a layer k with activations f_k (flattened over channels x positions) and a level
l = 1..L::

    S_{k,l} = mean_i ||f_k(x_i) - f_k(p_l x_i)||^2  /  mean_{i,j} ||f_k(x_i) - f_k(x_j)||^2
    D_{k,l} = mean_i ||f_k(x_i) - f_k(t_l x_i)||^2  /  mean_{i,j} ||f_k(x_i) - f_k(x_j)||^2

with p_l the synonym exchange and t_l the diffeomorphism at level l (format.md §6), the
numerator over the n probe points and their perturbed copies, and the denominator over
**all n^2 ordered pairs** of unperturbed probe points, i = j included (the official
code's convention, ``reference_code.md`` sections 1.4 and 2.2).

The denominator is never built as an n x n matrix. It uses the identity

    mean_{i,j} ||f_i - f_j||^2 = 2 * (mean_i ||f_i - c||^2 - ||mean_i f_i - c||^2)

valid for any shift c; c is the mean of the first batch, which removes most of the
cancellation, and the sums are accumulated in float64 (float32 on MPS). Memory is
O(batch x features), time O(n x features). ``pairwise_mean_sq_distance`` computes the
same number directly (chunked ``cdist``) for checks.

Layers are chosen by module name (``dict(model.named_modules())``) and read with
forward hooks; ``"output"`` is the model's output and ``"input"`` the encoded input.
A hook stores a float32 copy of the module's output, not a reference to it, so an
in-place operation later in the forward pass (``ReLU(inplace=True)``, as in torchvision
models) cannot change what was recorded; the model gets a copy of the input when
``"input"`` is measured, for the same reason. The default device is
``srhm_datasets.torch.default_device()`` (cuda, then mps, then cpu), as for training.
A quantity that cannot be defined is ``None``, never a number: the whole synonym table
when m = 1, the whole diffeo table when K = 1 (no forced change exists), and a layer
whose activations are identical on every probe point (zero denominator). A non-finite
value (NaN activations of a diverged model) is also reported as ``None``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Self

import numpy as np
import torch

from ..baselines.factory import default_layers
from ..config import require_int
from ..protocol import forward_rows
from ..torch import default_device, encode
from .kinds import KINDS

#: Pseudo-layers that are not module names.
INPUT, OUTPUT = "input", "output"


def _acc_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def check_batch_size(batch_size) -> None:
    """TypeError unless ``batch_size`` (rows per forward pass) is an int, ValueError unless it is >= 1."""
    require_int("batch_size", batch_size, 1)


# ---- the denominator ---------------------------------------------------------------------


class PairwiseMoments:
    """Streaming mean squared distance over all ordered pairs of rows fed so far.

    ``update(f)`` with consecutive blocks f [B, F]; ``value()`` returns
    mean_{i,j} ||f_i - f_j||^2 (i = j included) over all rows, as a Python float, from
    O(F) state: 2 * (mean ||f - c||^2 - ||mean (f - c)||^2), c = mean of the first block.
    """

    def __init__(self) -> None:
        self.n = 0
        self._shift: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None  # sum_i (f_i - c)          [F]
        self._sq = 0.0  # sum_i ||f_i - c||^2 (float64 tensor after first update)
        self._scale = 0.0  # ||c||^2, the size of the rows, for the degeneracy test

    def update(self, f: torch.Tensor) -> None:
        """Add rows f [B, F] (any float dtype, any device)."""
        if f.ndim != 2:
            raise ValueError(f"invalid parameter f.shape={tuple(f.shape)}: expected [B, F]")
        acc = _acc_dtype(f.device)
        g = f.to(acc)
        if self._shift is None:
            self._shift = g.mean(dim=0)
            self._sum = torch.zeros_like(self._shift)
            self._sq = torch.zeros((), dtype=acc, device=f.device)
            self._scale = float((self._shift * self._shift).sum())
        elif g.shape[1] != self._shift.shape[0]:
            raise ValueError(f"invalid parameter f.shape={tuple(f.shape)}: expected [B, {self._shift.shape[0]}]")
        g = g - self._shift
        self._sum += g.sum(dim=0)
        self._sq += (g * g).sum()
        self.n += g.shape[0]

    def value(self) -> float:
        """mean over all n^2 ordered pairs of ||f_i - f_j||^2 (0.0 when n <= 1)."""
        if self.n == 0:
            raise ValueError("invalid state n=0: no rows were fed to PairwiseMoments")
        mean = self._sum / self.n
        out = 2.0 * (float(self._sq) / self.n - float((mean * mean).sum()))
        return max(out, 0.0)  # rounding can leave a tiny negative for identical rows

    def degenerate(self, rtol: float = 1e-10) -> bool:
        """True when all rows are equal up to rounding: value() <= rtol * mean ||f||^2."""
        spread = float(self._sq) / self.n if self.n else 0.0
        return self.value() <= rtol * (self._scale + spread)


def pairwise_mean_sq_distance(f: torch.Tensor | np.ndarray, chunk: int = 1024) -> float:
    """mean_{i,j} ||f_i - f_j||^2 over all ordered pairs of rows of f [n, F], directly.

    Chunked ``cdist`` in float64: O(chunk x n) memory, O(n^2 F) time. A check of
    ``PairwiseMoments``; use that on large n.
    """
    f = torch.as_tensor(f).reshape(len(f), -1).to(torch.float64)
    n = f.shape[0]
    total = torch.zeros((), dtype=torch.float64, device=f.device)
    for a in range(0, n, chunk):
        total += (torch.cdist(f[a : a + chunk], f, compute_mode="donot_use_mm_for_euclid_dist") ** 2).sum()
    return float(total) / (n * n)


# ---- activations -----------------------------------------------------------------------


class ActivationRecorder(contextlib.AbstractContextManager):
    """Forward hooks that keep the output of named modules, flattened to [B, F].

    ``with ActivationRecorder(model, ["layers.0.act", "output"]) as rec: out = model(x)``
    then ``rec.features(x, out)`` is a dict layer -> [B, F] tensor. ``"output"`` is the
    model's return value and ``"input"`` the tensor given to the model (cast to float).
    Unknown names raise ``ValueError`` listing the available ones.
    """

    def __init__(self, model: torch.nn.Module, layers: Sequence[str]) -> None:
        self.layers = list(layers)
        modules = dict(model.named_modules())
        hooked = [name for name in self.layers if name not in (INPUT, OUTPUT)]
        missing = [name for name in hooked if name not in modules]
        if missing:
            available = [n for n in modules if n] + [INPUT, OUTPUT]
            shown = ", ".join(available[:40]) + (" ..." if len(available) > 40 else "")
            raise ValueError(f"invalid parameter layers={missing!r}: no such module; available: {shown}")
        self._captured: dict[str, torch.Tensor] = {}
        self._modules = {name: modules[name] for name in hooked}
        self._handles: list = []

    def __enter__(self) -> Self:
        for name, module in self._modules.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module, args, output):
            # a copy (in the float32 that features() returns anyway, so no second copy
            # there): later in-place ops of the model would otherwise rewrite it
            self._captured[name] = _first_tensor(output, name).detach().to(torch.float32, copy=True)

        return hook

    def features(self, x: torch.Tensor, output) -> dict[str, torch.Tensor]:
        """Layer -> activations [B, F] of the last forward pass (x: the model's input)."""
        out = {}
        for name in self.layers:
            if name == INPUT:
                t = x
            elif name == OUTPUT:
                t = _first_tensor(output, OUTPUT)
            else:
                if name not in self._captured:
                    raise RuntimeError(f"layer {name!r} was not called during the forward pass")
                t = self._captured[name]
            out[name] = t.reshape(t.shape[0], -1).float()
        self._captured.clear()
        return out


def _first_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    raise TypeError(f"layer {name!r} returned {type(value).__name__}, expected a tensor (or a tuple starting with one)")


# ---- the sensitivities -----------------------------------------------------------------


@dataclasses.dataclass
class SensitivityTable:
    """S and D per layer and level.

    ``values[kind][layer]`` is a list of L floats (index l-1 = level l) or ``None``
    entries where undefined; ``undefined[kind]`` is True when the whole kind is
    undefined for the config. ``denominators[layer]`` is mean_{i,j} ||f_i - f_j||^2.
    """

    layers: list[str]
    L: int
    num_points: int
    values: dict[str, dict[str, list[float | None]]]
    undefined: dict[str, bool]
    denominators: dict[str, float]
    numerators: dict[str, dict[str, list[float | None]]]

    def to_json(self) -> dict:
        """``{"synonym": {layer: [...]}, "diffeo": {layer: [...]}}`` as in results files."""
        return {kind: {layer: list(vals) for layer, vals in self.values[kind].items()} for kind in KINDS}


def _finite(x: float) -> float | None:
    """x, or None for NaN/inf (a diverged model): results files hold no non-finite numbers."""
    return x if np.isfinite(x) else None


def as_tensor(a) -> torch.Tensor:
    """A tensor view of an array-like (copied when numpy marks it read-only, as Arrow-backed arrays are)."""
    if isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _as_tokens(a, name: str) -> torch.Tensor:
    t = as_tensor(a)
    if t.dtype.is_floating_point:
        raise ValueError(f"invalid parameter {name}.dtype={t.dtype}: expected integer tokens")
    return t


@torch.inference_mode()
def compute_sensitivities(
    model: torch.nn.Module,
    tokens,
    perturbed: dict,
    v: int,
    layers: Iterable[str] | None = None,
    encoding: str = "whiten",
    batch_size: int = 4096,
    device: torch.device | str | None = None,
    levels: int | None = None,
) -> SensitivityTable:
    """S_{k,l} and D_{k,l} of ``model`` on probe points.

    model: any nn.Module mapping encoded inputs [B, v, d] (or [B, d] ids for
        ``encoding="tokens"``) to an output; put in eval mode for the call, restored after.
    tokens: integer tokens [n, d] (numpy or torch) of the base probe points, blank = v.
    perturbed: ``{"synonym": [n, L, d] or None, "diffeo": [n, L, d] or None}`` integer
        tokens of the perturbed copies, index l-1 = level l; ``None`` (or a missing key)
        marks the kind undefined (m = 1 or K = 1) and gives ``None`` values.
    v: vocabulary size (the encoding's channel count). layers: module names, plus
        ``"output"``/``"input"``; default ``default_layers(model)``.
    batch_size: rows per forward pass (base points and their 2L copies together), at most:
        fewer when their encoded input would exceed ``FORWARD_BYTES`` (``forward_rows``).
    device: default ``default_device()``; the model is moved there.
    levels: L; needed only when both kinds are undefined (else read from the copies).
    Returns a ``SensitivityTable``.
    """
    device = torch.device(device) if device is not None else default_device()
    layers = list(layers) if layers is not None else default_layers(model)
    if not layers:
        raise ValueError("invalid parameter layers=[]: choose at least one layer")
    base = _as_tokens(tokens, "tokens")
    if base.ndim != 2:
        raise ValueError(f"invalid parameter tokens.shape={tuple(base.shape)}: expected [n, d]")
    n = base.shape[0]
    if n < 2:
        raise ValueError(f"invalid parameter n={n}: sensitivities need at least 2 probe points")
    copies, L = _perturbed_copies(perturbed, base.shape, levels)
    check_batch_size(batch_size)
    rows = forward_rows(batch_size, v, base.shape[1], encoding)
    chunk = max(1, rows // (1 + L * len(copies)))  # base points per forward: each brings its L copies per kind
    was_training = model.training
    model.eval()
    model.to(device)
    try:
        moments, num = _accumulate(model, base, copies, L, layers, v, encoding, chunk, device)
    finally:
        model.train(was_training)
    return _table(layers, L, n, moments, num)


def _perturbed_copies(perturbed: dict, shape: tuple, levels: int | None) -> tuple[dict[str, torch.Tensor], int]:
    """The defined kinds' copies [n, L, d] (checked against the base tokens' [n, d]) and L (from the copies,
    else ``levels``); ValueError naming what does not fit."""
    n, d = shape
    copies: dict[str, torch.Tensor] = {}
    L = None
    for kind in KINDS:
        p = perturbed.get(kind)
        if p is None:
            continue
        p = _as_tokens(p, kind)
        if p.ndim != 3 or p.shape[0] != n or p.shape[2] != d:
            raise ValueError(
                f"invalid parameter perturbed[{kind!r}].shape={tuple(p.shape)}: expected [n={n}, L, d={d}]"
            )
        if L is not None and p.shape[1] != L:
            raise ValueError(f"invalid parameter perturbed[{kind!r}].shape[1]={p.shape[1]}: expected L={L}")
        L = p.shape[1]
        copies[kind] = p
    if L is None:
        if levels is None:
            raise ValueError("invalid parameter levels=None: give levels=L when no perturbed copies are given")
        return copies, int(levels)
    if levels is not None and levels != L:
        raise ValueError(f"invalid parameter levels={levels}: the perturbed copies have L={L} levels")
    return copies, L


def _accumulate(
    model,
    base: torch.Tensor,
    copies: dict,
    L: int,
    layers: list[str],
    v: int,
    encoding: str,
    chunk: int,
    device: torch.device,
) -> tuple[dict, dict]:
    """One pass over the probe points, ``chunk`` base points (and their copies) per forward:
    the denominator's moments per layer and the numerators' sums [L] per kind and layer."""
    n, d = base.shape
    kinds = list(copies)
    acc = _acc_dtype(device)
    moments = {layer: PairwiseMoments() for layer in layers}
    num = {kind: {layer: torch.zeros(L, dtype=acc, device=device) for layer in layers} for kind in kinds}
    with ActivationRecorder(model, layers) as rec:
        for a in range(0, n, chunk):
            b = min(a + chunk, n)
            parts = [base[a:b]] + [copies[kind][a:b].transpose(0, 1).reshape(-1, d) for kind in kinds]
            rows = torch.cat(parts).to(device, non_blocking=True)  # [(b-a)*per_point, d]
            x = encode(rows, v, encoding)
            feats = rec.features(x, model(x.clone() if INPUT in layers else x))
            B = b - a
            for layer, f in feats.items():
                f0 = f[:B]
                moments[layer].update(f0)
                for i, kind in enumerate(kinds):
                    fk = f[B * (1 + i * L) : B * (1 + (i + 1) * L)].view(L, B, -1)
                    num[kind][layer] += ((fk - f0.unsqueeze(0)).to(acc) ** 2).sum(dim=(1, 2))
    return moments, num


def _table(layers: list[str], L: int, n: int, moments: dict, num: dict) -> SensitivityTable:
    """The ``SensitivityTable`` of the sums: numerator / n over the denominator, None where undefined
    (a kind without copies, a layer with zero denominator, a non-finite value)."""
    den = {layer: moments[layer].value() for layer in layers}
    defined = {layer: not moments[layer].degenerate() for layer in layers}
    values: dict[str, dict[str, list]] = {}
    numerators: dict[str, dict[str, list]] = {}
    for kind in KINDS:
        if kind not in num:
            values[kind] = {layer: [None] * L for layer in layers}
            numerators[kind] = {layer: [None] * L for layer in layers}
            continue
        numerators[kind] = {layer: [float(x) / n for x in num[kind][layer].cpu()] for layer in layers}
        values[kind] = {
            layer: [_finite(x / den[layer]) if defined[layer] else None for x in numerators[kind][layer]]
            for layer in layers
        }
    return SensitivityTable(
        layers=layers,
        L=L,
        num_points=n,
        values=values,
        undefined={kind: kind not in num for kind in KINDS},
        denominators=den,
        numerators=numerators,
    )
