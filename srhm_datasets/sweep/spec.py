"""The sweep file: a YAML description of a grid of learning curves, its schema and its validation.

A sweep file (see ``srhm_datasets/sweep/examples/``) holds::

    name: fig4c-small                  # optional; default: the file's stem
    configs:                           # required, non-empty; each entry one of:
      - demo                           #   a catalog name or a canonical config name
      - {name: fig1, P: {min: 500, max: 20000, points: 6}}   # ... with its own P range
      - grid: {L: 2, s: 2, s0: [0, 1], v: [3, 4], nc: v, m: v, sparsity: A, seed: 2}
        P: {min: 50, max: 3000, points: 6}                   # a grid over SRHMConfig parameters
    archs: [cnn, lcn]                  # default [cnn]
    widths: [512]                      # default [null]: each network's default width (absent with a factory)
    lrs: [null]                        # base learning rates; null = the protocol default (default [null])
    seeds: [0, 1]                      # default [0]
    P: {min: 100, max: 3000, points: 6}   # the P range of entries without their own
    train: {max_steps: 8000, num_test: 5000, threads: 1, ...}   # TrainOptions fields
    curve: {threshold: 0.10, metric: best, plot: true}
    evaluate: {enabled: true, num_test: null, num_probe: null, batch_size: 4096, device: null, probe_source: null}
    executor:
      local: {workers: 2}
      slurm: {partition: gpu, time_min: 120, cpus_per_task: 4, gpus_per_node: 1, mem_gb: 16,
              account: null, array_parallelism: 64, sbatch: {qos: normal}, setup: ["module load cuda"]}

In a grid, ``nc`` and ``m`` may be tied to ``v`` by the strings ``v`` or ``v^k``; every
other value is a scalar or a list (the grid is their product). The schema is declared
below (``SECTIONS``: every field with its bound and default); :func:`load_sweep` checks
the whole file before anything runs, each job's training options together as its runs will be
made (``baselines.train.check_options``: options that conflict, a task or an encoding the network
cannot take, an option the file writes that does not apply), no job twice, the P* threshold
below each config's chance error, and raises one :class:`SweepFileError` listing each error
once, in the package's form ``invalid parameter FIELD=VALUE: must satisfy BOUND`` (FIELD is
the dotted path in the file, e.g. ``train.max_steps``, ``widths[1]`` or ``configs[2].grid.v``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ..baselines.factory import factory_name
from ..baselines.train import TrainOptions, check_options
from ..catalog import get_config, release_name
from ..config import SRHMConfig, is_int, is_real, require
from ..evaluation.evaluate import PROBE_SOURCES, check_evaluation_options
from ..executors import EXECUTORS
from ..protocol import ARCHS, OPTION, OPTIONS, Option, arch_defaults, check_threshold, log_spaced_P


# ---------------------------------------------------------------------------------------
# the declared schema
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a sweep file: ``ok(value)`` decides, ``bound`` says in words what is allowed."""

    bound: str
    ok: Callable[[Any], bool]
    default: Any = None
    items: Field | None = None  # for a list: the check of each item (the list itself must be non-empty)


def integer(low: int, default=None) -> Field:
    return Field(f"an int >= {low}", lambda x: is_int(x) and x >= low, default)


def number(bound: str, ok: Callable[[float], bool], default=None) -> Field:
    return Field(f"a number with {bound}", lambda x: is_real(x) and ok(x), default)


def choice(options, default=None) -> Field:
    return Field(f"one of {tuple(options)}", lambda x: x in options, default)


def text(default=None) -> Field:
    return Field("a non-empty string", lambda x: isinstance(x, str) and x != "", default)


def flag(default: bool) -> Field:
    return Field("true or false", lambda x: isinstance(x, bool), default)


def optional(field: Field) -> Field:
    """``field`` or null (null: the default of the protocol or the executor)."""
    return Field(f"{field.bound}, or null", lambda x: x is None or field.ok(x), None)


def many(item: Field, default: list) -> Field:
    return Field(
        f"a non-empty list of distinct items, each {item.bound}",
        lambda x: isinstance(x, list) and len(x) > 0,
        default,
        item,
    )


