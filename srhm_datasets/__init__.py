"""srhm_datasets: the Sparse Random Hierarchy Model, generated deterministically.

Public names (format.md §9). Heavy libraries (torch, datasets) are imported only by the
submodules that need them, so importing this package is cheap.
"""

from .config import SRHMConfig
from .generate import generate
from .perturb import perturb
from .release.rules_file import load_rules
from .rules import sample_rules
from .version import __version__

__all__ = ["SRHMConfig", "generate", "perturb", "sample_rules", "load_rules", "__version__"]
