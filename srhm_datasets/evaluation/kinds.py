"""The two sensitivities (format.md §11) and when each is undefined; no torch.

``KINDS``: ``synonym`` (S, the synonym exchange) and ``diffeo`` (D, the diffeomorphism).
A kind is undefined for a config when its forced change is impossible (format.md §6.3):
the synonym exchange when m = 1, the diffeomorphism when K = 1. Both are undefined for a
model of a task other than ``SENSITIVITY_TASK``: S and D compare a class model's
representations of clean probe rows, which a model of ``last``, ``mlm`` or ``next`` does not
read (its inputs hold MASK codes, or d - 1 positions).
"""

from __future__ import annotations

from ..config import SRHMConfig
from ..perturb import forced_change_possible

KINDS = ("synonym", "diffeo")

#: The task whose models have sensitivities (with or without noise: they are measured on the clean probe).
SENSITIVITY_TASK = "class"


def undefined_kinds(cfg: SRHMConfig, task: str = SENSITIVITY_TASK) -> dict[str, bool]:
    """Which sensitivities are undefined for a model of ``task`` (a task name) on a config: those with no
    forced change (m == 1, K == 1), and both for a task other than ``SENSITIVITY_TASK``.

    Examples
    --------
    >>> from srhm_datasets.catalog import get_config
    >>> undefined_kinds(get_config("demo")), undefined_kinds(get_config("demo"), "last")
    ({'synonym': False, 'diffeo': False}, {'synonym': True, 'diffeo': True})
    """
    if task != SENSITIVITY_TASK:
        return dict.fromkeys(KINDS, True)
    return {kind: not possible for kind, possible in forced_change_possible(cfg).items()}


def why_undefined(kind: str, task: str = SENSITIVITY_TASK) -> str:
    """Why ``kind`` is undefined for a model of ``task`` (when ``undefined_kinds`` says it is), in words.

    Examples
    --------
    >>> why_undefined("synonym"), why_undefined("diffeo", "mlm")
    ('m = 1: no synonym to exchange', 'task mlm: S and D are defined for class models')
    """
    if task != SENSITIVITY_TASK:
        return f"task {task}: S and D are defined for {SENSITIVITY_TASK} models"
    return "m = 1: no synonym to exchange" if kind == "synonym" else "K = 1: no other placement"
