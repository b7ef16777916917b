"""The leaderboard's entries: find results files, accept or reject them, name their model and task, rank them at each P.

These are the rules ``srhm leaderboard`` (``leaderboard.build_leaderboard``) enforces.

Input: every ``*.json`` file under RESULTS_DIR (hidden folders and the output folder
skipped). A file enters the leaderboard only if

1. it parses (no NaN or infinity) and validates against the results schema
   (``srhm_datasets.results``): runs of ``srhm train`` and outside submissions
   (``srhm evaluate --factory``, no ``training`` object) alike, ranked side by side;
2. its ``dataset.config`` resolves to a config, its ``dataset.parameters`` are that
   config's, and its ``dataset.rules_hash`` equals the hash of that config's rules
   (``hashing.rules_hash(sample_rules(cfg))``): results on another task instance are
   never ranked together; 1 <= ``P`` <= the config's train split size;
3. its ``dataset.revision`` (and ``resolved_commit`` when both sides have one) is the
   config's reference revision: the one given with ``--revision``, else the most common
   among the config's files (ties: a named revision over none, then the greatest name);
   likewise its ``dataset.train_content_hash``, when not null, is the most common
   non-null one among the config's remaining files (the same training rows);
4. its ``evaluation`` (if any) fits the config and the task: the task it measured
   (``evaluation.task``, when recorded) is the file's, L values per layer, a probe
   exactly for a class model, and ``undefined`` exactly when m = 1 (synonym) or K = 1
   (diffeo), or for both kinds when the task is not class (``kinds.undefined_kinds``);
5. its ``evaluation`` (if any) was measured on the config's whole splits: it must have
   ``num_test`` = the test split size and (a class model) ``probe.num_points`` = the
   probe split size (every evaluation on the same points, whatever else is in RESULTS_DIR;
   ``srhm evaluate`` without ``--num-probe``/``--num-test`` does this). A run of
   ``srhm train`` without an evaluation is accepted: it is ranked by its
   ``best_test_error`` (on its first ``training.num_test`` test rows: ``MAX_TEST``, the
   whole test split up to 20,000 rows, unless the run set ``--num-test``) and shows no S/D;
6. its ``task`` (absent: ``class``; a name or ``{name, context, mask_rate, noise}``) is a
   task of the config (``tasks.make_task``); files of different tasks (``task_label``)
   are ranked apart.

Others are rejected, each with a reason (a ``Rejection``); JSON files that are not
results files are listed as ignored, not rejected (``board_optimal`` then reads the
Bayes-optimal ones among them).

Ranking within a (config, task) at each P (one table per P, P ascending): test error,
then S_out and D_out (the output layer's S_{out,1}, D_{out,1}, level 1 = the input-level
tuples as in the paper's Fig. 1; undefined or missing ranks last), then model name. The
test error of a file is ``evaluation.test_error`` when present, else
``best_test_error`` (the error of the checkpoint ``srhm train`` keeps).

A model is ``model.name`` if given, else ``<arch> w<width>`` followed by the training
hyperparameters that make a variant when they differ from the protocol's defaults
(``lr=`` when not ``default_lr(arch, cfg)``, ``norm=channels``, ``bias``,
``enc=onehot``); a run trained with ``--shuffle-labels`` is a control, labelled
``... (shuffled labels)``. Files of one model name on one (config, task) whose
``BOARD_SETTINGS`` differ (``protocol.CURVE_SETTINGS``, the factory and its source's SHA-256)
get the differing settings appended (``label_settings``), so that one model name is one
learning curve (``board_pstar``).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from pathlib import Path

from ..catalog import get_config
from ..config import SRHMConfig
from ..hashing import rules_hash
from ..protocol import (
    ARCH_DEFAULTS,
    ARCHS,
    CONTROL,
    CURVE_SETTINGS,
    CUSTOM_ARCH,
    MAX_TEST,
    OPTION,
    RESULTS_FILE,
    RUN_SETTINGS,
    default_lr,
    is_control,
)
from ..results import get_field, loads_results, task_fields, validate_results
from ..rules import sample_rules
from ..tasks import Task, make_task
from .kinds import KINDS, SENSITIVITY_TASK, undefined_kinds

#: The level used for the S_out / D_out columns (l = 1: input-level tuples, as Fig. 1).
RANK_LEVEL = 1


@dataclasses.dataclass
class Entry:
    """One accepted results file."""

    path: str
    results: dict
    config: str  # canonical config name
    P: int
    model: str  # display name / learning-curve key
    arch: str
    test_error: float
    s_out: float | None
    d_out: float | None
    evaluated: bool = True
    control: bool = False  # trained on shuffled labels
    task: str = "class"  # task label (``task_label``)
    seed: int | None = None  # training.seed; None for a submission
    settings: tuple = ()  # the ``BOARD_SETTINGS`` values (``curve_settings``)
    mark: str = "reported"  # "verified" once ``board_verify`` has evaluated it again

    def sort_key(self) -> tuple:
        inf = math.inf
        return (
            self.P,
            self.test_error,
            inf if self.s_out is None else self.s_out,
            inf if self.d_out is None else self.d_out,
            self.model,
            self.path,
        )


@dataclasses.dataclass
class Rejection:
    path: str
    reason: str


# ---- reading and validating -------------------------------------------------------------


def find_results(results_dir: Path, exclude: Path | None = None) -> list[Path]:
    """``*.json`` files under results_dir, sorted, skipping hidden folders and ``exclude``."""
    found = []
    for root, dirs, files in os.walk(results_dir):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (exclude is None or (root_path / d).resolve() != exclude)
        )
        found += [root_path / f for f in sorted(files) if f.endswith(".json") and not f.startswith(".")]
    return found


def _variant(results: dict, cfg) -> list[str]:
    """The training hyperparameters of a run that differ from the protocol's defaults (its arch's,
    ``protocol.ARCH_DEFAULTS``)."""
    training, model = results.get("training"), results.get("model") or {}
    if not training:
        return []
    parts = []
    arch, lr = model.get("arch"), training.get("lr")
    if cfg is not None and lr is not None and arch in ARCHS and not math.isclose(lr, default_lr(arch, cfg)):
        parts.append(f"lr={lr:g}")
    if model.get("norm", "fan_in") != "fan_in":
        parts.append(f"norm={model['norm']}")
    if model.get("bias"):
        parts.append("bias")
    encoding = (ARCH_DEFAULTS.get(arch) or ARCH_DEFAULTS[CUSTOM_ARCH])["encoding"]
    if training.get("encoding", "whiten") != encoding:
        parts.append(f"enc={training['encoding']}")
    return parts


def model_name(results: dict, cfg=None) -> str:
    """The model's display name and learning-curve key (see the module docstring).

    ``model.name`` if given, else ``<arch> w<width>`` plus the non-default
    hyperparameters (``cfg``, the config, decides the default lr); `` (shuffled labels)``
    is appended for a control run.
    """
    model = results.get("model") or {}
    if model.get("name"):
        name = str(model["name"])
    else:
        width = model.get("width")
        name = " ".join(
            [f"{model.get('arch', '?')}" + (f" w{width}" if width is not None else "")] + _variant(results, cfg)
        )
    return f"{name} {CONTROL}" if is_control(results) else name


def file_test_error(results: dict) -> float:
    """``evaluation.test_error`` (the checkpoint's, whole test split) if present, else ``best_test_error``
    (the checkpoint ``srhm train`` keeps is the one with the best test error)."""
    ev = results.get("evaluation")
    if ev and ev.get("test_error") is not None:
        return float(ev["test_error"])
    return float(results["best_test_error"])


def test_rows(entry: Entry) -> int:
    """The test rows behind an entry's test error: ``evaluation.num_test``, else ``training.num_test``
    (else the protocol's first ``MAX_TEST`` rows of the test split, as ``srhm train`` scores them)."""
    ev = entry.results.get("evaluation")
    if ev:
        return int(ev["num_test"])
    size = get_config(entry.config).split_sizes()["test"]
    return int((entry.results.get("training") or {}).get("num_test") or min(size, MAX_TEST))


def _output_value(results: dict, kind: str) -> float | None:
    ev = results.get("evaluation") or {}
    vals = ((ev.get("sensitivity") or {}).get(kind) or {}).get("output")
    if not vals or len(vals) < RANK_LEVEL:
        return None
    return vals[RANK_LEVEL - 1]


#: Reason given for JSON files that are not results files (listed, not rejected).
IGNORED = "ignored"


def is_results_candidate(path: Path, obj) -> bool:
    """A ``results.json``, or any JSON object declaring ``format.name == "srhm-results"``."""
    if path.name == RESULTS_FILE:
        return True
    fmt = obj.get("format") if isinstance(obj, dict) else None
    return isinstance(fmt, dict) and fmt.get("name") == "srhm-results"


def _check_file(path: Path) -> tuple[Entry | None, str | None]:
    """An Entry, or the reason the file is rejected (revision consistency is checked later)."""
    results, why = _read_results(path)
    if why:
        return None, why
    try:
        cfg = get_config(results["dataset"]["config"])
    except ValueError as err:
        return None, str(err)
    try:
        task = results_task(results, cfg)
    except ValueError as err:
        return None, f"task: {err}"
    sizes = cfg.split_sizes()
    why = _dataset_mismatch(results, cfg) or _evaluation_mismatch(results, cfg, task) or _partial_splits(results, sizes)
    if why:
        return None, why
    entry = Entry(
        path=str(path),
        results=results,
        config=cfg.name,
        P=int(results["P"]),
        model=model_name(results, cfg),
        arch=str(results["model"].get("arch", "")),
        test_error=file_test_error(results),
        s_out=_output_value(results, "synonym"),
        d_out=_output_value(results, "diffeo"),
        evaluated=bool(results.get("evaluation")),
        control=is_control(results),
        task=task,
        seed=(results.get("training") or {}).get("seed"),
        settings=curve_settings(results),
    )
    return entry, None


def task_label(cfg: SRHMConfig, name: str = "class", context=None, mask_rate=None, noise=None) -> str:
    """The leaderboard's name of a task and its options, checked by ``tasks.make_task`` (ValueError):
    the name, then ``context=t``, ``mask_rate=p`` (mlm: 0.15 when not given), ``noise=eps`` when > 0.

    Examples
    --------
    >>> from srhm_datasets.catalog import CATALOG
    >>> task_label(CATALOG["demo"]), task_label(CATALOG["demo"], "mlm", noise=0.05)
    ('class', 'mlm mask_rate=0.15 noise=0.05')
    """
    return label_of(make_task(cfg, name, context=context, mask_rate=mask_rate, noise=0.0 if noise is None else noise))


def label_of(task: Task) -> str:
    """The leaderboard's name of a checked ``tasks.Task`` (``task_label``), as every message prints a task.

    Examples
    --------
    >>> from srhm_datasets.catalog import CATALOG
    >>> label_of(make_task(CATALOG["demo"], "last", context=4, noise=0.1))
    'last context=4 noise=0.1'
    """
    parts = [task.name]
    if task.context is not None:
        parts.append(f"context={task.context}")
    if task.mask_rate is not None:
        parts.append(f"mask_rate={task.mask_rate:g}")
    if task.noise:
        parts.append(f"noise={task.noise:g}")
    return " ".join(parts)


def results_task(results: dict, cfg: SRHMConfig) -> str:
    """``task_label`` of the task of a results file (format.md §12.2, ``results.task_fields``): a run's
    ``training.task`` with its ``training.context``, ``mask_rate`` and ``noise`` (``srhm train``), else the
    top-level ``task`` of a submission (a name or ``{name, context, mask_rate, noise}``); absent: ``class``.

    Examples
    --------
    >>> from srhm_datasets.catalog import get_config
    >>> cfg = get_config("demo")
    >>> results_task({"training": {"task": "last", "context": 4, "noise": 0.0}}, cfg)
    'last context=4'
    >>> results_task({"task": {"name": "mlm", "mask_rate": 0.3}}, cfg), results_task({}, cfg)
    ('mlm mask_rate=0.3', 'class')
    """
    task = task_fields(results)
    return task_label(cfg, task["name"], task["context"], task["mask_rate"], task["noise"] or 0.0)


#: What tells two models apart besides ``protocol.CURVE_SETTINGS`` (format.md §12.4): the factory that builds
#: a user's model (``module:function``) and the SHA-256 of its module's source (setting -> results field).
MODEL_IDENTITY = {"factory": "model.factory", "source_sha256": "model.source_sha256"}

#: The settings files of one model name on one (config, task) must share to make one curve.
BOARD_SETTINGS = (*CURVE_SETTINGS, *MODEL_IDENTITY)


def _has_field(results: dict, dotted: str) -> bool:
    """True when the dotted field is present in ``results`` (null included)."""
    *parents, last = dotted.split(".")
    obj = get_field(results, ".".join(parents)) if parents else results
    return isinstance(obj, dict) and last in obj


def curve_settings(results: dict) -> tuple:
    """The values of ``BOARD_SETTINGS`` in a results file: what files of one model on one config and task
    must share to make one learning curve (``protocol.CURVE_SETTINGS``, then the factory and its source's
    SHA-256). A field of a run that is absent reads as the value it was made with (the option's
    ``recorded_default``, else the protocol's default); a field present as null stays None (a user's
    model without a width is not a width-512 network); a submission has none of the training fields.

    Examples
    --------
    >>> curve_settings({"model": {"arch": "cnn", "width": 64}, "training": {"lr": 0.1, "momentum": 0.9}})
    ('cnn', 64, 0.1, 0.9, 'whiten', 'fan_in', False, False, 0.001, 'sgd', 0.0, 'width', None, None)
    >>> curve_settings({"model": {"arch": "custom", "width": None, "factory": "m:build"}, "training": {}})[:2]
    ('custom', None)
    """
    fields = {**{key: RUN_SETTINGS[key] for key in CURVE_SETTINGS}, **MODEL_IDENTITY}
    values = []
    for key, field in fields.items():
        value = get_field(results, field)
        if key in OPTION and "training" in results and not _has_field(results, field):
            recorded = OPTION[key].recorded_default
            value = OPTION[key].default if recorded is None else recorded
        values.append(value)
    return tuple(values)


def _setting_text(key: str, value) -> str:
    """A setting as ``label_settings`` shows it: ``key=value``, null as ``none``, a SHA-256 by its first 12 digits."""
    if value is None:
        return f"{key}=none"
    return f"{key}={value[:12]}" if key == "source_sha256" else f"{key}={value}"


def label_settings(entries: list[Entry]) -> None:
    """Give files of one name on one (config, task) but other ``BOARD_SETTINGS`` their own model name: the
    name followed by ``[setting=value, ...]``, the settings in which the groups differ (two factories whose
    functions share a name, ``other:build`` and ``mine:build``, are two models)."""
    by_name = _group(entries, lambda e: (e.config, e.task, e.model))
    for group in by_name.values():
        variants = sorted({e.settings for e in group}, key=repr)
        if len(variants) < 2:
            continue
        differ = [i for i, key in enumerate(BOARD_SETTINGS) if len({v[i] for v in variants}) > 1]
        for e in group:
            e.model += " [" + ", ".join(_setting_text(BOARD_SETTINGS[i], e.settings[i]) for i in differ) + "]"


def _read_results(path: Path) -> tuple[dict | None, str | None]:
    """The validated results object of ``path``, or why not: not JSON (NaN included), ``IGNORED``
    (JSON that is not a results file), or the schema's message."""
    try:
        results = loads_results(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:  # JSONDecodeError, NaN / Infinity
        return None, f"not valid JSON ({err})"
    if not is_results_candidate(path, results):
        return None, IGNORED
    try:
        validate_results(results)
    except Exception as err:  # noqa: BLE001 (the schema's message says which field is wrong)
        return None, f"fails the results schema: {_one_line(err)}"
    return results, None


def _dataset_mismatch(results: dict, cfg: SRHMConfig) -> str | None:
    """Why the file's dataset is not ``cfg``'s task (parameters, rules hash) or its P is out of range, or None."""
    if results["dataset"]["parameters"] != cfg.parameters():
        return (
            f"dataset.parameters={results['dataset']['parameters']} are not those of config {cfg.name} "
            f"({cfg.parameters()})"
        )
    expected = rules_hash(sample_rules(cfg))
    got = results["dataset"].get("rules_hash")
    if got != expected:
        return f"dataset.rules_hash={got} differs from the rules hash of config {cfg.name} ({expected})"
    train_size = cfg.split_sizes()["train"]
    if not 1 <= results["P"] <= train_size:
        return f"P={results['P']} is not in 1..{train_size} (train split size of config {cfg.name})"
    return None


def _evaluation_mismatch(results: dict, cfg: SRHMConfig, label: str = SENSITIVITY_TASK) -> str | None:
    """Why the file's evaluation does not fit ``cfg`` and its task (``label``, ``task_label``): the task it
    measured (``evaluation.task``, when recorded) another, undefined kinds, a probe exactly for a class model
    (S and D), L levels per layer; or None."""
    ev = results.get("evaluation")
    if not ev:
        return None
    if ev.get("task") is not None:
        try:
            measured = task_label(cfg, **ev["task"])
        except ValueError as err:
            return f"evaluation.task: {err}"
        if measured != label:
            return (
                f"evaluation.task is {measured}: the test error is that task's, but the file's task is {label} (its "
                "task changed by hand?); evaluate the model on the task it is filed under"
            )
    task = label.split()[0]
    if (ev["probe"] is None) != (task != SENSITIVITY_TASK):
        measured = (
            "a model of another task (no probe)" if ev["probe"] is None else "a class model (S and D on the probe)"
        )
        return (
            f"evaluation.probe={ev['probe']}: the evaluation is that of {measured}, but the file's task is {label}; "
            "evaluate the model on its task (srhm evaluate RUN_DIR, or --factory with --task)"
        )
    undefined = undefined_kinds(cfg, task)
    for kind in KINDS:
        if bool(ev["undefined"][kind]) != undefined[kind]:
            return (
                f"evaluation.undefined.{kind}={ev['undefined'][kind]} but the config has "
                f"m={cfg.m}, K={cfg.placements_per_node} and the task is {task} (undefined exactly when "
                f"{'m' if kind == 'synonym' else 'K'} = 1 or the task is not {SENSITIVITY_TASK})"
            )
        for layer, vals in ev["sensitivity"][kind].items():
            if len(vals) != cfg.L:
                return f"evaluation.sensitivity.{kind}.{layer} has {len(vals)} levels, config has L={cfg.L}"
            if undefined[kind] and any(x is not None for x in vals):
                return f"evaluation.sensitivity.{kind}.{layer} has numbers where the quantity is undefined"
    return None


def _partial_splits(results: dict, sizes: dict) -> str | None:
    """Why a file's evaluation was not measured on the config's whole probe and test splits, or None."""
    ev = results.get("evaluation")
    if not ev:
        return None
    if ev["probe"] is not None and ev["probe"]["num_points"] != sizes["probe"]:
        return (
            f"evaluation.probe.num_points={ev['probe']['num_points']}: sensitivities must be measured on the whole "
            f"probe split ({sizes['probe']} points; srhm evaluate without --num-probe)"
        )
    if ev["num_test"] != sizes["test"]:
        return (
            f"evaluation.num_test={ev['num_test']}: the test error must be measured on the whole test split "
            f"({sizes['test']} points; srhm evaluate without --num-test)"
        )
    return None


def _one_line(err: Exception) -> str:
    text = getattr(err, "message", None) or str(err)
    return " ".join(str(text).split())[:300]


def dataset_revision(entry: Entry) -> tuple[str | None, str | None]:
    """The entry's ``(dataset.revision, dataset.resolved_commit)``, each None when absent."""
    ds = entry.results["dataset"]
    return ds.get("revision"), ds.get("resolved_commit")


def _group(entries: list[Entry], key) -> dict:
    """``key(entry)`` -> the entries with that key, in their order (keys in order of first appearance)."""
    groups = collections.defaultdict(list)
    for e in entries:
        groups[key(e)].append(e)
    return groups


def check_revisions(entries: list[Entry], revision: str | None = None) -> tuple[list[Entry], list[Rejection]]:
    """Keep, per config, the files on its reference revision (see the module docstring)."""
    kept, rejected = [], []
    for group in _group(entries, lambda e: e.config).values():
        if revision is not None:
            ref = revision
        else:
            counts = collections.Counter(dataset_revision(e)[0] for e in group)
            ref = max(counts, key=lambda r: (counts[r], r is not None, r or ""))
        commits = collections.Counter(
            dataset_revision(e)[1] for e in group if dataset_revision(e)[0] == ref and dataset_revision(e)[1]
        )
        ref_commit = max(commits, key=lambda c: (commits[c], c)) if commits else None
        n_ref = sum(1 for e in group if dataset_revision(e)[0] == ref)
        for e in group:
            rev, commit = dataset_revision(e)
            if rev != ref:
                why = "given with --revision" if revision is not None else f"used by {n_ref} file(s) of this config"
                rejected.append(
                    Rejection(e.path, f"dataset.revision={rev!r} differs from the config's revision {ref!r} ({why})")
                )
            elif commit and ref_commit and commit != ref_commit:
                rejected.append(
                    Rejection(
                        e.path,
                        f"dataset.resolved_commit={commit} differs from {ref_commit} for revision {ref!r} "
                        "(the tag moved?)",
                    )
                )
            else:
                kept.append(e)
    return kept, rejected


def check_content_hashes(entries: list[Entry]) -> tuple[list[Entry], list[Rejection]]:
    """Keep, per config, the files whose ``dataset.train_content_hash`` (when not null) is the config's
    most common non-null one (ties: the greatest): the same training rows, like the revision."""
    kept, rejected = [], []
    for group in _group(entries, lambda e: e.config).values():
        counts = collections.Counter(e.results["dataset"].get("train_content_hash") for e in group)
        counts.pop(None, None)
        ref = max(counts, key=lambda h: (counts[h], h)) if counts else None
        for e in group:
            got = e.results["dataset"].get("train_content_hash")
            if got is not None and got != ref:
                rejected.append(
                    Rejection(
                        e.path,
                        f"dataset.train_content_hash={got} differs from the config's {ref} "
                        f"(used by {counts[ref]} file(s)): trained on other rows",
                    )
                )
            else:
                kept.append(e)
    return kept, rejected


def collect(
    results_dir: str | os.PathLike, exclude: str | os.PathLike | None = None, revision: str | None = None
) -> tuple[list[Entry], list[Rejection], list[str]]:
    """Accepted entries, rejections and ignored paths (JSON that is not a results file) under results_dir."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"invalid parameter RESULTS_DIR={str(results_dir)!r}: not a folder")
    exclude = Path(exclude).resolve() if exclude is not None else None
    entries, rejected, ignored = [], [], []
    for path in find_results(results_dir, exclude):
        entry, reason = _check_file(path)
        if reason == IGNORED:
            ignored.append(str(path))
        elif entry is None:
            rejected.append(Rejection(str(path), reason))
        else:
            entries.append(entry)
    entries, more = check_revisions(entries, revision)
    entries, content = check_content_hashes(entries)
    label_settings(entries)
    return sorted(entries, key=lambda e: (e.config,) + e.sort_key()), rejected + more + content, ignored


# ---- ranking and learning curves ----------------------------------------------------------


def rank(entries: list[Entry]) -> dict[str, dict[str, dict[int, list[Entry]]]]:
    """config -> task -> P -> entries in rank order (the single-P tables)."""
    out: dict[str, dict[str, dict[int, list[Entry]]]] = {}
    for e in sorted(entries, key=lambda e: (e.config, e.task) + e.sort_key()):
        out.setdefault(e.config, {}).setdefault(e.task, {}).setdefault(e.P, []).append(e)
    return out
