"""Encodings for networks (SPEC 7) and moving token batches to the training device.

The fast path of every adapter ships small integer token batches ``[B, d]`` (uint8 when
v < 255) and builds the float input ``[B, v, d]`` with :func:`encode` on the device
that trains, so a float one-hot never crosses the host-device link or lives on disk.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import require

#: Encoding kinds accepted by :func:`encode` and the adapters.
ENCODINGS = ("onehot", "whiten", "tokens")

#: Float dtypes with an exact numpy fast path on the CPU.
_NUMPY_FLOATS = {torch.float32: (np.float32, np.uint32), torch.float64: (np.float64, np.uint64)}


def check_encoding(kind: str, param: str = "kind") -> str:
    """Return ``kind`` if it is one of :data:`ENCODINGS`, else raise ``ValueError``.

    ``param``: the caller's parameter name, used in the message (``encoding`` for the adapters).
    """
    if kind not in ENCODINGS:
        raise ValueError(f"invalid parameter {param}={kind!r}: must be one of {ENCODINGS}")
    return kind


def whiten_absent(v: int) -> float:
    """The value of an absent channel in the ``whiten`` encoding, -1/sqrt(v-1)."""
    return -1.0 / math.sqrt(v - 1)


def _encode_numpy(tokens: torch.Tensor, v: int, kind: str, dtype: torch.dtype) -> torch.Tensor:
    """CPU fast path: one comparison pass and one integer pass, exact values.

    The whiten values are written as bit patterns (``absent + present * (one - absent)``
    in wrapping unsigned arithmetic), so each element is exactly 1 or exactly the
    dtype's rounding of -1/sqrt(v-1), with no floating-point rounding in between.
    """
    np_float, np_bits = _NUMPY_FLOATS[dtype]
    t = tokens.numpy()
    if t.dtype.kind not in "iu" or (t.dtype.kind == "u" and v - 1 > np.iinfo(t.dtype).max):
        t = t.astype(np.int64)
    channels = np.arange(v, dtype=t.dtype).reshape(v, 1)
    present = t[..., None, :] == channels  # [..., v, d]; a blank (= v) matches no channel
    if kind == "onehot":
        return torch.from_numpy(present.astype(np_float))
    values = np.array([whiten_absent(v), 1.0], dtype=np_float).view(np_bits)
    step = np_bits((int(values[1]) - int(values[0])) % (1 << (8 * values.itemsize)))
    bits = present.astype(np_bits)
    with np.errstate(over="ignore"):
        bits *= step
        bits += values[0]
    return torch.from_numpy(bits.view(np_float))


def encode(tokens: torch.Tensor, v: int, kind: str = "whiten", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Encode integer tokens [B, d] (blank = v) on their own device (SPEC 7).

    onehot: [B, v, d], 1 at the symbol's channel, a blank is the zero column.
    whiten: [B, v, d], present 1, absent -1/sqrt(v-1); a blank column is all -1/sqrt(v-1).
    tokens: [B, d] int64 ids (blank = v), for models with an embedding.

    Any leading shape works: tokens [..., d] give [..., v, d] (a single row [d] gives
    [v, d]). ``dtype`` is the float dtype of onehot / whiten (float32, bfloat16, ...);
    values are exact: 0, 1, and the dtype's rounding of -1/sqrt(v-1). The result lives
    on ``tokens.device``; numpy arrays are accepted and treated as CPU tensors.
    """
    check_encoding(kind)
    tokens = torch.as_tensor(tokens)
    if kind == "tokens":
        return tokens.long()
    if not isinstance(v, int) or v < 2:
        raise ValueError(f"invalid parameter v={v!r}: must be an int >= 2")
    if tokens.ndim < 1:
        raise ValueError(f"invalid parameter tokens (shape {tuple(tokens.shape)}): must have shape [..., d]")
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise ValueError(f"invalid parameter tokens (dtype {tokens.dtype}): must be an integer tensor")
    if tokens.device.type == "cpu" and dtype in _NUMPY_FLOATS and tokens.dtype not in (torch.uint32, torch.uint64):
        return _encode_numpy(tokens, v, kind, dtype)
    compare = tokens if tokens.dtype == torch.uint8 and v <= 256 else tokens.long()
    channels = torch.arange(v, device=tokens.device, dtype=compare.dtype).view(v, 1)
    present = compare.unsqueeze(-2) == channels  # [..., v, d]
    if kind == "onehot":
        return present.to(dtype)
    one = torch.ones((), dtype=dtype, device=tokens.device)
    absent = torch.tensor(whiten_absent(v), dtype=dtype, device=tokens.device)
    return torch.where(present, one, absent)


