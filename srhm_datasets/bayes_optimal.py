"""The Bayes-optimal figures of a task on the rows of a split, by exact BP (format.md §16.3).

Rows of the split are generated block by block, turned into evidence by
``task_evidence`` (the tasks module's evidence) and scored by ``inference.bayes_optimal_sums``; the sums of the
blocks give the figures, so memory is bounded by the block, whatever the split's size. ``srhm optimal``
prints and writes them; the leaderboard's ``--verify`` computes them again for its limit files.
"""

from __future__ import annotations

import numpy as np

from .config import SPLITS, SRHMConfig, check_config, require, require_choice, require_int
from .generate import generate
from .inference import MAX_BYTES, add_sums, bayes_optimal_sums, figures_from_sums
from .tasks import Task, apply_task, make_task

#: Most rows generated and scored at once (fewer when their posteriors [B, d, v+1] would pass max_bytes / 4).
BLOCK = 4096


def task_evidence(cfg: SRHMConfig, task: Task, batch: dict, split: str, start: int):
    """The evidence of a task on rows ``start..`` of a split: (evidence [B, d], truth, scored, causal).

    The tasks module's ``apply_task`` (format.md §15) gives the evidence codes (noise, masks
    and windows drawn exactly as the torch adapters draw them), the scored positions and
    whether the targets are causal; ``truth`` is the labels [B] (``scored`` None: the target
    is the class) or the clean tokens [B, d] with ``scored`` bool [B, d].
    """
    tb = apply_task(cfg, task, batch, split, start)
    if task.name == "class":
        return tb.evidence, batch["label"], None, False
    return tb.evidence, batch["tokens"].astype(np.int64), tb.scored, tb.causal


def check_options(cfg: SRHMConfig, task: str, split: str, rows, context, mask_rate, noise) -> tuple[int, Task]:
    """Every option checked before any work: (rows, the checked task); ValueError naming the parameter,
    value and bound (``tasks.make_task`` for the task's options)."""
    check_config(cfg)
    task = make_task(cfg, task, context=context, mask_rate=mask_rate, noise=noise)
    require_choice("split", split, SPLITS)
    size = cfg.split_sizes()[split]
    rows = size if rows is None else require_int("rows", rows, 1, size, f"the rows of split {split!r}")
    require(rows >= 1, "rows", rows, f">= 1 (split {split!r} of {cfg.name} is empty)")
    return rows, task


def optimal_figures(
    cfg: SRHMConfig,
    task: str = "class",
    split: str = "test",
    rows: int | None = None,
    context: int | None = None,
    mask_rate: float | None = None,
    noise: float = 0.0,
    max_bytes: int = MAX_BYTES,
) -> dict:
    """The Bayes-optimal figures of a task on the first ``rows`` rows of a split (format.md §16.3).

    Returns the dict of ``inference.bayes_optimal`` (``rows``, ``scored``, the errors and
    cross-entropies) with the config, task and options. Raises ValueError naming a bad
    option before any row is generated.

    Examples
    --------
    >>> from srhm_datasets.catalog import CATALOG
    >>> optimal_figures(CATALOG["demo"], "class", rows=100)["empirical_error"]
    0.0
    """
    rows, task = check_options(cfg, task, split, rows, context, mask_rate, noise)
    sums = None
    block = max(1, min(BLOCK, max_bytes // (32 * cfg.d * (cfg.v + 1))))  # the block's posteriors [B, d, v+1]
    for start in range(0, rows, block):
        batch = generate(cfg, split, start, min(rows, start + block))
        evidence, truth, scored, causal = task_evidence(cfg, task, batch, split, start)
        part = bayes_optimal_sums(cfg, evidence, truth, scored, task.noise, causal, max_bytes)
        sums = add_sums(sums, part)
    options = {"context": task.context, "mask_rate": task.mask_rate, "noise": task.noise}
    head = {"config": cfg.name, "task": task.name, "split": split, **options}
    return {**head, **figures_from_sums(sums)}
