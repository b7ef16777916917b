"""Named configurations of a release, and resolution of CONFIG arguments.

A CONFIG argument is either a catalog name (``demo``, ``fig1``, ...) or a canonical
config name (``SRHMConfig.name``). A catalog name is also the Hugging Face config
name of a release: its Parquet shards sit under ``<catalog name>/`` and its rules in
``rules/<catalog name>.json`` (whose ``config`` key holds the canonical name).

Entries (sizes are format.md §5's defaults: train up to 2**20 rows, the paper's largest
training sets being about 10**6):

* ``demo``: tiny and fast, the release's default config.
* ``fig1``: the paper's Fig. 1 instance, L = s = s0 = 2, v = nc = m = 10, sparsity A.
* ``grid_L{L}_s0-{s0}_v{v}``: the CNN/LCN grids of Fig. 4 (sparsity A, s = 2,
  L in {2, 3}, s0 in {0, 1, 2, 4, 6}, v = nc = m in 3..12).
* ``s3_L{L}_s0-{s0}_v{v}``: s = 3 with m = v**2 and nc = v (Figs. 10, 11, 13):
  v in {4, 6} at L = 2, v = 4 at L = 3, s0 in {0, 1, 2, 4, 6}.
* ``sparseB_L{L}_s0-{s0}_v{v}``: sparsity B (Figs. 7, 8), s = 2, v = nc = m in
  {6, 10}, L in {2, 3}, s0 in {1, 2, 4}.

Grid, s3 and sparseB entries use seed 2 (``PAPER_SEED``): ``demo`` (seed 0) equals
the parameters of ``grid_L2_s0-1_v4`` and ``fig1`` (seed 1) those of
``grid_L2_s0-2_v10``, and distinct seeds keep every entry a distinct dataset, so a
config maps back to exactly one catalog name.
"""

from __future__ import annotations

from .config import SRHMConfig, check_config, is_canonical_name, require

#: Version of the data release this catalog describes.
RELEASE_VERSION = "1.0.0"

#: The paper's grids (issue 4); exposed so that tests and docs can refer to them.
GRID_L = (2, 3)
GRID_S0 = (0, 1, 2, 4, 6)
GRID_V = tuple(range(3, 13))
S3_V = {2: (4, 6), 3: (4,)}
SPARSE_B_V = (6, 10)
SPARSE_B_S0 = (1, 2, 4)
PAPER_SEED = 2


def _catalog() -> dict[str, SRHMConfig]:
    entries = {
        # Small and fast: the default config of a release and of the README's demo.
        "demo": SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, sparsity="A", seed=0),
        # The paper's Fig. 1 instance.
        "fig1": SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, sparsity="A", seed=1),
    }
    for L in GRID_L:
        for s0 in GRID_S0:
            for v in GRID_V:
                entries[f"grid_L{L}_s0-{s0}_v{v}"] = SRHMConfig(
                    L=L, s=2, s0=s0, v=v, nc=v, m=v, sparsity="A", seed=PAPER_SEED
                )
    for L, vs in S3_V.items():
        for s0 in GRID_S0:
            for v in vs:
                entries[f"s3_L{L}_s0-{s0}_v{v}"] = SRHMConfig(
                    L=L, s=3, s0=s0, v=v, nc=v, m=v * v, sparsity="A", seed=PAPER_SEED
                )
    for L in GRID_L:
        for s0 in SPARSE_B_S0:
            for v in SPARSE_B_V:
                entries[f"sparseB_L{L}_s0-{s0}_v{v}"] = SRHMConfig(
                    L=L, s=2, s0=s0, v=v, nc=v, m=v, sparsity="B", seed=PAPER_SEED
                )
    return entries


CATALOG: dict[str, SRHMConfig] = _catalog()

#: The config a release marks ``default: true``.
DEFAULT_CONFIG = "demo"


def resolve(name: str) -> SRHMConfig:
    """The config for a catalog name or a canonical config name; ValueError naming CONFIG otherwise."""
    require(isinstance(name, str), "CONFIG", name, "a str")
    if name in CATALOG:
        return CATALOG[name]
    if not is_canonical_name(name):
        raise ValueError(
            f"invalid parameter CONFIG={name!r}: must be a catalog name (e.g. demo, fig1, grid_L2_s0-1_v8; "
            f"{len(CATALOG)} in all, see `srhm_datasets.catalog.CATALOG`) "
            "or a canonical config name such as 'A_L2_s2_s0-2_v10_nc10_m10_seed1'"
        )
    return SRHMConfig.from_name(name)  # parameter errors name the parameter


def catalog_name(cfg: SRHMConfig) -> str | None:
    """The catalog name of a config, if it has one."""
    check_config(cfg)
    return next((name for name, c in CATALOG.items() if c == cfg), None)


def release_name(cfg: SRHMConfig) -> str:
    """The config's name in a release (folder, HF config, rules file): catalog name or canonical name."""
    return catalog_name(cfg) or cfg.name
