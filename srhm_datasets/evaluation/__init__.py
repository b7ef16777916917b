"""Evaluation of SRHM models: sensitivities, test error, results files, leaderboards.

- ``sensitivity``: S_{k,l} and D_{k,l} of any ``torch.nn.Module`` (``compute_sensitivities``).
- ``probes``: probe and test points (release or generator); ``measure``: ``evaluate_model``
  (the ``evaluation`` object of a results file); ``submission``: a user's model and its
  results object; ``evaluate``: ``evaluate_run`` and ``evaluate_factory`` over them.
- ``kinds``: the two sensitivities and when each is undefined (no torch).
- ``leaderboard``: ``build_leaderboard`` (``srhm leaderboard``), from ``board_entries``
  (find, accept or reject results files, rank, learning curves and P*), ``board_render``
  (Markdown/HTML pages) and ``board_plots`` (PNG figures).
- ``paper_points``: the paper's P* points (CNN and LCN, sparsity A, s = 2).

``leaderboard``, ``board_*``, ``kinds`` and ``paper_points`` import no torch (``srhm
leaderboard``); the others do. This package itself imports nothing heavy.
"""

__all__ = ["build_leaderboard", "compute_sensitivities", "evaluate_model", "evaluate_run"]


def __getattr__(name):
    if name == "compute_sensitivities":
        from .sensitivity import compute_sensitivities

        return compute_sensitivities
    if name == "evaluate_model":
        from .measure import evaluate_model

        return evaluate_model
    if name == "evaluate_run":
        from .evaluate import evaluate_run

        return evaluate_run
    if name == "build_leaderboard":
        from .leaderboard import build_leaderboard

        return build_leaderboard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
