"""Evaluation of SRHM models: sensitivities, test error, results files, leaderboards.

- ``sensitivity``: S_{k,l} and D_{k,l} of any ``torch.nn.Module`` (``compute_sensitivities``).
- ``evaluate``: probe sets, test error, ``evaluate_model`` and ``evaluate_run`` (the
  ``evaluation`` object of a results file).
- ``leaderboard``: ``build_leaderboard`` (``srhm leaderboard``), from ``board_entries``
  (find, accept or reject results files, rank, learning curves and P*), ``board_render``
  (Markdown/HTML pages) and ``board_plots`` (PNG figures).
- ``paper_points``: the paper's P* points (CNN and LCN, sparsity A, s = 2).

Submodules import torch/matplotlib; this package itself imports nothing heavy.
"""

__all__ = ["compute_sensitivities", "evaluate_model", "evaluate_run", "build_leaderboard"]


def __getattr__(name):
    if name == "compute_sensitivities":
        from .sensitivity import compute_sensitivities

        return compute_sensitivities
    if name in ("evaluate_model", "evaluate_run"):
        from . import evaluate

        return getattr(evaluate, name)
    if name == "build_leaderboard":
        from .leaderboard import build_leaderboard

        return build_leaderboard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
