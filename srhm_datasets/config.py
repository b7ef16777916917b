"""SRHMConfig: the parameters of SPEC 1, their validation, derived sizes and names.

A config is a frozen value: equal configs generate identical data. Its canonical
name (``cfg.name``) encodes every field, so ``SRHMConfig.from_name(cfg.name) == cfg``;
the name is also the Hugging Face config name and the folder of its Parquet shards.
"""

from __future__ import annotations

import dataclasses
import math
import re
from functools import cached_property

#: Radices must stay below this so that limb arithmetic never overflows int64.
RADIX_BOUND = 2**62
#: Largest vocabulary: the blank token ``v`` must fit in uint16.
MAX_V = 2**16 - 1
#: Placement tables [K, s] are materialised, so K is bounded.
MAX_PLACEMENTS = 2**24
#: Split sizes are global indices of the permuted data space and must fit int64.
MAX_ROWS = 2**62

SPARSITIES = ("A", "B")

_NAME_RE = re.compile(
    r"^(?P<sparsity>[AB])_L(?P<L>\d+)_s(?P<s>\d+)_s0-(?P<s0>\d+)_v(?P<v>\d+)"
    r"_nc(?P<nc>\d+)_m(?P<m>\d+)_seed(?P<seed>\d+)"
    r"(?:_test(?P<n_test>\d+))?(?:_probe(?P<n_probe>\d+))?(?:_train(?P<n_train>\d+))?$"
)


def is_canonical_name(name: str) -> bool:
    """Whether a string has the form of ``SRHMConfig.name`` (values not yet validated)."""
    return _NAME_RE.match(name) is not None


def require(ok: bool, name: str, value, bound: str) -> None:
    """Raise the package's standard ValueError, naming parameter, value and bound, unless ok."""
    if not ok:
        raise ValueError(f"invalid parameter {name}={value!r}: must satisfy {bound}")


@dataclasses.dataclass(frozen=True)
class SRHMConfig:
    """Parameters of one SRHM instance (SPEC 1) and optional split-size overrides.

    ``n_test``, ``n_probe`` and ``n_train`` default to SPEC 5's sizes when None.
    Construction validates everything and raises ``ValueError`` naming the
    parameter, its value and the bound it breaks.
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
        for name in ("L", "s", "s0", "v", "nc", "m", "seed"):
            value = getattr(self, name)
            require(isinstance(value, int) and not isinstance(value, bool), name, value, "an int")
        require(self.sparsity in SPARSITIES, "sparsity", self.sparsity, "one of 'A', 'B'")
        require(self.L >= 1, "L", self.L, "L >= 1")
        require(self.s >= 2, "s", self.s, "s >= 2")
        require(self.s0 >= 0, "s0", self.s0, "s0 >= 0")
        require(self.v >= 2, "v", self.v, "v >= 2")
        require(self.v <= MAX_V, "v", self.v, f"v <= {MAX_V} (the blank token v must fit uint16)")
        require(self.nc >= 2, "nc", self.nc, "nc >= 2")
        require(self.m >= 1, "m", self.m, "m >= 1")
        require(self.seed >= 0, "seed", self.seed, "seed >= 0")
        tuples = self.v**self.s
        require(tuples < RADIX_BOUND, "v**s", tuples, f"v**s < 2**62 (v={self.v}, s={self.s})")
        require(self.nc * self.m <= tuples, "nc*m", self.nc * self.m, f"nc*m <= v**s = {tuples}")
        require(self.v * self.m <= tuples, "v*m", self.v * self.m, f"v*m <= v**s = {tuples}")
        K = self.placements_per_node
        require(
            K <= MAX_PLACEMENTS, "placements_per_node", K, f"<= 2**24 (s={self.s}, s0={self.s0}, sparsity {self.sparsity})"
        )
        P = self.data_space_size
        for split in ("test", "probe", "train"):
            n = getattr(self, f"n_{split}")
            if n is not None:
                require(isinstance(n, int) and n >= 0, f"n_{split}", n, "an int >= 0")
        total = sum(self.split_sizes().values())
        require(
            total <= P and total <= MAX_ROWS,
            "n_test+n_probe+n_train",
            total,
            f"<= data_space_size = {P} (and < 2**62); defaults would be {self._sizes(None, None, None)}",
        )

    # ---- derived sizes (SPEC 1) -------------------------------------------------
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
        if self.sparsity == "A":
            return (self.s0 + 1) ** self.s
        return math.comb(self.S, self.s)

    @cached_property
    def data_space_size(self) -> int:
        """P_max = nc * (m*K)**N, an exact Python int (often far beyond 2**64)."""
        return self.nc * (self.m * self.placements_per_node) ** self.num_nodes

    @property
    def blank(self) -> int:
        """The blank token id, v."""
        return self.v

    def depth_nodes(self, k: int) -> range:
        """Heap indices of the nodes at depth k (0 <= k <= L-1)."""
        first = (self.s**k - 1) // (self.s - 1)
        return range(first, first + self.s**k)

    # ---- splits (SPEC 5) --------------------------------------------------------
    def _sizes(self, n_test: int | None, n_probe: int | None, n_train: int | None) -> dict[str, int]:
        """SPEC 5 sizes, each replaced by its argument unless None; train takes what test and probe leave."""
        P = self.data_space_size
        test = min(20000, P // 5) if n_test is None else n_test
        probe = min(100 * self.nc, P // 5) if n_probe is None else n_probe
        train = max(0, min(2**20, P - test - probe)) if n_train is None else n_train
        return {"train": train, "test": test, "probe": probe}

    def split_sizes(self) -> dict[str, int]:
        """Rows per split: SPEC 5 defaults, replaced by any override."""
        return self._sizes(self.n_test, self.n_probe, self.n_train)

    def split_offset(self, split: str) -> int:
        """First global index of a split: test at 0, probe after test, train last.

        Train comes last so that it can grow without moving the other splits.
        """
        sizes = self.split_sizes()
        offsets = {"test": 0, "probe": sizes["test"], "train": sizes["test"] + sizes["probe"]}
        require(split in offsets, "split", split, "one of 'train', 'test', 'probe'")
        return offsets[split]

    # ---- names ------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Canonical name, e.g. ``A_L2_s2_s0-2_v10_nc10_m10_seed1``."""
        name = (
            f"{self.sparsity}_L{self.L}_s{self.s}_s0-{self.s0}_v{self.v}"
            f"_nc{self.nc}_m{self.m}_seed{self.seed}"
        )
        for split in ("test", "probe", "train"):
            n = getattr(self, f"n_{split}")
            if n is not None:
                name += f"_{split}{n}"
        return name

    @classmethod
    def from_name(cls, name: str) -> SRHMConfig:
        """Inverse of ``name``; raises ValueError on anything else."""
        match = _NAME_RE.match(name)
        if match is None:
            raise ValueError(
                f"invalid parameter name={name!r}: expected a canonical config name such as "
                "'A_L2_s2_s0-2_v10_nc10_m10_seed1'"
            )
        fields = {k: (v if k == "sparsity" else int(v)) for k, v in match.groupdict().items() if v is not None}
        return cls(**fields)

    def parameters(self) -> dict:
        """The SPEC 1 parameters as a plain dict (the rules file's ``parameters``)."""
        keys = ("L", "s", "s0", "v", "nc", "m", "sparsity", "seed")
        return {k: getattr(self, k) for k in keys}