def mapping(default=None) -> Field:
    return Field(
        "a mapping of option names to strings or numbers",
        lambda x: (
            isinstance(x, dict) and all(isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in x.items())
        ),
        default if default is not None else {},
    )


def option_field(o: Option) -> Field:
    """The sweep-file field of a run option (``protocol.OPTIONS``): its bound, check and default."""
    bound = o.bound_text().replace("None", "null").replace("True or False", "true or false")
    return Field(bound, o.accepts, o.default)


#: Run options that are axes of the grid (``archs``, ``widths``, ``lrs``, ``seeds``) or top-level fields
#: of the file (``factory``, ``task``), not fields of its ``train`` section.
AXES = ("arch", "width", "lr", "seed")
TOP_OPTIONS = ("factory", "task")


P_RANGE = {"min": integer(1), "max": integer(1), "points": integer(1)}

#: Every section of a sweep file: section path -> field -> Field. "configs" and the P
#: ranges are checked by their own functions (entries of several shapes).
SECTIONS: dict[str, dict[str, Field]] = {
    "": {
        "name": optional(
            Field(
                "a name of letters, digits, '.', '_' or '-'",
                lambda x: isinstance(x, str) and re.fullmatch(r"[A-Za-z0-9._-]+", x) is not None,
            )
        ),
        "archs": many(choice(ARCHS), ["cnn"]),
        "widths": many(optional(integer(1)), [None]),
        "lrs": many(optional(number("lr > 0", lambda x: x > 0)), [None]),
        "seeds": many(integer(0), [0]),
        **{name: option_field(OPTION[name]) for name in TOP_OPTIONS},
    },
    "train": {o.name: option_field(o) for o in OPTIONS if o.sweep and o.name not in AXES + TOP_OPTIONS},
    "curve": {
        "threshold": number("0 < threshold < 1", lambda x: 0 < x < 1, 0.10),
        "metric": choice(("best", "final"), "best"),
        "plot": flag(True),
    },
    "evaluate": {
        "enabled": flag(True),
        "num_test": optional(integer(1)),
        "num_probe": optional(integer(2)),
        "batch_size": integer(1, 4096),
        "device": optional(text()),
        "probe_source": optional(choice(PROBE_SOURCES)),
    },
    "executor.local": {"workers": optional(integer(1))},
    "executor.slurm": {
        "partition": optional(text()),
        "time_min": integer(1, 60),
        "cpus_per_task": integer(1, 1),
        "gpus_per_node": integer(0, 0),
        "mem_gb": optional(number("mem_gb > 0", lambda x: x > 0)),
        "account": optional(text()),
        "array_parallelism": integer(1, 64),
        "sbatch": mapping(),
        "setup": Field(
            "a list of shell lines", lambda x: isinstance(x, list) and all(isinstance(s, str) for s in x), []
        ),
    },
}
TOP_LEVEL = (
    "name",
    "configs",
    "archs",
    "widths",
    "lrs",
    "seeds",
    *TOP_OPTIONS,
    "P",
    "train",
    "curve",
    "evaluate",
    "executor",
)
GRID_KEYS = ("L", "s", "s0", "v", "nc", "m", "sparsity", "seed", "n_train", "n_test", "n_probe")
GRID_REQUIRED = ("L", "s", "s0", "v", "nc", "m")
_TIED = re.compile(r"^v(\^([1-9][0-9]*))?$")  # nc: v, m: v^2
#: The package's refusal of a parameter (``config.require``): its name and the rest.
_PARAMETER = re.compile(r"^invalid parameter ([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


# ---------------------------------------------------------------------------------------
# the validated sweep and its jobs
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ConfigEntry:
    config: SRHMConfig
    P: tuple[int, int, int]  # (min, max, points)
    where: str  # its place in the file, e.g. "configs[2].grid"

    @property
    def label(self) -> str:
        """Catalog name, else canonical name."""
        return release_name(self.config)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated sweep file: the grid axes and the settings shared by all its jobs."""

    name: str
    configs: tuple[ConfigEntry, ...]
    archs: tuple[str, ...]
    widths: tuple[int, ...]
    lrs: tuple[float | None, ...]
    seeds: tuple[int, ...]
    train: dict
    curve: dict
    evaluate: dict
    executor: dict  # {"local": {...}, "slurm": {...}}
    text: str  # the file as given

    def document(self) -> dict:
        """The sweep with every default filled in, as plain JSON-able data (written to DIR/plan.json)."""
        return {
            "name": self.name,
            "archs": list(self.archs),
            "widths": list(self.widths),
            "lrs": list(self.lrs),
            "seeds": list(self.seeds),
            "configs": [{"config": e.config.name, "label": e.label, "P": list(e.P)} for e in self.configs],
            "train": self.train,
            "curve": self.curve,
            "evaluate": self.evaluate,
            "executor": self.executor,
        }


class SweepFileError(ValueError):
    """A sweep file with bad fields; ``errors`` holds one message per bad field."""

    def __init__(self, path, errors: list[str]):
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"invalid sweep file {str(path)!r} ({len(self.errors)} error(s), nothing was run):\n{lines}")


class _Errors:
    """Collects one message per bad field."""

    def __init__(self):
        self.messages: list[str] = []

    def require(self, ok: bool, name: str, value, bound: str) -> bool:
        try:
            require(ok, name, value, bound)
        except ValueError as err:
            self.messages.append(str(err))
        return ok

    def catch(self, name: str, check: Callable, *args, **kwargs):
        """``check(*args, **kwargs)``; a ValueError it raises becomes the error of field ``name``."""
        try:
            return check(*args, **kwargs)
        except ValueError as err:
            self.messages.append(f"{name}: {err}")
            return None

    def at(self, paths: dict[str, str], where: str, err: ValueError) -> None:
        """The error ``err``, ``invalid parameter NAME=...``, told of the field of the file that ``paths[NAME]``
        names (``invalid parameter PATH=...``), else of ``where`` (``where: ...``); once, however often found."""
        found = _PARAMETER.match(str(err))
        message = (
            f"invalid parameter {paths[found[1]]}={found[2]}" if found and found[1] in paths else f"{where}: {err}"
        )
        self.add(message)

    def add(self, message: str) -> None:
        """One more message, unless it was given already."""
        if message not in self.messages:
            self.messages.append(message)

    def catch_at(self, paths: dict[str, str], where: str, check: Callable, *args) -> None:
        """``check(*args)``; a ValueError it raises is told of its field (``at``)."""
        try:
            check(*args)
        except ValueError as err:
            self.at(paths, where, err)


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s reading (YAML 1.1: anchors, aliases, merge keys ``<<``, ``yes``/``no``,
    dates...), except that a key written twice in one mapping is refused (PyYAML keeps the last
    silently). Keys a merge brings in may be overridden, as in any YAML loader."""


def _construct_mapping(loader, node, deep=False):
    seen = []
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # '<<': merged (and overridable) keys, not written ones
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
        seen.append(key)  # a list: an unhashable key is left to construct_mapping's own error
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and validate a sweep file; raises :class:`SweepFileError` (a ValueError) listing every bad field."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SweepFileError(
            path, [f"invalid parameter FILE={str(path)!r}: must be a readable UTF-8 file ({err})"]
        ) from None
    try:
        doc = yaml.load(source, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        reason = " ".join(str(err).split())  # one line
        raise SweepFileError(path, [f"invalid parameter FILE={str(path)!r}: must be valid YAML ({reason})"]) from None
    return parse_sweep(doc, path.stem, source, path)


def parse_sweep(doc, default_name: str, source: str = "", path="<sweep>") -> Sweep:
    """Validate the parsed document of a sweep file (see the module docstring)."""
    errors = _Errors()
    if not errors.require(isinstance(doc, dict), "<sweep file>", type(doc).__name__, "a YAML mapping at the top level"):
        raise SweepFileError(path, errors.messages)
    _unknown(errors, "", doc, TOP_LEVEL)
    errors.require("configs" in doc, "configs", None, "a non-empty list of configs (required)")
    top = _section(errors, "", doc, SECTIONS[""])
    settings = {
        name: _section(errors, name, doc.get(name, {}), SECTIONS[name]) for name in ("train", "curve", "evaluate")
    }
    executor = doc.get("executor", {})
    if errors.require(isinstance(executor, dict), "executor", executor, "a mapping with keys local and slurm"):
        _unknown(errors, "executor", executor, ("local", "slurm"))
    else:
        executor = {}
    executors = {
        kind: _section(errors, f"executor.{kind}", executor.get(kind, {}), SECTIONS[f"executor.{kind}"])
        for kind in ("local", "slurm")
    }
    default_P = _P_range(errors, "P", doc["P"]) if "P" in doc else None
    configs = _configs(errors, doc.get("configs"), default_P, "P" in doc) if "configs" in doc else []
    settings["train"].update({name: top[name] for name in TOP_OPTIONS})
    _check_model(errors, doc, settings)
    _check_runs(errors, configs, settings)
    sweep = Sweep(
        name=top["name"] or default_name,
        configs=tuple(configs),
        archs=tuple(top["archs"]),
        widths=tuple(top["widths"]),
        lrs=tuple(top["lrs"]),
        seeds=tuple(top["seeds"]),
        train=settings["train"],
        curve=settings["curve"],
        evaluate=settings["evaluate"],
        executor=executors,
        text=source,
    )
    _check_jobs(errors, sweep, _given(doc))
    if errors.messages:
        raise SweepFileError(path, errors.messages)
    return sweep


def _unknown(errors: _Errors, section: str, doc: dict, known) -> None:
    for key, value in doc.items():
        name = f"{section}.{key}" if section else str(key)
        errors.require(
            key in known, name, value, f"a known field of {section or 'the sweep file'}: one of {tuple(known)}"
        )


def _section(errors: _Errors, section: str, doc, fields: dict[str, Field]) -> dict:
    """The section's values with defaults filled in; one error per bad field (unknown ones included)."""
    values = {name: field.default for name, field in fields.items()}
    if not errors.require(isinstance(doc, dict), section, doc, "a mapping"):
        return values
    if section:  # the top level's other keys are checked by parse_sweep
        _unknown(errors, section, doc, fields)
    for name, field in fields.items():
        if name in doc:
            values[name] = _value(errors, f"{section}.{name}" if section else name, doc[name], field)
    return values


def _value(errors: _Errors, name: str, value, field: Field):
    hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(value, str) and _looks_numeric(value) else ""
    if not errors.require(field.ok(value), name, value, field.bound + hint):
        return field.default
    if field.items is None:
        return value
    for i, item in enumerate(value):
        errors.require(field.items.ok(item), f"{name}[{i}]", item, field.items.bound)
        errors.require(
            item not in value[:i], f"{name}[{i}]", item, f"distinct items (it repeats {name}[{value.index(item)}])"
        )
    return value


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _P_range(errors: _Errors, name: str, doc) -> tuple[int, int, int] | None:
    if not errors.require(isinstance(doc, dict), name, doc, "a mapping {min, max, points}"):
        return None
    _unknown(errors, name, doc, P_RANGE)
    before = len(errors.messages)
    for key, field in P_RANGE.items():
        errors.require(key in doc, f"{name}.{key}", None, f"{field.bound} (required)")
        if key in doc:
            _value(errors, f"{name}.{key}", doc[key], field)
    if len(errors.messages) > before:
        return None
    paths = {"P_min": f"{name}.min", "P_max": f"{name}.max", "points": f"{name}.points"}
    errors.catch_at(paths, name, log_spaced_P, doc["min"], doc["max"], doc["points"])
    return doc["min"], doc["max"], doc["points"]  # kept when the grid is refused, so that P.max is checked too


def _configs(errors: _Errors, doc, default_P, has_default: bool) -> list[ConfigEntry]:
    """The configs of ``configs``; ``default_P``: the top-level P range (None if absent or bad: ``has_default``
    tells)."""
    if not errors.require(isinstance(doc, list) and len(doc) > 0, "configs", doc, "a non-empty list of configs"):
        return []
    entries: list[ConfigEntry] = []
    for i, item in enumerate(doc):
        entries += _config_entry(errors, f"configs[{i}]", item, default_P, has_default)
    seen: dict[SRHMConfig, str] = {}
    for entry in entries:
        errors.require(
            entry.config not in seen,
            entry.where,
            entry.label,
            f"a config not listed before (it repeats {seen.get(entry.config)})",
        )
        seen.setdefault(entry.config, entry.where)
    return entries


def _config_entry(errors: _Errors, where: str, item, default_P, has_default: bool) -> list[ConfigEntry]:
    """The configs of one entry of ``configs``: a name, ``{name, P}`` or ``{grid, P}``."""
    if isinstance(item, str):
        item = {"name": item}
    shapes = "a config name, or a mapping with 'name' or 'grid' (and optionally 'P')"
    if not errors.require(isinstance(item, dict) and (("name" in item) != ("grid" in item)), where, item, shapes):
        return []
    _unknown(errors, where, item, ("name", "grid", "P"))
    P = _P_range(errors, f"{where}.P", item["P"]) if "P" in item else default_P
    errors.require(
        "P" in item or has_default, f"{where}.P", None, "a P range {min, max, points} here or at the top level (P)"
    )
    if "name" in item:
        name = item["name"]
        ok = errors.require(isinstance(name, str), f"{where}.name", name, "a catalog or canonical config name")
        cfg = errors.catch(where, get_config, name) if ok else None
        configs = [(where, cfg)] if cfg is not None else []
    else:
        configs = _grid(errors, f"{where}.grid", item["grid"])
    return [ConfigEntry(cfg, P, place) for place, cfg in configs if P is not None]


def _grid(errors: _Errors, where: str, grid) -> list[tuple[str, SRHMConfig]]:
    if not errors.require(isinstance(grid, dict), where, grid, "a mapping of SRHMConfig parameters to values or lists"):
        return []
    _unknown(errors, where, grid, GRID_KEYS)
    for key in GRID_REQUIRED:
        errors.require(key in grid, f"{where}.{key}", None, "a value or a list of values (required)")
    if any(key not in grid for key in GRID_REQUIRED) or any(key not in GRID_KEYS for key in grid):
        return []
    axes = {key: value if isinstance(value, list) else [value] for key, value in grid.items()}
    bad_ties = [
        errors.require(False, f"{where}.{key}", x, "an int, or 'v' / 'v^k' (tied to v)")
        for key in ("nc", "m")
        for x in axes[key]
        if isinstance(x, str) and not _TIED.match(x)
    ]
    if bad_ties:
        return []
    configs = []
    for combo in itertools.product(*axes.values()):
        params = dict(zip(axes, combo))
        for key in ("nc", "m"):
            tie = _TIED.match(params[key]) if isinstance(params[key], str) else None
            if tie is not None and is_int(params["v"]):
                params[key] = params["v"] ** int(tie.group(2) or 1)
        cfg = errors.catch(f"{where} at {params}", SRHMConfig, **params)
        if cfg is not None:
            configs.append((f"{where} at {params}", cfg))
    return configs


def _check_model(errors: _Errors, doc: dict, settings: dict) -> None:
    """A user's model (``factory``) replaces the grid's reference networks (``archs``, ``widths`` not given)."""
    if settings["train"]["factory"] is not None:
        for axis in ("archs", "widths"):
            errors.require(axis not in doc, axis, doc.get(axis), "absent when a factory is given (it is the model)")


def _check_runs(errors: _Errors, configs: list[ConfigEntry], settings: dict) -> None:
    """Bounds that depend on the config: P_max <= train size, the P* threshold below the task's chance error
    (``protocol.check_threshold``), the evaluation's options."""
    ev = settings["evaluate"]
    for entry in configs:
        size = entry.config.split_sizes()["train"]
        errors.require(
            entry.P[1] <= size, "P.max", entry.P[1], f"P.max <= train size {size} of {entry.label} ({entry.where})"
        )
        threshold, task = settings["curve"]["threshold"], settings["train"]["task"]
        errors.catch_at({"threshold": "curve.threshold"}, "curve", check_threshold, threshold, entry.config, task)
        if ev["enabled"]:
            errors.catch(
                f"evaluate (for {entry.label})",
                check_evaluation_options,
                entry.config,
                num_test=ev["num_test"],
                num_probe=ev["num_probe"],
                batch_size=ev["batch_size"],
            )


# ---------------------------------------------------------------------------------------
# the grid's jobs
# ---------------------------------------------------------------------------------------
class GridPoint(NamedTuple):
    """One point of a sweep's grid: a config entry and one value of each axis (as in the file: width and lr
    None for the protocol's default), and ``indices``: the index of each value in its axis (``AXES`` order)."""

    entry: ConfigEntry
    arch: str
    width: int | None
    lr: float | None
    seed: int
    indices: tuple[int, int, int, int]

    @property
    def paths(self) -> dict[str, str]:
        """Option name -> the place of its value in the file, e.g. ``{"arch": "archs[1]", ...}``."""
        return {axis: f"{axis}s[{i}]" for axis, i in zip(AXES, self.indices)}

    def valid(self, sweep: Sweep) -> bool:
        """Every value is a valid item of its axis and none repeats an earlier one (else an error of its own)."""
        return all(
            SECTIONS[""][f"{axis}s"].items.ok(value) and getattr(sweep, f"{axis}s").index(value) == i
            for axis, value, i in zip(AXES, self[1:5], self.indices)
        )


def grid(sweep: Sweep) -> list[GridPoint]:
    """The sweep's grid points: configs x archs x widths x lrs x seeds, in that order."""
    return [
        GridPoint(entry, arch, width, lr, seed, (a, w, r, i))
        for entry in sweep.configs
        for a, arch in enumerate(sweep.archs)
        for w, width in enumerate(sweep.widths)
        for r, lr in enumerate(sweep.lrs)
        for i, seed in enumerate(sweep.seeds)
    ]


def job_id(label: str, arch: str, width: int | None, lr: float | None, seed: int) -> str:
    """``<config>-<arch>-w<width>-lr<lr|default>-seed<seed>`` (no ``-w<width>`` for a user's model, whose
    width the package does not set): stable whatever else the grid holds."""
    w = "" if width is None else f"-w{width}"
    return f"{label}-{arch}{w}-lr{'default' if lr is None else repr(float(lr))}-seed{seed}"


def job_width(arch: str, width: int | None, factory: str | None) -> int | None:
    """A job's width: the sweep's, else the network's default (``protocol.arch_defaults``); None for a
    user's model (``factory``)."""
    return None if factory is not None else width if width is not None else arch_defaults(arch)["width"]


def point_id(point: GridPoint, factory: str | None) -> str:
    """The id of the job of a grid point (``job_id``): the function's name in place of the arch with a factory."""
    arch = factory_name(factory) if factory else point.arch
    return job_id(point.entry.label, arch, job_width(point.arch, point.width, factory), point.lr, point.seed)


def run_options(config: SRHMConfig, arch: str, width, lr, seed: int, P: int, train: dict) -> TrainOptions:
    """The base ``TrainOptions`` of a job's runs (``run_learning_curve`` sets P and out per run)."""
    return TrainOptions(config=config, P=P, arch=arch, width=width, lr=lr, seed=seed, progress=False, **train)


#: The fields of a sweep file that set a run's options (but the grid's axes, whose places are a grid point's).
OPTION_PATHS = {**{name: f"train.{name}" for name in SECTIONS["train"]}, **{name: name for name in TOP_OPTIONS}}


def _given(doc: dict) -> list[str]:
    """The options the file sets (valid ones): its ``train`` fields and top-level ``factory`` and ``task``."""
    train = doc.get("train") if isinstance(doc.get("train"), dict) else {}
    given = [name for name, field in SECTIONS["train"].items() if name in train and field.ok(train[name])]
    return given + [name for name in TOP_OPTIONS if name in doc and SECTIONS[""][name].ok(doc[name])]


def option_errors(opt: TrainOptions, given) -> list[ValueError]:
    """Every error ``baselines.train.check_options`` finds in ``opt`` (``given``: the options the user set): after
    each, the option it names goes back to its default and is no longer given, until none is left, or one names
    no option or comes again."""
    found: list[ValueError] = []
    for _ in range(len(OPTIONS) + 1):
        try:
            check_options(opt, given)
            return found
        except ValueError as err:
            if any(str(err) == str(e) for e in found):
                return found
            found.append(err)
            name = _PARAMETER.match(str(err))
            if not (name and name[1] in OPTION):
                return found
            opt = dataclasses.replace(opt, **{name[1]: OPTION[name[1]].default})
            given = [g for g in given if g != name[1]]
    return found


def _check_jobs(errors: _Errors, sweep: Sweep, given: list[str]) -> None:
    """Every job's options, as its runs will be made (``run_options``; ``threads`` left to the machine that trains
    it, P at most the train size, which ``P.max`` is checked against), before anything runs (``option_errors``:
    the checks that need no data or folder), each error once, told of its field; and no job twice
    (``_check_distinct``). Grid points with a bad or repeated axis value (an error of its own) are left out."""
    factory, train = sweep.train["factory"], {**sweep.train, "threads": None}
    points = [point for point in grid(sweep) if point.valid(sweep)]
    for point in points:
        cfg, width = point.entry.config, job_width(point.arch, point.width, factory)
        P = min(point.entry.P[1], cfg.split_sizes()["train"])
        for err in option_errors(run_options(cfg, point.arch, width, point.lr, point.seed, P, train), given):
            errors.at({**OPTION_PATHS, **point.paths}, point.entry.where, err)
    _check_distinct(errors, sweep, points)


def _check_distinct(errors: _Errors, sweep: Sweep, points: list[GridPoint]) -> None:
    """No two grid points with one job id (``point_id``): two values of an axis that resolve to one, as ``null``
    and 64 in ``widths`` for the transformer (its default width is 64). One error per pair of values, naming the
    field, both values and a job made twice."""
    factory, seen, told = sweep.train["factory"], {}, set()
    for point in points:
        job = point_id(point, factory)
        first = seen.setdefault(job, point)
        axis = next((a for a in AXES if first.paths[a] != point.paths[a]), None)
        if axis is None or (axis, first.paths[axis], point.paths[axis]) in told:
            continue
        told.add((axis, first.paths[axis], point.paths[axis]))
        both = " and ".join(f"{p.paths[axis]}={_yaml(getattr(p, axis))}" for p in (first, point))
        bound = f"values that give distinct jobs: {both} both give job {job} (null: the network's default {axis})"
        try:
            require(False, f"{axis}s", list(getattr(sweep, f"{axis}s")), bound)
        except ValueError as err:
            errors.add(str(err))


def _yaml(value) -> str:
    """A value as the sweep file writes it (null for None)."""
    return "null" if value is None else repr(value)


def executor_options(sweep: Sweep, executor: str, overrides: dict | None = None) -> dict:
    """The sweep file's ``executor.<executor>`` options updated by ``overrides`` (None values ignored,
    ``sbatch`` merged); raises :class:`SweepFileError` naming each bad option."""
    require(executor in EXECUTORS, "executor", executor, f"one of {EXECUTORS}")
    options = dict(sweep.executor[executor])
    for key, value in (overrides or {}).items():
        if value is not None:
            options[key] = {**options[key], **value} if isinstance(options.get(key), dict) else value
    errors = _Errors()
    checked = _section(errors, f"executor.{executor}", options, SECTIONS[f"executor.{executor}"])
    if errors.messages:
        raise SweepFileError(f"{sweep.name} with the given executor options", errors.messages)
    return checked


__all__ = [
    "EXECUTORS",
    "SECTIONS",
    "ConfigEntry",
    "Field",
    "Sweep",
    "SweepFileError",
    "executor_options",
    "grid",
    "job_id",
    "job_width",
    "load_sweep",
    "parse_sweep",
]
