"""The leaderboard's learning curves and its P* ranking per (config, task) (format.md §12.4).

A model with at least two P values on a (config, task) has a learning curve: the mean
test error of its files at each P (``learning_curve``; its files share the model name and
the ``protocol.CURVE_SETTINGS``, ``board_entries.label_settings``). Its P* is
``protocol.estimate_p_star`` of that curve, as ``srhm learning-curve`` computes it
(``p_star``), at the threshold ``EPSILON_STAR`` = 0.10 on the *excess* error: the test
error minus the task's Bayes-optimal error when the board has one (``board_optimal``),
i.e. the raw curve crosses ``EPSILON_STAR + optimal``; with no optimal error, or an
optimal error of 0, this is the plain 0.10 rule (an absolute error). Each seed's own curve
gives its own P*; the spread is the min and max of the seeds' P* (``protocol.p_star_spread``: how many
crossed, geometric mean, min, max).

P* is undefined (``p_star_rule``) where the threshold is at or above the chance error of the
task, 1 - 1/C (``protocol.chance_error``, C = ``protocol.target_classes``): a constant
predictor would cross it, so crossing says nothing about learning (``srhm optimal demo --task
last`` is at chance, 0.75: the threshold 0.85 is crossed by any model). Its models get the kind
"undefined" and are not ranked (``unranked``).

Ranking (``ranking``): models whose curve crosses, by P* (an upper bound "<= P_min" counts
as P_min), then models that never cross ("> P_max"), by their test error at their largest
P; ties by name. Controls (shuffled labels), models with one P and models of a (config,
task) whose P* is undefined are not ranked by P* (they stay in the single-P tables).
"""

from __future__ import annotations

import collections

from ..catalog import get_config
from ..protocol import EPSILON_STAR, chance_error, estimate_p_star, law_x, p_star_spread
from .board_entries import Entry

#: ``p_star`` kinds that rank by value (the curve crossed, or was already below at P_min).
CROSSED = ("interpolated", "upper bound")


def p_star_rule(config: str, task: str, limit: dict | None = None) -> dict:
    """How P* is measured on a (config, task label): ``threshold`` (``EPSILON_STAR`` + the Bayes-optimal
    ``expected_error`` of ``limit``, 0 without one), ``chance`` (``protocol.chance_error`` of the task)
    and ``defined`` (threshold < chance: a constant predictor does not cross it).

    Examples
    --------
    >>> p_star_rule("demo", "last", {"expected_error": 0.75})
    {'threshold': 0.85, 'chance': 0.75, 'defined': False}
    >>> p_star_rule("demo", "class")["defined"]
    True
    """
    threshold = EPSILON_STAR + (limit["expected_error"] if limit else 0.0)
    chance = chance_error(get_config(config), task.split()[0])
    return {"threshold": threshold, "chance": chance, "defined": threshold < chance}


def learning_curve(entries: list[Entry]) -> list[tuple[int, float]]:
    """(P, mean test error) sorted by P, for the entries of one model on one config and task."""
    by_p = collections.defaultdict(list)
    for e in entries:
        by_p[e.P].append(e.test_error)
    return [(p, sum(errors) / len(errors)) for p, errors in sorted(by_p.items())]


def p_star(curve: list[tuple[int, float]], epsilon: float = EPSILON_STAR) -> tuple[float | None, str]:
    """P* of a learning curve: (value, "interpolated" | "upper bound" | "not reached" | "no curve").

    The same estimate as ``srhm learning-curve`` (``protocol.estimate_p_star``):
    log P interpolated linearly in the error between the two P around the first crossing
    of ``epsilon``. "upper bound": already below at the smallest P (value = that P).
    Fewer than two P values: (None, "no curve").

    >>> p_star([(100, 0.3), (1000, 0.0)])[1]
    'interpolated'
    """
    if len(curve) < 2:
        return None, "no curve"
    est = estimate_p_star([p for p, _ in curve], [e for _, e in curve], threshold=epsilon)
    if est["status"] == "interpolated":
        return float(est["P_star"]), "interpolated"
    if est["status"] == "below_range":
        return float(curve[0][0]), "upper bound"
    return None, "not reached"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _at_largest_P(group: list[Entry]) -> dict:
    """Mean test error, S_out and D_out of the files at the model's largest P, and whether any was evaluated."""
    P = max(e.P for e in group)
    top = [e for e in group if e.P == P]
    return {
        "P": P,
        "test_error": _mean([e.test_error for e in top]),
        "s_out": _mean([e.s_out for e in top if e.s_out is not None]),
        "d_out": _mean([e.d_out for e in top if e.d_out is not None]),
        "evaluated": any(e.evaluated for e in top),
    }


def _per_seed(group: list[Entry], threshold: float) -> dict | None:
    """``per_seed`` ([{seed, P_star}], P_star None: no crossing or one P) and their spread
    (``protocol.p_star_spread``); None with fewer than two seeds."""
    seeds = sorted({e.seed for e in group if e.seed is not None})
    if len(seeds) < 2:
        return None
    per_seed = []
    for seed in seeds:
        value, kind = p_star(learning_curve([e for e in group if e.seed == seed]), threshold)
        per_seed.append({"seed": seed, "P_star": value if kind in CROSSED else None})
    return {"per_seed": per_seed, **p_star_spread([s["P_star"] for s in per_seed])}


