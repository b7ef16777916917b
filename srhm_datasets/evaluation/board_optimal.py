"""The leaderboard's limit rows: Bayes-optimal figures written by ``srhm optimal --json`` (format.md §16.3).

A JSON object holding ``OPTIMAL_KEYS`` is a Bayes-optimal file: found among the JSON files
under RESULTS_DIR that are not results files, and in the ``--optimal`` files and folders.
Its config and task (``task``, ``context``, ``mask_rate``, ``noise``) give the (config,
task) it bounds (``board_entries.task_label``). A file is rejected with the reason when its
config does not resolve, its task options do not fit, or its figures cannot be those of exact
inference on its rows (``figures_mismatch``, no computation: rows within the split, the scored
count of the task, errors within the chance error, 0 for the noise-free ``class`` task whose
label is a function of the input, errors and cross-entropies within the bounds that tie them);
with ``verify`` also when the figures computed again by exact BP (``bayes_optimal``) on its
rows differ (``recomputed_mismatch``). With several files for one (config, task), the one
scored on the most rows is kept (ties: the first path). Its ``expected_error`` is the limit
the board shows and subtracts for P* (``board_pstar``). A file not used, superseded by another
of its (config, task) or bounding a (config, task) without accepted results (``unused_limits``),
is listed with the reason.

No predictor beats the Bayes-optimal error of the same rows beyond sampling noise:
``below_limit`` rejects a results file whose test error lies below its (config, task)'s limit
by more than ``limit_tolerance`` (a model that sees what it predicts, or a wrong limit file).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..bayes_optimal import optimal_figures
from ..catalog import get_config
from ..config import SPLITS, SRHMConfig, is_int, is_real
from ..protocol import chance_error, target_classes
from ..tasks import Task, make_task
from .board_entries import Entry, Rejection, find_results, label_of, test_rows

#: Keys that make a JSON object a Bayes-optimal file.
OPTIMAL_KEYS = ("config", "task", "rows", "scored", "expected_error", "empirical_error")
#: Figures in [0, 1] (errors) and >= 0 (cross-entropies, nats) the board reads.
ERRORS = ("expected_error", "empirical_error")
ENTROPIES = ("expected_cross_entropy", "empirical_cross_entropy")
#: Float rounding allowed between figures that must be equal (a sum over rows in another order).
ROUNDING = 1e-9
#: Standard errors of sampling noise within which two estimates of one Bayes-optimal error agree (format.md §12.4).
LIMIT_Z = 4
#: Evidence cells (rows x d x (v + 1)) ``verify`` computes again per Bayes-optimal file by exact BP, about 3 to
#: 15 s on one core: a file on more rows is checked on its first rows within this budget.
VERIFY_CELLS = 1 << 25


def read_json(path: Path):
    """The JSON value of ``path``, or None when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def is_optimal(obj) -> bool:
    """A JSON object with every one of ``OPTIMAL_KEYS``."""
    return isinstance(obj, dict) and all(k in obj for k in OPTIMAL_KEYS)


def optimal_key(obj: dict, verify: bool = False) -> tuple[tuple[str, str], dict]:
    """((config, task label), figures) of a Bayes-optimal object; ValueError saying which field is wrong, or
    why the figures cannot be those of exact inference on its rows (``figures_mismatch``; with ``verify``,
    ``recomputed_mismatch``).

    Examples
    --------
    >>> obj = {"config": "demo", "task": "class", "noise": 0.1, "rows": 500, "scored": 500,
    ...        "expected_error": 0.213, "empirical_error": 0.218}
    >>> optimal_key(obj)[0]
    ('A_L2_s2_s0-1_v4_nc4_m4_seed0', 'class noise=0.1')
    >>> optimal_key({**obj, "noise": 0.0})
    Traceback (most recent call last):
    ...
    ValueError: expected_error=0.213: must be 0 for the class task without noise (the label is a function of the input)
    """
    cfg = get_config(obj["config"])
    if not (is_int(obj["rows"]) and obj["rows"] >= 1 and is_int(obj["scored"]) and obj["scored"] >= 0):
        raise ValueError(f"rows={obj['rows']!r}, scored={obj['scored']!r}: must be ints, rows >= 1, scored >= 0")
    for key in ERRORS + ENTROPIES:
        value, top = obj.get(key), 1.0 if key in ERRORS else math.inf
        if (key in ERRORS or value is not None) and not (is_real(value) and 0.0 <= value <= top):
            raise ValueError(f"{key}={value!r}: must be a finite number in [0, {top:g}]")
    noise = obj.get("noise")
    task = make_task(cfg, obj["task"], context=obj.get("context"), mask_rate=obj.get("mask_rate"), noise=noise or 0.0)
    why = figures_mismatch(cfg, task, obj) or (recomputed_mismatch(cfg, task, obj) if verify else None)
    if why:
        raise ValueError(why)
    figures = {k: obj.get(k) for k in ("split", "rows", "scored") + ERRORS + ENTROPIES}
    return (cfg.name, label_of(task)), figures


