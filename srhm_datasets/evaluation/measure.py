"""Measuring a model: the ``evaluation`` object of a results file (format.md §11, §12.2).

The ``evaluation`` object (agreed with the results schema, ``srhm_datasets/results_schema.json``)::

    {"test_error": float, "num_test": int,
     "probe": {"source": "release" | "generator", "num_points": int,
               "perturbation": {"force": true, "key": 0}},
     "layers": [layer names],
     "sensitivity": {"synonym": {layer: [S_{k,1}, ..., S_{k,L}]},
                     "diffeo":  {layer: [D_{k,1}, ..., D_{k,L}]}},   # null where undefined
     "undefined": {"synonym": bool, "diffeo": bool},
     "checkpoint": {"file": str | null, "selection": "best" | "user", "step": int | null}}

``checkpoint`` is added by ``evaluate.evaluate_run`` and ``evaluate.evaluate_factory``, not
by ``evaluate_model``. The test error is measured on the whole ``test`` split (or its first
``num_test`` rows) with ``baselines.train.test_error``, the function training uses.
"""

from __future__ import annotations

import os

import torch

from ..baselines.train import test_error
from ..config import SRHMConfig, is_int, require
from ..generate import generate
from ..torch import encode
from ..torch_data.encoding import check_device, check_encoding
from .probes import PROBE_PERTURBATION, PROBE_SOURCES, ProbeSet, check_num_probe, load_probe, load_test, probe_size
from .sensitivity import (
    ActivationRecorder,
    as_tensor,
    check_batch_size,
    compute_sensitivities,
    default_layers,
)


def check_evaluation_options(
    cfg: SRHMConfig,
    *,
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

    ValueError naming the parameter, its value and the bound: ``probe`` (a ProbeSet of
    ``cfg``'s input length, or a source in ``PROBE_SOURCES``; "release" needs ``data``),
    ``data`` / ``revision`` (None or str / path), ``encoding``, ``layers`` (None or a
    non-empty list of names), ``num_test`` (1..test size), ``num_probe`` (2..probe size),
    ``batch_size`` (>= 1), ``device`` (an available device). Returns the device string.
    """
    if not isinstance(cfg, SRHMConfig):
        raise TypeError(f"invalid parameter cfg={cfg!r}: must be an SRHMConfig")
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
_INPUTS = "whiten and onehot give [B, v={v}, d={d}] float32, tokens gives [B, d={d}] int64 token ids"


def check_model_fits(model, cfg: SRHMConfig, encoding: str, device) -> None:
    """``model`` maps two encoded test rows of ``cfg`` to logits [2, nc]; else a ValueError saying it
    was built for another config (other v, d or nc) or another input (a model that raises anything on
    its first batch: the message gives the input's shape and dtype, and the encoding that changes
    them) instead of a wrong number or a library traceback later."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"invalid parameter model={type(model).__name__}: must be a torch.nn.Module")
    rows = generate(cfg, "test", 0, min(2, cfg.split_sizes()["test"]), workers=1)["tokens"]
    x = encode(torch.from_numpy(rows).to(device), cfg.v, encoding)
    was_training = model.training
    try:
        with torch.inference_mode():
            out = model.eval().to(device)(x)
    except Exception as err:  # noqa: BLE001 - a user's model may raise anything (an assert on its input, ...)
        raise ValueError(
            f"invalid parameter model: it does not accept inputs of {cfg.name}: its first batch was x "
            f"{list(x.shape)} {str(x.dtype).removeprefix('torch.')} (encoding {encoding!r}); the encoding (option "
            f"--encoding of srhm evaluate) sets the input: {_INPUTS.format(v=cfg.v, d=cfg.d)} "
            f"({type(err).__name__}: {' '.join(str(err).split())[:300]})"
        ) from None
    finally:
        model.train(was_training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    require(
        shape == (len(x), cfg.nc),
        "model",
        f"output {shape}",
        f"logits [B, nc={cfg.nc}] for {cfg.name} (a model of another config?)",
    )


def evaluate_model(
    model: torch.nn.Module,
    cfg: SRHMConfig,
    *,
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
    """The ``evaluation`` object of any module on a config.

    model: maps ``encode(tokens, cfg.v, encoding)`` ([B, v, d], or [B, d] ids) to logits
    [B, nc]. layers: module names (forward hooks) plus "output"/"input"; default the
    model's ``hidden_layer_names()`` (if any) and "output". probe: a ``ProbeSet`` or a
    source name ("generator", or "release" with ``data``). data/revision: a release
    folder or Hub repo for the test split (and the probe when probe="release"); without
    it the test split is generated. batch_size: rows per forward pass at most, for the test
    error and the sensitivities alike (fewer at large v * d: ``protocol.forward_rows``).
    Returns a JSON-ready dict (see the module docstring).

    Every option is checked first (``check_evaluation_options``), then that the model
    fits the config (``check_model_fits``: logits [B, nc]) and that the layers exist,
    before the test split is read: ValueError naming what does not fit.
    """
    device = torch.device(
        check_evaluation_options(
            cfg,
            probe=probe,
            data=data,
            revision=revision,
            encoding=encoding,
            layers=layers,
            num_test=num_test,
            num_probe=num_probe,
            batch_size=batch_size,
            device=device,
        )
    )
    check_model_fits(model, cfg, encoding, device)
    layers = list(layers) if layers else default_layers(model)
    ActivationRecorder(model, layers)  # unknown layer names: ValueError now, not after the test error
    if isinstance(probe, str):
        probe = load_probe(cfg, probe, data, revision, num_probe)
    else:
        probe = probe.head(num_probe)
    tokens, labels = load_test(cfg, data, revision, num_test)
    err = test_error(
        model.to(device),
        as_tensor(tokens).to(device),
        as_tensor(labels).long().to(device),
        cfg.v,
        encoding,
        batch_size=batch_size,
    )
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
    return {
        "test_error": err,
        "num_test": len(labels),
        "probe": {"source": probe.source, "num_points": probe.num_points, "perturbation": dict(PROBE_PERTURBATION)},
        "layers": list(layers),
        "sensitivity": table.to_json(),
        "undefined": dict(table.undefined),
    }


def format_evaluation(evaluation: dict, title: str | None = None) -> str:
    """A readable text table: test error, then S and D per layer x level ("undefined" where so)."""
    lines = [title] if title else []
    lines.append(
        f"test error {evaluation['test_error']:.4f} on {evaluation['num_test']} test points; "
        f"probe: {evaluation['probe']['num_points']} points ({evaluation['probe']['source']})"
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
            why = "m = 1: no synonym to exchange" if kind == "synonym" else "K = 1: no other placement"
            lines.append(f"{letter}_(k,l) {kind} sensitivity: undefined ({why})")
            continue
        lines.append(f"{letter}_(k,l) {kind} sensitivity")
        lines.append(f"{'layer':<{width}}  " + "  ".join(f"{'l=' + str(level):>9}" for level in range(1, L + 1)))
        for layer in layers:
            cells = ["undefined" if x is None else f"{x:9.4f}" for x in table[layer]]
            lines.append(f"{layer:<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)
