"""Results files (format ``srhm-results`` v1): schema, validation, I/O.

Two kinds of file share the format:

- a run of ``srhm train``: one ``results.json`` per run folder, with a ``training``
  object (hyperparameters, curves, stopping reason, and ``run_id``, the identifier its
  checkpoint shares: format.md §12.3; optional for reading, results written before it have
  none); ``model.arch`` is cnn, lcn, fcn (``model.depth`` equals the config's L) or transformer.
  ``srhm evaluate RUN_DIR`` adds the optional ``evaluation`` object.
- an outside submission (``srhm evaluate --factory``): no ``training`` object, any
  ``model.arch`` label, ``model.width`` / ``model.depth`` null where they do not apply,
  optional ``model.name`` and ``model.factory``; the ``evaluation`` object is required.

The JSON Schema lives next to this module (``results_schema.json``); ``validate_results``
also checks what a schema cannot express (curve lengths agree, one sensitivity value per
level 1..L, one table per layer in both kinds, no NaN or infinity anywhere, ...).

Results files are written with ``files.atomic_write`` (temp file in the same folder +
``os.replace``), as are checkpoints, learning-curve summaries and leaderboard pages, so a
reader never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path

from .files import atomic_write
from .protocol import HIERARCHICAL_ARCHS, RESULTS_FILE

FORMAT = {"name": "srhm-results", "version": 1}
SCHEMA_PATH = Path(__file__).with_name("results_schema.json")


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The JSON Schema (draft 2020-12) of results format v1."""
    return json.loads(SCHEMA_PATH.read_text())


def _reject_constant(name: str):
    raise ValueError(f"invalid results JSON: non-finite number {name} (results files hold finite numbers only)")


def loads_results(text: str):
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity`` (Python's json accepts them)."""
    return json.loads(text, parse_constant=_reject_constant)


def get_field(obj: dict, dotted: str):
    """The value at a dotted field path of a results dict (``"training.seed"``), None where absent."""
    for key in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def task_fields(results: dict) -> dict:
    """The task a results file was trained and tested on (format.md §12.2), as ``{"name", "context",
    "mask_rate", "noise"}`` (None where not given): a run's ``training.task`` with its ``training.context``,
    ``mask_rate`` and ``noise`` (``srhm train``), else the top-level ``task`` of a submission (a name or an
    object); absent: ``class``.

    Examples
    --------
    >>> task_fields({"training": {"task": "last", "context": 4, "noise": 0.0}})
    {'name': 'last', 'context': 4, 'mask_rate': None, 'noise': 0.0}
    >>> task_fields({"task": "mlm"}), task_fields({})["name"]
    ({'name': 'mlm', 'context': None, 'mask_rate': None, 'noise': None}, 'class')
    """
    training = results.get("training") or {}
    if training.get("task") is not None:
        task = {"name": training["task"], **{k: training.get(k) for k in ("context", "mask_rate", "noise")}}
    else:
        task = results.get("task", "class")
    if isinstance(task, str):
        task = {"name": task}
    return {"name": task["name"], **{k: task.get(k) for k in ("context", "mask_rate", "noise")}}


def _path(parts) -> str:
    return (
        "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(parts)) or "<root>"
    )


def validate_results(obj: dict) -> None:
    """Raise ``ValueError`` naming the first failing field if ``obj`` is not a valid results file."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(obj), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        parts = list(err.absolute_path)
        if err.validator == "required" and isinstance(err.instance, dict):  # name the missing field itself
            missing = [k for k in err.validator_value if k not in err.instance]
            parts += missing[:1]
        raise ValueError(f"invalid results field {_path(parts)}: {err.message}{_rule(err)}")
    _check_finite(obj, [])
    _check_semantics(obj)


def _check_finite(value, parts: list) -> None:
    """Every number in the file is finite (NaN and infinities break ranking and JSON)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, parts + [key])
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite(item, parts + [i])
    elif isinstance(value, float) and not math.isfinite(value):
        _fail(_path(parts), f"{value} is not a finite number")