def _fano(error: float, classes: int) -> float:
    """The most entropy (nats) a posterior over ``classes`` values can have when its largest probability is
    1 - ``error``: h(error) + error log(classes - 1) (Fano's inequality)."""
    h = -sum(p * math.log(p) for p in (error, 1.0 - error) if p > 0)
    return h + error * math.log(classes - 1)


def figures_mismatch(cfg: SRHMConfig, task: Task, obj: dict) -> str | None:
    """Why a Bayes-optimal file's figures cannot be those of exact inference of ``task`` on its rows, read from
    the file alone (format.md §12.4), or None.

    Its ``rows`` lie in its split; ``scored`` is the task's count of targets on them (one per row for
    ``class`` and ``last``, d - 1 for ``next``, at most the s**L informative positions for ``mlm``); the
    expected error is at most the chance error 1 - 1/C (the posterior's largest probability is at least
    1/C), and 0 for ``class`` without noise (the label is a function of the input); the expected
    cross-entropy H (when given) is at most log C, and ties the expected error e: e <= 1 - exp(-H) (the
    largest probability is at least exp(-H)) and H <= h(e) + e log(C - 1) (Fano), both kept by the mean
    over targets.
    """
    split, rows, scored = obj.get("split") or "test", obj["rows"], obj["scored"]
    if split not in SPLITS:
        return f"split={split!r}: must be one of {SPLITS}"
    if rows > cfg.split_sizes()[split]:
        return f"rows={rows}: split {split} of {cfg.name} has {cfg.split_sizes()[split]} rows"
    per_row = {"next": cfg.d - 1, "mlm": cfg.s**cfg.L}.get(task.name, 1)
    if scored > rows * per_row or (task.name != "mlm" and scored != rows * per_row):
        bound = "at most" if task.name == "mlm" else "exactly"
        return f"scored={scored}: task {task.name} scores {bound} {per_row} target(s) per row, {rows * per_row} here"
    error, classes = obj["expected_error"], target_classes(cfg, task.name)
    if task.name == "class" and not task.noise:
        figures = {k: obj.get(k) or 0.0 for k in ERRORS + ENTROPIES}
        for key, value in figures.items():
            if value > ROUNDING:
                return (
                    f"{key}={value!r}: must be 0 for the class task without noise (the label is a function of "
                    "the input)"
                )
    if error > chance_error(cfg, task.name) + ROUNDING:
        return f"expected_error={error!r}: above the chance error 1 - 1/{classes} of task {task.name}"
    entropy = obj.get("expected_cross_entropy")
    if entropy is not None:
        if entropy > math.log(classes) + ROUNDING:
            return f"expected_cross_entropy={entropy!r}: above log {classes}, the entropy of a uniform posterior"
        if error > 1.0 - math.exp(-entropy) + ROUNDING or entropy > _fano(error, classes) + ROUNDING:
            return (
                f"expected_error={error!r} and expected_cross_entropy={entropy!r} do not fit: a posterior error e "
                f"and entropy H satisfy e <= 1 - exp(-H) and H <= h(e) + e log(C - 1), C = {classes}"
            )
    return None


def _noise_bound(errors, n: int) -> float:
    """``LIMIT_Z`` binomial standard errors over ``n`` rows of the largest variance e(1 - e) of ``errors``, plus
    one row."""
    return LIMIT_Z * math.sqrt(max(e * (1.0 - e) for e in errors) / n) + 1.0 / n


