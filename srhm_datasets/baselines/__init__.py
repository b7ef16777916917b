"""The paper's reference networks and training protocol (format.md §10).

- ``models``: CNN, LCN, FCN in the mean-field parametrisation; ``build_model``.
- ``transformer``: a transformer encoder for every task (format.md §15); ``build_transformer``.
  ``ARCHS`` names all four (``protocol.ARCHS``; ``build_model`` builds ``protocol.HIERARCHICAL_ARCHS``).
- ``train``: one run on ``train[:P]`` (``TrainOptions``, ``train``, ``load_checkpoint``).
- ``learning_curve``: runs over log-spaced P, P* estimate, plot.
- ``cli``: ``srhm train`` and ``srhm learning-curve``.

Lives inside ``srhm_datasets`` so that its import name cannot clash with another
installed package called ``baselines``. Importing this package imports no torch (``srhm
--help`` imports ``cli``); ``models``, ``train`` and their names below do.
"""

from ..protocol import ARCHS

__all__ = ["ARCHS", "HierarchicalNet", "build_model", "count_parameters"]


def __getattr__(name):
    if name in ("HierarchicalNet", "build_model", "count_parameters"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
