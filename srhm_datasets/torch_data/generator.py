"""The generator on a torch device: sampler, expansion and perturbations (format.md §3-§6).

:class:`TorchGenerator` computes exactly what ``sampler.permuted_digits``,
``generate.generate`` / ``expand`` and ``perturb.perturb`` compute, bit for bit, with
torch ops on any device, so an online training loop draws its batches where it trains
with no host traffic. The arithmetic of ``prng.py`` is uint64 with wrap-around; torch has
no usable unsigned 64-bit type, so values live in int64 with the same bits:

* addition and multiplication wrap identically in two's complement (the constants above
  2**63 are stored as their signed images);
* a logical right shift is an arithmetic shift masked to its low 64-k bits;
* ``h mod n`` of a uint64 h is ``h mod n`` of the signed value, corrected by
  ``2**64 mod n`` when the sign bit is set (:func:`umod`).

Every other quantity (limb values, digits, indices) stays below 2**62 and is therefore
an ordinary non-negative int64. The tables the algorithm reads (rules, placement slots,
leaf patches, the explicit permutation of spaces up to 2**20, Feistel round keys) are
computed once by the numpy code and copied to the device when a generator is built.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from ..config import SRHMConfig, check_config, require
from ..generate import COLUMNS, check_column, column_bounds, column_shapes, leaf_patches
from ..perturb import perturb_indices, perturb_key
from ..rules import placement_slots, sample_rules
from ..sampler import ROUNDS_PER_LIMB, TABLE_MAX, check_range, layout, permute_int, round_keys, sampler_key
from .encoding import check_device

ROUND_TABLE_MAX = 2**16  # two-limb Feistels with both radices up to this tabulate their round function

_GOLDEN = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def signed(value: int) -> int:
    """The int64 with the same 64 bits as ``value`` in [0, 2**64)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def shr(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of the uint64 bits held in int64 ``x`` by 0 < k < 64."""
    return (x >> k).bitwise_and_((1 << (64 - k)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser (``prng.mix64``) of int64 ``x`` read as uint64; int64, same shape and device."""
    x = x + signed(_GOLDEN)
    x ^= shr(x, 30)
    x *= signed(_C1)
    x ^= shr(x, 27)
    x *= signed(_C2)
    x ^= shr(x, 31)
    return x


def hash_with(key: int, x: torch.Tensor) -> torch.Tensor:
    """``prng.hash_with``: mix64(mix64(x) ^ key), key in [0, 2**64), x a non-negative int64 tensor."""
    return mix64(mix64(x) ^ signed(key))


def umod(h: torch.Tensor, n: int, plus: torch.Tensor | None = None) -> torch.Tensor:
    """``(h + plus) mod n`` of int64 ``h`` read as uint64 (``prng.below``): int64 in [0, n).

    1 <= n <= 2**61; ``plus`` (optional) a tensor of values in [0, n). The floor remainder
    of the signed value is corrected by ``2**64 mod n`` where the sign bit is set (the
    unsigned value is h + 2**64); the sum stays below 3n, within int64.
    """
    r = torch.remainder(h, n)
    r += (h >> 63).bitwise_and_((1 << 64) % n)  # 2**64 mod n where h < 0, else 0
    if plus is not None:
        r += plus
    return r.remainder_(n)


def add_mod(x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """(x + y) mod n for int64 x, y in [0, n), n <= 2**62: one conditional subtraction, no division."""
    r = x + y - n
    return r.add_((r >> 63).bitwise_and_(n))  # r < 0: add n back


class Feistel:
    """``sampler._feistel`` with the sampler's key: limbs[j] <- (limbs[j] + F(round, others)) mod radices[j].

    F(round, others) = mix64(... mix64(round_key ^ x_i) ^ x_i' ...) over the other limbs in
    order, reduced mod radices[j]. With two limbs of radices up to ``ROUND_TABLE_MAX`` F
    depends on one limb of at most 2**16 values: it is tabulated on the device once, and
    a round is a gather and an addition.
    """

    def __init__(self, key: int, radices: tuple[int, ...], device: torch.device):
        self.radices = radices
        rounds = max(6, ROUNDS_PER_LIMB * len(radices))
        self.keys = tuple(signed(k) for k in round_keys(key, rounds))
        self.tables = None
        if len(radices) == 2 and max(radices) <= ROUND_TABLE_MAX:
            others = [torch.arange(radices[1 - rnd % 2], device=device) for rnd in range(rounds)]
            self.tables = [self._f(rnd, [x, x]) for rnd, x in enumerate(others)]  # F reads the other limb only

    def _f(self, rnd: int, limbs: list[torch.Tensor], plus: torch.Tensor | None = None) -> torch.Tensor:
        """(F(round rnd, the limbs other than j) + plus) mod radices[j], j = rnd mod the number of limbs."""
        j = rnd % len(self.radices)
        h = self.keys[rnd]
        for i, x in enumerate(limbs):
            if i != j:
                h = mix64(x ^ h)
        return umod(h, self.radices[j], plus)

    def __call__(self, limbs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The permuted limbs (new tensors; int64, limbs[j] < radices[j])."""
        limbs = list(limbs)
        t = len(limbs)
        for rnd in range(len(self.keys)):
            j = rnd % t
            if self.tables is None:
                limbs[j] = self._f(rnd, limbs, limbs[j])
            else:
                limbs[j] = add_mod(limbs[j], self.tables[rnd].index_select(0, limbs[1 - j]), self.radices[j])
        return limbs


def _gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a 2-D table: [*index.shape, table.shape[1]] (index_select, torch's fast gather)."""
    return table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[1])


def _token_dtype(cfg: SRHMConfig) -> torch.dtype:
    """uint8 when v < 255, else int32: the dtype of the stream's tokens (``encoding.torch_tokens``)."""
    return torch.uint8 if cfg.v < 255 else torch.int32


class TorchGenerator:
    """Rows, expansion and perturbations of one config on one torch device (format.md §3-§6).

    Bit-identical to :func:`srhm_datasets.generate` and :func:`srhm_datasets.perturb`
    (golden hashes in the tests); ``SRHMStream(..., device=...)`` uses it.

    Parameters
    ----------
    cfg : SRHMConfig
        The config.
    device : torch.device or str or None
        ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; None is
        :func:`~srhm_datasets.torch.default_device`.

    Raises
    ------
    TypeError
        ``cfg`` is not an SRHMConfig.
    ValueError
        An unknown or absent device, before any table is built.

    Notes
    -----
    Building it computes the config's tables with numpy and copies them to the device
    (rules and leaf patches at most 32 + 64 MB by the config bounds, the permutation
    table of a space up to 2**20 8 MB, Feistel round tables 3 MB); afterwards no call
    moves data between host and device except the one-element counts of cycle walking
    (spaces 2**20 < P_max < 2**62) and the min/max checks of user batches.

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> from srhm_datasets.torch import TorchGenerator
    >>> cfg = srhm.get_config("demo")
    >>> gen = TorchGenerator(cfg, "cpu")
    >>> rows = gen.rows("train", 0, 4)  # the columns of generate, as int tensors on the device
    >>> rows["tokens"].shape, rows["tokens"].dtype, rows["label"]
    (torch.Size([4, 16]), torch.uint8, tensor([1, 1, 2, 3]))
    >>> bool((rows["tokens"].numpy() == srhm.generate(cfg, "train", 0, 4)["tokens"]).all())
    True
    >>> gen.perturb(rows, "diffeo", level=2).shape
    torch.Size([4, 16])
    """

    def __init__(self, cfg: SRHMConfig, device=None):
        self.cfg = check_config(cfg)
        self.device = torch.device(check_device(device))
        self.token_dtype = _token_dtype(cfg)
        put = self._put
        self._rules = [put(t.reshape(-1, cfg.s)) for t in sample_rules(cfg)]  # row a*m + r
        self._slots = put(placement_slots(cfg.s, cfg.s0, cfg.sparsity))
        patches = leaf_patches(cfg, np.dtype(np.uint8 if self.token_dtype == torch.uint8 else np.int32))
        self._patches = None if patches is None else put(patches)
        self._layout = layout(cfg)
        key = sampler_key(cfg)
        P = cfg.data_space_size
        single = len(self._layout.radices) == 1
        self._table = self._feistel = None
        if single and P <= TABLE_MAX:
            self._table = put(permute_int(np.arange(P), P, key))
        elif single:  # the two-limb Feistel on [0, a*b) of sampler.permute_int
            self._a = math.isqrt(P - 1) + 1
            self._feistel = Feistel(key, (self._a, -(-P // self._a)), self.device)
        else:
            self._feistel = Feistel(key, self._layout.radices, self.device)

    def _put(self, array: np.ndarray) -> torch.Tensor:
        return torch.tensor(array, device=self.device)

    # ---- sampler (format.md §5) -------------------------------------------------------
    def _permute_int(self, g: torch.Tensor, n: int) -> torch.Tensor:
        """``sampler.permute_int`` of int64 indices g in [0, n), n < 2**62 (one limb)."""
        if self._table is not None:
            return self._table.index_select(0, g)
        a = self._a
        out, todo, x = g, None, g
        while True:  # cycle walking: re-apply until the value falls in [0, n)
            lo, hi = self._feistel([torch.remainder(x, a), torch.div(x, a, rounding_mode="floor")])
            x = hi.mul_(a).add_(lo)
            if todo is None:
                out = x
            else:
                out[todo] = x
            bad = torch.nonzero(x >= n).flatten()
            if not bad.numel():  # one small device-to-host count per pass
                return out
            todo = bad if todo is None else todo[bad]
            x = x[bad]

    def _limbs(self, g: torch.Tensor) -> list[torch.Tensor]:
        """The permuted limb values of global indices g (int64, < 2**62)."""
        radices = self._layout.radices
        if len(radices) == 1:
            return [self._permute_int(g, radices[0])]
        limbs, rest = [], g
        for D in radices:  # sampler._split_index
            limbs.append(torch.remainder(rest, D))
            rest = torch.div(rest, D, rounding_mode="floor")
        return self._feistel(limbs)

    def _digit_rows(self, g: torch.Tensor) -> torch.Tensor:
        """Digits [1 + 2N, n] int64 of global indices g [n] (``sampler.permuted_digits`` transposed:
        one contiguous row per digit); g in [0, min(P_max, 2**62)), not checked."""
        lay = self._layout
        digits = torch.zeros((len(lay.digit_radices), g.shape[0]), dtype=torch.int64, device=self.device)
        for x, pieces in zip(self._limbs(g), lay.limbs):
            for digit, radix, weight in pieces[:-1]:
                q = torch.div(x, radix, rounding_mode="floor")
                piece = x - q * radix
                digits[digit] += piece if weight == 1 else piece * weight
                x = q
            digit, _, weight = pieces[-1]
            digits[digit] += x if weight == 1 else x * weight  # the last piece: what is left of the limb
        return digits

    def rows(self, split: str, start: int, stop: int, columns=COLUMNS) -> dict[str, torch.Tensor]:
        """Rows start..stop-1 of a split on this device (``generate.generate``, format.md §4-§5).

        Returns the ``columns`` (default all of ``generate.COLUMNS``) of
        ``generate(cfg, split, start, stop)``, contiguous on this device: tokens [n, d]
        (uint8 if v < 255 else int32, blank = v), label [n] int64, latents / synonyms /
        placements [n, N] int64, heap order. Memory O(n (d + N)) on the device.
        Raises ValueError naming split, start or stop unless 0 <= start <= stop <= the
        split's size, or naming columns unless each is one of ``COLUMNS``.
        """
        start, stop = check_range(self.cfg, split, start, stop)
        ok = isinstance(columns, (tuple, list)) and set(columns) <= set(COLUMNS)
        require(ok, "columns", columns, f"a tuple or list of names from {COLUMNS}")
        offset = self.cfg.split_offset(split)
        g = torch.arange(offset + start, offset + stop, dtype=torch.int64, device=self.device)
        digits = self._digit_rows(g)
        label, synonyms, placements = digits[0], digits[1::2].T, digits[2::2].T
        latents, tokens = self._expand(label, synonyms, placements)
        out = dict(zip(COLUMNS, (tokens, label, latents, synonyms, placements)))
        return {c: out[c].contiguous() for c in columns}

    # ---- expansion (format.md §3-§4) --------------------------------------------------
    def expand(self, label, synonyms, placements) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents [n, N] int64 and tokens [n, d] (``token_dtype``) of samples given by their indices.

        ``generate.expand`` on this device: label [n] in [0, nc), synonyms [n, N] in [0, m),
        placements [n, N] in [0, K), integer tensors (moved to this device if elsewhere).
        Raises ValueError naming the column whose dtype, shape or values do not fit cfg.
        """
        batch = self.check_batch({"label": label, "synonyms": synonyms, "placements": placements})
        return self._expand(batch["label"], batch["synonyms"], batch["placements"])

    def _expand(self, label, synonyms, placements) -> tuple[torch.Tensor, torch.Tensor]:
        """``generate._expand`` with int64 arguments on this device known to fit cfg."""
        cfg, dev = self.cfg, self.device
        n, K = synonyms.shape[0], cfg.placements_per_node
        symbols = label.reshape(n, 1)
        start = (torch.arange(n, dtype=torch.int64, device=dev) * cfg.d).reshape(n, 1)
        latents = torch.empty((n, cfg.num_nodes), dtype=torch.int64, device=dev)
        tokens = torch.full((n, cfg.d), cfg.blank, dtype=self.token_dtype, device=dev)
        for k in range(cfg.L):
            nodes = slice(cfg.depth_nodes(k).start, cfg.depth_nodes(k).stop)
            latents[:, nodes] = symbols
            if k == cfg.L - 1 and self._patches is not None:  # copy whole leaf patches
                leaf = (symbols * cfg.m + synonyms[:, nodes]) * K + placements[:, nodes]
                at = torch.div(start, cfg.S, rounding_mode="floor").reshape(-1)
                tokens.view(-1, cfg.S).index_copy_(0, at, self._patches.index_select(0, leaf.reshape(-1)))
                return latents, tokens
            block = cfg.S ** (cfg.L - k - 1)  # size of the block owned by one slot
            children = _gather_rows(self._rules[k], symbols * cfg.m + synonyms[:, nodes])  # [n, s**k, s]
            width = cfg.s ** (k + 1)
            start = (start[:, :, None] + _gather_rows(self._slots, placements[:, nodes]) * block).reshape(n, width)
            symbols = children.reshape(n, width)
        tokens.view(-1).index_copy_(0, start.reshape(-1), symbols.reshape(-1).to(self.token_dtype))
        return latents, tokens

    def check_batch(self, batch, columns=("label", "synonyms", "placements")) -> dict[str, torch.Tensor]:
        """The named columns of ``batch`` as int64 tensors on this device, checked against cfg.

        Each must be an integer tensor or array shaped as ``generate.column_shapes`` (n from
        the first column) with values in 0..``generate.column_bounds``. Raises ValueError
        naming the column, e.g. ``batch['synonyms']``. One min/max reduction per column (a
        device sync on an accelerator).
        """
        require(isinstance(batch, dict), "batch", batch, "a dict of column tensors")
        out = {}
        for name in columns:
            require(name in batch, "batch", sorted(map(str, batch)), f"a dict with the column {name!r}")
            out[name] = self._check_column(name, batch[name])
        n = out[columns[0]].shape[0] if out[columns[0]].ndim else 0
        for name, values in out.items():
            shape = column_shapes(self.cfg, n)[name]
            require(tuple(values.shape) == shape, f"batch[{name!r}].shape", tuple(values.shape), f"== {shape}")
        return out

    def _check_column(self, name: str, values) -> torch.Tensor:
        """One column as int64 on this device: arrays and lists checked by ``generate.check_column``,
        tensors (on any device) by the same rules with one min/max reduction where they live."""
        if not isinstance(values, torch.Tensor):
            return torch.from_numpy(check_column(self.cfg, name, values).astype(np.int64)).to(self.device)
        bad = values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool
        require(not bad, f"batch[{name!r}].dtype", str(values.dtype), "an integer dtype")
        values = values.long().to(self.device)
        if values.numel():
            low, high = (int(v) for v in torch.aminmax(values))
            require(low >= 0, f"min(batch[{name!r}])", low, ">= 0")
            bound = column_bounds(self.cfg)[name]
            require(high <= bound, f"max(batch[{name!r}])", high, f"<= {bound} for {self.cfg.name}")
        return values

    # ---- perturbations (format.md §6) -------------------------------------------------
    def perturb_indices(
        self, batch: dict, kind: str, level: int, force: bool = True, key: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """New (synonyms, placements), int64 [n, N] on this device (``perturb.perturb_indices``).

        ``batch``: label [n], synonyms [n, N], placements [n, N] (tensors or arrays). The
        arguments are checked by the numpy ``perturb_indices`` on zero rows, so errors are
        the same: ValueError naming kind (synonym / diffeo), level (1..L), force (a bool),
        key (in [0, 2**64)), m or placements_per_node (a forced change needs >= 2), or the
        batch column that does not fit cfg.
        """
        batch = self._check_perturbation(batch, kind, level, force, key)
        return self._perturb_indices(batch, kind, int(level), bool(force), int(key))

    def _check_perturbation(self, batch, kind, level, force, key) -> dict[str, torch.Tensor]:
        """The batch's index columns on this device; the scalar arguments checked by numpy on zero rows."""
        empty = {c: np.zeros(shape, np.int64) for c, shape in column_shapes(self.cfg, 0).items()}
        perturb_indices(self.cfg, empty, kind, level, force, key)
        return self.check_batch(batch)

    def _perturb_indices(self, batch: dict, kind: str, level: int, force: bool, key: int):
        cfg = self.cfg
        radix = cfg.m if kind == "synonym" else cfg.placements_per_node
        synonyms, placements = batch["synonyms"].clone(), batch["placements"].clone()
        target = synonyms if kind == "synonym" else placements
        k = cfg.L - level
        first = cfg.depth_nodes(k).start
        nodes = torch.arange(first, cfg.num_nodes, dtype=torch.int64, device=self.device)
        node_keys = hash_with(perturb_key(cfg, kind, level, key), nodes)
        draws = mix64(self._fingerprint(batch)[:, None] ^ node_keys[None, :])  # [n, nodes]
        fresh = umod(draws, radix)
        if force:  # depth-k nodes take one of the radix-1 other values
            width = cfg.s**k
            shift = 1 + umod(draws[:, :width], radix - 1)
            fresh[:, :width] = torch.remainder(target[:, first : first + width] + shift, radix)
        target[:, first:] = fresh
        return synonyms, placements

    @staticmethod
    def _fingerprint(batch: dict) -> torch.Tensor:
        """``perturb.fingerprint``: int64 [n] hash of each sample's (label, synonyms, placements)."""
        h = hash_with(0, batch["label"])
        for column in ("synonyms", "placements"):
            for col in batch[column].T:
                h = mix64(h ^ col)
        return h

    def perturb(self, batch: dict, kind: str, level: int, force: bool = True, key: int = 0) -> torch.Tensor:
        """Tokens [n, d] (``token_dtype``) of the batch's samples perturbed at level l (``perturb.perturb``).

        Arguments and errors as :meth:`perturb_indices`; the values equal numpy's.
        """
        batch = self._check_perturbation(batch, kind, level, force, key)
        synonyms, placements = self._perturb_indices(batch, kind, int(level), bool(force), int(key))
        return self._expand(batch["label"], synonyms, placements)[1]


@lru_cache(maxsize=8)
def device_generator(cfg: SRHMConfig, device: str) -> TorchGenerator:
    """A cached :class:`TorchGenerator` (tables built once per config and device string)."""
    return TorchGenerator(cfg, device)
