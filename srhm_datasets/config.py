"""SRHMConfig: the parameters of format.md §1, their validation, derived sizes and names.

A config is a frozen value: equal configs generate identical data. Its canonical
name (``cfg.name``) encodes every field, so ``get_config(cfg.name) == cfg``; the name is
also the Hugging Face config name and the folder of its Parquet shards.

Public: :class:`SRHMConfig`. The checks (``require``, ``require_int``, ``require_choice``,
``require_type``, ``check_config``, ``ParameterTypeError``) and the number helpers are
internal: the one definition of how the package refuses a parameter (format.md §1.4).
"""

from __future__ import annotations

import dataclasses
import decimal
import difflib
import math
import numbers
import re
from functools import cached_property

# Bounds beyond format.md §1. Each keeps one derived size that allocates memory or time
# small; SRHMConfig checks them in an order where every check only uses quantities
# already bounded, so an invalid config is refused before anything large is computed.
#: Radices must stay below this so that limb arithmetic never overflows int64 (v**s < 2**62).
RADIX_BOUND = 2**62
#: Largest vocabulary: the blank token ``v`` must fit in uint16.
MAX_V = 2**16 - 1
#: Largest s: v**s < 2**62 with v >= 2.
MAX_S = 61
#: Input length d = S**L: one row's tokens stay <= 64 KiB (the catalog's largest d is 9261).
MAX_D = 2**16
#: Entries of the placement table [K, s] (int64, materialised): 32 MiB.
MAX_PLACEMENT_ENTRIES = 2**22
#: Entries of the rule tables, (nc + (L-1)*v)*m*s (int64, materialised and written to
#: the rules file as JSON): 32 MiB.
MAX_RULE_ENTRIES = 2**22
#: log2(P_max): the sampler packs the digits into about log2(P_max)/60 limbs and a row
#: costs O(limbs**2) hashes; P_max in decimal has at most 19,729 digits.
MAX_SPACE_BITS = 2**16
#: Split sizes are ranges of global indices of the permuted data space, which are int64.
#: They allocate nothing by themselves (an endless stream uses rows up to here); ``generate``
#: allocates the rows its caller asks for.
MAX_ROWS = 2**62
#: Seeds are 64-bit.
MAX_SEED = 2**64 - 1
#: Integers with more digits than this are shown compactly by ``format_count``.
EXACT_DIGITS = 30

SPARSITIES = ("A", "B")
SPLITS = ("train", "test", "probe")

#: A number in a canonical name: decimal, no leading zero (one spelling per config).
_NUM = r"(?:0|[1-9]\d*)"
_NAME_RE = re.compile(
    rf"(?P<sparsity>[AB])_L(?P<L>{_NUM})_s(?P<s>{_NUM})_s0-(?P<s0>{_NUM})_v(?P<v>{_NUM})"
    rf"_nc(?P<nc>{_NUM})_m(?P<m>{_NUM})_seed(?P<seed>{_NUM})"
    rf"(?:_test(?P<n_test>{_NUM}))?(?:_probe(?P<n_probe>{_NUM}))?(?:_train(?P<n_train>{_NUM}))?",
    re.ASCII,
)
#: Digits of one number in a canonical name (MAX_SEED has 20).
_MAX_NAME_DIGITS = 20


def is_canonical_name(name: str) -> bool:
    """Whether a string has the form of ``SRHMConfig.name`` (values not yet validated)."""
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


def decimal_digits(n: int) -> int:
    """Number of decimal digits of an int n >= 0, without converting it to text."""
    k = max(1, int((max(n.bit_length(), 1) - 1) * math.log10(2)) + 1)  # within one of the answer
    while n >= 10**k:
        k += 1
    while k > 1 and n < 10 ** (k - 1):
        k -= 1
    return k


def decimal_string(n: int) -> str:
    """The exact decimal text of an int of any size (``str(n)`` refuses more than 4300 digits)."""
    return str(decimal.Decimal(n))


def format_count(n: int) -> str:
    """An int for people: exact up to 30 digits, else ``~1.18e4932 (4933 digits)``.

    Beyond 2**(2**17) (far above any P_max) only the power of two: ``~2^1000000``.
    """
    if abs(n).bit_length() > 2 * MAX_SPACE_BITS:  # keep the decimal arithmetic below small
        return f"{'-' if n < 0 else ''}~2^{abs(n).bit_length() - 1}"
    digits = decimal_digits(abs(n))
    if digits <= EXACT_DIGITS:
        return str(n)
    lead = abs(n) // 10 ** (digits - 3)
    sign = "-" if n < 0 else ""
    return f"{sign}~{lead // 100}.{lead % 100:02d}e{digits - 1} ({digits} digits)"


