"""Named configurations of a release, and resolution of CONFIG arguments.

A CONFIG argument is either a catalog name (``demo``, ``fig1``, ...) or a canonical
config name (``SRHMConfig.name``).
"""

from __future__ import annotations

from .config import SRHMConfig, is_canonical_name

#: Version of the data release this catalog describes.
RELEASE_VERSION = "1.0.0"

CATALOG: dict[str, SRHMConfig] = {
    # Small and fast: the default config of a release and of the README's demo.
    "demo": SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, sparsity="A", seed=0),
    # The paper's Fig. 1 instance.
    "fig1": SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, sparsity="A", seed=1),
}


def resolve(name: str) -> SRHMConfig:
    """The config for a catalog name or a canonical config name."""
    if name in CATALOG:
        return CATALOG[name]
    if not is_canonical_name(name):
        raise ValueError(
            f"invalid parameter CONFIG={name!r}: must be a catalog name ({', '.join(CATALOG)}) "
            "or a canonical config name such as 'A_L2_s2_s0-2_v10_nc10_m10_seed1'"
        )
    return SRHMConfig.from_name(name)  # parameter errors name the parameter


def catalog_name(cfg: SRHMConfig) -> str | None:
    """The catalog name of a config, if it has one."""
    return next((name for name, c in CATALOG.items() if c == cfg), None)
