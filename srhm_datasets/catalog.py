"""Named configurations of a release (the catalog), and CONFIG arguments (``get_config``).

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

from .config import ParameterTypeError, SRHMConfig, check_config, did_you_mean, is_canonical_name, require

#: Version of the data release this catalog describes.
RELEASE_VERSION = "1.0.0"

#: The paper's grids; exposed so that tests and docs can refer to them.
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


def get_config(config) -> SRHMConfig:
    """The config a name stands for: a catalog name, a canonical name, or a config itself.

    The one way to turn a user's CONFIG (a command-line argument, a sweep file entry, a
    Python argument) into an :class:`~srhm_datasets.SRHMConfig` (format.md §1.5).

    Parameters
    ----------
    config : str or SRHMConfig
        A catalog name (``"demo"``, ``"fig1"``, ``"grid_L2_s0-1_v8"``, ...; see
        :func:`list_configs`), a canonical name (``SRHMConfig.name``, e.g.
        ``"A_L2_s2_s0-2_v10_nc10_m10_seed1"``), or an ``SRHMConfig``, returned as it is.

    Returns
    -------
    SRHMConfig
        The catalog's entry for a catalog name, else the config the canonical name encodes.

    Raises
    ------
    TypeError
        ``config`` is neither a str nor an SRHMConfig (``config.ParameterTypeError``).
    ValueError
        Any other string, naming it, with the closest catalog names ("did you mean"); a
        canonical name whose parameters break a bound of format.md §1 names that parameter.

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> cfg = srhm.get_config("fig1")
    >>> cfg.name
    'A_L2_s2_s0-2_v10_nc10_m10_seed1'
    >>> srhm.get_config(cfg.name) == cfg
    True
    >>> srhm.get_config("fig_1")
    Traceback (most recent call last):
    ...
    ValueError: invalid parameter config='fig_1': must satisfy a catalog name ...; did you mean 'fig1'?
    """
    if isinstance(config, SRHMConfig):
        return config
    require(
        isinstance(config, str),
        "config",
        config,
        "an SRHMConfig, a catalog name or a canonical name",
        ParameterTypeError,
    )
    if config in CATALOG:
        return CATALOG[config]
    if not is_canonical_name(config):
        require(
            False,
            "config",
            config,
            f"a catalog name ({len(CATALOG)} in all: `srhm configs` or srhm_datasets.list_configs() lists them) "
            "or a canonical config name such as 'A_L2_s2_s0-2_v10_nc10_m10_seed1'" + did_you_mean(config, CATALOG),
        )
    return SRHMConfig.from_name(config)  # parameter errors name the parameter


def list_configs() -> list[str]:
    """The catalog's names, in catalog order (format.md §1.5).

    Returns
    -------
    list of str
        ``demo``, ``fig1``, then the Fig. 4 grids ``grid_L{L}_s0-{s0}_v{v}``, the s = 3 entries
        ``s3_L{L}_s0-{s0}_v{v}`` and the sparsity-B entries ``sparseB_L{L}_s0-{s0}_v{v}``; each
        is a CONFIG of :func:`get_config`, ``srhm`` commands and a release's Hugging Face config.

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> names = srhm.list_configs()
    >>> names[:2], len(names)
    (['demo', 'fig1'], 129)
    >>> srhm.get_config(names[0]).d
    16
    """
    return list(CATALOG)


def catalog_name(cfg: SRHMConfig) -> str | None:
    """The catalog name of a config, if it has one."""
    check_config(cfg)
    return next((name for name, c in CATALOG.items() if c == cfg), None)


def release_name(cfg: SRHMConfig) -> str:
    """The config's name in a release (folder, HF config, rules file): catalog name or canonical name."""
    return catalog_name(cfg) or cfg.name
