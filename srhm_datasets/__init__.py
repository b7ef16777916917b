"""srhm_datasets: the Sparse Random Hierarchy Model, generated deterministically.

Public names (format.md §9). Heavy libraries (torch, datasets) are imported only by the
submodules that need them, so importing this package is cheap.
"""

from .config import SRHMConfig
from .generate import generate
from .perturb import perturb
from .rules import sample_rules

__version__ = "0.1.0"

__all__ = ["SRHMConfig", "generate", "perturb", "sample_rules", "load_rules", "__version__"]


def load_rules(repo_or_dir: str, config_name: str, revision: str | None = None) -> dict:
    """The content of ``rules/<config>.json`` from a release folder or a Hub repo."""
    from .release.rules_file import load_rules as _load

    return _load(repo_or_dir, config_name, revision)