def recomputed_mismatch(cfg: SRHMConfig, task: Task, obj: dict) -> str | None:
    """Why a Bayes-optimal file's errors are not those exact BP (``bayes_optimal.optimal_figures``) gives on its
    rows, or None: on all its rows when they hold at most ``VERIFY_CELLS`` evidence cells (equal up to
    ``ROUNDING``), else on its first rows within that budget (equal up to sampling noise, ``_noise_bound``)."""
    rows, split = obj["rows"], obj.get("split") or "test"
    n = min(rows, max(1, VERIFY_CELLS // (cfg.d * (cfg.v + 1))))
    again = optimal_figures(cfg, task.name, split, n, task.context, task.mask_rate, task.noise)
    for key in ERRORS:
        tolerance = ROUNDING if n == rows else _noise_bound((obj[key], again[key]), n)
        if abs(obj[key] - again[key]) > tolerance:
            where = f"its {rows} {split} rows" if n == rows else f"the first {n} of its {rows} {split} rows"
            return (
                f"mismatch: {key} {obj[key]:.6g} in the file, {again[key]:.6g} by exact BP (srhm optimal) on "
                f"{where} (tolerance {tolerance:.3g})"
            )
    return None


def candidate_files(paths) -> list[Path]:
    """The JSON files named by ``paths`` (a file, or every ``*.json`` under a folder), in order (the paths
    exist: ``leaderboard.check_board_options``)."""
    found = []
    for path in map(Path, paths):
        found += find_results(path) if path.is_dir() else [path]
    return found


def collect_limits(paths, verify: bool = False) -> tuple[dict, list[Rejection], list[str], list[Rejection]]:
    """(limits, rejected, not optimal, superseded) over the JSON files ``paths``.

    ``limits``: (config, task) -> figures plus ``path``; ``rejected``: the files ``optimal_key`` refuses
    (with ``verify``, also those whose figures exact BP does not give again); ``not optimal``: the paths
    that hold no Bayes-optimal object (left for the caller to report as ignored); ``superseded``: the
    Bayes-optimal files of a (config, task) that another file, on more rows, bounds.
    """
    found, rejected, others = {}, [], []
    for path in paths:
        obj = read_json(path)
        if not is_optimal(obj):
            others.append(str(path))
            continue
        try:
            key, figures = optimal_key(obj, verify)
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


def limit_tolerance(limit: dict, rows: int) -> float:
    """How far below the limit's ``expected_error`` e a test error on ``rows`` test rows may lie by sampling
    noise alone (format.md §12.4): ``LIMIT_Z`` standard errors of the two estimates, sqrt(e (1 - e) (1/rows +
    1/limit rows)), plus one row, 1/rows. Rows, not scored targets: the targets of one row are not
    independent, and a row's mean error in [0, 1] with mean mu has a variance of at most mu (1 - mu).

    Examples
    --------
    >>> round(limit_tolerance({"expected_error": 0.2236, "rows": 3276}, 3276), 4)
    0.0415
    """
    e = limit["expected_error"]
    return LIMIT_Z * math.sqrt(e * (1.0 - e) * (1.0 / rows + 1.0 / limit["rows"])) + 1.0 / rows


def below_limit(entries: list[Entry], limits: dict) -> tuple[list[Entry], list[Rejection]]:
    """(kept, rejected): the entries whose test error lies below the Bayes-optimal error of their (config,
    task) by more than ``limit_tolerance`` are rejected, with what that suggests."""
    kept, rejected = [], []
    for entry in entries:
        limit = limits.get((entry.config, entry.task))
        rows = test_rows(entry)
        if limit is None or entry.test_error >= limit["expected_error"] - limit_tolerance(limit, rows):
            kept.append(entry)
            continue
        rejected.append(
            Rejection(
                entry.path,
                f"below the Bayes-optimal limit: test error {entry.test_error:.4g} on {rows} test rows, "
                f"{limit['expected_error']:.4g} for exact BP ({limit['path']}, {limit['rows']} rows) on "
                f"{entry.task}, lower by more than sampling noise allows ({limit_tolerance(limit, rows):.3g}: "
                f"{LIMIT_Z} standard errors plus one row). No predictor does that: a model that sees what it "
                "predicts (a non-causal next-token model, targets leaking into the inputs) or a wrong limit file",
            )
        )
    return kept, rejected