def _rule(err) -> str:
    """`` (why)`` when the error comes from a rule of one kind of file (the schema's ``allOf``
    branches: srhm train runs, outside submissions), else ``""``."""
    where = list(err.schema_path)
    if len(where) >= 2 and where[0] == "allOf":
        return f" ({load_schema()['allOf'][where[1]]['description']})"
    return ""


def _fail(field: str, message: str) -> None:
    raise ValueError(f"invalid results field {field}: {message}")


def _check_semantics(obj: dict) -> None:
    L = obj["dataset"]["parameters"]["L"]
    if "training" in obj:  # a run of srhm train
        _check_training(obj, L)
    ev = obj.get("evaluation")
    if ev is not None:
        for kind in ("synonym", "diffeo"):
            missing = [layer for layer in ev["layers"] if layer not in ev["sensitivity"][kind]]
            if missing:
                _fail(f"evaluation.sensitivity.{kind}", f"has no table for layer(s) {missing} of evaluation.layers")
            for layer, values in ev["sensitivity"][kind].items():
                if layer not in ev["layers"]:
                    _fail(
                        f"evaluation.sensitivity.{kind}.{layer}",
                        f"layer {layer!r} is not in evaluation.layers {ev['layers']}",
                    )
                if len(values) != L:
                    _fail(
                        f"evaluation.sensitivity.{kind}.{layer}",
                        f"has {len(values)} values, expected L = {L} (levels 1..L)",
                    )


def _check_training(obj: dict, L: int) -> None:
    """What a run of ``srhm train`` adds: consistent curves, best error = their minimum, depth = L (a
    hierarchical network, ``protocol.HIERARCHICAL_ARCHS``)."""
    curves = obj["training"]["curves"]
    n = len(curves["step"])
    for key in ("train_loss", "test_error"):
        if len(curves[key]) != n:
            _fail(
                f"training.curves.{key}",
                f"has {len(curves[key])} entries, expected {n} (as many as training.curves.step)",
            )
    if any(b <= a for a, b in zip(curves["step"], curves["step"][1:])):
        _fail("training.curves.step", "must be strictly increasing")
    if curves["test_error"] and not math.isclose(obj["best_test_error"], min(curves["test_error"]), abs_tol=1e-12):
        _fail(
            "best_test_error",
            f"{obj['best_test_error']} is not the minimum of training.curves.test_error ({min(curves['test_error'])})",
        )
    if obj["model"].get("arch") in HIERARCHICAL_ARCHS and obj["model"]["depth"] != L:
        _fail(
            "model.depth",
            f"{obj['model']['depth']} != dataset.parameters.L = {L} (a srhm train network has L hidden layers)",
        )
    if "group" in obj["training"]:
        _check_group(obj["training"]["group"], obj["P"], obj["training"]["seed"])


def _check_group(group: dict, P: int, seed: int) -> None:
    """``training.group`` (format.md §12.2) describes a group this run belongs to: ``size`` members,
    listed in ``members``, the one at ``index`` being this run (its P and seed)."""
    size, index, members = group["size"], group["index"], group["members"]
    if len(members) != size:
        _fail("training.group.members", f"has {len(members)} entries, expected training.group.size = {size}")
    if index >= size:
        _fail("training.group.index", f"{index} is not below training.group.size = {size}")
    if members[index] != {"P": P, "seed": seed}:
        _fail(f"training.group.members[{index}]", f"{members[index]} is not this run (P = {P}, training.seed = {seed})")


def write_results(path: str | os.PathLike, obj: dict) -> Path:
    """Validate ``obj`` and write it to ``path`` atomically (temp file + rename)."""
    validate_results(obj)
    return atomic_write(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def read_results(path: str | os.PathLike) -> dict:
    """Load and validate a results file (a ``results.json`` or a run folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    obj = loads_results(path.read_text())
    validate_results(obj)
    return obj