def _show(value) -> str:
    """repr of a parameter value for an error message, huge ints compact."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return format_count(int(value))
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


class ParameterTypeError(TypeError, ValueError):
    """A parameter of the wrong type (format.md §1.4): a ``TypeError``, as Python's convention has it.

    It is also a ``ValueError``, so that code catching the package's refusal of a parameter
    (``invalid parameter ...``) catches both kinds.
    """


def require(ok: bool, name: str, value, bound: str, error: type[ValueError] = ValueError) -> None:
    """Raise the package's standard ``error`` (ValueError), naming parameter, value and bound, unless ok."""
    if not ok:
        raise error(f"invalid parameter {name}={_show(value)}: must satisfy {bound}")


def is_int(value) -> bool:
    """A Python ``int`` that is not a ``bool`` (``True`` is an int to Python, not a count to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A finite int or float that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require_type(value, types, name: str, expected: str) -> None:
    """``ParameterTypeError`` naming ``name`` unless ``value`` is an instance of ``types`` (a bool is no int)."""
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        require(False, name, value, f"{expected}, not type {type(value).__name__}", ParameterTypeError)


def require_int(name: str, value, low: int | None = None, high: int | None = None, why: str = "") -> int:
    """``value`` as a Python int, checked low <= value <= high (either may be None).

    Python and numpy integers are accepted; a bool, float, string or None raises
    ``ParameterTypeError`` (a ``TypeError``) naming the parameter and the bound ("an int,
    low <= name <= high"), an int out of bounds the package's ``ValueError`` naming the bound
    alone ("low <= name <= high"); ``why`` is appended to either.
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    limits = (f"{low} <= " if low is not None else "") + name + (f" <= {_show(high)}" if high is not None else "")
    why = f" ({why})" if why else ""
    require(ok, name, value, "an int" + (f", {limits}" if limits != name else "") + why, ParameterTypeError)
    value = int(value)
    require((low is None or value >= low) and (high is None or value <= high), name, value, limits + why)
    return value


def require_choice(name: str, value, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of the strings ``choices``; ``ParameterTypeError`` for a non-string,
    the package's ``ValueError`` for another string (with the closest choice, if one is close)."""
    require(isinstance(value, str), name, value, f"one of {choices}", ParameterTypeError)
    require(value in choices, name, value, f"one of {choices}{did_you_mean(value, choices)}")
    return value


def did_you_mean(name: str, choices) -> str:
    """``"; did you mean 'x'?"`` for the choices closest to a mistyped ``name`` (``difflib``), else ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_config(cfg, name: str = "cfg") -> SRHMConfig:
    """``cfg`` if it is an SRHMConfig, else ``ParameterTypeError`` naming ``name``."""
    require(
        isinstance(cfg, SRHMConfig), name, cfg, "an SRHMConfig (srhm_datasets.get_config gives one)", ParameterTypeError
    )
    return cfg


def placement_count(s: int, s0: int, sparsity: str) -> int:
    """K, the placements per node: (s0+1)**s for sparsity A, comb(s(s0+1), s) for B (format.md §3).

    Raises ValueError unless the placement table [K, s] has at most 2**22 entries.
    Arguments must already be bounded ints (s <= 61, s0 < 2**15).
    """
    K = (s0 + 1) ** s if sparsity == "A" else math.comb(s * (s0 + 1), s)
    require(
        K * s <= MAX_PLACEMENT_ENTRIES,
        "placements_per_node*s",
        K * s,
        f"<= 2**22 (the placement table [K, s] is materialised; s={s}, s0={s0}, sparsity {sparsity})",
    )
    return K


@dataclasses.dataclass(frozen=True)
class SRHMConfig:
    """Parameters of one SRHM instance (format.md §1) and optional split-size overrides.

    A frozen value: equal configs generate identical data. Get a named one with
    :func:`srhm_datasets.get_config`; its canonical name ``cfg.name`` (format.md §1.5)
    encodes every field.

    Parameters
    ----------
    L : int
        Depth, the levels of production rules (``1 <= L <= 16``).
    s : int
        Informative children per node (``2 <= s <= 61``).
    s0 : int
        Blanks added per informative child (``s0 >= 0``; 0 is the plain RHM).
    v : int
        Vocabulary size of every level; the blank token is ``v`` (``2 <= v <= 65535``).
    nc : int
        Number of classes, the root symbols (``nc >= 2``).
    m : int
        Synonyms, productions per symbol (``m >= 1``, ``nc*m <= v**s``, ``v*m <= v**s``).
    sparsity : {"A", "B"}
        Where the informative children sit among the ``S = s*(s0+1)`` slots (format.md §3).
    seed : int
        Seed of the rules, the sampling and the perturbations (``0 <= seed < 2**64``).
    n_test, n_probe, n_train : int or None
        Rows of each split; None takes format.md §5.1's default. Part of the name.

    Attributes
    ----------
    S, d, num_informative, num_nodes, placements_per_node, data_space_size, blank : int
        Derived sizes (format.md §1.2): patch size, input length ``S**L``, ``s**L``,
        internal nodes N, placements per node K, P_max (an exact Python int) and ``v``;
        ``name`` is the canonical name (below).

    Raises
    ------
    TypeError
        A parameter of the wrong type (a float, bool, string or None for an int; a
        non-string sparsity): ``config.ParameterTypeError``, also a ``ValueError``.
    ValueError
        A parameter or derived size out of its bound (format.md §1.1, §1.3), naming the
        parameter, its value and the bound, before any large number is computed.

    Notes
    -----
    numpy integers are accepted and stored as Python ints. The bounds beyond format.md
    §1.1 are the module constants ``MAX_*`` (format.md §1.3).

    Examples
    --------
    >>> from srhm_datasets import SRHMConfig
    >>> cfg = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4)
    >>> cfg.name, cfg.d, cfg.num_nodes, cfg.data_space_size
    ('A_L2_s2_s0-1_v4_nc4_m4_seed0', 16, 3, 16384)
    >>> cfg.split_sizes()
    {'train': 12708, 'test': 3276, 'probe': 400}
    >>> SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, n_train=100).name
    'A_L2_s2_s0-1_v4_nc4_m4_seed0_train100'
    >>> SRHMConfig(L="2", s=2, s0=1, v=4, nc=4, m=4)
    Traceback (most recent call last):
    ...
    srhm_datasets.config.ParameterTypeError: invalid parameter L='2': must satisfy an int, 1 <= L <= 16 (...)
    """

    L: int
    s: int
    s0: int
    v: int
    nc: int
    m: int
    sparsity: str = "A"
    seed: int = 0
    n_test: int | None = None
    n_probe: int | None = None
    n_train: int | None = None

    def __post_init__(self) -> None:
        self._check_parameters()
        self._check_sizes()
        self._check_splits()

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # frozen: normalise once, while constructing

    def _check_parameters(self) -> None:
        """Each parameter alone: type, format.md §1's lower bound, and a cap implied by the size bounds."""
        caps = {
            "L": (1, int(math.log2(MAX_D)), "d = S**L >= 2**L must be <= 2**16"),
            "s": (2, MAX_S, "v**s < 2**62 with v >= 2"),
            "s0": (0, MAX_D // 2 - 1, "d >= S = s*(s0+1) must be <= 2**16"),
            "v": (2, MAX_V, "the blank token v must fit uint16"),
            "nc": (2, MAX_RULE_ENTRIES // 2, "the rule tables hold nc*m*s >= 2*nc of at most 2**22 entries"),
            "m": (1, MAX_RULE_ENTRIES // 4, "the rule tables hold nc*m*s >= 4*m of at most 2**22 entries"),
            "seed": (0, MAX_SEED, "a 64-bit seed"),
        }
        for name, (low, high, why) in caps.items():
            self._set(name, require_int(name, getattr(self, name), low, high, why))
        require_choice("sparsity", self.sparsity, SPARSITIES)
        for split in ("test", "probe", "train"):
            n = getattr(self, f"n_{split}")
            if n is not None:
                self._set(f"n_{split}", require_int(f"n_{split}", n, 0, MAX_ROWS, "global indices are int64"))

    def _check_sizes(self) -> None:
        """Derived sizes, each computed only from quantities already bounded."""
        tuples = self.v**self.s  # < 2**(16*61)
        require(tuples < RADIX_BOUND, "v**s", tuples, f"v**s < 2**62 (v={self.v}, s={self.s})")
        require(self.nc * self.m <= tuples, "nc*m", self.nc * self.m, f"nc*m <= v**s = {tuples}")
        require(self.v * self.m <= tuples, "v*m", self.v * self.m, f"v*m <= v**s = {tuples}")
        K = placement_count(self.s, self.s0, self.sparsity)
        rule_entries = (self.nc + (self.L - 1) * self.v) * self.m * self.s
        require(
            rule_entries <= MAX_RULE_ENTRIES,
            "(nc+(L-1)*v)*m*s",
            rule_entries,
            "<= 2**22 (entries of the rule tables, materialised and written to the rules file)",
        )
        require(self.d <= MAX_D, "d", self.d, f"d = S**L <= 2**16 (S={self.S}, L={self.L})")
        bits = math.log2(self.nc) + self.num_nodes * math.log2(self.m * K)
        require(
            bits <= MAX_SPACE_BITS,
            "log2(P_max)",
            round(bits, 1),
            f"<= 2**16 (P_max = nc*(m*K)**N = {self.nc}*{self.m * K}**{self.num_nodes}; "
            "the sampler's cost per row grows with its square)",
        )

    def _check_splits(self) -> None:
        """Split sizes: together at most P_max rows and 2**62 (global indices are int64)."""
        total = sum(self.split_sizes().values())
        require(
            total <= self.data_space_size and total <= MAX_ROWS,
            "n_test+n_probe+n_train",
            total,
            f"<= data_space_size = {format_count(self.data_space_size)} (and <= 2**62); "
            f"defaults would be {self._sizes(None, None, None)}",
        )

    # ---- derived sizes (format.md §1) -------------------------------------------------
    @property
    def S(self) -> int:
        """Patch size s*(s0+1)."""
        return self.s * (self.s0 + 1)

    @property
    def d(self) -> int:
        """Input length S**L."""
        return self.S**self.L

    @property
    def num_informative(self) -> int:
        """Informative (non-blank) input positions, s**L."""
        return self.s**self.L

    @property
    def num_nodes(self) -> int:
        """Internal nodes N = (s**L - 1)/(s - 1), heap-ordered."""
        return (self.s**self.L - 1) // (self.s - 1)

    @property
    def placements_per_node(self) -> int:
        """K: (s0+1)**s for sparsity A, comb(S, s) for sparsity B."""
        return placement_count(self.s, self.s0, self.sparsity)

    @cached_property
    def data_space_size(self) -> int:
        """P_max = nc * (m*K)**N, an exact Python int (often far beyond 2**64, at most 2**65536).

        Print it with ``format_count`` (or ``decimal_string`` for the exact text): ``str`` refuses
        ints of more than 4300 digits.
        """
        return self.nc * (self.m * self.placements_per_node) ** self.num_nodes

    @property
    def blank(self) -> int:
        """The blank token id, v."""
        return self.v

    def depth_nodes(self, k: int) -> range:
        """Heap indices of the nodes at depth k (0 <= k <= L-1); ValueError for any other k."""
        k = require_int("k", k, 0, self.L - 1)
        first = (self.s**k - 1) // (self.s - 1)
        return range(first, first + self.s**k)

    # ---- splits (format.md §5) --------------------------------------------------------
    def _sizes(self, n_test: int | None, n_probe: int | None, n_train: int | None) -> dict[str, int]:
        """format.md §5 sizes, each replaced by its argument unless None; train takes what test and probe leave."""
        P = self.data_space_size
        test = min(20000, P // 5) if n_test is None else n_test
        probe = min(100 * self.nc, P // 5) if n_probe is None else n_probe
        train = max(0, min(2**20, P - test - probe)) if n_train is None else n_train
        return {"train": train, "test": test, "probe": probe}

    def split_sizes(self) -> dict[str, int]:
        """Rows per split: format.md §5 defaults, replaced by any override."""
        return self._sizes(self.n_test, self.n_probe, self.n_train)

    def split_offset(self, split: str) -> int:
        """First global index of a split: test at 0, probe after test, train last.

        Train comes last so that it can grow without moving the other splits.
        """
        require_choice("split", split, SPLITS)
        sizes = self.split_sizes()
        offsets = {"test": 0, "probe": sizes["test"], "train": sizes["test"] + sizes["probe"]}
        return offsets[split]

    # ---- names ------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Canonical name, e.g. ``A_L2_s2_s0-2_v10_nc10_m10_seed1``."""
        name = f"{self.sparsity}_L{self.L}_s{self.s}_s0-{self.s0}_v{self.v}_nc{self.nc}_m{self.m}_seed{self.seed}"
        for split in ("test", "probe", "train"):
            n = getattr(self, f"n_{split}")
            if n is not None:
                name += f"_{split}{n}"
        return name

    @classmethod
    def from_name(cls, name: str) -> SRHMConfig:
        """Inverse of ``name``; raises ValueError on anything else (users call ``get_config``)."""
        match = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
        if match is None:
            raise ValueError(
                f"invalid parameter name={_show(name)}: expected a canonical config name such as "
                "'A_L2_s2_s0-2_v10_nc10_m10_seed1'"
            )
        fields = {k: v for k, v in match.groupdict().items() if v is not None}
        for key, text in fields.items():
            if key != "sparsity":
                require(len(text) <= _MAX_NAME_DIGITS, key, text, f"at most {_MAX_NAME_DIGITS} digits (in name)")
                fields[key] = int(text)
        return cls(**fields)

    def parameters(self) -> dict:
        """The format.md §1 parameters as a plain dict (the rules file's ``parameters``)."""
        keys = ("L", "s", "s0", "v", "nc", "m", "sparsity", "seed")
        return {k: getattr(self, k) for k in keys}
