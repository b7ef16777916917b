"""Encodings for networks (format.md §7) and moving token batches to the training device.

The fast path of every adapter ships small integer token batches ``[B, d]`` (uint8 when
v < 255) and builds the float input ``[B, v, d]`` with :func:`encode` on the device
that trains, so a float one-hot never crosses the host-device link or lives on disk.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import MAX_D, MAX_V, require, require_choice, require_int
from ..protocol import ENCODINGS

#: Float dtypes with a numpy fast path on the CPU.
_NUMPY_FLOATS = {torch.float32: np.float32, torch.float64: np.float64}


def check_encoding(kind: str, param: str = "kind") -> str:
    """Return ``kind`` if it is one of :data:`ENCODINGS`, else raise ``ValueError``.

    ``param``: the caller's parameter name, used in the message (``encoding`` for the adapters).
    """
    return require_choice(param, kind, ENCODINGS)


def whiten_absent(v: int) -> float:
    """The value of an absent channel in the ``whiten`` encoding, -1/sqrt(v-1); v an int >= 2."""
    v = require_int("v", v, 2, MAX_V)
    return -1.0 / math.sqrt(v - 1)


def _encode_numpy(
    tokens: torch.Tensor, v: int, kind: str, dtype: torch.dtype, channels: int | None = None
) -> torch.Tensor:
    """CPU fast path: the output filled with the absent value, then one scatter of the present ones.

    A code t < v writes 1 at channel t of its column, a code t > v (MASK, UNOBSERVED) at
    channel t - 1; a blank (t = v) writes the absent value at channel v-1 of its own column,
    which holds it already (so no mask pass). ``channels``: v (default) or v + 2.
    Exact values: 0 or the float dtype's rounding of -1/sqrt(v-1), and 1.
    """
    np_float = _NUMPY_FLOATS[dtype]
    channels = v if channels is None else channels
    t = tokens.numpy()
    lead, d = t.shape[:-1], t.shape[-1]
    t = t.reshape(-1, d)
    n = t.shape[0]
    absent = 0.0 if kind == "onehot" else whiten_absent(v)
    shape = (n, channels, d)
    out = np.zeros(shape, np_float) if absent == 0.0 else np.full(shape, absent, np_float)
    channel = np.minimum(t, v - 1, dtype=np.intp)
    if channels > v:  # MASK and UNOBSERVED: channels v and v + 1
        np.copyto(channel, t - 1, where=t > v, casting="unsafe")
    position = np.multiply(channel, d, out=channel)
    position += np.arange(0, n * channels * d, channels * d, dtype=np.intp).reshape(n, 1)
    position += np.arange(d, dtype=np.intp)
    values = np.array([1.0, absent], dtype=np_float)[(t == v).view(np.uint8)]
    out.reshape(-1)[position] = values
    return torch.from_numpy(out.reshape(*lead, channels, d))


def _encode_torch(
    tokens: torch.Tensor, v: int, kind: str, dtype: torch.dtype, channels: int | None = None
) -> torch.Tensor:
    """onehot / whiten of checked integer codes on their own device: one comparison, one select.

    Channel c holds code c for c < v and code c + 1 above (MASK, UNOBSERVED); the blank v has none.
    """
    channels = v if channels is None else channels
    highest = channels if channels > v else v - 1  # the largest code that has a channel
    compare = tokens if tokens.dtype == torch.uint8 and highest <= 255 else tokens.long()
    codes = torch.arange(channels, device=tokens.device, dtype=torch.int64)
    codes += codes >= v
    present = compare.unsqueeze(-2) == codes.to(compare.dtype).view(channels, 1)  # [..., channels, d]
    if kind == "onehot":
        return present.to(dtype)
    one = torch.ones((), dtype=dtype, device=tokens.device)
    absent = torch.tensor(whiten_absent(v), dtype=dtype, device=tokens.device)
    return torch.where(present, one, absent)


def check_tokens(tokens, v: int, d: int | None = None, high: int | None = None) -> torch.Tensor:
    """Integer tokens [..., d] with values in 0..v (v = blank) as a tensor, else ValueError naming ``tokens``.

    ``d``, when given, is the config's input length: tokens of another config are refused.
    ``high``: the largest code allowed, v (default) or v + 2 (task inputs with MASK, UNOBSERVED).
    One min and one max reduction (a device sync for tokens on an accelerator).
    """
    try:
        tokens = torch.as_tensor(tokens)
    except (TypeError, ValueError, RuntimeError):
        require(False, "tokens", tokens, "an integer tensor or array [..., d]")
    require(tokens.ndim >= 1, "tokens.shape", tuple(tokens.shape), "[..., d] (at least one dimension)")
    bad_dtype = tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool
    require(not bad_dtype, "tokens.dtype", str(tokens.dtype), "an integer dtype")
    if d is not None:
        d = require_int("d", d, 1, MAX_D)
        require(tokens.shape[-1] == d, "tokens.shape", tuple(tokens.shape), f"[..., d] with d = {d}")
    if tokens.numel():
        low, largest = torch.aminmax(tokens if tokens.dtype.is_signed or tokens.dtype == torch.uint8 else tokens.long())
        require(int(low) >= 0, "min(tokens)", int(low), ">= 0")
        top = v if high is None else high
        bound = f"<= v = {v} (the blank)" if top == v else f"<= v + 2 = {top} (UNOBSERVED)"
        require(int(largest) <= top, "max(tokens)", int(largest), bound)
    return tokens


def check_float_dtype(dtype) -> torch.dtype:
    """``dtype`` if it is a floating torch dtype, else ValueError naming ``dtype``."""
    require(isinstance(dtype, torch.dtype) and dtype.is_floating_point, "dtype", dtype, "a floating torch dtype")
    return dtype


def encode(
    tokens: torch.Tensor,
    v: int,
    kind: str = "whiten",
    dtype: torch.dtype = torch.float32,
    *,
    d: int | None = None,
    channels: int | None = None,
) -> torch.Tensor:
    """Encode integer tokens (blank = v) as a network's input, on the tokens' device (format.md §7).

    Parameters
    ----------
    tokens : torch.Tensor or numpy.ndarray
        Integer tokens [B, d] in ``0..v`` (``v`` is the blank); any leading shape
        works (``[..., d]`` gives ``[..., v, d]``). numpy arrays are CPU tensors.
    v : int
        Vocabulary size, ``2 <= v <= 65535``.
    kind : {"whiten", "onehot", "tokens"}
        ``whiten`` (the paper's): [B, v, d], 1 at the symbol's channel and
        ``-1/sqrt(v-1)`` elsewhere, a blank column all ``-1/sqrt(v-1)``; ``onehot``:
        [B, v, d], a blank is the zero column; ``tokens``: [B, d] int64 ids, for models
        with an embedding (``ENCODINGS``).
    dtype : torch.dtype
        Float dtype of onehot / whiten (float32, bfloat16, ...); values are exact: 0, 1
        and the dtype's rounding of ``-1/sqrt(v-1)``.
    d : int, optional
        The config's input length, to refuse tokens of another config by shape.
    channels : int, optional
        v (default) or v + 2 for the inputs of the tasks ``last`` and ``mlm``
        (format.md §15), whose codes v + 1 (MASK) and v + 2 (UNOBSERVED) take channels v
        and v + 1 (present 1, absent as for a symbol); the blank keeps no channel.

    Returns
    -------
    torch.Tensor
        [B, channels, d] of ``dtype`` (onehot, whiten) or [B, d] int64 (tokens), on
        ``tokens.device``.

    Raises
    ------
    TypeError
        ``v`` not an int.
    ValueError
        An unknown kind, ``v`` out of range, a dtype that is not floating, ``channels``
        not v or v + 2, tokens that are not integers, of another length than ``d``, or
        outside ``0..v`` (``0..v+2`` with ``channels = v + 2``: tokens of another config).

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> from srhm_datasets.torch import encode
    >>> cfg = srhm.get_config("demo")
    >>> tokens = srhm.generate(cfg, "train", 0, 2)["tokens"]  # [2, 16] uint8, blank = 4
    >>> x = encode(tokens, cfg.v)
    >>> x.shape, x.dtype
    (torch.Size([2, 4, 16]), torch.float32)
    >>> x[0, :, 0]  # token 1
    tensor([-0.5774,  1.0000, -0.5774, -0.5774])
    >>> x[0, :, 1]  # a blank
    tensor([-0.5774, -0.5774, -0.5774, -0.5774])
    >>> encode(tokens, cfg.v, "onehot")[0, :, 0]
    tensor([0., 1., 0., 0.])
    >>> encode(torch.tensor([[0, 3, 4]]), v=2, kind="onehot", channels=4)  # MASK, UNOBSERVED
    tensor([[[1., 0., 0.],
             [0., 0., 0.],
             [0., 1., 0.],
             [0., 0., 1.]]])
    """
    check_encoding(kind)
    v = require_int("v", v, 2, MAX_V)
    check_float_dtype(dtype)
    channels = v if channels is None else channels
    require(channels in (v, v + 2) and not isinstance(channels, bool), "channels", channels, f"None, v = {v} or v + 2")
    tokens = check_tokens(tokens, v, d, high=v if channels == v else v + 2)
    if kind == "tokens":
        return tokens.long()
    numpy_ok = tokens.numel() and tokens.dtype not in (torch.uint32, torch.uint64)  # empty: any shape, e.g. d = 0
    if tokens.device.type == "cpu" and dtype in _NUMPY_FLOATS and numpy_ok:
        return _encode_numpy(tokens, v, kind, dtype, channels)
    return _encode_torch(tokens, v, kind, dtype, channels)


def default_device() -> torch.device:
    """The training device torch users expect: CUDA if available, then MPS, else CPU.

    The default device of the adapters, the baselines and the sensitivities (format.md §9.2).

    Returns
    -------
    torch.device
        ``cuda``, ``mps`` or ``cpu``.

    Examples
    --------
    >>> from srhm_datasets.torch import default_device
    >>> default_device().type in ("cuda", "mps", "cpu")
    True
    """
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
        require(
            dev.index is None or dev.index < count, "device", device, f"cuda:N with N < {count} (CUDA devices here)"
        )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        require(
            mps is not None and mps.is_available(), "device", device, "an available device (MPS is not available here)"
        )
    return str(dev)


def to_device_batch(
    batch: dict,
    v: int,
    encoding: str = "whiten",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    non_blocking: bool = True,
    channels: int | None = None,
):
    """Move a token batch to ``device`` and encode it there (the fast path's last step).

    The integer tokens are moved before encoding, so only B*d bytes cross to the device.

    Parameters
    ----------
    batch : dict of str to torch.Tensor
        A batch of an adapter's fast path: ``tokens`` [B, d] (uint8, or int32 when
        v >= 255), ``label`` [B] int64, and optionally ``latents`` / ``synonyms`` /
        ``placements`` [B, N] int64; or, for a task other than ``class`` (format.md §15),
        ``inputs`` (codes, uint8 or int32) and ``targets`` (int64) in place of tokens and
        label.
    v : int
        Vocabulary size of the config.
    encoding : {"whiten", "onehot", "tokens"}
        As :func:`encode`.
    device : torch.device or str or None
        Where to encode; None is :func:`default_device`.
    dtype : torch.dtype
        Float dtype of onehot / whiten.
    non_blocking : bool
        Asynchronous copies (with pinned memory).
    channels : int, optional
        As :func:`encode` (v + 2 for the inputs of ``last`` and ``mlm``).

    Returns
    -------
    tuple
        ``(x, label)``: x = ``encode(tokens, v, encoding, dtype)`` ([B, v, d] float, or
        [B, d] int64 for ``tokens``), label [B] int64, both on ``device``; when the batch
        carries latent columns, ``(x, label, extras)`` with extras a dict of those [B, N]
        tensors on ``device``.

    Raises
    ------
    ValueError
        ``batch`` not a dict of tensors with ``tokens`` and ``label`` (or ``inputs``
        and ``targets``), an unknown
        encoding or device, or tokens that :func:`encode` refuses.

    Examples
    --------
    >>> import torch, srhm_datasets as srhm
    >>> from srhm_datasets.torch import to_device_batch
    >>> rows = srhm.generate(srhm.get_config("demo"), "train", 0, 2)
    >>> batch = {"tokens": torch.as_tensor(rows["tokens"]), "label": torch.as_tensor(rows["label"])}
    >>> x, label = to_device_batch(batch, v=4, device="cpu")
    >>> x.shape, label
    (torch.Size([2, 4, 16]), tensor([1, 1]))
    >>> tasked = {"inputs": torch.tensor([[0, 3], [2, 1]], dtype=torch.uint8), "targets": torch.tensor([1, 0])}
    >>> x, y = to_device_batch(tasked, v=2, encoding="onehot", device="cpu", channels=4)
    >>> tuple(x.shape), y.tolist()
    ((2, 4, 2), [1, 0])
    """
    check_encoding(encoding, "encoding")
    x_key, y_key = ("inputs", "targets") if isinstance(batch, dict) and "inputs" in batch else ("tokens", "label")
    require(
        isinstance(batch, dict) and {x_key, y_key} <= set(batch),
        "batch",
        batch,
        "a dict with tokens and label (or inputs and targets)",
    )
    for key, value in batch.items():
        require(isinstance(value, torch.Tensor), f"batch[{key!r}]", type(value).__name__, "a torch.Tensor")
    device = torch.device(check_device(device))
    non_blocking = non_blocking and device.type != "cpu"
    codes = batch[x_key].to(device, non_blocking=non_blocking)
    y = batch[y_key].to(device, non_blocking=non_blocking)
    x = encode(codes, v, encoding, dtype, channels=channels)
    extras = {k: t.to(device, non_blocking=non_blocking) for k, t in batch.items() if k not in (x_key, y_key)}
    return (x, y, extras) if extras else (x, y)


def torch_tokens(tokens: np.ndarray) -> torch.Tensor:
    """A numpy token matrix as a torch tensor: uint8 stays uint8, uint16 becomes int32.

    (torch's uint16 support is limited; int32 holds every token id.)
    Raises ValueError unless tokens is an unsigned integer numpy array.
    """
    require(isinstance(tokens, np.ndarray) and tokens.dtype.kind == "u", "tokens", tokens, "a uint8/uint16 numpy array")
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
