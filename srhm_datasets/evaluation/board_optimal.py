"""The leaderboard's limit rows: Bayes-optimal figures written by ``srhm optimal --json`` (format.md §16.3).

A JSON object holding ``OPTIMAL_KEYS`` is a Bayes-optimal file: found among the JSON files
under RESULTS_DIR that are not results files, and in the ``--optimal`` files and folders.
Its config and task (``task``, ``context``, ``mask_rate``, ``noise``) give the (config,
task) it bounds (``board_entries.task_label``); a file whose config does not resolve, whose
task options do not fit, or whose figures are out of range is rejected with the reason.
With several files for one (config, task), the one scored on the most rows is kept (ties:
the first path). Its ``expected_error`` is the limit the board shows and subtracts for P*
(``board_pstar``). A file not used, superseded by another of its (config, task) or bounding a
(config, task) without accepted results (``unused_limits``), is listed with the reason.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..catalog import get_config
from ..config import is_int, is_real
from .board_entries import Rejection, find_results, task_label

#: Keys that make a JSON object a Bayes-optimal file.
OPTIMAL_KEYS = ("config", "task", "rows", "scored", "expected_error", "empirical_error")
#: Figures in [0, 1] (errors) and >= 0 (cross-entropies, nats) the board reads.
ERRORS = ("expected_error", "empirical_error")
ENTROPIES = ("expected_cross_entropy", "empirical_cross_entropy")


def read_json(path: Path):
    """The JSON value of ``path``, or None when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def is_optimal(obj) -> bool:
    """A JSON object with every one of ``OPTIMAL_KEYS``."""
    return isinstance(obj, dict) and all(k in obj for k in OPTIMAL_KEYS)


def optimal_key(obj: dict) -> tuple[tuple[str, str], dict]:
    """((config, task label), figures) of a Bayes-optimal object; ValueError saying which field is wrong.

    Examples
    --------
    >>> obj = {"config": "demo", "task": "class", "noise": 0.1, "rows": 500, "scored": 500,
    ...        "expected_error": 0.213, "empirical_error": 0.218}
    >>> optimal_key(obj)[0]
    ('A_L2_s2_s0-1_v4_nc4_m4_seed0', 'class noise=0.1')
    """
    cfg = get_config(obj["config"])
    if not (is_int(obj["rows"]) and obj["rows"] >= 1 and is_int(obj["scored"]) and obj["scored"] >= 0):
        raise ValueError(f"rows={obj['rows']!r}, scored={obj['scored']!r}: must be ints, rows >= 1, scored >= 0")
    for key in ERRORS + ENTROPIES:
        value, top = obj.get(key), 1.0 if key in ERRORS else math.inf
        if (key in ERRORS or value is not None) and not (is_real(value) and 0.0 <= value <= top):
            raise ValueError(f"{key}={value!r}: must be a finite number in [0, {top:g}]")
    task = task_label(cfg, obj["task"], obj.get("context"), obj.get("mask_rate"), obj.get("noise"))
    figures = {k: obj.get(k) for k in ("split", "rows", "scored") + ERRORS + ENTROPIES}
    return (cfg.name, task), figures


def candidate_files(paths) -> list[Path]:
    """The JSON files named by ``paths`` (a file, or every ``*.json`` under a folder), in order (the paths
    exist: ``leaderboard.check_board_options``)."""
    found = []
    for path in map(Path, paths):
        found += find_results(path) if path.is_dir() else [path]
    return found


def collect_limits(paths) -> tuple[dict, list[Rejection], list[str], list[Rejection]]:
    """(limits, rejected, not optimal, superseded) over the JSON files ``paths``.

    ``limits``: (config, task) -> figures plus ``path``; ``not optimal``: the paths that
    hold no Bayes-optimal object (left for the caller to report as ignored); ``superseded``:
    the Bayes-optimal files of a (config, task) that another file, on more rows, bounds.
    """
    found, rejected, others = {}, [], []
    for path in paths:
        obj = read_json(path)
        if not is_optimal(obj):
            others.append(str(path))
            continue
        try:
            key, figures = optimal_key(obj)
        except ValueError as err:
            rejected.append(Rejection(str(path), f"Bayes-optimal file: {err}"))
            continue
        found.setdefault(key, []).append({**figures, "path": str(path)})
    limits, superseded = {}, []
    for (config, task), files in found.items():
        kept = limits[config, task] = max(files, key=lambda f: f["rows"])  # the first of the most rows
        why = f"{task} on {config}: superseded by {kept['path']} ({kept['rows']} rows)"
        superseded += [Rejection(f["path"], why) for f in files if f is not kept]
    return limits, rejected, others, superseded


def unused_limits(limits: dict, sections) -> list[Rejection]:
    """The Bayes-optimal files whose (config, task) is none of ``sections`` (the (config, task) pairs with
    accepted results): each with the reason, since its limit row is shown nowhere."""
    return [
        Rejection(limit["path"], f"{task} on {config}: no accepted results of this config and task")
        for (config, task), limit in sorted(limits.items())
        if (config, task) not in sections
    ]