def mark_of(group: list[Entry]) -> str:
    """A curve's mark: "verified" when all its files are, "reported" when none is, else "verified k/n".

    Examples
    --------
    >>> from types import SimpleNamespace as E
    >>> mark_of([E(mark="verified"), E(mark="reported")])
    'verified 1/2'
    """
    verified = sum(e.mark == "verified" for e in group)
    if verified == len(group):
        return "verified"
    return "reported" if verified == 0 else f"verified {verified}/{len(group)}"


def curves_and_pstar(entries: list[Entry], limits: dict | None = None) -> dict[tuple[str, str, str], dict]:
    """(config, task, model) -> the model's curve and P* (see the module docstring).

    ``limits``: (config, task) -> Bayes-optimal figures (``board_optimal``); its
    ``expected_error`` raises the threshold to ``EPSILON_STAR`` + that error (``p_star_rule``). Each
    value: ``arch``, ``control``, ``curve``, ``threshold``, ``chance``, ``p_star``, ``p_star_kind``
    ("control" for a control, "undefined" where the threshold is at or above chance: no P*),
    ``P_grid``, ``seeds`` (``_per_seed`` or None), ``at_P_max``, ``mark``.

    Examples
    --------
    >>> from srhm_datasets.evaluation.board_entries import Entry
    >>> files = [Entry("f", {}, "demo", P, "net", "cnn", e, None, None, seed=0) for P, e in ((100, 0.3), (1000, 0.0))]
    >>> info = curves_and_pstar(files, {("demo", "class"): {"expected_error": 0.1}})[("demo", "class", "net")]
    >>> round(info["threshold"], 2), info["p_star_kind"], round(info["p_star"])
    (0.2, 'interpolated', 215)
    >>> curves_and_pstar(files, {("demo", "class"): {"expected_error": 0.7}})[("demo", "class", "net")]["p_star_kind"]
    'undefined'
    """
    limits = limits or {}
    groups = collections.defaultdict(list)
    for e in entries:
        groups[(e.config, e.task, e.model)].append(e)
    out = {}
    for key, group in sorted(groups.items()):
        rule = p_star_rule(*key[:2], limits.get(key[:2]))
        curve = learning_curve(group)
        control = any(e.control for e in group)
        value, kind = p_star(curve, rule["threshold"])
        if control or (kind != "no curve" and not rule["defined"]):
            value, kind = None, "control" if control else "undefined"
        out[key] = {
            "arch": group[0].arch,
            "control": control,
            "curve": curve,
            "threshold": rule["threshold"],
            "chance": rule["chance"],
            "p_star": value,
            "p_star_kind": kind,
            "P_grid": [p for p, _ in curve],
            "seeds": _per_seed(group, rule["threshold"]) if kind not in ("control", "undefined") else None,
            "at_P_max": _at_largest_P(group),
            "mark": mark_of(group),
        }
    return out


def ranking(curves: dict, config: str, task: str) -> list[tuple[str, dict]]:
    """The (model, curve info) of one (config, task) with a P*, in rank order (module docstring).

    Examples
    --------
    >>> from srhm_datasets.evaluation.board_entries import Entry
    >>> curve = lambda m, errs: [Entry("f", {}, "demo", P, m, "cnn", e, None, None) for P, e in zip((100, 1000), errs)]
    >>> curves = curves_and_pstar(curve("never", (0.5, 0.2)) + curve("fast", (0.3, 0.0)) + curve("slow", (0.5, 0.05)))
    >>> [model for model, _ in ranking(curves, "demo", "class")]
    ['fast', 'slow', 'never']
    """
    ranked = [
        (model, info)
        for (c, t, model), info in curves.items()
        if (c, t) == (config, task) and info["p_star_kind"] in CROSSED + ("not reached",)
    ]

    def key(item):
        model, info = item
        if info["p_star_kind"] in CROSSED:
            return (0, info["p_star"], model)
        return (1, info["at_P_max"]["test_error"], model)

    return sorted(ranked, key=key)


def unranked(curves: dict, config: str, task: str) -> list[tuple[str, dict]]:
    """The (model, curve info) of one (config, task) whose P* is undefined (``p_star_rule``), by name."""
    return sorted(
        (model, info)
        for (c, t, model), info in curves.items()
        if (c, t) == (config, task) and info["p_star_kind"] == "undefined"
    )


def our_pstar_points(curves: dict) -> dict[str, list[dict]]:
    """arch -> [{"config", "model", "x", "p_star", "kind", "mark"}] for CNN/LCN on the class task with a P* value."""
    out: dict[str, list[dict]] = {"cnn": [], "lcn": []}
    for (config, task, model), info in curves.items():
        if task != "class" or info["arch"] not in out or info["p_star"] is None:
            continue
        cfg = get_config(config)
        x = law_x(info["arch"], cfg.L, cfg.s, cfg.s0, cfg.nc, cfg.m)
        out[info["arch"]].append(
            {
                "config": config,
                "model": model,
                "x": x,
                "p_star": info["p_star"],
                "kind": info["p_star_kind"],
                "mark": info["mark"],
            }
        )
    return out
