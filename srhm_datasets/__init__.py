"""srhm_datasets: the Sparse Random Hierarchy Model, generated deterministically.

The public names for data (format.md §9.1) are the ones in ``__all__``: a config
(:class:`SRHMConfig`, :func:`get_config`, :func:`list_configs`), its rules
(:func:`sample_rules`, :func:`load_rules`), its rows (:func:`generate`, :func:`perturb`),
a task's inputs and targets on those rows (:func:`make_task`, :func:`apply_task`) and a
published split (:func:`load_split`). The torch adapters are
:mod:`srhm_datasets.torch`; building, verifying and publishing a release,
:mod:`srhm_datasets.release`. Every other module is internal.

Importing this package is cheap: torch, datasets and pyarrow are imported only by the
functions that need them (:func:`load_split` imports ``datasets`` when it is called).
"""

from .catalog import get_config, list_configs
from .config import SRHMConfig
from .generate import generate
from .perturb import perturb
from .release.load import load_split
from .release.rules_file import load_rules
from .rules import sample_rules
from .tasks import apply_task, make_task
from .version import __version__

__all__ = [
    "SRHMConfig",
    "__version__",
    "apply_task",
    "generate",
    "get_config",
    "list_configs",
    "load_rules",
    "load_split",
    "make_task",
    "perturb",
    "sample_rules",
]
