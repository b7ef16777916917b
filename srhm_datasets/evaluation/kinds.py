"""The two sensitivities (format.md §11) and when each is undefined; no torch.

``KINDS``: ``synonym`` (S, the synonym exchange) and ``diffeo`` (D, the diffeomorphism).
A kind is undefined for a config when its forced change is impossible (format.md §6.3):
the synonym exchange when m = 1, the diffeomorphism when K = 1.
"""

from __future__ import annotations

from ..config import SRHMConfig
from ..perturb import forced_change_possible

KINDS = ("synonym", "diffeo")


def undefined_kinds(cfg: SRHMConfig) -> dict[str, bool]:
    """Which sensitivities are undefined for a config: those with no forced change (m == 1, K == 1)."""
    return {kind: not possible for kind, possible in forced_change_possible(cfg).items()}