def default_device() -> torch.device:
    """The training device torch users expect: CUDA if available, then MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


#: Device types ``check_device`` accepts.
DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(device: str | torch.device | None) -> str:
    """A validated torch device string: ``device`` itself, or ``default_device()`` (cuda, mps, cpu) when None.

    Raises ValueError naming the parameter, its value and the bound: an unparsable
    string, a type other than cpu/cuda/mps, or a device this machine does not have.
    """
    if device is None:
        return str(default_device())
    bound = "a torch device string: cpu, cuda, cuda:N or mps"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):  # torch: "Expected one of cpu, cuda, ... device type"
        dev = None
    require(dev is not None and dev.type in DEVICE_TYPES, "device", device, bound)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        require(count > 0, "device", device, "an available device (this machine has no CUDA device)")
        require(dev.index is None or dev.index < count, "device", device, f"cuda:N with N < {count} (CUDA devices here)")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        require(mps is not None and mps.is_available(), "device", device, "an available device (MPS is not available here)")
    return str(dev)


def to_device_batch(
    batch: dict,
    v: int,
    encoding: str = "whiten",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    non_blocking: bool = True,
):
    """Move a token batch to ``device`` and encode it there (the fast path's last step).

    batch: a dict from an adapter's fast path: ``tokens`` [B, d] (uint8, or int32 when
    v >= 255), ``label`` [B] int64, and optionally ``latents`` / ``synonyms`` /
    ``placements`` [B, N] int64.
    Returns ``(x, label)``: x = ``encode(tokens, v, encoding, dtype)`` ([B, v, d] float,
    or [B, d] int64 for ``tokens``), label [B] int64, both on ``device``; when the batch
    carries latent columns, ``(x, label, extras)`` with extras a dict of those [B, N]
    tensors on ``device``. ``device=None`` picks :func:`default_device`. The integer
    tokens are moved before encoding, so only B*d bytes cross to the device.
    """
    check_encoding(encoding, "encoding")
    device = torch.device(device) if device is not None else default_device()
    non_blocking = non_blocking and device.type != "cpu"
    tokens = batch["tokens"].to(device, non_blocking=non_blocking)
    label = batch["label"].to(device, non_blocking=non_blocking)
    x = encode(tokens, v, encoding, dtype)
    extras = {k: t.to(device, non_blocking=non_blocking) for k, t in batch.items() if k not in ("tokens", "label")}
    return (x, label, extras) if extras else (x, label)


def torch_tokens(tokens: np.ndarray) -> torch.Tensor:
    """A numpy token matrix as a torch tensor: uint8 stays uint8, uint16 becomes int32.

    (torch's uint16 support is limited; int32 holds every token id.)
    """
    if tokens.dtype == np.uint16:
        tokens = tokens.astype(np.int32)
    tokens = np.ascontiguousarray(tokens)
    if not tokens.flags.writeable:  # a zero-copy view of an Arrow buffer: torch wants writable memory
        tokens = tokens.copy()
    return torch.from_numpy(tokens)


def torch_ints(values: np.ndarray) -> torch.Tensor:
    """Latent-style columns (uint8/16/32) or labels as int64 tensors."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return torch.from_numpy(values if values.flags.writeable else values.copy())
