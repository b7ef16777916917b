"""Tasks on the rows of a split: model inputs, targets and the evidence BP conditions on (format.md §15).

A task turns rows of a split (the columns ``generate`` returns) into ``(inputs, targets)``;
the rows themselves never change, so every release, stream and split serves every task.

* ``class``: the root label from the tokens (the paper's task).
* ``last``: the row's last informative position j is masked; the target is its token.
  ``context=t`` keeps only the window j-t+1..j: the MASK at j and the t-1 tokens before it.
* ``mlm``: each informative position is masked with probability ``mask_rate``; the
  targets are the masked tokens, every other position is ``IGNORE_INDEX``.
* ``next``: causal next-token prediction: input position i-1 predicts x_i, blanks included.
* ``noise=eps`` on any task: every informative input token is replaced, with probability
  eps, by a uniformly drawn other symbol (the symmetric channel); targets stay clean.

Randomness is counter-based (``prng.py``): the draw of row i, position j is a hash of
(seed, purpose, ``key``, global index of the row, j), so a task's output for row i of a
split is a pure function of (config, split, i, task), whatever the chunking. Masks for
two mask rates (and noise for two eps) are nested: a position masked at p is masked at
every p' > p, and the same rows at the same eps carry the same noise in every task.

Codes of the inputs and of the evidence: 0..v-1 a symbol, v the blank, ``mask_id(v)`` =
v + 1 (informative, token hidden), ``unobserved_id(v)`` = v + 2 (anything, blank included).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from .config import SRHMConfig, check_config, require, require_choice, require_int
from .generate import check_batch, column_dtypes, smallest_uint
from .prng import MAX_KEY, below, derive_key, hash_with, mix64
from .sampler import split_limit

#: The task names.
TASKS = ("class", "last", "mlm", "next")

#: Tasks whose inputs hold MASK (and, for ``last``, UNOBSERVED) codes.
HIDING_TASKS = ("last", "mlm")

#: Target of an unscored position (torch's ``CrossEntropyLoss`` default ``ignore_index``).
IGNORE_INDEX = -100

#: ``mask_rate`` of ``mlm`` when none is given (BERT's 15%).
DEFAULT_MASK_RATE = 0.15

#: A Bernoulli(p) draw compares the top ``UNIFORM_BITS`` bits of a hash with floor(p * 2**53).
UNIFORM_BITS = 53


def mask_id(v: int) -> int:
    """The MASK code, v + 1: an informative position whose token is hidden.

    Examples
    --------
    >>> mask_id(10)
    11
    """
    return int(v) + 1


def unobserved_id(v: int) -> int:
    """The UNOBSERVED code, v + 2: a position about which nothing is known (blank included).

    Examples
    --------
    >>> unobserved_id(10)
    12
    """
    return int(v) + 2


@dataclasses.dataclass(frozen=True)
class Task:
    """A task and its parameters, checked by :func:`make_task` (format.md §15).

    ``name`` one of ``TASKS``; ``context`` (``last``: visible window t, None for the
    whole row); ``mask_rate`` (``mlm``: p); ``noise`` (eps); ``key`` (selects independent
    draws of the same rows, e.g. a fresh mask per epoch).
    """

    name: str = "class"
    context: int | None = None
    mask_rate: float | None = None
    noise: float = 0.0
    key: int = 0

    @property
    def plain(self) -> bool:
        """True for ``class`` without noise: the inputs are the tokens, the targets the labels."""
        return self.name == "class" and self.noise == 0.0


def _probability(name: str, value, low_open: bool, high_open: bool) -> float:
    """``value`` as a float in the interval (or ValueError naming ``name``, the value and the bound)."""
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    bound = f"a real number in {lo}0, 1{hi}"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    require(ok, name, value, bound)
    value = float(value)
    ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    require(ok, name, value, bound)
    return value


def check_noise(noise) -> float:
    """``noise``, the eps of the symmetric channel, as a float in [0, 1); else the package's ValueError
    naming ``noise``. The one check of eps: the tasks and exact inference use it.

    Examples
    --------
    >>> check_noise(0.25)
    0.25
    """
    return _probability("noise", noise, low_open=False, high_open=True)


def make_task(cfg: SRHMConfig, task="class", *, context=None, mask_rate=None, noise=0.0, key=0) -> Task:
    """A checked ``Task`` of ``cfg`` (format.md §15).

    Parameters
    ----------
    cfg : SRHMConfig
    task : str or Task
        One of ``TASKS``, or a Task (then the other arguments must keep their defaults).
    context : int or None
        ``last`` only: visible positions t, 1 <= t <= d; None keeps the whole row.
    mask_rate : float or None
        ``mlm`` only: p in (0, 1]; None gives ``DEFAULT_MASK_RATE``.
    noise : float
        eps in [0, 1), any task.
    key : int
        In [0, 2**64): independent draws of the same rows.

    Returns
    -------
    Task

    Raises
    ------
    ValueError
        Naming the parameter, its value and the bound: an unknown task; ``context`` or
        ``mask_rate`` given to a task that has none; a value out of its range.

    Examples
    --------
    >>> from srhm_datasets.catalog import CATALOG
    >>> make_task(CATALOG["demo"], "mlm")
    Task(name='mlm', context=None, mask_rate=0.15, noise=0.0, key=0)
    >>> make_task(CATALOG["demo"], "last", context=99)
    Traceback (most recent call last):
    ...
    ValueError: invalid parameter context=99: must satisfy 1 <= context <= 16 (d, the length of a row)
    """
    check_config(cfg)
    if isinstance(task, Task):
        given = (context, mask_rate, noise, key) != (None, None, 0.0, 0)
        require(not given, "task", task, "a name when context, mask_rate, noise or key are given")
        task, context, mask_rate, noise, key = task.name, task.context, task.mask_rate, task.noise, task.key
    require_choice("task", task, TASKS)
    if context is not None:
        require(task == "last", "context", context, "None unless task='last'")
        context = require_int("context", context, 1, cfg.d, "d, the length of a row")
    if mask_rate is not None:
        require(task == "mlm", "mask_rate", mask_rate, "None unless task='mlm'")
        mask_rate = _probability("mask_rate", mask_rate, low_open=True, high_open=False)
    elif task == "mlm":
        mask_rate = DEFAULT_MASK_RATE
    noise = check_noise(noise)
    return Task(task, context, mask_rate, noise, require_int("key", key, 0, MAX_KEY))


def threshold(p: float) -> int:
    """floor(p * 2**53): a draw h is a success of Bernoulli(p) when ``h >> 11 < threshold(p)``.

    Exact (p * 2**53 is a float scaled by a power of two); p = 1 gives 2**53, always.

    Examples
    --------
    >>> threshold(0.5) == 2**52, threshold(1.0) == 2**53
    (True, True)
    """
    return math.floor(p * 2.0**UNIFORM_BITS)


def task_keys(cfg: SRHMConfig, purpose: str, key: int) -> tuple[int, int]:
    """The (row, position) keys of a purpose (``mask``, ``noise``): derive_key(seed, "task", purpose, key, part)."""
    return tuple(derive_key(cfg.seed, "task", purpose, key, part) for part in ("row", "position"))


def draws(cfg: SRHMConfig, split: str, rows: np.ndarray, purpose: str, key: int, where=None) -> np.ndarray:
    """uint64 hashes [B, d]: h[b, j] = mix64(hash_with(row key, g_b) ^ hash_with(position key, j)).

    g_b = offset(split) + rows[b] is the row's global index (format.md §5.2), so the draw
    of a position is a pure function of (config, split, row, position, purpose, key).
    ``where`` (bool [B, d]): only the draws where it is True, 1-D in row-major order
    (``h[where]``, computed for those positions alone: the informative ones are few in
    a sparse config).

    Examples
    --------
    >>> from srhm_datasets.catalog import CATALOG
    >>> h = draws(CATALOG["demo"], "test", np.arange(3), "mask", 0)
    >>> h.shape, h.dtype, bool((draws(CATALOG["demo"], "test", np.arange(1, 2), "mask", 0) == h[1:2]).all())
    ((3, 16), dtype('uint64'), True)
    >>> bool((draws(CATALOG["demo"], "test", np.arange(3), "mask", 0, where=h % 2 == 0) == h[h % 2 == 0]).all())
    True
    """
    row_key, position_key = task_keys(cfg, purpose, key)
    g = np.asarray(rows, dtype=np.uint64) + np.uint64(cfg.split_offset(split))
    row_hashes = hash_with(row_key, g)
    positions = hash_with(position_key, np.arange(cfg.d, dtype=np.uint64))
    if where is None:
        return mix64(row_hashes[:, None] ^ positions[None, :])
    r, j = np.nonzero(where)
    return mix64(row_hashes[r] ^ positions[j])


def bernoulli(h: np.ndarray, p: float) -> np.ndarray:
    """bool array: ``h >> 11 < threshold(p)`` for uint64 hashes h (success probability p up to 2**-53)."""
    return (h >> np.uint64(64 - UNIFORM_BITS)) < np.uint64(threshold(p))


def add_noise(cfg: SRHMConfig, tokens: np.ndarray, split: str, rows: np.ndarray, noise: float, key: int) -> np.ndarray:
    """Tokens [B, d] through the symmetric channel: each informative token is replaced with
    probability ``noise`` by one of the v - 1 other symbols, uniformly; blanks never change.

    With h the ``noise`` draws: noised where ``bernoulli(h, noise)``; the new symbol is
    (x + 1 + (mix64(h) mod (v - 1))) mod v. A new array of the tokens' dtype.

    Examples
    --------
    >>> from srhm_datasets import generate
    >>> from srhm_datasets.catalog import CATALOG
    >>> cfg = CATALOG["demo"]
    >>> tokens = generate(cfg, "test", 0, 100)["tokens"]
    >>> noisy = add_noise(cfg, tokens, "test", np.arange(100), 0.3, 0)
    >>> bool(((noisy == cfg.v) == (tokens == cfg.v)).all())  # blanks stay, symbols stay symbols
    True
    >>> round(float((noisy != tokens).sum() / (tokens != cfg.v).sum()), 2)  # about 0.3 of the informative
    0.29
    """
    out = tokens.copy()
    if noise == 0.0:
        return out
    informative = tokens != cfg.v
    h = draws(cfg, split, rows, "noise", key, where=informative)
    hit = bernoulli(h, noise)
    r, j = np.nonzero(informative)
    r, j = r[hit], j[hit]
    shift = 1 + below(mix64(h[hit]), cfg.v - 1)
    out[r, j] = (tokens[r, j].astype(np.int64) + shift) % cfg.v
    return out


@dataclasses.dataclass(frozen=True)
class TaskBatch:
    """A task applied to B rows (format.md §15): what a model trains on and what BP conditions on.

    inputs : [B, d] ([B, d-1] for ``next``) codes: 0..v-1 symbols, v blank, ``mask_id``,
        ``unobserved_id``; uint8 when the codes fit, else uint16.
    targets : int64, [B] for ``class`` (the label) and ``last`` (the token at j), [B, d]
        for ``mlm`` and [B, d-1] for ``next`` (targets[:, i-1] = x_i); ``IGNORE_INDEX``
        where unscored. Always the clean tokens.
    evidence : [B, d] codes the Bayes-optimal predictor conditions on (same codes).
    noise : eps of the symmetric channel on the observed informative codes of ``evidence``.
    scored : bool [B, d], the leaf positions whose token is a scored target (all False for
        ``class``, whose target is the root).
    causal : True for ``next``: the evidence of the target at position i is
        ``evidence[:, :i]``, every later position unobserved.
    """

    inputs: np.ndarray
    targets: np.ndarray
    evidence: np.ndarray
    noise: float
    scored: np.ndarray
    causal: bool


def check_rows(cfg: SRHMConfig, split: str, rows, n: int) -> np.ndarray:
    """Row indices [n] int64 of a split: ``rows`` an int (the first of n consecutive rows) or n ints.

    Every row must exist: 0 <= row < ``split_limit(cfg, split)`` (train runs to the end of
    the data space). Raises ValueError naming ``split`` or ``rows``.
    """
    limit = split_limit(cfg, split)
    if isinstance(rows, numbers.Integral) and not isinstance(rows, bool):
        start = require_int("rows", rows, 0, max(0, limit - n), f"the first of {n} rows of split {split!r}")
        return np.arange(start, start + n, dtype=np.int64)
    array = np.asarray(rows)
    require(array.dtype.kind in "iu" or array.size == 0, "rows", rows, "an int or an array of ints")
    require(array.shape == (n,), "rows.shape", array.shape, f"== ({n},), one per row of the batch")
    array = array.astype(np.int64)
    if n:
        low, high = int(array.min()), int(array.max())
        require(low >= 0, "min(rows)", low, ">= 0")
        require(high < limit, "max(rows)", high, f"< {limit} (rows of split {split!r})")
    return array


def apply_task(cfg: SRHMConfig, task, batch, split: str, rows) -> TaskBatch:
    """A task applied to rows of a split (format.md §15).

    Parameters
    ----------
    cfg : SRHMConfig
    task : Task or str
        From :func:`make_task`, or a task name with its default parameters.
    batch : dict
        ``tokens`` [B, d] (blank = v), and ``label`` [B] for ``class``: columns of
        ``generate`` (any integer dtype).
    split : str
        The split the rows come from (``train``, ``test``, ``probe``).
    rows : int or array of ints
        Their row indices in the split: an int for B consecutive rows from it, or [B] ints.

    Returns
    -------
    TaskBatch
        A pure function of (cfg, split, each row's index, task): any chunking of the rows
        gives the same rows of every field. Memory: a few arrays [B, d] (uint64 draws
        for ``mlm`` and noise): pass batches of bounded size.

    Raises
    ------
    ValueError
        Naming the parameter: an invalid task, a batch of another config, a row index
        outside the split.

    Examples
    --------
    >>> from srhm_datasets import generate
    >>> from srhm_datasets.catalog import CATALOG
    >>> cfg = CATALOG["demo"]                       # v = 4, d = 16
    >>> rows = generate(cfg, "test", 0, 2)
    >>> tb = apply_task(cfg, make_task(cfg, "last", context=4), rows, "test", 0)
    >>> tb.inputs.shape, tb.targets.shape, int(tb.inputs.max()) <= unobserved_id(cfg.v)
    ((2, 16), (2,), True)
    >>> j = tb.scored.argmax(1)
    >>> bool((tb.inputs[[0, 1], j] == mask_id(cfg.v)).all()), bool((tb.targets == rows["tokens"][[0, 1], j]).all())
    (True, True)
    """
    task = make_task(cfg, task)
    columns = ("tokens", "label") if task.name == "class" else ("tokens",)
    batch = check_batch(cfg, batch, columns)
    tokens = batch["tokens"]
    rows = check_rows(cfg, split, rows, tokens.shape[0])
    noisy = add_noise(cfg, tokens, split, rows, task.noise, task.key)
    build = {"class": _class, "last": _last, "mlm": _mlm, "next": _next}[task.name]
    inputs, targets, evidence, scored = build(cfg, task, tokens, noisy, batch, split, rows)
    return TaskBatch(inputs, targets, evidence, task.noise, scored, task.name == "next")


def code_dtype(cfg: SRHMConfig, task: Task) -> np.dtype:
    """dtype of a task's inputs: the tokens' (``class``, ``next``), else the smallest uint holding v + 2."""
    return column_dtypes(cfg)["tokens"] if task.name not in HIDING_TASKS else smallest_uint(unobserved_id(cfg.v))


def _class(cfg, task, tokens, noisy, batch, split, rows):
    evidence = noisy.astype(smallest_uint(unobserved_id(cfg.v)))
    return noisy, batch["label"].astype(np.int64), evidence, np.zeros(tokens.shape, dtype=bool)


def last_position(cfg: SRHMConfig, tokens: np.ndarray) -> np.ndarray:
    """int64 [B]: the last informative (non-blank) position j of each row of tokens [B, d]."""
    informative = np.asarray(tokens) != cfg.v
    return cfg.d - 1 - np.argmax(informative[:, ::-1], axis=1).astype(np.int64)


def _last(cfg, task, tokens, noisy, batch, split, rows):
    n = tokens.shape[0]
    j = last_position(cfg, tokens)
    positions = np.arange(cfg.d)
    inputs = noisy.astype(code_dtype(cfg, task))
    inputs[np.arange(n), j] = mask_id(cfg.v)
    t = cfg.d if task.context is None else task.context
    inputs[positions[None, :] <= (j - t)[:, None]] = unobserved_id(cfg.v)
    scored = positions[None, :] == j[:, None]
    return inputs, tokens[np.arange(n), j].astype(np.int64), inputs.copy(), scored


def _mlm(cfg, task, tokens, noisy, batch, split, rows):
    masked = tokens != cfg.v
    masked[masked] = bernoulli(draws(cfg, split, rows, "mask", task.key, where=masked), task.mask_rate)
    inputs = noisy.astype(code_dtype(cfg, task))
    inputs[masked] = mask_id(cfg.v)
    targets = np.where(masked, tokens.astype(np.int64), IGNORE_INDEX)
    return inputs, targets, inputs.copy(), masked


def _next(cfg, task, tokens, noisy, batch, split, rows):
    evidence = noisy.astype(smallest_uint(unobserved_id(cfg.v)))
    evidence[:, -1] = unobserved_id(cfg.v)
    scored = np.ones(tokens.shape, dtype=bool)
    scored[:, 0] = False
    return noisy[:, :-1].copy(), tokens[:, 1:].astype(np.int64), evidence, scored
