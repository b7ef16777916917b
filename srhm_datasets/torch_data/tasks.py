"""Tasks for the torch adapters (format.md §7, §15): channels, tensors, and the tasks on a torch device.

* :func:`input_channels`: v for ``class`` and ``next``, v + 2 for ``last`` and ``mlm``
  (MASK and UNOBSERVED have their own channels).
* :func:`task_tensors`: a numpy :class:`~srhm_datasets.tasks.TaskBatch` as the adapters'
  batch dict (``tokens`` / ``label`` for ``class``, ``inputs`` / ``targets`` otherwise).
* :func:`task_loss`: the cross-entropy of a task's logits over its scored targets, the one loss of
  every network and task (:func:`scored_pairs` flattens positions).
* :func:`torch_apply_task`: the same task computed with torch ops where the rows live
  (rows of a :class:`~.generator.TorchGenerator`), bit-identical to ``tasks.apply_task``:
  the draws use the generator's uint64-in-int64 hashing (``generator.mix64``, ``umod``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ..config import require, require_int
from ..prng import MAX_KEY
from ..sampler import split_limit
from ..tasks import (
    HIDING_TASKS,
    IGNORE_INDEX,
    UNIFORM_BITS,
    Task,
    make_task,
    mask_id,
    task_keys,
    threshold,
    unobserved_id,
)
from .encoding import torch_tokens
from .generator import TorchGenerator, hash_with, mix64, shr, umod


def input_channels(v: int, task: Task) -> int:
    """Channels of the onehot / whiten encoding of a task's inputs (format.md §7, §15).

    Parameters
    ----------
    v : int
        Vocabulary size of the config.
    task : tasks.Task
        From ``tasks.make_task``.

    Returns
    -------
    int
        v, or v + 2 for ``last`` and ``mlm`` (MASK and UNOBSERVED take channels v and v + 1).

    Examples
    --------
    >>> from srhm_datasets.tasks import Task
    >>> input_channels(10, Task("class")), input_channels(10, Task("mlm", mask_rate=0.15))
    (10, 12)
    """
    return v + 2 if task.name in HIDING_TASKS else v


def adapter_task(cfg, task, context, mask_rate, noise, task_key) -> Task:
    """The checked task of an adapter's arguments (``tasks.make_task``; ``task_key`` is its key).

    Raises ValueError naming the parameter (``task_key`` under the adapter's name).
    """
    require_int("task_key", task_key, 0, MAX_KEY)
    return make_task(cfg, task, context=context, mask_rate=mask_rate, noise=noise, key=task_key)


def batch_keys(task: Task) -> tuple[str, str]:
    """Keys of the codes and targets in an adapter batch: (tokens, label) for ``class``, else (inputs, targets)."""
    return ("tokens", "label") if task.name == "class" else ("inputs", "targets")


def task_tensors(task: Task, batch) -> dict[str, torch.Tensor]:
    """A numpy ``TaskBatch`` as tensors: codes (uint8, or int32 for wider codes) and targets (int64).

    Keyed by :func:`batch_keys`.
    """
    x_key, y_key = batch_keys(task)
    return {x_key: torch_tokens(batch.inputs), y_key: torch.from_numpy(batch.targets)}


def code_dtype(gen: TorchGenerator, task: Task) -> torch.dtype:
    """Device dtype of a task's inputs: the tokens' (``class``, ``next``), else uint8 when v + 2 <= 255, else int32."""
    if task.name not in HIDING_TASKS:
        return gen.token_dtype
    return torch.uint8 if unobserved_id(gen.cfg.v) <= 255 else torch.int32


def _rows(gen: TorchGenerator, split: str, rows, n: int) -> torch.Tensor:
    """Global indices [n] int64 on the generator's device of the rows (an int start, or a tensor of n row indices)."""
    cfg = gen.cfg
    limit = split_limit(cfg, split)
    offset = cfg.split_offset(split)
    if isinstance(rows, np.ndarray):
        rows = torch.from_numpy(rows)
    if not isinstance(rows, torch.Tensor):
        start = require_int("rows", rows, 0, max(0, limit - n), f"the first of {n} rows of split {split!r}")
        return torch.arange(offset + start, offset + start + n, dtype=torch.int64, device=gen.device)
    ok = not (rows.dtype.is_floating_point or rows.dtype.is_complex or rows.dtype == torch.bool)
    require(ok, "rows.dtype", str(rows.dtype), "an integer dtype")
    require(tuple(rows.shape) == (n,), "rows.shape", tuple(rows.shape), f"== ({n},), one per row of the batch")
    rows = rows.to(gen.device, torch.int64)
    if n:
        low, high = (int(x) for x in torch.aminmax(rows))
        require(low >= 0, "min(rows)", low, ">= 0")
        require(high < limit, "max(rows)", high, f"< {limit} (rows of split {split!r})")
    return rows + offset


def _draws(gen: TorchGenerator, g: torch.Tensor, purpose: str, key: int) -> torch.Tensor:
    """``tasks.draws`` on the device: int64 [n, d] holding the uint64 hashes."""
    row_key, position_key = task_keys(gen.cfg, purpose, key)
    positions = hash_with(position_key, torch.arange(gen.cfg.d, dtype=torch.int64, device=gen.device))
    return mix64(hash_with(row_key, g)[:, None] ^ positions[None, :])


def _bernoulli(h: torch.Tensor, p: float) -> torch.Tensor:
    """``tasks.bernoulli``: the top 53 bits of the hashes below floor(p * 2**53)."""
    return shr(h, 64 - UNIFORM_BITS) < threshold(p)


def _noisy(gen: TorchGenerator, tokens: torch.Tensor, g: torch.Tensor, task: Task) -> torch.Tensor:
    """``tasks.add_noise`` on the device (int64 codes)."""
    v = gen.cfg.v
    codes = tokens.long()
    if task.noise == 0.0:
        return codes
    h = _draws(gen, g, "noise", task.key)
    noised = _bernoulli(h, task.noise) & (codes != v)
    return torch.where(noised, torch.remainder(codes + 1 + umod(mix64(h), v - 1), v), codes)


def torch_apply_task(gen: TorchGenerator, task: Task, batch: dict, split: str, rows) -> dict[str, torch.Tensor]:
    """``tasks.apply_task``'s inputs and targets, computed on the generator's device.

    Parameters
    ----------
    gen : TorchGenerator
    task : Task
        From ``tasks.make_task(gen.cfg, ...)``.
    batch : dict
        ``tokens`` [B, d] and ``label`` [B] tensors on the device (``gen.rows``).
    split : str
    rows : int, tensor or array
        The rows' indices in the split: the first of B consecutive rows, or [B] ints.

    Returns
    -------
    dict
        Keyed by ``batch_keys``: codes [B, d] ([B, d-1] for ``next``; dtype
        ``code_dtype``) and targets (int64, ``IGNORE_INDEX`` where unscored), equal
        to ``task_tensors`` of ``tasks.apply_task`` on the same rows.

    Raises
    ------
    ValueError
        Naming ``rows`` (or ``split``) when the rows are not in the split.

    Examples
    --------
    >>> from srhm_datasets.catalog import CATALOG
    >>> from srhm_datasets.tasks import make_task
    >>> gen = TorchGenerator(CATALOG["demo"], "cpu")
    >>> out = torch_apply_task(gen, make_task(gen.cfg, "mlm"), gen.rows("test", 0, 8), "test", 0)
    >>> tuple(out["inputs"].shape), out["inputs"].dtype, tuple(out["targets"].shape)
    ((8, 16), torch.uint8, (8, 16))
    """
    cfg, v = gen.cfg, gen.cfg.v
    tokens = batch["tokens"]
    n = tokens.shape[0]
    g = _rows(gen, split, rows, n)
    codes = _noisy(gen, tokens, g, task)
    x_key, y_key = batch_keys(task)
    clean = tokens.long()
    positions = torch.arange(cfg.d, device=gen.device)
    if task.name == "class":
        targets = batch["label"].long()
    elif task.name == "next":
        codes, targets = codes[:, :-1], clean[:, 1:]
    elif task.name == "last":
        j = torch.where(clean != v, positions, -1).amax(1)
        targets = clean.gather(1, j[:, None])[:, 0]
        t = cfg.d if task.context is None else task.context
        codes = torch.where(positions == j[:, None], mask_id(v), codes)
        codes = torch.where(positions <= (j - t)[:, None], unobserved_id(v), codes)
    else:  # mlm
        masked = _bernoulli(_draws(gen, g, "mask", task.key), task.mask_rate) & (clean != v)
        codes = torch.where(masked, mask_id(v), codes)
        targets = torch.where(masked, clean, IGNORE_INDEX)
    return {x_key: codes.to(code_dtype(gen, task)).contiguous(), y_key: targets.contiguous()}


def scored_pairs(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [n, C], targets [n])`` of a batch, flattened over positions: logits [B, C] with targets [B],
    or logits [B, n, C] with targets [B, n] (``IGNORE_INDEX`` where unscored, kept here)."""
    return logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)


def task_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the scored targets of a batch, for every task (format.md §10.2, §15).

    Parameters
    ----------
    logits : torch.Tensor
        [B, C] (class, last) or [B, n, C] (mlm, next), any float dtype (computed in float32).
    targets : torch.Tensor
        [B] or [B, n] int64, ``tasks.IGNORE_INDEX`` (-100) where unscored (format.md §15.1).

    Returns
    -------
    torch.Tensor
        A float32 scalar; NaN for a batch with no scored target (an ``mlm`` batch without a mask,
        format.md §15.2).

    Examples
    --------
    >>> logits = torch.zeros(1, 3, 4)  # uniform over 4 classes at 3 positions
    >>> round(float(task_loss(logits, torch.tensor([[1, IGNORE_INDEX, 2]]))), 4)  # log 4
    1.3863
    """
    return F.cross_entropy(*scored_pairs(logits.float(), targets), ignore_index=IGNORE_INDEX)
