"""Measuring a model: the ``evaluation`` object of a results file (format.md §11, §12.2).

The ``evaluation`` object (agreed with the results schema, ``srhm_datasets/results_schema.json``)::

    {"test_error": float, "num_test": int,
     "task": {"name": str, "context": int | null, "mask_rate": float | null, "noise": float},
     "probe": {"source": "release" | "generator", "num_points": int,
               "perturbation": {"force": true, "key": 0}} | null,
     "layers": [layer names],
     "sensitivity": {"synonym": {layer: [S_{k,1}, ..., S_{k,L}]},
                     "diffeo":  {layer: [D_{k,1}, ..., D_{k,L}]}},   # null where undefined
     "undefined": {"synonym": bool, "diffeo": bool},
     "checkpoint": {"file": str | null, "selection": "best" | "user", "step": int | null}}

``checkpoint`` is added by ``evaluate.evaluate_run`` and ``evaluate.evaluate_factory``, not
by ``evaluate_model``. ``task`` is the task measured (``task_record``), so that an evaluation filed
under another task is seen (format.md §12.4). The test error is the error of the model's task (format.md §15): its
inputs and targets on the whole ``test`` split (or its first ``num_test`` rows) with the
task's key 0 (``tasks.apply_task``), scored by ``baselines.train.test_error``: the rows,
draws and function training scores its test rows with. S and D are measured on the clean
probe for a ``class`` model (with or without noise); for a model of another task they are
undefined and ``probe`` is null (``kinds.undefined_kinds``).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..baselines.train import test_error
from ..config import SRHMConfig, is_int, require
from ..generate import generate
from ..protocol import FORWARD_BYTES, target_classes
from ..tasks import Task, apply_task, make_task
from ..torch import encode
from ..torch_data.encoding import check_device, check_encoding, torch_ints, torch_tokens
from ..torch_data.tasks import input_channels
from .kinds import SENSITIVITY_TASK, undefined_kinds, why_undefined
from .probes import PROBE_PERTURBATION, PROBE_SOURCES, ProbeSet, check_num_probe, load_probe, load_test, probe_size
from .sensitivity import (
    ActivationRecorder,
    check_batch_size,
    compute_sensitivities,
    default_layers,
)


class ModelMismatch(ValueError):
    """A model that is not one of a task: it does not take the task's inputs or give its outputs
    (``check_model_fits``), or a state dict does not fit the model its factory builds for the task
    (``submission.build_user_model``). The leaderboard's ``--verify`` rejects a file whose model is not one
    of the task it is filed under (``board_verify``)."""


#: Errors of a forward pass that say the machine cannot run it (an operation the device lacks, memory), not that
#: the model does not take the input: ``check_model_fits`` raises a plain ValueError for them.
DEVICE_ERRORS = (NotImplementedError, MemoryError, torch.cuda.OutOfMemoryError)


def task_record(task: Task) -> dict:
    """The JSON object of a task (format.md §12.2): ``{"name", "context", "mask_rate", "noise"}``, as a
    submission's ``task`` and an evaluation's ``evaluation.task`` record it.

    Examples
    --------
    >>> from srhm_datasets.catalog import get_config
    >>> task_record(make_task(get_config("demo"), "last", context=4))
    {'name': 'last', 'context': 4, 'mask_rate': None, 'noise': 0.0}
    """
    return {"name": task.name, "context": task.context, "mask_rate": task.mask_rate, "noise": task.noise}


def evaluation_task(cfg: SRHMConfig, task="class") -> Task:
    """The checked task of an evaluation (``tasks.make_task``: a name or a ``Task`` of ``cfg``) with key 0,
    the draws every model is scored on (format.md §15.3); ValueError naming ``task.key`` otherwise.

    Examples
    --------
    >>> from srhm_datasets.catalog import get_config
    >>> evaluation_task(get_config("demo"), "mlm")
    Task(name='mlm', context=None, mask_rate=0.15, noise=0.0, key=0)
    """
    task = make_task(cfg, task)
    require(task.key == 0, "task.key", task.key, "0: the test rows are scored with the task's key 0")
    return task


def task_test_set(cfg: SRHMConfig, task: Task, tokens: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inputs and targets of ``task`` on test rows 0..n-1 (tokens [n, d], labels [n]), as training scores
    them (``tasks.apply_task`` on the ``test`` split with the task's key): inputs [n, d] (or [n, d-1]),
    targets [n] or [n, d'] with ``IGNORE_INDEX`` where unscored. The task is applied to chunks of rows
    whose uint64 draws hold at most ``FORWARD_BYTES``."""
    step = max(1, FORWARD_BYTES // (8 * cfg.d))
    parts = [
        apply_task(cfg, task, {"tokens": tokens[a : a + step], "label": labels[a : a + step]}, "test", a)
        for a in range(0, len(tokens), step)
    ]
    return np.concatenate([p.inputs for p in parts]), np.concatenate([p.targets for p in parts])


def check_evaluation_options(
    cfg: SRHMConfig,
    *,
    task="class",
    probe=None,
    data=None,
    revision=None,
    encoding: str = "whiten",
    layers=None,
    num_test=None,
    num_probe=None,
    batch_size=4096,
    device=None,
) -> str:
    """Check the options of an evaluation on ``cfg`` before any data is read or generated.

    ValueError naming the parameter, its value and the bound: ``task`` (``evaluation_task``),
    ``probe`` (a ProbeSet of ``cfg``'s input length, or a source in ``PROBE_SOURCES``; "release" needs ``data``),
    ``data`` / ``revision`` (None or str / path), ``encoding``, ``layers`` (None or a
    non-empty list of names), ``num_test`` (1..test size), ``num_probe`` (2..probe size),
    ``batch_size`` (>= 1), ``device`` (an available device). Returns the device string.
    """
    if not isinstance(cfg, SRHMConfig):
        raise TypeError(f"invalid parameter cfg={cfg!r}: must be an SRHMConfig")
    evaluation_task(cfg, task)
    if isinstance(probe, ProbeSet):
        require(
            probe.tokens.ndim == 2 and probe.tokens.shape[1] == cfg.d,
            "probe",
            f"ProbeSet {probe.tokens.shape}",
            f"probe tokens [n, d={cfg.d}] of {cfg.name}",
        )
    else:
        require(probe is None or probe in PROBE_SOURCES, "probe_source", probe, f"one of {PROBE_SOURCES}")
        require(probe != "release" or bool(data), "data", data, "a release folder or repo when probe_source='release'")
    require(data is None or isinstance(data, (str, os.PathLike)), "data", data, "None, a folder or a Hub repo id")
    require(revision is None or isinstance(revision, str), "revision", revision, "None or a str")
    check_encoding(encoding, "encoding")
    require(
        layers is None
        or (isinstance(layers, (list, tuple)) and len(layers) > 0 and all(isinstance(x, str) and x for x in layers)),
        "layers",
        layers,
        "None or a non-empty list of layer names",
    )
    test_size = cfg.split_sizes()["test"]
    require(
        num_test is None or (is_int(num_test) and 1 <= num_test <= test_size),
        "num_test",
        num_test,
        f"1 <= num_test <= {test_size} (test split size)",
    )
    if not isinstance(probe, ProbeSet):
        probe_size(cfg, num_probe)
    elif num_probe is not None:
        check_num_probe(num_probe, probe.num_points, "probe points available")
    check_batch_size(batch_size)
    return check_device(device)


#: The model input of each encoding (format.md §7), for the message of a model that does not accept it.
_INPUTS = "whiten and onehot give [B, {c}, {n}] float32, tokens gives [B, {n}] int64 token ids"


def _inputs_text(cfg: SRHMConfig, task: Task) -> str:
    """``_INPUTS`` for a task: v channels (v+2 with the MASK codes of ``last`` and ``mlm``), d positions
    (d-1 for ``next``)."""
    c = f"v+2={cfg.v + 2}" if input_channels(cfg.v, task) > cfg.v else f"v={cfg.v}"
    return _INPUTS.format(c=c, n=f"d-1={cfg.d - 1}" if task.name == "next" else f"d={cfg.d}")


def check_model_fits(model, cfg: SRHMConfig, encoding: str, device, task: Task | str = "class") -> None:
    """``model`` maps the inputs of ``task`` on two test rows of ``cfg`` to outputs of the shape of the
    task's targets with a last dimension of at least C classes (``protocol.target_classes``: logits
    [2, nc] for ``class``), the rule training checks (``baselines.train.check_outputs``); else a
    ``ModelMismatch`` (a ValueError) saying it was built for another config (other v, d or nc) or another
    input (a model that raises anything on its first batch: the message gives the input's shape and dtype,
    and the encoding that changes them; a plain ValueError for ``DEVICE_ERRORS``) instead of a wrong number
    or a library traceback later."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"invalid parameter model={type(model).__name__}: must be a torch.nn.Module")
    task = make_task(cfg, task)
    rows = generate(cfg, "test", 0, min(2, cfg.split_sizes()["test"]), workers=1)
    inputs, targets = task_test_set(cfg, task, rows["tokens"], rows["label"])
    channels = input_channels(cfg.v, task)
    x = encode(torch_tokens(inputs).to(device), cfg.v, encoding, channels=channels)
    was_training = model.training
    try:
        with torch.inference_mode():
            out = model.eval().to(device)(x)
    except Exception as err:  # noqa: BLE001 - a user's model may raise anything (an assert on its input, ...)
        error = ValueError if isinstance(err, DEVICE_ERRORS) else ModelMismatch  # the machine's limit, not the model's
        raise error(
            f"invalid parameter model: it does not accept inputs of {cfg.name} (task {task.name}): its first batch "
            f"was x {list(x.shape)} {str(x.dtype).removeprefix('torch.')} (encoding {encoding!r}); the encoding "
            f"(option --encoding of srhm evaluate) sets the input: {_inputs_text(cfg, task)} "
            f"({type(err).__name__}: {' '.join(str(err).split())[:300]})"
        ) from None
    finally:
        model.train(was_training)
    classes = target_classes(cfg, task.name)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    expected = ", ".join(["B", *map(str, targets.shape[1:])])
    symbol = {"class": "nc", "next": "v+1"}.get(task.name, "v")
    require(
        isinstance(out, torch.Tensor) and out.shape[:-1] == targets.shape and out.shape[-1] >= classes,
        "model",
        f"output {shape}",
        f"outputs [{expected}, >= {symbol}={classes}] for task {task.name} of {cfg.name} (a model of another "
        "config or task?)",
        ModelMismatch,
    )


def evaluate_model(
    model: torch.nn.Module,
    cfg: SRHMConfig,
    *,
    task: Task | str = "class",
    layers: list[str] | None = None,
    encoding: str = "whiten",
    probe: ProbeSet | str = "generator",
    data: str | None = None,
    revision: str | None = None,
    num_test: int | None = None,
    num_probe: int | None = None,
    batch_size: int = 4096,
    device: torch.device | str | None = None,
) -> dict:
    """The ``evaluation`` object of any module on a config and task.

    model: maps ``encode(inputs, cfg.v, encoding)`` ([B, v, d] floats, [B, v + 2, d] for the
    MASK codes of ``last`` and ``mlm``, or [B, d] ids) to the task's outputs (logits [B, nc]
    for ``class``). task: a task name or ``tasks.Task`` of ``cfg`` with key 0
    (``evaluation_task``); the test error is the task's, on the test rows with key 0 (the rows
    and draws training scores, format.md §15.3); S and D only for a ``class`` model, on the
    clean probe. layers: module names (forward hooks) plus "output"/"input"; default the
    model's ``hidden_layer_names()`` (if any) and "output". probe: a ``ProbeSet`` or a
    source name ("generator", or "release" with ``data``). data/revision: a release
    folder or Hub repo for the test split (and the probe when probe="release"); without
    it the test split is generated. batch_size: rows per forward pass at most, for the test
    error and the sensitivities alike (fewer at large v * d: ``protocol.forward_rows``).
    Returns a JSON-ready dict (see the module docstring; ``probe`` null for a task other than class).

    Every option is checked first (``check_evaluation_options``), then that the model
    fits the config and task (``check_model_fits``) and that the layers exist,
    before the test split is read: ValueError naming what does not fit.

    Examples
    --------
    >>> import torch, srhm_datasets as srhm
    >>> cfg = srhm.get_config("demo")
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear((cfg.v + 2) * cfg.d, cfg.v))
    >>> ev = evaluate_model(model, cfg, task="last", num_test=100, device="cpu")
    >>> ev["num_test"], ev["probe"], ev["undefined"]
    (100, None, {'synonym': True, 'diffeo': True})
    """
    options = {"probe": probe, "data": data, "revision": revision, "encoding": encoding, "layers": layers}
    options.update(num_test=num_test, num_probe=num_probe, batch_size=batch_size, device=device)
    device = torch.device(check_evaluation_options(cfg, task=task, **options))
    task = evaluation_task(cfg, task)
    check_model_fits(model, cfg, encoding, device, task)
    layers = list(layers) if layers else default_layers(model)
    ActivationRecorder(model, layers)  # unknown layer names: ValueError now, not after the test error
    if task.name != SENSITIVITY_TASK:
        probe = None  # S and D: class models only
    elif isinstance(probe, str):
        probe = load_probe(cfg, probe, data, revision, num_probe)
    else:
        probe = probe.head(num_probe)
    inputs, targets = task_test_set(cfg, task, *load_test(cfg, data, revision, num_test))
    err = test_error(
        model.to(device),
        torch_tokens(inputs).to(device),
        torch_ints(targets).to(device),
        cfg.v,
        encoding,
        batch_size=batch_size,
        channels=input_channels(cfg.v, task),
    )
    sensitivity, undefined = _sensitivities(model, cfg, task, probe, layers, encoding, device, batch_size)
    return {
        "test_error": err,
        "num_test": len(inputs),
        "task": task_record(task),
        "probe": None if probe is None else _probe_record(probe),
        "layers": list(layers),
        "sensitivity": sensitivity,
        "undefined": undefined,
    }


def _probe_record(probe: ProbeSet) -> dict:
    """The ``evaluation.probe`` record of the probe points S and D were measured on."""
    return {"source": probe.source, "num_points": probe.num_points, "perturbation": dict(PROBE_PERTURBATION)}


def _sensitivities(model, cfg, task: Task, probe: ProbeSet | None, layers, encoding, device, batch_size):
    """``(sensitivity, undefined)`` of the evaluation: measured on ``probe`` (a class model), else every value
    null and both kinds undefined (``kinds.undefined_kinds`` of the task)."""
    if probe is None:
        undefined = undefined_kinds(cfg, task.name)
        return {kind: {layer: [None] * cfg.L for layer in layers} for kind in undefined}, undefined
    table = compute_sensitivities(
        model,
        probe.tokens,
        probe.perturbed(),
        cfg.v,
        layers=layers,
        encoding=encoding,
        batch_size=batch_size,
        device=device,
        levels=cfg.L,
    )
    return table.to_json(), dict(table.undefined)


def format_evaluation(evaluation: dict, title: str | None = None, task: str = SENSITIVITY_TASK) -> str:
    """A readable text table: test error (of ``task``, a task name or label), then S and D per layer x level
    ("undefined" where so, with the reason: ``kinds.why_undefined``)."""
    lines = [title] if title else []
    probe = evaluation["probe"]
    lines.append(
        f"test error {evaluation['test_error']:.4f} on {evaluation['num_test']} test points (task {task}); "
        + (f"probe: {probe['num_points']} points ({probe['source']})" if probe else "no probe")
    )
    ckpt = evaluation.get("checkpoint")
    if ckpt and ckpt.get("file"):
        step = f", step {ckpt['step']}" if ckpt.get("step") is not None else ""
        lines.append(f"checkpoint: {ckpt['file']} ({ckpt['selection']}{step})")
    layers = evaluation["layers"]
    width = max([len("layer")] + [len(x) for x in layers])
    for kind, letter in (("synonym", "S"), ("diffeo", "D")):
        table = evaluation["sensitivity"][kind]
        L = max((len(v) for v in table.values()), default=0)
        lines.append("")
        if evaluation["undefined"][kind]:
            why = why_undefined(kind, task.split()[0])
            lines.append(f"{letter}_(k,l) {kind} sensitivity: undefined ({why})")
            continue
        lines.append(f"{letter}_(k,l) {kind} sensitivity")
        lines.append(f"{'layer':<{width}}  " + "  ".join(f"{'l=' + str(level):>9}" for level in range(1, L + 1)))
        for layer in layers:
            cells = ["undefined" if x is None else f"{x:9.4f}" for x in table[layer]]
            lines.append(f"{layer:<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)
